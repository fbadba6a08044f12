package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// checkGemvF32 runs GemvF32 on random n×k weights against a float64 loop; the only error is
// fp32 accumulation, bounded by k·2⁻²³·Σ|products| (loosely).
func checkGemvF32(t *testing.T, n, k int) {
	t.Helper()
	r := rand.New(rand.NewPCG(uint64(n), uint64(k)))
	w := randSlice(r, n*k)
	x := randSlice(r, k)
	y := make([]float32, n+1)
	for i := range y {
		y[i] = float32(math.NaN()) // every y[j] must be overwritten
	}
	y[n] = 42 // past n: must stay untouched
	GemvF32(y, w, x, n, k)
	for j := range n {
		var want, abs float64
		for p := range k {
			prod := float64(w[j*k+p]) * float64(x[p])
			want += prod
			abs += math.Abs(prod)
		}
		if d := math.Abs(float64(y[j]) - want); !(d <= 1e-6*abs+1e-30) {
			t.Fatalf("n=%d k=%d: y[%d] = %v, want %v (|Δ| %g, Σ|w·x| %g)", n, k, j, y[j], want, d, abs)
		}
	}
	if y[n] != 42 {
		t.Fatalf("n=%d k=%d: y[n] overwritten: %v", n, k, y[n])
	}
}

var gemvF32Shapes = [][2]int{{1, 1}, {1, 15}, {1, 16}, {7, 17}, {33, 64}, {33, 100}, {7, 200}, {5, 1}, {1536, 257}, {1536, 512}, {9, 0}}

func TestGemvF32(t *testing.T) {
	if !hasAVX512GEMV {
		t.Log("no AVX-512 here: this runs one dot product per row")
	}
	for _, s := range gemvF32Shapes {
		checkGemvF32(t, s[0], s[1])
	}
}

func TestGemvF32Fallback(t *testing.T) {
	saved := hasAVX512GEMV
	hasAVX512GEMV = false
	defer func() { hasAVX512GEMV = saved }()
	for _, s := range gemvF32Shapes {
		checkGemvF32(t, s[0], s[1])
	}
}

// A decoding step's Sgemm (one row, B transposed and contiguous, alpha 1, beta 0) runs on
// GemvF32 with or without OpenBLAS; it must match the reference GEMM and ignore C's old NaNs.
func TestSgemmDecodeRowMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, sz := range [][2]int{{1, 1}, {7, 5}, {64, 33}, {1536, 512}, {3, 1000}} {
		n, k := sz[0], sz[1]
		a, b := randSlice(r, k), randSlice(r, n*k)
		c := make([]float32, n)
		for i := range c {
			c[i] = float32(math.NaN())
		}
		want := make([]float32, n)
		SgemmRef(false, true, 1, n, k, 1, a, k, b, k, 0, want, n)
		Sgemm(false, true, 1, n, k, 1, a, k, b, k, 0, c, n)
		for j := range c {
			if d := math.Abs(float64(c[j] - want[j])); !(d <= 1e-5*math.Sqrt(float64(k))) {
				t.Fatalf("n=%d k=%d: c[%d] = %v, want %v", n, k, j, c[j], want[j])
			}
		}
	}
}

func TestGemvF32Panics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic on a short w")
		}
	}()
	GemvF32(make([]float32, 2), make([]float32, 5), make([]float32, 3), 2, 3)
}
