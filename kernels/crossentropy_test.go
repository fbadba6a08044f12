package kernels

import (
	"math"
	"testing"
)

// Hand values: logits [0, ln 3] → p = [1/4, 3/4]; target 1 → loss −ln(3/4), lse = ln 4.
func TestCrossEntropyHand(t *testing.T) {
	logits := []float32{0, float32(math.Log(3)), 5, 6}
	lse := make([]float32, 2)
	loss, count := CrossEntropyForward(lse, logits, []int32{1, IgnoreIndex}, 2, 2)
	if count != 1 || math.Abs(loss+math.Log(0.75)) > 1e-6 {
		t.Fatalf("loss %v count %d, want %v and 1", loss, count, -math.Log(0.75))
	}
	closeTo(t, "lse", lse[:1], []float32{float32(math.Log(4))}, 0, 1e-6)
	d := []float32{9, 9, 9, 9}
	CrossEntropyBackward(d, logits, lse, []int32{1, IgnoreIndex}, 2, 2, 2)
	closeTo(t, "dlogits", d, []float32{0.5, -0.5, 0, 0}, 1e-6, 0)
}

func TestCrossEntropyRefGradients(t *testing.T) {
	rng := newRNG(7)
	n, v := 4, 9
	logits := randF64(rng, n*v, 4)
	targets := []int32{3, IgnoreIndex, 0, 8}
	loss := func() float64 {
		l, _ := CrossEntropyForwardRef(make([]float64, n), logits, targets, n, v)
		return 0.7 * l
	}
	lse := make([]float64, n)
	CrossEntropyForwardRef(lse, logits, targets, n, v)
	d := randF64(rng, n*v, 1) // garbage: the backward writes, never adds
	CrossEntropyBackwardRef(d, logits, lse, targets, n, v, 0.7)
	checkGrad(t, "CE dlogits", logits, d, loss, 100, 1e-6, 1e-10)
}

func TestCrossEntropyFastMatchesRef(t *testing.T) {
	rng := newRNG(8)
	for _, sz := range [][2]int{{1, 1}, {3, 5}, {4, 15}, {4, 16}, {4, 17}, {5, 31}, {5, 33}, {130, 1000}, {7, 70001}, {64, 1024}} {
		n, v := sz[0], sz[1]
		logits := randF32(rng, n*v, 8)
		targets := make([]int32, n)
		for i := range targets {
			targets[i] = int32(rng.IntN(v))
			if i%5 == 2 {
				targets[i] = IgnoreIndex
			}
		}
		lse, lser := make([]float32, n), make([]float32, n)
		loss, cnt := CrossEntropyForward(lse, logits, targets, n, v)
		lossr, cntr := CrossEntropyForwardRef(lser, logits, targets, n, v)
		if cnt != cntr || math.Abs(loss-lossr) > 1e-5*max(1, math.Abs(lossr)) {
			t.Errorf("n=%d v=%d: loss %v count %d, ref %v count %d", n, v, loss, cnt, lossr, cntr)
		}
		closeTo(t, label("lse n=%d v=%d", n, v), lse, lser, 1e-5, 1e-6)
		want := make([]float32, n*v)
		CrossEntropyBackwardRef(want, logits, lser, targets, n, v, 0.25)
		got := randF32(rng, n*v, 1)
		CrossEntropyBackward(got, logits, lse, targets, n, v, 0.25)
		closeTo(t, label("dlogits n=%d v=%d", n, v), got, want, 1e-7, 1e-5)
		// In place: dlogits aliasing logits gives the same result.
		inplace := clone(logits)
		CrossEntropyBackward(inplace, inplace, lse, targets, n, v, 0.25)
		closeTo(t, "in place", inplace, got, 0, 0)
	}
}

func TestCrossEntropyBadTargetPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for target 5 with v=3")
		}
	}()
	CrossEntropyForward(make([]float32, 1), make([]float32, 3), []int32{5}, 1, 3)
}
