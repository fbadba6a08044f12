package kernels

import "fmt"

// GemvF32 computes y[j] = Σ_p w[j·k+p]·x[p] for j < n: a row-major [n,k] matrix times a
// vector, the one-row GEMM of a decoding step (y = x·Wᵀ; Sgemm routes that case here). Rows
// are split across cores only past gemvGrain weights.
func GemvF32(y, w, x []float32, n, k int) {
	if n < 0 || k < 0 || len(y) < n || len(w) < n*k || len(x) < k {
		panic(fmt.Sprintf("kernels.GemvF32: y %d, w %d, x %d for n=%d k=%d", len(y), len(w), len(x), n, k))
	}
	GemvF32Batch(y, n, w, x, k, 1, n, k)
}

// gemvF32Go is gemvF32Rows without AVX-512: one dot product per row.
func gemvF32Go(y, w, x []float32, k int) {
	for j := range y {
		y[j] = kvDot(w[j*k:(j+1)*k], x[:k])
	}
}
