package kernels

// attnNT is the one micro-kernel behind the attention blocks: with every operand's reduction
// dimension contiguous,
//
//	C[i][j] (+)= Σ_p A[i][p]·B[j][p]   i < m, j < n, p < k
//
// (acc adds to C, else overwrites). 2×3 register tiles: six accumulators and five loads per six
// multiply-adds; the largest tile whose inner loop the Go compiler keeps entirely in the 15
// usable XMM registers (2×4 spills three values per step and ran slower).
func attnNT(c []float32, ldc int, a []float32, lda int, b []float32, ldb int, m, n, k int, acc bool) {
	if m <= 0 || n <= 0 {
		return
	}
	i := 0
	for ; i+2 <= m; i += 2 {
		a0 := a[i*lda : i*lda+k]
		a1 := a[(i+1)*lda : (i+1)*lda+k]
		a1 = a1[:len(a0)]
		c0 := c[i*ldc : i*ldc+n]
		c1 := c[(i+1)*ldc : (i+1)*ldc+n]
		j := 0
		for ; j+3 <= n; j += 3 {
			b0 := b[j*ldb : j*ldb+k]
			b1 := b[(j+1)*ldb : (j+1)*ldb+k]
			b2 := b[(j+2)*ldb : (j+2)*ldb+k]
			b0, b1, b2 = b0[:len(a0)], b1[:len(a0)], b2[:len(a0)]
			var s00, s01, s02, s10, s11, s12 float32
			for p, x0 := range a0 {
				x1 := a1[p]
				y0, y1, y2 := b0[p], b1[p], b2[p]
				s00 += x0 * y0
				s01 += x0 * y1
				s02 += x0 * y2
				s10 += x1 * y0
				s11 += x1 * y1
				s12 += x1 * y2
			}
			r0, r1 := c0[j:j+3], c1[j:j+3]
			if acc {
				r0[0] += s00
				r0[1] += s01
				r0[2] += s02
				r1[0] += s10
				r1[1] += s11
				r1[2] += s12
			} else {
				r0[0], r0[1], r0[2] = s00, s01, s02
				r1[0], r1[1], r1[2] = s10, s11, s12
			}
		}
		for ; j < n; j++ {
			b0 := b[j*ldb : j*ldb+k]
			b0 = b0[:len(a0)]
			var s0, s1 float32
			for p, x0 := range a0 {
				s0 += x0 * b0[p]
				s1 += a1[p] * b0[p]
			}
			if acc {
				c0[j] += s0
				c1[j] += s1
			} else {
				c0[j], c1[j] = s0, s1
			}
		}
	}
	if i < m {
		a0 := a[i*lda : i*lda+k]
		c0 := c[i*ldc : i*ldc+n]
		for j := range c0 {
			b0 := b[j*ldb : j*ldb+k]
			b0 = b0[:len(a0)]
			var s0, s1 float32
			p := 0
			for ; p+2 <= len(a0); p += 2 {
				s0 += a0[p] * b0[p]
				s1 += a0[p+1] * b0[p+1]
			}
			if p < len(a0) {
				s0 += a0[p] * b0[p]
			}
			if acc {
				c0[j] += s0 + s1
			} else {
				c0[j] = s0 + s1
			}
		}
	}
}

// packRows copies rows×hd values, row r from src[off+r·stride:], into dst with row stride ld,
// rounding to bfloat16 when rnd.
func packRows(dst []float32, ld int, src []float32, off, stride, rows, hd int, rnd bool) {
	for r := 0; r < rows; r++ {
		s := src[off+r*stride : off+r*stride+hd]
		d := dst[r*ld : r*ld+hd]
		if rnd {
			RoundBF16(d, s)
		} else {
			copy(d, s)
		}
	}
}

// packRowsT is packRows transposed: dst[c·ld + r] = src[off + r·stride + c].
func packRowsT(dst []float32, ld int, src []float32, off, stride, rows, hd int, rnd bool) {
	for r := 0; r < rows; r++ {
		s := src[off+r*stride : off+r*stride+hd]
		for c, x := range s {
			if rnd {
				x = RoundBF16Value(x)
			}
			dst[c*ld+r] = x
		}
	}
}
