package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The batched GEMVs on m rows with padded strides equal a float64 loop (on bf16-rounded
// operands for GemvBF16Batch), write every y[i, j < n] and nothing in the padding.
func TestGemvBatchMatchesFloat64(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, s := range [][3]int{{2, 5, 7}, {3, 64, 33}, {5, 300, 512}, {8, 1536, 200}, {4, 9, 0}} {
		m, n, k := s[0], s[1], s[2]
		ldx, ldy := k+3, n+2
		w32 := randSlice(r, n*k)
		w16 := make([]uint16, n*k)
		F32ToBF16(w16, w32)
		x := randSlice(r, m*ldx)
		for _, bf16 := range []bool{false, true} {
			y := make([]float32, m*ldy)
			for i := range y {
				y[i] = float32(math.NaN())
			}
			if bf16 {
				GemvBF16Batch(y, ldy, w16, x, ldx, m, n, k)
			} else {
				GemvF32Batch(y, ldy, w32, x, ldx, m, n, k)
			}
			for i := range m {
				for j := range ldy {
					got := y[i*ldy+j]
					if j >= n {
						if !math.IsNaN(float64(got)) {
							t.Fatalf("m=%d n=%d k=%d bf16=%v: padding y[%d,%d] written", m, n, k, bf16, i, j)
						}
						continue
					}
					var want, abs float64
					for p := range k {
						wv, xv := float64(w32[j*k+p]), float64(x[i*ldx+p])
						if bf16 {
							wv, xv = float64(BF16BitsToF32(w16[j*k+p])), float64(RoundBF16Value(x[i*ldx+p]))
						}
						want += wv * xv
						abs += math.Abs(wv * xv)
					}
					if d := math.Abs(float64(got) - want); !(d <= 1e-6*abs+1e-30) {
						t.Fatalf("m=%d n=%d k=%d bf16=%v: y[%d,%d] = %v, want %v", m, n, k, bf16, i, j, got, want)
					}
				}
			}
		}
	}
}

// A GEMM of a few rows with B transposed (x·Wᵀ, padded lda and ldc) takes the batched GEMV.
func TestSgemmFewRowsMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	m, n, k := 5, 70, 90
	a, b := randSlice(r, m*(k+4)), randSlice(r, n*k)
	c, want := make([]float32, m*(n+3)), make([]float32, m*(n+3))
	for i := range c {
		c[i] = float32(math.NaN())
		want[i] = c[i]
	}
	SgemmRef(false, true, m, n, k, 1, a, k+4, b, k, 0, want, n+3)
	Sgemm(false, true, m, n, k, 1, a, k+4, b, k, 0, c, n+3)
	for i := range m {
		for j := range n {
			if d := math.Abs(float64(c[i*(n+3)+j] - want[i*(n+3)+j])); !(d <= 1e-5*math.Sqrt(float64(k))) {
				t.Fatalf("c[%d,%d] = %v, want %v", i, j, c[i*(n+3)+j], want[i*(n+3)+j])
			}
		}
		for j := n; j < n+3; j++ {
			if !math.IsNaN(float64(c[i*(n+3)+j])) {
				t.Fatalf("padding c[%d,%d] written", i, j)
			}
		}
	}
}

func TestGemvBatchPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic on m past GemvBatchMaxRows")
		}
	}()
	GemvF32Batch(make([]float32, 100), 10, make([]float32, 10), make([]float32, 100), 1, GemvBatchMaxRows+1, 10, 1)
}

// Each row of a batched GEMV equals the one-row GEMV of that row to the bit (the four-row
// kernels keep the one-row kernel's order of operations), so a forward of T tokens gives every
// token the logits a forward of one would: what speculative decoding's greedy identity needs.
func TestGemvBatchRowsBitIdenticalToOneRow(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, k := range []int{1, 17, 35, 100, 200, 512, 515, 1000} {
		for _, m := range []int{4, 5, 8} {
			n, ldx, ldy := 37, k+5, 41
			w32 := randSlice(r, n*k)
			w16 := make([]uint16, n*k)
			F32ToBF16(w16, w32)
			x := randSlice(r, m*ldx)
			for _, bf16 := range []bool{false, true} {
				y := make([]float32, m*ldy)
				if bf16 {
					GemvBF16Batch(y, ldy, w16, x, ldx, m, n, k)
				} else {
					GemvF32Batch(y, ldy, w32, x, ldx, m, n, k)
				}
				one := make([]float32, n)
				for i := range m {
					if bf16 {
						GemvBF16(one, w16, x[i*ldx:], n, k)
					} else {
						GemvF32(one, w32, x[i*ldx:], n, k)
					}
					for j := range n {
						if math.Float32bits(y[i*ldy+j]) != math.Float32bits(one[j]) {
							t.Fatalf("k=%d m=%d bf16=%v: y[%d,%d] = %v batched, %v alone", k, m, bf16, i, j, y[i*ldy+j], one[j])
						}
					}
				}
			}
		}
	}
}
