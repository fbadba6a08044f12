package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// gemvBF16Ref is GemvBF16 in float64 on the operands rounded to bfloat16 first.
func gemvBF16Ref(w []uint16, x []float32, n, k int) []float64 {
	y := make([]float64, n)
	for j := range n {
		for p := range k {
			y[j] += float64(BF16BitsToF32(w[j*k+p])) * float64(RoundBF16Value(x[p]))
		}
	}
	return y
}

// checkGemvBF16 runs GemvBF16 on random n×k weights and compares it with the float64 loop:
// the only error is fp32 accumulation, bounded by k·2⁻²³·Σ|products| (loosely).
func checkGemvBF16(t *testing.T, n, k int) {
	t.Helper()
	r := rand.New(rand.NewPCG(uint64(n), uint64(k)))
	w := make([]uint16, n*k)
	for i := range w {
		w[i] = F32ToBF16Bits(float32(r.NormFloat64()))
	}
	x := make([]float32, k)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	y := make([]float32, n+1)
	y[n] = 42 // past n: must stay untouched
	GemvBF16(y, w, x, n, k)
	want := gemvBF16Ref(w, x, n, k)
	for j := range n {
		var abs float64
		for p := range k {
			abs += math.Abs(float64(BF16BitsToF32(w[j*k+p])) * float64(RoundBF16Value(x[p])))
		}
		if d := math.Abs(float64(y[j]) - want[j]); d > 1e-6*abs+1e-30 {
			t.Fatalf("n=%d k=%d: y[%d] = %v, want %v (|Δ| %g, Σ|w·x| %g)", n, k, j, y[j], want[j], d, abs)
		}
	}
	if y[n] != 42 {
		t.Fatalf("n=%d k=%d: y[n] overwritten: %v", n, k, y[n])
	}
}

var gemvBF16Shapes = [][2]int{{1, 1}, {1, 31}, {1, 32}, {7, 33}, {33, 64}, {33, 100}, {7, 200}, {5, 1}, {1536, 257}, {1536, 512}, {9, 0}}

func TestGemvBF16(t *testing.T) {
	if !hasAVX512BF16 {
		t.Log("no AVX512_BF16 here: this runs the pure-Go loop")
	}
	for _, s := range gemvBF16Shapes {
		checkGemvBF16(t, s[0], s[1])
	}
}

func TestGemvBF16Fallback(t *testing.T) {
	saved := hasAVX512BF16
	hasAVX512BF16 = false
	defer func() { hasAVX512BF16 = saved }()
	for _, s := range gemvBF16Shapes {
		checkGemvBF16(t, s[0], s[1])
	}
}

// TestGemvBF16HandValues checks one row by hand: x is rounded to bfloat16 (nearest, ties to
// even) before the product, and every product of two bfloat16 values is exact.
func TestGemvBF16HandValues(t *testing.T) {
	k := 35 // one whole 32-column step and a tail of 3
	w := make([]uint16, k)
	x := make([]float32, k)
	for p := range k {
		w[p] = F32ToBF16Bits(1)
		x[p] = 0
	}
	x[0] = 1 + 1.0/512 // below half a step (2⁻⁸) above 1: rounds to 1
	x[31] = 3          // last column of the step
	w[33] = F32ToBF16Bits(-2)
	x[33] = 0.5         // in the tail
	x[34] = 1 + 3.0/256 // a tie between 1+2⁻⁷ and 1+2⁻⁶: to even, 1.015625
	y := make([]float32, 1)
	GemvBF16(y, w, x, 1, k)
	if want := float32(1 + 3 - 1 + 1.015625); y[0] != want {
		t.Fatalf("y = %v, want %v", y[0], want)
	}
}

func TestGemvBF16Panics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic on a short w")
		}
	}()
	GemvBF16(make([]float32, 2), make([]uint16, 5), make([]float32, 3), 2, 3)
}

func BenchmarkGemvBF16(b *testing.B) {
	n, k := 3072, 1024
	w := make([]uint16, n*k)
	for i := range w {
		w[i] = F32ToBF16Bits(float32(i%7) - 3)
	}
	x := make([]float32, k)
	y := make([]float32, n)
	b.SetBytes(int64(2 * n * k))
	for b.Loop() {
		GemvBF16(y, w, x, n, k)
	}
}
