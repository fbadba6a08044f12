package kernels

// NormRoPEForward is Qwen3's QK-norm then RoPE, fused row by row: RMSNormForward over the rows
// of x [n·heads, hd] (weight w [hd]; rstd [n·heads] kept for the backward) followed by
// RoPEForward with the token positions pos [n]. One pass over x instead of two and no
// intermediate tensor; y equals that pair of calls to the bit.
func NormRoPEForward(y, rstd, x, w []float32, pos []int32, cos, sin []float32, n, heads, hd int, eps float32) {
	checkRoPE("NormRoPEForward", len(y), len(x), pos, len(cos), len(sin), n, heads, hd)
	checkRMSNorm("NormRoPEForward", len(y), len(rstd), len(x), len(w), n*heads, hd)
	half := hd / 2
	Parallel(n, rowGrain(heads*hd), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			p := int(pos[i])
			c, s := cos[p*hd:p*hd+hd], sin[p*hd:p*hd+hd]
			for h := range heads {
				r := i*heads + h
				yr := y[r*hd : r*hd+hd]
				rstd[r] = rmsRowForward(yr, x[r*hd:r*hd+hd], w, eps)
				ropeRow(yr, yr, c, s, half)
			}
		}
	})
}

// NormRoPEBackward accumulates dx [n·heads, hd] and dw [hd] from dy, the gradient of
// NormRoPEForward's output: each row is rotated back, then goes through the RMSNorm backward.
// The rows are split as RMSNormBackward splits them, so dx and dw equal RoPEBackward into a
// zeroed buffer followed by RMSNormBackward, to the bit.
func NormRoPEBackward(dx, dw, dy, x, w, rstd []float32, pos []int32, cos, sin []float32, n, heads, hd int) {
	checkRoPE("NormRoPEBackward", len(dx), len(dy), pos, len(cos), len(sin), n, heads, hd)
	checkRMSNorm("NormRoPEBackward", len(dx), len(rstd), len(x), len(w), n*heads, hd)
	if len(dw) != hd {
		panic("kernels: NormRoPEBackward: len(dw) must be hd")
	}
	half, rows := hd/2, n*heads
	parts := rowParts(rows, rowGrain(hd))
	partial := make([]float32, len(parts)*(hd+hd)) // per part: the dw partial, then a row of scratch
	Parallel(len(parts), 1, func(plo, phi int) {
		for p := plo; p < phi; p++ {
			acc, g := partial[p*2*hd:p*2*hd+hd], partial[p*2*hd+hd:(p+1)*2*hd]
			for r := parts[p][0]; r < parts[p][1]; r++ {
				t := int(pos[r/heads])
				clear(g)
				ropeRowBackward(g, dy[r*hd:r*hd+hd], cos[t*hd:t*hd+hd], sin[t*hd:t*hd+hd], half)
				rmsRowBackward(dx[r*hd:r*hd+hd], acc, g, x[r*hd:r*hd+hd], w, rstd[r])
			}
		}
	})
	for p := range parts {
		for j, v := range partial[p*2*hd : p*2*hd+hd] {
			dw[j] += v
		}
	}
}
