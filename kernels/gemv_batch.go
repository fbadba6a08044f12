package kernels

import "fmt"

// GemvBatchMaxRows is the most rows of x the batched GEMVs take: past a few rows a GEMM, which
// packs W once for many rows, is the better tool.
const GemvBatchMaxRows = 8

// gemvBlockBytes is how much of W a batched GEMV reads per block: small enough to stay in L2
// while every row of x meets it, so W streams from memory once for all the rows.
const gemvBlockBytes = 64 << 10

// GemvF32Batch computes y[i·ldy+j] = Σ_p w[j·k+p]·x[i·ldx+p] for the m ≤ GemvBatchMaxRows rows
// of x and j < n: x·Wᵀ for the few rows of a batched decoding step, or the tokens speculative
// decoding verifies, with W [n,k] streamed from memory once (in blocks that stay in cache while
// each row meets them). m = 1 is GemvF32.
func GemvF32Batch(y []float32, ldy int, w, x []float32, ldx, m, n, k int) {
	checkGemvBatch("GemvF32Batch", len(y), ldy, len(w), len(x), ldx, m, n, k)
	if m == 0 || n == 0 {
		return
	}
	gemvBatch(y, ldy, w, x, ldx, m, n, k, 4, gemvF32Rows, gemvF32Rows4)
}

// GemvBF16Batch is GemvF32Batch on bfloat16 weights under GemvBF16's rule: each row of x is
// rounded to bfloat16 once, products accumulate in fp32. m = 1 is GemvBF16.
func GemvBF16Batch(y []float32, ldy int, w []uint16, x []float32, ldx, m, n, k int) {
	checkGemvBatch("GemvBF16Batch", len(y), ldy, len(w), len(x), ldx, m, n, k)
	if m == 0 || n == 0 {
		return
	}
	p := bf16Bits.Get()
	defer bf16Bits.Put(p)
	if cap(*p) < m*k {
		*p = make([]uint16, m*k)
	}
	xb := (*p)[:m*k]
	for i := range m {
		f32ToBF16Row(xb[i*k:(i+1)*k], x[i*ldx:i*ldx+k])
	}
	gemvBatch(y, ldy, w, xb, k, m, n, k, 2, gemvBF16Rows, gemvBF16Rows4)
}

func checkGemvBatch(op string, ly, ldy, lw, lx, ldx, m, n, k int) {
	if m < 0 || m > GemvBatchMaxRows || n < 0 || k < 0 || (m > 1 && (ldy < n || ldx < k)) ||
		lw < n*k || (m > 0 && (ly < (m-1)*ldy+n || lx < (m-1)*ldx+k)) {
		panic(fmt.Sprintf("kernels.%s: y %d (ld %d), w %d, x %d (ld %d) for m=%d (at most %d) n=%d k=%d",
			op, ly, ldy, lw, lx, ldx, m, GemvBatchMaxRows, n, k))
	}
}

// gemvBatch runs block by block of W, every row of x on each block: four rows at a time on
// rows4 (one pass over the block, each row's sums exactly rows' own), the rest on rows.
// One row splits across cores only past gemvGrain weights (it is a DRAM stream); more rows
// do more arithmetic per byte and split from gemvGrain/m² weights.
func gemvBatch[W, X uint16 | float32](y []float32, ldy int, w []W, x []X, ldx, m, n, k, wBytes int,
	rows func(y []float32, w []W, x []X, k int), rows4 func(y []float32, ldy int, w []W, x []X, ldx, n, k int) bool) {
	if k == 0 {
		for i := range m {
			clear(y[i*ldy : i*ldy+n])
		}
		return
	}
	block := max(1, gemvBlockBytes/(k*wBytes))
	grain := max(block, gemvGrain/(k*m*m))
	Parallel(n, grain, func(lo, hi int) {
		for b0 := lo; b0 < hi; b0 += block {
			b1 := min(b0+block, hi)
			i := 0
			for ; i+4 <= m; i += 4 {
				if !rows4(y[i*ldy+b0:], ldy, w[b0*k:b1*k], x[i*ldx:], ldx, b1-b0, k) {
					break // no four-row kernel on this CPU
				}
			}
			for ; i < m; i++ {
				rows(y[i*ldy+b0:i*ldy+b1], w[b0*k:b1*k], x[i*ldx:i*ldx+k], k)
			}
		}
	})
}
