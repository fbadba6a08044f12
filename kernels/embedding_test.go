package kernels

import (
	"strings"
	"testing"
)

func TestEmbeddingHand(t *testing.T) {
	table := []float32{0, 1, 10, 11, 20, 21} // 3 rows of width 2
	out := make([]float32, 6)
	EmbeddingForward(out, table, []int32{2, 0, 2}, 3, 2)
	closeTo(t, "out", out, []float32{20, 21, 0, 1, 20, 21}, 0, 0)
	dt := []float32{1, 1, 1, 1, 1, 1}
	EmbeddingBackward(dt, []float32{1, 2, 3, 4, 5, 6}, []int32{2, 0, 2}, 3, 2)
	closeTo(t, "dtable", dt, []float32{4, 5, 1, 1, 7, 9}, 0, 0) // row 2 gets rows 0 and 2 of dout, plus 1
}

func TestEmbeddingFastMatchesRef(t *testing.T) {
	rng := newRNG(5)
	for _, sz := range [][3]int{{1, 1, 1}, {7, 5, 3}, {300, 64, 11}, {2000, 100, 50}, {64, 1030, 7}} {
		n, d, rows := sz[0], sz[1], sz[2]
		table := randF32(rng, rows*d, 1)
		ids := make([]int32, n)
		for i := range ids {
			ids[i] = int32(rng.IntN(rows))
		}
		out, outr := make([]float32, n*d), make([]float32, n*d)
		EmbeddingForward(out, table, ids, n, d)
		EmbeddingForwardRef(outr, table, ids, n, d)
		closeTo(t, "out", out, outr, 0, 0)
		dout := randF32(rng, n*d, 1)
		dt0 := randF32(rng, rows*d, 1)
		dt, dtr := clone(dt0), clone(dt0)
		EmbeddingBackward(dt, dout, ids, n, d)
		EmbeddingBackwardRef(dtr, dout, ids, n, d)
		closeTo(t, label("dtable n=%d d=%d", n, d), dt, dtr, 0, 0) // same order of adds: bitwise equal
	}
}

func TestEmbeddingBadIDPanics(t *testing.T) {
	defer func() {
		msg, _ := recover().(string)
		if !strings.Contains(msg, "id 3 at position 1") {
			t.Fatalf("panic %q does not name the id and its position", msg)
		}
	}()
	EmbeddingForward(make([]float32, 4), make([]float32, 6), []int32{0, 3}, 2, 2)
}
