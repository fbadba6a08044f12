package kernels

import "golang.org/x/sys/cpu"

// gemvF32AVX512 is gemvF32Go on AVX-512 FMA, one row at a time in memory order;
// len(w) >= len(y)·k, len(x) >= k.
//
//go:noescape
func gemvF32AVX512(y []float32, w []float32, x []float32, k int)

// hasAVX512GEMV says whether gemvF32AVX512 can run; a variable so tests reach the fallback.
var hasAVX512GEMV = cpu.X86.HasAVX512F

// gemvF32Rows is gemvF32Go, on the AVX-512 kernel where the CPU has it.
func gemvF32Rows(y, w, x []float32, k int) {
	if hasAVX512GEMV && len(y) > 0 && k > 0 {
		_ = w[len(y)*k-1]
		_ = x[k-1]
		gemvF32AVX512(y, w, x, k)
		return
	}
	gemvF32Go(y, w, x, k)
}
