package kernels

import (
	"math"
	"testing"

	"github.com/gwen-ml/gwen/kernels/bf16"
)

// GemmBF16Packed with B packed either way against a float64 product of the bfloat16-rounded
// operands, on the VDPBF16PS tiles where the CPU has them and on the Go fallback: row counts
// around the tiles' blocks of six, column counts around their vectors of sixteen, padded
// strides, an A that starts inside a wider matrix, and a scale. Only C's m×n values change.
func TestGemmBF16Packed(t *testing.T) {
	rng := newRNG(11)
	paths := []bool{false}
	if hasAVX512BF16 {
		paths = append(paths, true)
	}
	saved := hasAVX512BF16
	defer func() { hasAVX512BF16 = saved }()
	for _, tiles := range paths {
		hasAVX512BF16 = tiles
		for _, s := range [][3]int{{1, 1, 2}, {5, 16, 30}, {6, 17, 2}, {7, 48, 64}, {13, 3, 10}, {64, 33, 512}, {301, 16, 96}} {
			m, n, k := s[0], s[1], s[2]
			lda, ldc, ldb, off := k+6, n+3, n+2, 4 // A starts 4 values into its buffer
			abuf := make([]uint16, off+(m-1)*lda+k)
			F32ToBF16(abuf, randF32(rng, len(abuf), 1))
			a := abuf[off:]
			w := randF32(rng, n*(k+1), 1) // [n, k] with row stride k+1: B = wᵀ
			bt := make([]uint32, (k/2-1)*ldb+n)
			PackBF16Transposed(bt, ldb, w, k+1, n, k)
			v := randF32(rng, k*(n+5), 1) // [k, n] with row stride n+5: B = v
			br := make([]uint32, (k/2-1)*ldb+n)
			PackBF16Rows(br, ldb, v, n+5, k, n)
			for _, pb := range []struct {
				name string
				b    []uint32
				at   func(p, j int) float32
			}{
				{"transposed", bt, func(p, j int) float32 { return w[j*(k+1)+p] }},
				{"rows", br, func(p, j int) float32 { return v[p*(n+5)+j] }},
			} {
				c := make([]float32, (m-1)*ldc+n+1)
				for i := range c {
					c[i] = 42
				}
				GemmBF16Packed(c, ldc, a, lda, pb.b, ldb, m, n, k, 0.5)
				want := make([]float32, 0, m*n)
				got := make([]float32, 0, m*n)
				for i := range m {
					for j := range n {
						var sum float64
						for p := range k {
							sum += float64(bf16.ToF32(a[i*lda+p])) * float64(bf16.ToF32(bf16.FromF32(pb.at(p, j))))
						}
						want = append(want, float32(0.5*sum))
						got = append(got, c[i*ldc+j])
					}
					for j := n; j < ldc && i*ldc+j < len(c); j++ {
						if c[i*ldc+j] != 42 {
							t.Fatalf("tiles=%v %s %v: wrote C[%d, %d] outside the product", tiles, pb.name, s, i, j)
						}
					}
				}
				closeTo(t, label("tiles=%v %s m=%d n=%d k=%d", tiles, pb.name, m, n, k), got, want, 1e-5*math.Sqrt(float64(k)), 1e-5)
			}
		}
	}
}

func TestGemmBF16PackedPanicsOnOddK(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for an odd k")
		}
	}()
	GemmBF16Packed(make([]float32, 4), 2, make([]uint16, 6), 3, make([]uint32, 4), 2, 2, 2, 3, 1)
}
