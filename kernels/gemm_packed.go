package kernels

import (
	"fmt"
	"unsafe"

	"github.com/gwen-ml/gwen/kernels/bf16"
)

// Narrow bfloat16 products on the VDPBF16PS tiles (bf16Tile, attention's kernels): C [m, n] =
// alpha·A·B for a tall A in bfloat16 bits and a B of a few dozen columns packed in pairs along
// k. LoRA's products through a rank-r bottleneck have this shape (x·Aᵀ with n = r, dy·B with
// n = r), and oneDNN's matmul runs them on its generic gemm:jit at a half to a tenth of its
// speed on square products; the tiles run them at the speed of their register blocking.
//
// The packed B is [k/2] rows of uint32 (row stride ldb ≥ n): word p·ldb+j holds B[2p, j] in
// its lower half and B[2p+1, j] in its upper half, each rounded to bfloat16 as F32ToBF16
// rounds (k even).

// HasGemmBF16Packed reports whether GemmBF16Packed runs on VDPBF16PS. Where it does not, its
// plain-Go fallback is far slower than GemmBF16: callers take GemmBF16 instead.
func HasGemmBF16Packed() bool { return hasAVX512BF16 }

// PackBF16Transposed packs B = wᵀ for w [n, k] in fp32 (row stride ldw) into n columns of dst
// (row stride ldd, in words): B's column j is w's row j, so dst[p·ldd+j] = pair(w[j, 2p],
// w[j, 2p+1]) for p < k/2. k must be even.
func PackBF16Transposed(dst []uint32, ldd int, w []float32, ldw, n, k int) {
	if k%2 != 0 || ldw < k || ldd < n || (k > 0 && len(dst) < (k/2-1)*ldd+n) || (n > 0 && len(w) < (n-1)*ldw+k) {
		panic(fmt.Sprintf("kernels.PackBF16Transposed: dst %d (ld %d), w %d (ld %d) for [%d, %d]ᵀ", len(dst), ldd, len(w), ldw, n, k))
	}
	for j := range n {
		row := w[j*ldw : j*ldw+k]
		for p := range k / 2 {
			dst[p*ldd+j] = bf16.Pair(row[2*p], row[2*p+1])
		}
	}
}

// PackBF16Rows packs B = w for w [k, n] in fp32 (row stride ldw) into n columns of dst (row
// stride ldd, in words): dst[p·ldd+j] = pair(w[2p, j], w[2p+1, j]) for p < k/2. k must be even.
func PackBF16Rows(dst []uint32, ldd int, w []float32, ldw, k, n int) {
	if k%2 != 0 || ldw < n || ldd < n || (k > 0 && len(dst) < (k/2-1)*ldd+n) || (k > 0 && len(w) < (k-1)*ldw+n) {
		panic(fmt.Sprintf("kernels.PackBF16Rows: dst %d (ld %d), w %d (ld %d) for [%d, %d]", len(dst), ldd, len(w), ldw, k, n))
	}
	for p := range k / 2 {
		pairBF16Row(dst[p*ldd:p*ldd+n], w[2*p*ldw:2*p*ldw+n], w[(2*p+1)*ldw:(2*p+1)*ldw+n])
	}
}

// GemmBF16Packed is C[m, n] = alpha·A·B with A [m, k] in bfloat16 bits (row stride lda) and B
// packed (PackBF16Transposed, PackBF16Rows; row stride ldb words): fp32 products and sums,
// the mixed-precision rule of GemmBF16, C only written. A must start at an even element and
// k and lda must be even (A's rows are read as pairs). Rows are split over GOMAXPROCS
// goroutines in blocks of the kernels' six.
func GemmBF16Packed(c []float32, ldc int, a []uint16, lda int, b []uint32, ldb int, m, n, k int, alpha float32) {
	if m <= 0 || n <= 0 {
		return
	}
	if k%2 != 0 || lda%2 != 0 || lda < k || ldc < n || ldb < n || (k > 0 && len(b) < (k/2-1)*ldb+n) || len(a) < (m-1)*lda+k || len(c) < (m-1)*ldc+n {
		panic(fmt.Sprintf("kernels.GemmBF16Packed: c %d (ld %d), a %d (ld %d), b %d (ld %d) for %d×%d×%d", len(c), ldc, len(a), lda, len(b), ldb, m, n, k))
	}
	if k == 0 {
		for i := range m {
			clear(c[i*ldc : i*ldc+n])
		}
		return
	}
	if uintptr(unsafe.Pointer(&a[0]))%4 != 0 {
		panic("kernels.GemmBF16Packed: A does not start at an even element")
	}
	a32 := unsafe.Slice((*uint32)(unsafe.Pointer(&a[0])), ((m-1)*lda+k)/2)
	const rows = 6 // the tiles' row block
	blocks := (m + rows - 1) / rows
	// A block's work is rows·n·k/2 pairs; about 64k pairs per goroutine at the least.
	grain := max(1, (1<<16)/max(1, rows*n*k/2))
	Parallel(blocks, grain, func(lo, hi int) {
		r0, r1 := lo*rows, min(hi*rows, m)
		bf16Tile(c[r0*ldc:], ldc, a32[r0*lda/2:], lda/2, 1, b, ldb, r1-r0, n, k/2, alpha, false)
	})
}
