package generate_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gwen-ml/gwen/generate"
	"github.com/gwen-ml/gwen/layers"
)

// smallConfig is the `small` model of ../shared/bench/bench_torch.py.
func smallConfig(layersN int) layers.Config {
	return layers.Config{ModelType: "qwen3", VocabSize: 8192, HiddenSize: 512, IntermediateSize: 1536,
		NumHiddenLayers: layersN, NumAttentionHeads: 8, NumKeyValueHeads: 4, HeadDim: 64,
		TieWordEmbeddings: true, RopeTheta: 1e6, MaxPositionEmbeddings: 4096, RMSNormEps: 1e-6}
}

func benchPrompt(n int) []int32 {
	p := make([]int32, n)
	for i := range p {
		p[i] = int32((i*7919 + 13) % 8192)
	}
	return p
}

func argmax(row []float32) int32 {
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	return int32(best)
}

// BenchmarkDecodeSmall is bench_torch.py's decode: batch 1, a 128-token prompt prefilled in
// one forward, then 128 greedy tokens one forward each with the KV cache. (gwen bench --mode
// decode times the same loop for the side-by-side table; this one serves go test -bench and
// pprof without the binary.)
func BenchmarkDecodeSmall(b *testing.B) {
	m, err := layers.New(smallConfig(8))
	if err != nil {
		b.Fatal(err)
	}
	m.InitRandom(1, 0.02)
	const P, N = 128, 128
	prompt := benchPrompt(P)
	var prefill, decode time.Duration
	run := func() {
		cache := layers.NewKVCache(&m.Config, 1, P+N)
		t0 := time.Now()
		l := m.Forward(nil, layers.Input{IDs: prompt, B: 1, T: P, Cache: cache, KeepLogits: 1}).Logits.Data
		next := argmax(l)
		t1 := time.Now()
		for i := 0; i < N; i++ {
			next = argmax(m.Forward(nil, layers.Input{IDs: []int32{next}, B: 1, T: 1, Cache: cache}).Logits.Data)
		}
		prefill += t1.Sub(t0)
		decode += time.Since(t1)
	}
	run() // warm-up
	prefill, decode = 0, 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run()
	}
	b.ReportMetric(float64(P*b.N)/prefill.Seconds(), "prefill_tok/s")
	b.ReportMetric(float64(N*b.N)/decode.Seconds(), "decode_tok/s")
}

// BenchmarkSpeculativeSmall: greedy, the small model as target and its own first one or two
// layers (plus its final norm and head) as the draft, k = 4; reports the acceptance and the
// speed-up over plain greedy generation of the same 128 tokens, and checks the output is
// plain greedy's. Random weights make the acceptance a property of these toy drafts, not of
// real models.
//
//	go test ./generate/ -run '^$' -bench SpeculativeSmall -benchtime 2x
func BenchmarkSpeculativeSmall(b *testing.B) {
	for _, dl := range []int{1, 2} {
		b.Run(fmt.Sprintf("draft-layers=%d", dl), func(b *testing.B) { benchSpeculative(b, dl) })
	}
}

func benchSpeculative(b *testing.B, draftLayers int) {
	target, err := layers.New(smallConfig(8))
	if err != nil {
		b.Fatal(err)
	}
	target.InitRandom(1, 0.02)
	draft, _ := layers.New(smallConfig(draftLayers))
	byName := map[string][]float32{}
	for _, p := range target.Params() {
		byName[p.Name] = p.Data
	}
	for _, p := range draft.Params() {
		copy(p.Data, byName[p.Name])
	}
	prompt := benchPrompt(128)
	o := generate.Options{MaxNewTokens: 128}
	var plain, spec time.Duration
	var st generate.SpecStats
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		want, _ := generate.Generate(target, [][]int32{prompt}, o)
		t1 := time.Now()
		got, s, err := generate.Speculative(target, draft, prompt, 4, o)
		if err != nil {
			b.Fatal(err)
		}
		spec += time.Since(t1)
		plain += t1.Sub(t0)
		st.Accepted += s.Accepted
		st.Proposed += s.Proposed
		if len(got.IDs) != len(want[0].IDs) {
			b.Fatalf("speculative made %d tokens, plain %d", len(got.IDs), len(want[0].IDs))
		}
		for j := range got.IDs {
			if got.IDs[j] != want[0].IDs[j] {
				b.Fatalf("token %d: speculative %d, greedy %d", j, got.IDs[j], want[0].IDs[j])
			}
		}
	}
	b.ReportMetric(st.AcceptanceRate(), "acceptance")
	b.ReportMetric(plain.Seconds()/spec.Seconds(), "speedup")
	b.ReportMetric(float64(128*b.N)/spec.Seconds(), "spec_tok/s")
}
