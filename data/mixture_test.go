package data

import (
	"encoding/json"
	"io"
	"math"
	"testing"
)

type rowRef struct {
	file string
	row  int64
	text string
}

func ref(ex Example) rowRef { return rowRef{ex.File, ex.Row, ex.Text} }

// TestSeek: from every tenth position of a multi-file, multi-row-group source, a fresh source
// sought there yields exactly the rest of an uninterrupted read.
func TestSeek(t *testing.T) {
	files := []string{"testdata/parquet/nulls.parquet", "testdata/parquet/regen/pretrain_v2.parquet", "testdata/parquet/math_prompts.parquet"}
	spec := Spec{Format: FormatText, Column: "text"}
	files[2] = "testdata/parquet/nulls.parquet" // text column in all three; nulls twice to cross files with NULLs
	src, err := Open(files, spec)
	if err != nil {
		t.Fatal(err)
	}
	var all []rowRef
	var pos []Position
	for {
		p := src.Position()
		ex, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ref(ex))
		pos = append(pos, p)
	}
	src.Close()
	if want := int64(36 + 5000 + 36); int64(len(all)) != want {
		t.Fatalf("%d examples, want %d", len(all), want)
	}
	ks := []int{0, 1, 35, 36, 37, 36 + 2047, 36 + 2048, 36 + 4096, 36 + 5000, len(all) - 1}
	for k := 100; k < len(all); k += 1009 {
		ks = append(ks, k)
	}
	for _, k := range ks {
		s2, err := Open(files, spec)
		if err != nil {
			t.Fatal(err)
		}
		// Round-trip the position through JSON as a checkpoint would.
		b, _ := json.Marshal(pos[k])
		var p Position
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		if err := s2.Seek(p); err != nil {
			t.Fatal(err)
		}
		for i := k; i < len(all); i++ {
			ex, err := s2.Next()
			if err != nil {
				t.Fatalf("seek to %+v: example %d: %v", p, i, err)
			}
			if ref(ex) != all[i] {
				t.Fatalf("seek to %+v: example %d is %s:%d, want %s:%d", p, i, ex.File, ex.Row, all[i].file, all[i].row)
			}
		}
		if _, err := s2.Next(); err != io.EOF {
			t.Fatalf("seek to %+v: no EOF at the end: %v", p, err)
		}
		s2.Close()
	}
	if err := src.Seek(Position{File: 1, RowGroup: 0, Row: 5000}); err == nil {
		t.Error("seek past a row group's end: no error")
	}
}

func newTestMixture(t *testing.T) *Mixture {
	t.Helper()
	mk := func(file, col string, shuffle bool, seed uint64) *Stream {
		src, err := Open([]string{file}, Spec{Format: FormatText, Column: col})
		if err != nil {
			t.Fatal(err)
		}
		return NewStream(src, shuffle, seed)
	}
	streams := []*Stream{
		mk("testdata/parquet/regen/pretrain_alt.parquet", "text", true, 11), // 5 row groups
		mk("testdata/parquet/nulls.parquet", "text", true, 12),              // 36 texts among 60 rows
		mk("testdata/parquet/math_prompts.parquet", "problem", false, 0),    // in file order
	}
	m, err := NewMixture(streams, []float64{5, 3, 2}, 42)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type draw struct {
	stream int
	rowRef
}

func drawN(t *testing.T, m *Mixture, n int) []draw {
	t.Helper()
	out := make([]draw, n)
	for i := range out {
		ex, k, err := m.Next()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = draw{k, ref(ex)}
	}
	return out
}

// TestMixtureResume: stopping a weighted, shuffled mixture after N examples, saving its state
// as JSON and restoring it into a fresh mixture gives exactly the examples an uninterrupted
// mixture gives, across row groups, files and epochs.
func TestMixtureResume(t *testing.T) {
	const total = 2500
	m := newTestMixture(t)
	want := drawN(t, m, total)
	// Sanity of the uninterrupted run: weights respected, small sources cycled through epochs.
	picks := m.Picks()
	for i, w := range []float64{0.5, 0.3, 0.2} {
		if f := float64(picks[i]) / total; math.Abs(f-w) > 0.05 {
			t.Errorf("stream %d drawn %.3f of the time, want %.2f", i, f, w)
		}
	}
	if e := m.Streams()[1].Epoch(); e < 15 {
		t.Errorf("nulls stream at epoch %d after %d draws, want ≥ 15", e, picks[1])
	}
	if e := m.Streams()[2].Epoch(); e < 1 {
		t.Errorf("math stream at epoch %d after %d draws", e, picks[2])
	}
	m.Close()

	for _, n := range []int{0, 1, 36, 37, 777, 1500, total - 1} {
		a := newTestMixture(t)
		got := drawN(t, a, n)
		st, err := a.State()
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		var st2 MixtureState
		if err := json.Unmarshal(b, &st2); err != nil {
			t.Fatal(err)
		}
		r := newTestMixture(t)
		if err := r.Restore(st2); err != nil {
			t.Fatal(err)
		}
		got = append(got, drawN(t, r, total-n)...)
		r.Close()
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("stopped at %d (state %s): example %d is %+v, want %+v", n, b, i, got[i].rowRef.row, want[i].rowRef.row)
			}
		}
	}
}

// TestShuffleEpochs: one shuffled epoch visits every non-NULL row exactly once, not in file
// order, and the next epoch uses another order.
func TestShuffleEpochs(t *testing.T) {
	src, err := Open([]string{"testdata/parquet/regen/pretrain_alt.parquet", "testdata/parquet/nulls.parquet"}, Spec{Format: FormatText})
	if err != nil {
		t.Fatal(err)
	}
	s := NewStream(src, true, 7)
	defer s.Close()
	const n = 5000 + 36 // texts in the two files (manifest: 0 and 24 NULLs)
	var epochs [][]rowRef
	epoch := func() []rowRef {
		var out []rowRef
		seen := map[rowRef]bool{}
		for i := 0; i < n; i++ {
			ex, err := s.Next()
			if err != nil {
				t.Fatal(err)
			}
			if s.Epoch() != int64(len(epochs)) {
				t.Fatalf("epoch %d at example %d of epoch %d", s.Epoch(), i, len(epochs))
			}
			r := rowRef{file: ex.File, row: ex.Row}
			if seen[r] {
				t.Fatalf("row %v twice in one epoch", r)
			}
			seen[r] = true
			out = append(out, r)
		}
		epochs = append(epochs, out)
		return out
	}
	e0 := epoch()
	e1 := epoch()
	inOrder, same := 0, 0
	for i := 1; i < n; i++ {
		if e0[i].file == e0[i-1].file && e0[i].row == e0[i-1].row+1 {
			inOrder++
		}
		if e0[i] == e1[i] {
			same++
		}
	}
	if inOrder > n/50 || same > n/50 {
		t.Errorf("%d consecutive pairs in file order, %d positions equal across epochs", inOrder, same)
	}
	c := s.Counts()
	if c.Examples != 2*n || c.NullRows != 2*24 {
		t.Errorf("counts %+v after two epochs", c)
	}
}
