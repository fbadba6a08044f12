package data

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"
)

// mixOf opens a mixture: each file its own stream (shuffled ones seeded), weights as given.
func mixOf(t testing.TB, spec Spec, files []string, shuffle []bool, weights []float64) *Mixture {
	t.Helper()
	var streams []*Stream
	for i, f := range files {
		src, err := Open([]string{f}, spec)
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, NewStream(src, shuffle[i], uint64(11+i)))
	}
	m, err := NewMixture(streams, weights, 42)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func equalBatch(a, b Batch) bool {
	return a.B == b.B && a.T == b.T && a.Pairs == b.Pairs && a.Padding == b.Padding &&
		slices.Equal(a.IDs, b.IDs) && slices.Equal(a.Labels, b.Labels) && slices.Equal(a.Pos, b.Pos) &&
		slices.Equal(a.DocStart, b.DocStart) && slices.Equal(a.Response, b.Response)
}

type pipelineCase struct {
	name    string
	spec    Spec
	files   []string
	shuffle []bool
	weights []float64
	cfg     PipelineConfig
}

var pipelineCases = []pipelineCase{
	{"pretrain", Spec{Format: FormatText}, []string{"testdata/parquet/regen/pretrain_v2.parquet", "testdata/parquet/nulls.parquet"},
		[]bool{true, false}, []float64{0.25, 0.75}, PipelineConfig{Task: TaskPretrain, Rows: 4, SeqLen: 256}},
	{"sft-packed", Spec{Format: FormatChat}, []string{"testdata/parquet/sft_messages.parquet", "testdata/parquet/sft_messages_alt.parquet"},
		[]bool{true, false}, []float64{1, 2}, PipelineConfig{Task: TaskSFT, Rows: 2, SeqLen: 256, Pack: true}},
	{"sft-padded", Spec{Format: FormatChat}, []string{"testdata/parquet/sft_messages.parquet"},
		[]bool{false}, []float64{1}, PipelineConfig{Task: TaskSFT, Rows: 3, SeqLen: 200, Truncate: true}},
	{"preference", Spec{Format: FormatPreference}, []string{"testdata/parquet/dpo_pairs.parquet", "testdata/parquet/dpo_messages_ultrafeedback.parquet"},
		[]bool{true, true}, []float64{1, 1}, PipelineConfig{Task: TaskPreference, Rows: 2, SeqLen: 128}},
}

func (c pipelineCase) open(t testing.TB, workers, ahead int) *Pipeline {
	cfg := c.cfg
	cfg.Workers, cfg.Ahead = workers, ahead
	p, err := NewPipeline(mixOf(t, c.spec, c.files, c.shuffle, c.weights), qwen3(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func take(t testing.TB, p *Pipeline, n int) []Batch {
	t.Helper()
	var out []Batch
	for range n {
		b, err := p.Next()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestPipelineResume: stop a weighted mixture pipeline after k batches, round-trip its state
// through JSON, restore it in a fresh pipeline (fresh sources): the next batches equal the
// uninterrupted pipeline's. For pretraining and packed SFT some of the stops must fall with an
// example carried over (pretraining: split mid-document, Offset > 0).
func TestPipelineResume(t *testing.T) {
	const total = 16
	for _, c := range pipelineCases {
		t.Run(c.name, func(t *testing.T) {
			ref := c.open(t, 2, 4)
			want := take(t, ref, total)
			refCounts := ref.Counts()
			ref.Close()
			split, carried := 0, 0
			for _, k := range []int{0, 1, 2, 5, 9, 15} {
				p := c.open(t, 2, 4)
				got := take(t, p, k)
				st := p.State()
				if _, _, ok := p.packer.Pending(); ok {
					carried++
				}
				if st.Offset > 0 {
					split++
				}
				p.Close()
				js, err := json.Marshal(st)
				if err != nil {
					t.Fatal(err)
				}
				var back PipelineState
				if err := json.Unmarshal(js, &back); err != nil {
					t.Fatal(err)
				}
				q := c.open(t, 3, 2)
				if err := q.Restore(back); err != nil {
					t.Fatal(err)
				}
				if k == 0 {
					// State before any batch restores to the start.
					if s := q.State(); s.Offset != 0 {
						t.Errorf("fresh state offset %d", s.Offset)
					}
				}
				got = append(got, take(t, q, total-k)...)
				for i := range want {
					if !equalBatch(got[i], want[i]) {
						t.Fatalf("stopped after %d batches (state %s): batch %d differs", k, js, i)
					}
				}
				if qc := q.Counts(); fmt.Sprint(qc) != fmt.Sprint(refCounts) {
					t.Errorf("stopped after %d: counts %+v, uninterrupted %+v", k, qc, refCounts)
				}
				q.Close()
			}
			t.Logf("%d of 6 stops carried an example, %d mid-document; counts %+v", carried, split, refCounts)
			switch c.name {
			case "pretrain":
				if split == 0 {
					t.Error("no stop fell mid-document: carry-over untested")
				}
			case "sft-packed":
				if carried == 0 {
					t.Error("no stop carried an example: carry-over untested")
				}
			}
		})
	}
}

// TestPipelineDeterministic: the batches do not depend on the number of workers or how far
// they run ahead, and each batch is well formed.
func TestPipelineDeterministic(t *testing.T) {
	for _, c := range pipelineCases {
		t.Run(c.name, func(t *testing.T) {
			a := c.open(t, 1, 1)
			want := take(t, a, 6)
			a.Close()
			b := c.open(t, 4, 32)
			got := take(t, b, 6)
			b.Close()
			for i := range want {
				if !equalBatch(got[i], want[i]) {
					t.Fatalf("batch %d differs between 1 worker and 4", i)
				}
				checkWellFormed(t, got[i])
			}
		})
	}
}

// checkWellFormed checks the invariants every batch keeps: documents are contiguous runs
// with DocStart at their first column and Pos counting from 0, the first token of each is
// ignored, and labels are either Ignore or the token itself.
func checkWellFormed(t *testing.T, b Batch) {
	t.Helper()
	for r := 0; r < b.B; r++ {
		for c := 0; c < b.T; c++ {
			i := r*b.T + c
			d := int(b.DocStart[i])
			if (c == 0 && d != 0) || (c > 0 && d != c && d != int(b.DocStart[i-1])) {
				t.Fatalf("row %d column %d: DocStart %d breaks the runs", r, c, d)
			}
			if int(b.Pos[i]) != c-d {
				t.Fatalf("row %d column %d: Pos %d, want %d", r, c, b.Pos[i], c-d)
			}
			if (d == c && b.Labels[i] != Ignore) || (b.Labels[i] != Ignore && b.Labels[i] != b.IDs[i]) {
				t.Fatalf("row %d column %d: label %d for id %d (document from %d)", r, c, b.Labels[i], b.IDs[i], d)
			}
			if b.Pairs > 0 && b.Response[i] != (b.Labels[i] != Ignore) {
				t.Fatalf("row %d column %d: response %v, label %d", r, c, b.Response[i], b.Labels[i])
			}
		}
	}
}

// TestPipelineBounded: the reader runs at most Ahead examples (plus the one it holds and the
// one being handed over) ahead of what the packer has taken, however long it is left alone.
func TestPipelineBounded(t *testing.T) {
	c := pipelineCases[0]
	for _, ahead := range []int{1, 7} {
		p := c.open(t, 2, ahead)
		take(t, p, 3)
		time.Sleep(50 * time.Millisecond)
		p.stop() // the reader is done with the mixture: its counters can be read
		pulled := p.counts.Examples
		for _, n := range p.counts.Dropped {
			pulled += n
		}
		if read := p.mix.drawn; read-pulled > int64(ahead)+2 {
			t.Errorf("ahead %d: %d examples read, %d taken", ahead, read, pulled)
		}
		p.Close()
	}
}

// TestPipelineErrors: a bad config is refused; a state of another mixture is refused.
func TestPipelineErrors(t *testing.T) {
	c := pipelineCases[0]
	tok := qwen3(t)
	for _, cfg := range []PipelineConfig{{Task: TaskPretrain}, {Task: "rlhf", Rows: 1, SeqLen: 8}, {Task: TaskPretrain, Rows: 1, SeqLen: 8, EOSToken: "<nope>"}} {
		if _, err := NewPipeline(mixOf(t, c.spec, c.files, c.shuffle, c.weights), tok, cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
	p := c.open(t, 1, 1)
	defer p.Close()
	st := p.State()
	st.Mixture.Streams = st.Mixture.Streams[:1]
	if err := p.Restore(st); err == nil {
		t.Error("restoring a one-stream state into two streams: no error")
	}
}
