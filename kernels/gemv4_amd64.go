package kernels

import "github.com/gwen-ml/gwen/kernels/internal/asm"

// The four-row GEMV kernels (asm, generated with the one-row ones by dev/gen-gemv.py): each
// row of x gets exactly the one-row kernel's sums, from one pass over W.

//go:generate sh -c "cd .. && python3 dev/gen-gemv.py"

// gemvF32Rows4 computes four rows of x at once (y and x with row strides ldy, ldx); false when
// the CPU lacks the kernel and the caller must go row by row.
func gemvF32Rows4(y []float32, ldy int, w, x []float32, ldx, n, k int) bool {
	if !hasAVX512GEMV {
		return false
	}
	if n > 0 && k > 0 {
		_ = y[3*ldy+n-1]
		_ = w[n*k-1]
		_ = x[3*ldx+k-1]
		asm.GemvF32x4AVX512(y, ldy, w, n, x, ldx, k)
	}
	return true
}

// gemvBF16Rows4 is gemvF32Rows4 on bfloat16 weights and (rounded) x (the same bounds checks
// before another assembly kernel: the element types differ, so no generic can call both).
func gemvBF16Rows4(y []float32, ldy int, w, x []uint16, ldx, n, k int) bool {
	if !hasAVX512BF16 {
		return false
	}
	if n > 0 && k > 0 {
		_ = y[3*ldy+n-1]
		_ = w[n*k-1]
		_ = x[3*ldx+k-1]
		asm.GemvBF16x4AVX512(y, ldy, w, n, x, ldx, k)
	}
	return true
}
