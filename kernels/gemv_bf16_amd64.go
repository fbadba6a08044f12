package kernels

import (
	"golang.org/x/sys/cpu"

	"github.com/gwen-ml/gwen/kernels/internal/asm"
)

// hasAVX512BF16 says whether asm.GemvBF16AVX512 can run; a variable so tests reach the fallback.
var hasAVX512BF16 = cpu.X86.HasAVX512BF16 && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512F

// gemvBF16Rows is gemvBF16Go, on VDPBF16PS where the CPU has it (gemvF32Rows' shape, for
// bfloat16 operands and another assembly kernel).
func gemvBF16Rows(y []float32, w []uint16, x []uint16, k int) {
	if hasAVX512BF16 && len(y) > 0 && k > 0 {
		_ = w[len(y)*k-1]
		_ = x[k-1]
		asm.GemvBF16AVX512(y, w, x, k)
		return
	}
	gemvBF16Go(y, w, x, k)
}
