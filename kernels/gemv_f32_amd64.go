package kernels

import (
	"golang.org/x/sys/cpu"

	"github.com/gwen-ml/gwen/kernels/internal/asm"
)

// hasAVX512GEMV says whether asm.GemvF32AVX512 can run; a variable so tests reach the fallback.
var hasAVX512GEMV = cpu.X86.HasAVX512F

// gemvF32Rows is gemvF32Go, on the AVX-512 kernel where the CPU has it.
func gemvF32Rows(y, w, x []float32, k int) {
	if hasAVX512GEMV && len(y) > 0 && k > 0 {
		_ = w[len(y)*k-1]
		_ = x[k-1]
		asm.GemvF32AVX512(y, w, x, k)
		return
	}
	gemvF32Go(y, w, x, k)
}
