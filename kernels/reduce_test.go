package kernels

import (
	"math"
	"testing"
)

func TestSumSquaresAndScale(t *testing.T) {
	if got := SumSquares([]float32{3, 4, 12}); got != 169 {
		t.Fatalf("SumSquares(3,4,12) = %v, want 169", got)
	}
	rng := newRNG(6)
	for _, n := range []int{0, 1, 5, 32767, 32768, 32769, 100001} {
		x := randF32(rng, n, 3)
		got, want := SumSquares(x), SumSquaresRef(x)
		if math.Abs(got-want) > 1e-12*max(want, 1) {
			t.Errorf("SumSquares n=%d: %v, want %v", n, got, want)
		}
		y, yr := clone(x), clone(x)
		Scale(y, 0.37)
		ScaleRef(yr, 0.37)
		closeTo(t, label("Scale n=%d", n), y, yr, 0, 0)
	}
}
