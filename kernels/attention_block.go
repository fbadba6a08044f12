package kernels

// attnNT is the one micro-kernel behind the attention blocks: with every operand's reduction
// dimension contiguous,
//
//	C[i][j] (+)= Σ_p A[i][p]·B[j][p]   i < m, j < n, p < k
//
// (acc adds to C, else overwrites). 2×3 register tiles: six accumulators and five loads per six
// multiply-adds; the largest tile whose inner loop the Go compiler keeps entirely in the 15
// usable XMM registers (2×4 spills three values per step and ran slower).
//
// tri skips work a causal mask makes zero (rows are handled in pairs, so a pair's range is the
// union of its two rows'):
//
//	triNone:  everything
//	triCols:  only C[i][j] with j ≤ i+off are computed; the rest of C is left unwritten
//	triKTo:   A[i][p] is known zero for p > i+off, so the sum stops there
//	triKFrom: A[i][p] is known zero for p < i−off, so the sum starts there
func attnNT(c []float32, ldc int, a []float32, lda int, b []float32, ldb int, m, n, k int, acc bool, tri, off int) {
	if m <= 0 || n <= 0 {
		return
	}
	// span returns the columns and the reduction range row pair (i, i+1) needs.
	span := func(i int) (nn, kLo, kHi int) {
		nn, kLo, kHi = n, 0, k
		switch tri {
		case triCols:
			nn = min(n, max(0, i+2+off))
		case triKTo:
			kHi = min(k, max(0, i+2+off))
		case triKFrom:
			kLo = min(k, max(0, i-off))
		}
		return nn, kLo, kHi
	}
	i := 0
	for ; i+2 <= m; i += 2 {
		nn, kLo, kHi := span(i)
		a0 := a[i*lda+kLo : i*lda+kHi]
		a1 := a[(i+1)*lda+kLo : (i+1)*lda+kHi]
		a1 = a1[:len(a0)]
		c0 := c[i*ldc : i*ldc+nn]
		c1 := c[(i+1)*ldc : (i+1)*ldc+nn]
		j := 0
		for ; j+3 <= nn; j += 3 {
			b0 := b[j*ldb+kLo : j*ldb+kHi]
			b1 := b[(j+1)*ldb+kLo : (j+1)*ldb+kHi]
			b2 := b[(j+2)*ldb+kLo : (j+2)*ldb+kHi]
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
		for ; j < nn; j++ {
			b0 := b[j*ldb+kLo : j*ldb+kHi]
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
		nn, kLo, kHi := span(i)
		a0 := a[i*lda+kLo : i*lda+kHi]
		c0 := c[i*ldc : i*ldc+nn]
		for j := range c0 {
			b0 := b[j*ldb+kLo : j*ldb+kHi]
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

// Causal-mask modes of attnNT.
const (
	triNone = iota
	triCols
	triKTo
	triKFrom
)

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
