package kernels

import (
	"math"
	"runtime"
	"sync"
)

// The pure-Go flash kernel: AttentionForward and AttentionBackward without OpenBLAS.

// Flash-style blocking: a work item never holds more than an attnBQ×attnBK tile of scores.
const (
	attnBQ = 64 // query rows per block
	attnBK = 64 // key rows per block
)

// attnScratch is one worker's block buffers, pooled across calls.
type attnScratch struct {
	qp, qt, dop, dot, kp, kt, vp, vt, dkacc, dvacc, oacc []float32 // [64·hd] each
	s, pt, ds, dst                                       []float32 // [64·64] each
	m, l                                                 []float32 // [64]
	dd                                                   []float32 // [rep·t]
}

var attnScratchPool = sync.Pool{New: func() any { return new(attnScratch) }}

func getAttnScratch(hd, ddLen int) *attnScratch {
	w := attnScratchPool.Get().(*attnScratch)
	grow := func(p *[]float32, n int) {
		if cap(*p) < n {
			*p = make([]float32, n)
		}
		*p = (*p)[:n]
	}
	for _, p := range []*[]float32{&w.qp, &w.qt, &w.dop, &w.dot, &w.kp, &w.kt, &w.vp, &w.vt, &w.dkacc, &w.dvacc, &w.oacc} {
		grow(p, attnBK*hd)
	}
	for _, p := range []*[]float32{&w.s, &w.pt, &w.ds, &w.dst} {
		grow(p, attnBQ*attnBK)
	}
	grow(&w.m, attnBQ)
	grow(&w.l, attnBQ)
	grow(&w.dd, ddLen)
	return w
}

// attentionForwardFlash is AttentionForward on the pure-Go block kernel attnNT, the path taken
// when OpenBLAS is absent (measured faster there than the GEMM path on SgemmGo).
//
// Flash-style: work items are (sequence, head, 64-query block), run in parallel; each walks
// its 64-key blocks with an online softmax (running max and sum), so at most a 64×64 score
// tile exists per worker. With opt.BF16 the probabilities must be normalised before they are
// rounded (the golden rule rounds softmax(S)), so a first pass over the key blocks finds the
// log-sum-exp and a second accumulates bf16(P)·bf16(V).
func attentionForwardFlash(dims attnDims, o, lse, q, k, v []float32) {
	d := &dims
	b, t, h, hd := d.b, d.t, d.h, d.hd
	nqb := (t + attnBQ - 1) / attnBQ
	Parallel(b*h*nqb, 1, func(lo, hi int) {
		w := getAttnScratch(hd, 0)
		defer attnScratchPool.Put(w)
		for it := lo; it < hi; it++ {
			qb, bh := it%nqb, it/nqb
			attnForwardBlock(w, d, o, lse, q, k, v, bh/h, bh%h, qb*attnBQ)
		}
	})
}

// attnForwardBlock computes the output rows [i0, i0+64) of head hh in sequence bi.
func attnForwardBlock(w *attnScratch, d *attnDims, o, lse, q, k, v []float32, bi, hh, i0 int) {
	hd, g := d.hd, hh/d.rep
	mq := min(attnBQ, d.t-i0)
	i1 := i0 + mq
	packRows(w.qp, hd, q, d.qOff(bi, i0, hh), d.h*hd, mq, hd, d.bf16)
	m, l := w.m[:mq], w.l[:mq]
	for r := range m {
		m[r], l[r] = float32(math.Inf(-1)), 0
	}
	oacc := w.oacc[:mq*hd]
	clear(oacc)
	jStart := d.minFirstKey(bi, i0, i1)
	jStart -= jStart % attnBK // keep key blocks aligned (the same tiles as the backward)
	// Pass 1 (always for fp32; alone for bf16): online max/sum, and for fp32 the output too.
	fused := !d.bf16
	for j0 := jStart; j0 < i1; j0 += attnBK {
		nb := min(attnBK, i1-j0)
		packRows(w.kp, hd, k, d.kOff(bi, j0, g), d.kv*hd, nb, hd, d.bf16)
		attnNT(w.s, attnBK, w.qp, hd, w.kp, hd, mq, nb, hd, false, triCols, i0-j0)
		for r := 0; r < mq; r++ {
			i := i0 + r
			row := w.s[r*attnBK : r*attnBK+nb]
			jlo, jhi := max(d.firstKey(bi, i)-j0, 0), min(i-j0+1, nb)
			if jlo >= jhi {
				clear(row)
				continue
			}
			mx := m[r]
			for j := jlo; j < jhi; j++ {
				row[j] *= d.scale
				mx = max(mx, row[j])
			}
			alpha := exp32(m[r] - mx)
			var sum float32
			clear(row[:jlo])
			clear(row[jhi:])
			for j := jlo; j < jhi; j++ {
				p := exp32(row[j] - mx)
				row[j] = p
				sum += p
			}
			l[r] = l[r]*alpha + sum
			m[r] = mx
			if fused && alpha != 1 {
				for c := range oacc[r*hd : r*hd+hd] {
					oacc[r*hd+c] *= alpha
				}
			}
		}
		if fused {
			packRowsT(w.vt, attnBK, v, d.kOff(bi, j0, g), d.kv*hd, nb, hd, false)
			attnNT(oacc, hd, w.s, attnBK, w.vt, attnBK, mq, hd, nb, true, triKTo, i0-j0)
		}
	}
	lseRow := lse[(bi*d.h+hh)*d.t+i0 : (bi*d.h+hh)*d.t+i1]
	for r := range lseRow {
		lseRow[r] = m[r] + float32(math.Log(float64(l[r])))
	}
	if d.bf16 { // Pass 2: P = bf16(exp(S − lse)), O = Σ P·bf16(V).
		for j0 := jStart; j0 < i1; j0 += attnBK {
			nb := min(attnBK, i1-j0)
			packRows(w.kp, hd, k, d.kOff(bi, j0, g), d.kv*hd, nb, hd, true)
			attnNT(w.s, attnBK, w.qp, hd, w.kp, hd, mq, nb, hd, false, triCols, i0-j0)
			for r := 0; r < mq; r++ {
				i := i0 + r
				row := w.s[r*attnBK : r*attnBK+nb]
				jlo, jhi := max(d.firstKey(bi, i)-j0, 0), min(i-j0+1, nb)
				for j := range row {
					if j < jlo || j >= jhi {
						row[j] = 0
					} else {
						row[j] = RoundBF16Value(exp32(row[j]*d.scale - lseRow[r]))
					}
				}
			}
			packRowsT(w.vt, attnBK, v, d.kOff(bi, j0, g), d.kv*hd, nb, hd, true)
			attnNT(oacc, hd, w.s, attnBK, w.vt, attnBK, mq, hd, nb, true, triKTo, i0-j0)
		}
	}
	for r := 0; r < mq; r++ {
		dst := o[d.qOff(bi, i0+r, hh) : d.qOff(bi, i0+r, hh)+hd]
		src := oacc[r*hd : r*hd+hd]
		if d.bf16 {
			copy(dst, src)
			continue
		}
		inv := 1 / l[r]
		for c, x := range src {
			dst[c] = x * inv
		}
	}
}

// attentionBackwardFlash is AttentionBackward on the pure-Go block kernel attnNT (the path
// without OpenBLAS).
//
// Work items are (sequence, kv head): one worker owns the dk, dv rows of its kv head and the
// dq rows of the query heads sharing it, so nothing races and every sum runs in a fixed order
// (bit-identical results for any GOMAXPROCS). When there are fewer such groups than
// GOMAXPROCS, each group's key blocks are also split into ranges of equal causal work; every
// range but the first collects its dq into its own scratch (len(dq) floats per extra range),
// added to dq in range order afterwards: deterministic for a fixed GOMAXPROCS.
func attentionBackwardFlash(dims attnDims, dq, dk, dv, do, q, k, v, o, lse []float32) {
	d := &dims
	b, t, kv, hd := d.b, d.t, d.kv, d.hd
	groups, nkb := b*kv, (t+attnBK-1)/attnBK
	parts := 1
	if w := runtime.GOMAXPROCS(0); groups > 0 && groups < w && nkb > 1 {
		parts = min(nkb, (w+groups-1)/groups)
	}
	cuts := attnKeyCuts(nkb, parts)
	var extra []float32 // dq of ranges 1..parts-1, layout [part-1][b][t][h][hd]
	if parts > 1 {
		extra = make([]float32, (parts-1)*len(dq))
	}
	Parallel(groups*parts, 1, func(lo, hi int) {
		w := getAttnScratch(hd, d.rep*t)
		defer attnScratchPool.Put(w)
		for it := lo; it < hi; it++ {
			grp, part := it/parts, it%parts
			dqt := dq
			if part > 0 {
				dqt = extra[(part-1)*len(dq) : part*len(dq)]
			}
			attnBackwardGroup(w, d, dqt, dk, dv, do, q, k, v, o, lse, grp/kv, grp%kv, cuts[part]*attnBK, min(t, cuts[part+1]*attnBK))
		}
	})
	for p := 1; p < parts; p++ {
		src := extra[(p-1)*len(dq) : p*len(dq)]
		Parallel(len(dq), 1<<15, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				dq[i] += src[i]
			}
		})
	}
}

// attnKeyCuts splits nkb key blocks into parts ranges [cuts[p], cuts[p+1]) of about equal
// causal work (key block jb meets the nkb−jb query blocks at or after it).
func attnKeyCuts(nkb, parts int) []int {
	cuts := make([]int, parts+1)
	total := nkb * (nkb + 1) / 2
	done, jb := 0, 0
	for p := 1; p < parts; p++ {
		for jb < nkb && done*parts < total*p {
			done += nkb - jb
			jb++
		}
		cuts[p] = jb
	}
	cuts[parts] = nkb
	return cuts
}

// attnBackwardGroup runs the backward of kv head g of sequence bi and its query heads, for the
// keys [kLo, kHi) (multiples of attnBK, or t).
func attnBackwardGroup(w *attnScratch, d *attnDims, dq, dk, dv, do, q, k, v, o, lse []float32, bi, g, kLo, kHi int) {
	t, hd, rs := d.t, d.hd, d.h*d.hd
	for x := 0; x < d.rep; x++ { // D = rowsum(dO∘O) per query head and row
		hh := g*d.rep + x
		for i := 0; i < t; i++ {
			off := d.qOff(bi, i, hh)
			var s float32
			orow := o[off : off+hd]
			for c, y := range do[off : off+hd] {
				s += y * orow[c]
			}
			w.dd[x*t+i] = s
		}
	}
	for j0 := kLo; j0 < kHi; j0 += attnBK {
		nb := min(attnBK, t-j0)
		j1 := j0 + nb
		koff := d.kOff(bi, j0, g)
		packRows(w.kp, hd, k, koff, d.kv*hd, nb, hd, d.bf16)
		packRowsT(w.kt, attnBK, k, koff, d.kv*hd, nb, hd, d.bf16)
		packRows(w.vp, hd, v, koff, d.kv*hd, nb, hd, d.bf16)
		dkacc, dvacc := w.dkacc[:nb*hd], w.dvacc[:nb*hd]
		clear(dkacc)
		clear(dvacc)
		for x := 0; x < d.rep; x++ {
			hh := g*d.rep + x
			lseRow := lse[(bi*d.h+hh)*t : (bi*d.h+hh)*t+t]
			for i0 := j0 - j0%attnBQ; i0 < t; i0 += attnBQ {
				mq := min(attnBQ, t-i0)
				if d.minFirstKey(bi, i0, i0+mq) >= j1 {
					continue // no row of this block sees these keys (packed documents)
				}
				qoff := d.qOff(bi, i0, hh)
				packRows(w.qp, hd, q, qoff, rs, mq, hd, d.bf16)
				packRowsT(w.qt, attnBQ, q, qoff, rs, mq, hd, d.bf16)
				packRows(w.dop, hd, do, qoff, rs, mq, hd, d.bf16)
				packRowsT(w.dot, attnBQ, do, qoff, rs, mq, hd, d.bf16)
				// P (fp32) into s, its rounded transpose into pt: the forward's score block
				// recomputed, as flash attention's backward does (the lines repeat the forward's).
				attnNT(w.s, attnBK, w.qp, hd, w.kp, hd, mq, nb, hd, false, triCols, i0-j0)
				for r := 0; r < mq; r++ {
					i := i0 + r
					row := w.s[r*attnBK : r*attnBK+nb]
					jlo, jhi := max(d.firstKey(bi, i)-j0, 0), min(i-j0+1, nb)
					for j := range row {
						var p float32
						if j >= jlo && j < jhi {
							p = exp32(row[j]*d.scale - lseRow[i])
						}
						row[j] = p
						if d.bf16 {
							p = RoundBF16Value(p)
						}
						w.pt[j*attnBQ+r] = p
					}
				}
				// dV += Pᵀ·dO
				attnNT(dvacc, hd, w.pt, attnBQ, w.dot, attnBQ, nb, hd, mq, true, triKFrom, i0-j0)
				// dP = dO·Vᵀ, then dS = scale·P∘(dP − D) in place, and its transpose.
				attnNT(w.ds, attnBK, w.dop, hd, w.vp, hd, mq, nb, hd, false, triCols, i0-j0)
				for r := 0; r < mq; r++ {
					dd := w.dd[x*t+i0+r]
					prow := w.s[r*attnBK : r*attnBK+nb]
					drow := w.ds[r*attnBK : r*attnBK+nb]
					for j, p := range prow {
						var s float32
						if p != 0 { // dP beyond the causal edge was never computed
							s = p * (drow[j] - dd) * d.scale
						}
						if d.bf16 {
							s = RoundBF16Value(s)
						}
						drow[j] = s
						w.dst[j*attnBQ+r] = s
					}
				}
				// dQ += dS·K straight into dq (this worker owns these rows).
				attnNT(dq[qoff:], rs, w.ds, attnBK, w.kt, attnBK, mq, hd, nb, true, triKTo, i0-j0)
				// dK += dSᵀ·Q
				attnNT(dkacc, hd, w.dst, attnBQ, w.qt, attnBQ, nb, hd, mq, true, triKFrom, i0-j0)
			}
		}
		for r := 0; r < nb; r++ {
			off := d.kOff(bi, j0+r, g)
			dkr, dvr := dk[off:off+hd], dv[off:off+hd]
			for c := range dkr {
				dkr[c] += dkacc[r*hd+c]
				dvr[c] += dvacc[r*hd+c]
			}
		}
	}
}
