package kernels

import "unsafe"

// The tiles variant of groups mode: with BF16 (and an even head size) every block product runs
// on bf16Tile, the VDPBF16PS kernels, instead of OpenBLAS's fp32 GEMM on rounded copies. The
// rounding is the same (every operand rounded once to bfloat16, products summed in fp32), so
// the numbers follow the same rule; only the order of the sums differs.
//
// bf16Tile reads its B operand pair-packed along the inner dimension, and its A operand either
// row-major or pair-packed and transposed, so each operand is packed once in the layouts its
// products need (a uint32 holds two bfloat16, the lower half first):
//
//	kW, vW  [hd/2][tp]  word p of key j at p·tp+j: B of Q·Kᵀ and dO·Vᵀ
//	kP, vP  [tp/2][hd]  keys 2i and 2i+1 of column c at i·hd+c: B of P·V and dS·K
//	q16, do16 [rows][hd/2]  the block's Q and dO rows: A of Q·Kᵀ and dO·Vᵀ
//	qP, doP [rows/2][hd] rows 2i and 2i+1 of column c: B of dSᵀ·Q and Pᵀ·dO
//	p16     [rows][kt/2] P (forward) or dS (backward) rows: A of P·V and dS·K
//	pT, dsT [rows/2][kt] rows 2i and 2i+1 of key j at i·kt+j: A of Pᵀ·dO and dSᵀ·Q (ars 1, aps kt)
//
// with tp = t and rows rounded up to even (padding zero). Key tiles start at even keys, so a
// tile's pairs of keys are the packed pairs; a tile's odd last key pairs with a zero.

// attnTilesOK reports whether d can run the tiles variant.
func attnTilesOK(d *attnDims) bool { return d.bf16 && d.hd%2 == 0 }

// growU32 is attnGrow for uint32 buffers.
func growU32(p *[]uint32, n int) {
	if cap(*p) < n {
		*p = make([]uint32, n)
	}
	*p = (*p)[:n]
}

// tilesScratch sizes the tiles variant's buffers for w's dims and block.
func (w *attnGemm) tilesScratch() {
	d := &w.d
	w.tp = d.t + d.t%2
	rows := w.bq * d.rep
	rp := (rows + 1) / 2
	for _, p := range []*[]uint32{&w.kW, &w.vW, &w.kP, &w.vP} {
		growU32(p, w.tp*d.hd/2)
	}
	for _, p := range []*[]uint32{&w.q16, &w.do16, &w.qP, &w.doP} {
		growU32(p, rp*2*d.hd/2)
	}
	growU32(&w.p16, rows*w.kt/2)
	growU32(&w.kwRow, d.hd/2)
	attnGrow(&w.zeroRow, d.hd)
	clear(w.zeroRow)
	growU32(&w.pT, rp*w.kt)
	growU32(&w.dsT, rp*w.kt)
}

// pairRow writes src as pairs into dst[:(len(src)+1)/2]; an odd last element pairs with zero.
// Pairs along a row are the row's bfloat16 bits in memory order, so this is F32ToBF16 on dst's
// halves.
func pairRow(dst []uint32, src []float32) {
	n := len(src)
	dst = dst[:(n+1)/2]
	if len(dst) == 0 {
		return
	}
	half := unsafe.Slice((*uint16)(unsafe.Pointer(&dst[0])), 2*len(dst))
	f32ToBF16Row(half[:n], src)
	if n%2 == 1 {
		half[n] = 0
	}
}

// pairRows writes the rows s0 and s1 (s1 nil: zeros) pair-packed into dst[:len(s0)].
func pairRows(dst []uint32, s0, s1 []float32) {
	if s1 == nil {
		for j, x := range s0 {
			dst[j] = pairBF16(x, 0)
		}
		return
	}
	pairBF16Row(dst, s0, s1)
}

// packKVTiles packs the group's keys: kW and vP for the forward; kW, vW and kP for the backward.
func (w *attnGemm) packKVTiles(bwd bool) {
	d := &w.d
	hd, tp := d.hd, w.tp
	var zero []float32
	if d.t%2 == 1 {
		zero = w.zeroRow[:hd]
	}
	row := func(src []float32, j int) []float32 {
		if j >= d.t {
			return zero
		}
		off := d.kOff(w.bi, j, w.g)
		return src[off : off+hd]
	}
	words := w.kwRow[:hd/2]
	for jp := range tp / 2 {
		j := 2 * jp
		k0, k1, v0, v1 := row(w.k, j), row(w.k, j+1), row(w.v, j), row(w.v, j+1)
		for x, src := range [][]float32{k0, k1, v0, v1} {
			if x >= 2 && !bwd {
				break
			}
			dst := w.kW
			if x >= 2 {
				dst = w.vW
			}
			pairRow(words, src)
			for p, u := range words {
				dst[p*tp+j+x%2] = u
			}
		}
		if bwd {
			pairRows(w.kP[jp*hd:], k0, k1)
		} else {
			pairRows(w.vP[jp*hd:], v0, v1)
		}
	}
}

// packBlockPairs writes the block's rows of src (q or dO, found by rowQuery) pair-packed by
// rows into dst [rows/2][hd]: B of dSᵀ·Q and Pᵀ·dO.
func (w *attnGemm) packBlockPairs(dst []uint32, src []float32) {
	hd := w.d.hd
	for rp := range (w.rows + 1) / 2 {
		_, _, off := w.rowQuery(2 * rp)
		var s1 []float32
		if 2*rp+1 < w.rows {
			_, _, off1 := w.rowQuery(2*rp + 1)
			s1 = src[off1 : off1+hd]
		}
		pairRows(dst[rp*hd:], src[off:off+hd], s1)
	}
}

// packTilePairs writes the tile src [rows][kt] (columns [0, nb)) pair-packed by rows into dst
// [rows/2][kt]: A of Pᵀ·dO and dSᵀ·Q.
func (w *attnGemm) packTilePairs(dst []uint32, src []float32) {
	kt, nb := w.kt, w.nb
	for rp := range (w.rows + 1) / 2 {
		var s1 []float32
		if 2*rp+1 < w.rows {
			s1 = src[(2*rp+1)*kt : (2*rp+1)*kt+nb]
		}
		pairRows(dst[rp*kt:], src[2*rp*kt:2*rp*kt+nb], s1)
	}
}

// scoresTiles is scores on the packed operands: S = scale·Q·Kᵀ for the keys [j0, j0+cols).
func (w *attnGemm) scoresTiles(s []float32, a16 []uint32, kw []uint32, alpha float32, j0, cols int) {
	h2 := w.d.hd / 2
	bf16Tile(s, w.kt, a16, h2, 1, kw[j0:], w.tp, w.rows, cols, h2, alpha, false)
}

// pvTiles adds P·V for the keys [j0, j0+cols) to the block's accumulator.
func (w *attnGemm) pvTiles(j0, cols int) {
	hd := w.d.hd
	bf16Tile(w.acc, hd, w.p16, w.kt/2, 1, w.vP[j0/2*hd:], hd, w.rows, hd, (cols+1)/2, 1, true)
}

// backwardTileProducts runs the backward's three accumulating products of the tile at keys
// [j0, j0+cols) from the packed P and dS: dV += Pᵀ·dO, dQ += dS·K, dK += dSᵀ·Q.
func (w *attnGemm) backwardTileProducts(dk, dv []float32, j0, cols int) {
	d := &w.d
	hd, kt, ldk := d.hd, w.kt, d.kv*d.hd
	koff := d.kOff(w.bi, j0, w.g)
	rp := (w.rows + 1) / 2
	bf16Tile(dv[koff:], ldk, w.pT, 1, kt, w.doP, hd, cols, hd, rp, 1, true)
	bf16Tile(w.acc, hd, w.p16, kt/2, 1, w.kP[j0/2*hd:], hd, w.rows, hd, (cols+1)/2, 1, true)
	bf16Tile(dk[koff:], ldk, w.dsT, 1, kt, w.qP, hd, cols, hd, rp, 1, true)
}
