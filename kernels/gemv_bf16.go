package kernels

import "fmt"

// GemvBF16 is the one-row product of decoding on bfloat16 weights: for j < n,
//
//	y[j] = Σ_p bf16(w[j,p]) · bf16(x[p])
//
// with w row-major [n,k] bfloat16 bits (as F32ToBF16 writes them), x rounded to bfloat16 once
// (F32ToBF16Bits) and the products accumulated in fp32: GemmBF16's rule for m == 1 and transB.
// It streams w in memory order on one core (see gemvGrain). With AVX512_BF16 it runs on
// VDPBF16PS, which, like oneDNN, reads subnormal bfloat16 inputs as zero; otherwise on a
// pure-Go loop. It panics when a slice is shorter than its shape.
func GemvBF16(y []float32, w []uint16, x []float32, n, k int) {
	if n < 0 || k < 0 || len(y) < n || len(w) < n*k || len(x) < k {
		panic(fmt.Sprintf("kernels.GemvBF16: y %d, w %d, x %d for n=%d k=%d", len(y), len(w), len(x), n, k))
	}
	GemvBF16Batch(y, n, w, x, k, 1, n, k)
}

// gemvGrain is the number of weights below which a GEMV is not split across cores. A GEMV
// streams its weights from memory, and on the machines measured one core already draws most
// of the bandwidth two can: splitting a decoding step's matrices (0.1-1.6 M weights) only
// added the wake-ups of the second core, and decoding ran 1.1-1.3× faster unsplit. Matrices
// past this size (a large vocabulary's LM head) amortise the wake-up.
const gemvGrain = 1 << 22

// gemvBF16Go is gemvBF16Rows in pure Go: y[j] = Σ_p w[j·k+p]·x[p] for j < len(y), bfloat16
// operands, fp32 accumulation (each product is exact in fp32).
func gemvBF16Go(y []float32, w []uint16, x []uint16, k int) {
	for j := range y {
		row := w[j*k : (j+1)*k]
		var s float32
		for p, h := range row {
			s += BF16BitsToF32(h) * BF16BitsToF32(x[p])
		}
		y[j] = s
	}
}
