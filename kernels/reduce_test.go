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

// Add and Copy against plain loops, below and above the size where they split.
func TestAddAndCopy(t *testing.T) {
	rng := newRNG(9)
	for _, n := range []int{0, 1, 1000, 1<<15 + 3, 3<<16 + 1} {
		a, b := randF32(rng, n, 1), randF32(rng, n, 1)
		got, want := make([]float32, n), make([]float32, n)
		Add(got, a, b)
		for i := range want {
			want[i] = a[i] + b[i]
		}
		closeTo(t, label("Add n=%d", n), got, want, 0, 0)
		Add(got, got, a) // in place
		for i := range want {
			want[i] += a[i]
		}
		closeTo(t, label("Add in place n=%d", n), got, want, 0, 0)
		Copy(got, b)
		closeTo(t, label("Copy n=%d", n), got, b, 0, 0)
	}
}
