package kernels

import (
	"math"

	"github.com/gwen-ml/gwen/kernels/bf16"
)

// bf16Tile is the product behind the attention's BF16 blocks, on operands already in bfloat16
// pairs: every element of a and b is a uint32 holding two bfloat16 values, the lower half
// first (pairBF16). For i < m and j < n,
//
//	C[i·ldc+j] = alpha · Σ_{p<kp} lo(a[i·ars+p·aps])·lo(b[p·ldb+j]) + hi(a[…])·hi(b[…])
//
// plus C[i·ldc+j] when acc, with fp32 products and sums: the mixed-precision rule. Strides are
// in elements and may be anything, so A is either a row-major bfloat16 matrix (ars = row pairs,
// aps = 1) or the pair-packed transpose of one (ars = 1, aps = row length), and B is always
// pair-packed along the inner dimension. On CPUs with AVX512_BF16 it runs the generated
// VDPBF16PS kernels of package kernels/internal/asm (which, as every VDPBF16PS, treat subnormal
// inputs as zero); elsewhere bf16TileGo.
func bf16Tile(c []float32, ldc int, a []uint32, ars, aps int, b []uint32, ldb int, m, n, kp int, alpha float32, acc bool) {
	if m <= 0 || n <= 0 {
		return
	}
	if kp <= 0 {
		if !acc {
			for i := range m {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	_ = c[(m-1)*ldc+n-1]
	_ = a[(m-1)*ars+(kp-1)*aps]
	_ = b[(kp-1)*ldb+n-1]
	if bf16TileAsm(c, ldc, a, ars, aps, b, ldb, m, n, kp, alpha, acc) {
		return
	}
	bf16TileGo(c, ldc, a, ars, aps, b, ldb, m, n, kp, alpha, acc)
}

// bf16TileGo is bf16Tile in plain Go, on checked shapes.
func bf16TileGo(c []float32, ldc int, a []uint32, ars, aps int, b []uint32, ldb int, m, n, kp int, alpha float32, acc bool) {
	for i := range m {
		crow := c[i*ldc : i*ldc+n]
		for j := range crow {
			var s float32
			for p := range kp {
				x, y := a[i*ars+p*aps], b[p*ldb+j]
				s += pairLo(x)*pairLo(y) + pairHi(x)*pairHi(y)
			}
			if acc {
				crow[j] += alpha * s
			} else {
				crow[j] = alpha * s
			}
		}
	}
}

// pairBF16 packs x0 and x1, each rounded to bfloat16 (RoundBF16Value's rounding), into one
// uint32 pair, x0 in the lower half.
func pairBF16(x0, x1 float32) uint32 { return bf16.Pair(x0, x1) }

func pairLo(x uint32) float32 { return math.Float32frombits(x << 16) }
func pairHi(x uint32) float32 { return math.Float32frombits(x &^ 0xffff) }
