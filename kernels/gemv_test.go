package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// One-row GEMMs take the sgemv_ path on OpenBLAS; they must equal the reference for every
// transpose, padded strides, alpha and beta (beta 0 over NaN included).
func TestSgemmOneRowMatchesReference(t *testing.T) {
	if !blasLoaded() || !hasSgemv() {
		t.Skip("OpenBLAS with sgemv_ is not loaded here (" + BLASBackend() + "); the one-row path is OpenBLAS's")
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, sz := range [][2]int{{1, 1}, {7, 5}, {64, 33}, {1536, 512}, {3, 1000}} {
		n, k := sz[0], sz[1]
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for _, beta := range []float32{0, 1, 0.5} {
					lda := k + 3
					if ta {
						lda = 1 + 2 // A stored [k,1] with padded rows
					}
					ldb := k + 5
					if !tb {
						ldb = n + 5
					}
					rowsB := n
					if !tb {
						rowsB = k
					}
					rowsA := 1
					if ta {
						rowsA = k
					}
					a := randSlice(r, rowsA*lda)
					b := randSlice(r, rowsB*ldb)
					c := randSlice(r, n)
					if beta == 0 {
						for i := range c {
							c[i] = float32(math.NaN())
						}
					}
					want := append([]float32(nil), c...)
					SgemmRef(ta, tb, 1, n, k, 1.5, a, lda, b, ldb, beta, want, n)
					Sgemm(ta, tb, 1, n, k, 1.5, a, lda, b, ldb, beta, c, n)
					for j := range c {
						if d := math.Abs(float64(c[j] - want[j])); !(d <= 1e-4*math.Sqrt(float64(k))) {
							t.Fatalf("n=%d k=%d transA=%v transB=%v beta=%v: c[%d] = %v, want %v", n, k, ta, tb, beta, j, c[j], want[j])
						}
					}
				}
			}
		}
	}
}

func randSlice(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}
