package kernels

import (
	"github.com/gwen-ml/gwen/internal/freelist"
	"math"
	"runtime"
	"sync"
)

// The GEMM path of AttentionForward and AttentionBackward: flash-style blocking whose block
// products are Sgemm calls, with the Go-side work between them (softmax, masks,
// dS = P∘(dP − D), packing) on Go goroutines, never while a multi-threaded GEMM runs.
//
// The unit of work is one (sequence, kv head) group. The rep = h/kv query heads of a group read
// the same K and V, so a block stacks them as the rows of one GEMM: row r of a block that
// starts at query i0 is query i0 + r/rep of head g·rep + r%rep. A block meets the keys in tiles,
// so no more than a rows×keys tile of scores ever exists; key tiles a block's rows cannot see
// (before every row's document start) are skipped, masks inside a tile are applied row by row.
//
// Two modes, one code:
//   - sequential (fewer groups than GOMAXPROCS, or GOMAXPROCS = 1): groups one after another,
//     blocks of attnGemmRows rows × tiles of attnGemmKeys keys, each GEMM on all of
//     OpenBLAS's threads, the Go-side phases split over attnTeam between the calls;
//   - groups (b·kv ≥ GOMAXPROCS > 1): groups spread over goroutines, each running its own
//     groups start to end with tiles small enough (rows·keys·hd ≤ attnBLASOneThread) that
//     OpenBLAS computes them on the calling thread, and its phases inline: no barrier per
//     GEMM. Measured on the 2-core box (b=4 t=512 h=8 kv=4 hd=64, min of 4 interleaved runs,
//     cpu-ms/op, sequential → groups): forward 49.8 → 37.1, forward+backward 146.6 → 102.7,
//     BF16 forward+backward 201.2 → 136.0; wall time fell alike.
const (
	attnGemmRows  = 256 // sequential mode: stacked (query, head) rows per block
	attnGemmKeys  = 256 // sequential mode: keys per tile
	attnGemmDiag  = 64  // sequential mode: stacked rows per GEMM on a tile the causal edge crosses
	attnSmallKeys = 64  // groups mode: keys per tile
	// attnBLASOneThread is the largest m·n·k OpenBLAS (0.3.21, and since 0.3.x:
	// SMP_THRESHOLD_MIN·GEMM_MULTITHREAD_THRESHOLD = 65536·4) runs on the calling thread. A
	// build with a lower threshold stays correct; its small GEMMs would then start threads.
	attnBLASOneThread = 262144
)

// attnKeepScores is the most floats of score tiles a BF16 forward keeps per block for its second
// pass (4 MiB); past it (very long contexts) the second pass recomputes them. A variable so
// that tests can compare the two.
var attnKeepScores = 1 << 20

// attnMode is how the GEMM path runs a call: sequential or groups mode (above), and in groups
// mode with BF16 either on OpenBLAS (rounded fp32 copies) or on bf16Tile (attention_tiles.go).
type attnMode int

const (
	attnSequential attnMode = iota
	attnGroups
	attnGroupsTiles // groups mode, block products on bf16Tile (BF16 and an even head size only)
)

// attnModeFor picks the mode of a call: groups mode when there are at least GOMAXPROCS > 1
// groups, on tiles where the CPU has the VDPBF16PS kernels and the call can use them.
func attnModeFor(d *attnDims) attnMode {
	p := runtime.GOMAXPROCS(0)
	switch {
	case p <= 1 || d.b*d.kv < p:
		return attnSequential
	case hasAVX512BF16 && attnTilesOK(d):
		return attnGroupsTiles
	}
	return attnGroups
}

// attnGemm is one call's state and scratch, reused through attnGemmPool.
type attnGemm struct {
	d                       attnDims
	q, k, v, o, lse, do, dq []float32
	bi, g                   int       // the group: sequence bi, kv head g
	kp, vp                  []float32 // the group's K and V from key 0: views into k, v, or bf16-rounded copies
	ld                      int       // row stride of kp, vp
	kbuf, vbuf              []float32 // [t·hd] rounded copies (BF16)
	kT, vT                  []float32 // [hd·t] the group's K and V transposed (rounded for BF16)
	sKeep                   []float32 // BF16 forward: the block's score tiles, pass 1 to pass 2
	i0, nq, rows            int       // the block: queries [i0, i0+nq), rows = nq·rep
	qs, dos, acc            []float32 // [rows·hd]: Q (rounded for BF16), dO, the O or dQ accumulator
	m, l, lr, dd            []float32 // [rows]: running max and sum, log-sum-exp, D = rowsum(dO∘O)
	j0, nb                  int       // the tile: keys [j0, j0+nb)
	s, dp                   []float32 // [rows·kt]: scores then P; dP then dS
	phase                   attnPhase
	wg                      sync.WaitGroup
	bq, kt, diag            int  // queries per block, keys per tile, rows per GEMM on the causal edge
	inline                  bool // groups mode: phases run on the calling goroutine
	pass2                   bool // BF16 forward: the second pass over the keys

	// The tiles variant (attention_tiles.go): operands as bfloat16 pairs.
	tiles              bool
	tp                 int // t rounded up to even
	kW, vW, kP, vP     []uint32
	q16, do16, qP, doP []uint32
	p16, pT, dsT       []uint32
	kwRow              []uint32  // [hd/2] one key's pairs on their way into kW or vW
	zeroRow            []float32 // [hd] zeros: the key past an odd t
}

// attnPhase names the Go-side step attnGemm.run performs on a range of rows.
type attnPhase int

const (
	phPackKV  attnPhase = iota // rows are keys: round the group's K and V (BF16)
	phFwdInit                  // pack Q, reset max, sum and accumulator
	phFwdTile                  // online softmax of a score tile (pass 2 of BF16: final P)
	phFwdOut                   // write O
	phBwdInit                  // pack Q and dO, read lse, D = rowsum(dO∘O), zero dQ
	phBwdTile                  // P from lse, dS = scale·P∘(dP − D), rounded P for dV
	phBwdOut                   // dq += the block's dQ
)

var attnGemmPool freelist.List[attnGemm]

func attnGrow(p *[]float32, n int) {
	if cap(*p) < n {
		*p = make([]float32, n)
	}
	*p = (*p)[:n]
}

func getAttnGemm(d *attnDims, mode attnMode) *attnGemm {
	w := attnGemmPool.Get()
	w.d = *d
	w.tiles = mode == attnGroupsTiles && attnTilesOK(d)
	if mode != attnSequential {
		w.kt = attnSmallKeys
		w.bq = max(1, attnBLASOneThread/(d.hd*attnSmallKeys)/d.rep)
		w.diag = w.bq * d.rep
		w.inline = true
	} else {
		w.kt, w.bq, w.diag, w.inline = attnGemmKeys, max(1, attnGemmRows/d.rep), attnGemmDiag, false
	}
	rows := w.bq * d.rep
	for _, p := range []*[]float32{&w.qs, &w.dos, &w.acc} {
		attnGrow(p, rows*d.hd)
	}
	for _, p := range []*[]float32{&w.m, &w.l, &w.lr, &w.dd} {
		attnGrow(p, rows)
	}
	attnGrow(&w.s, rows*w.kt)
	attnGrow(&w.dp, rows*w.kt)
	if d.bf16 {
		attnGrow(&w.kbuf, d.t*d.hd)
		attnGrow(&w.vbuf, d.t*d.hd)
	}
	if w.tiles {
		w.tilesScratch()
		return w
	}
	attnGrow(&w.kT, d.t*d.hd)
	attnGrow(&w.vT, d.t*d.hd)
	return w
}

func putAttnGemm(w *attnGemm) {
	w.q, w.k, w.v, w.o, w.lse, w.do, w.dq, w.kp, w.vp = nil, nil, nil, nil, nil, nil, nil, nil, nil
	w.d.doc = nil
	attnGemmPool.Put(w)
}

// team runs the current phase over [0, n): inline in groups mode, else on attnTeam.
func (w *attnGemm) team(n, grain int) {
	if w.inline {
		w.run(0, n)
		return
	}
	attnTeamRun(w, &w.wg, n, grain)
}

// setGroup points the state at group (bi, g), rounding its K and V when BF16 (packing those the
// forward, or else the backward, reads in the tiles variant).
func (w *attnGemm) setGroup(bi, g int, bwd bool) {
	d := &w.d
	w.bi, w.g = bi, g
	if w.tiles {
		w.packKVTiles(bwd)
		return
	}
	if !d.bf16 {
		w.kp, w.vp, w.ld = w.k[d.kOff(bi, 0, g):], w.v[d.kOff(bi, 0, g):], d.kv*d.hd
	} else {
		w.kp, w.vp, w.ld = w.kbuf, w.vbuf, d.hd
	}
	w.phase = phPackKV
	w.team(d.t, max(1, 4096/d.hd))
}

// setBlock selects the queries [i0, i0+nq) and runs phase init over its rows.
func (w *attnGemm) setBlock(i0, nq int, init attnPhase) {
	w.i0, w.nq, w.rows = i0, nq, nq*w.d.rep
	w.phase = init
	w.team(w.rows, max(1, 2048/w.d.hd))
	if w.tiles && init == phBwdInit {
		w.packBlockPairs(w.qP, w.q)
		w.packBlockPairs(w.doP, w.do)
	}
}

// firstTile is the first key tile's start for queries [i0, i1): their first visible key, made
// even in the tiles variant (the extra key is masked like any other).
func (w *attnGemm) firstTile(i0, i1 int) int {
	j := w.d.minFirstKey(w.bi, i0, i1)
	if w.tiles {
		j &^= 1
	}
	return j
}

// tilePhase runs phase ph over the rows for the keys [j0, j0+nb).
func (w *attnGemm) tilePhase(ph attnPhase, j0, nb int) {
	w.j0, w.nb, w.phase = j0, nb, ph
	w.team(w.rows, max(1, 4096/nb))
}

// rowQuery returns the query position, head and offset in q of block row r.
func (w *attnGemm) rowQuery(r int) (i, hh, off int) {
	i, hh = w.i0+r/w.d.rep, w.g*w.d.rep+r%w.d.rep
	return i, hh, w.d.qOff(w.bi, i, hh)
}

// keyRange is the visible part [jlo, jhi) of the tile's columns for query i.
func (w *attnGemm) keyRange(i int) (jlo, jhi int) {
	return max(w.d.firstKey(w.bi, i)-w.j0, 0), min(i-w.j0+1, w.nb)
}

// chunk returns the c-th row range [ra, rb) of the tile for the keys [j0, j0+nb) and the
// columns [0, cols) it needs, ok false past the last. A tile wholly below the causal edge is one
// chunk; one the edge crosses is cut into chunks of about w.diag rows, each stopping at
// its last query's own key, which skips most of the masked triangle (a quarter of all products
// at t=512 without it). Columns past cols are never computed: the row phases see only
// keyRange, which lies inside.
func (w *attnGemm) chunk(c, j0, nb int) (ra, rb, cols int, ok bool) {
	cq := w.nq
	if j0+nb > w.i0+1 {
		cq = max(1, w.diag/w.d.rep)
	}
	qa := c * cq
	if qa >= w.nq {
		return 0, 0, 0, false
	}
	qb := min(qa+cq, w.nq)
	return qa * w.d.rep, qb * w.d.rep, max(0, min(nb, w.i0+qb-j0)), true
}

// scores computes the tile S = scale·Qs·Kᵀ for the keys [j0, j0+nb) (as far as chunk says).
func (w *attnGemm) scores(j0, nb int) {
	d := &w.d
	for c := 0; ; c++ {
		ra, rb, cols, ok := w.chunk(c, j0, nb)
		if !ok {
			return
		}
		if w.tiles && cols > 0 { // one chunk: groups mode
			w.scoresTiles(w.s, w.q16, w.kW, d.scale, j0, cols)
		} else if cols > 0 {
			Sgemm(false, false, rb-ra, cols, d.hd, d.scale, w.qs[ra*d.hd:], d.hd, w.kT[j0:], d.t, 0, w.s[ra*w.kt:], w.kt)
		}
	}
}

// accumulatePV adds P·V for the tile's keys [j0, j0+nb) to the block's accumulator.
func (w *attnGemm) accumulatePV(j0, nb int) {
	hd := w.d.hd
	for c := 0; ; c++ {
		ra, rb, cols, ok := w.chunk(c, j0, nb)
		if !ok {
			return
		}
		if w.tiles && cols > 0 {
			w.pvTiles(j0, cols)
		} else if cols > 0 {
			Sgemm(false, false, rb-ra, hd, cols, 1, w.s[ra*w.kt:], w.kt, w.vp[j0*w.ld:], w.ld, 1, w.acc[ra*hd:], hd)
		}
	}
}

// attentionForwardGEMM is AttentionForward with the block products on Sgemm. fp32: one pass,
// online softmax (running max m and sum l per row, the accumulator rescaled when m grows).
// BF16 rounds the normalised probabilities, so a first pass finds the log-sum-exp and a
// second accumulates bf16(exp(S − lse))·bf16(V).
func attentionForwardGEMM(d *attnDims, o, lse, q, k, v []float32) {
	attentionGEMM(d, attnModeFor(d), false, o, lse, q, k, v, nil, nil, nil, nil)
}

// attentionBackwardGEMM is AttentionBackward with the block products on Sgemm
// (FlashAttention-2 per block of stacked rows and tile of keys: S and dP by GEMM, then P, dS on
// the Go side, then dV += Pᵀ·dO, dQ += dS·K, dK += dSᵀ·Q by GEMM). dk and dv accumulate in
// place (a group's key rows have a uniform stride); dQ collects in the block's scratch and is
// added to dq once per block. Every sum runs in a fixed order that depends only on the mode
// (so on GOMAXPROCS), never on scheduling.
func attentionBackwardGEMM(d *attnDims, dq, dk, dv, do, q, k, v, o, lse []float32) {
	attentionGEMM(d, attnModeFor(d), true, o, lse, q, k, v, do, dq, dk, dv)
}

// attnCall is one call's arguments, shared by the goroutines of groups mode.
type attnCall struct {
	d               attnDims
	mode            attnMode
	bwd             bool
	o, lse, q, k, v []float32
	do, dq, dk, dv  []float32
	wg              sync.WaitGroup
}

var attnCallPool freelist.List[attnCall]

// attentionGEMM runs the forward (bwd false) or the backward in the given mode.
func attentionGEMM(d *attnDims, mode attnMode, bwd bool, o, lse, q, k, v, do, dq, dk, dv []float32) {
	c := attnCallPool.Get()
	defer attnCallPool.Put(c)
	*c = attnCall{d: *d, mode: mode, bwd: bwd, o: o, lse: lse, q: q, k: k, v: v, do: do, dq: dq, dk: dk, dv: dv}
	defer func() { *c = attnCall{} }()
	if mode != attnSequential {
		attnTeamRun(c, &c.wg, d.b*d.kv, 1)
		return
	}
	w := getAttnGemm(d, attnSequential)
	defer putAttnGemm(w)
	c.runGroups(w, 0, d.b*d.kv)
}

// run is groups mode's work: the groups [lo, hi) on this goroutine with its own scratch.
func (c *attnCall) run(lo, hi int) {
	w := getAttnGemm(&c.d, c.mode)
	defer putAttnGemm(w)
	c.runGroups(w, lo, hi)
}

func (c *attnCall) runGroups(w *attnGemm, lo, hi int) {
	w.q, w.k, w.v, w.o, w.lse, w.do, w.dq = c.q, c.k, c.v, c.o, c.lse, c.do, c.dq
	for it := lo; it < hi; it++ {
		bi, g := it/c.d.kv, it%c.d.kv
		w.setGroup(bi, g, c.bwd)
		if c.bwd {
			w.backwardGroup(c.dk, c.dv)
		} else {
			w.forwardGroup()
		}
	}
}

// forwardGroup computes o and lse of the current group's query heads.
func (w *attnGemm) forwardGroup() {
	d, hd := &w.d, w.d.hd
	for i0 := 0; i0 < d.t; i0 += w.bq {
		i1 := min(i0+w.bq, d.t)
		w.setBlock(i0, i1-i0, phFwdInit)
		jStart := w.firstTile(i0, i1)
		w.pass2 = false
		// BF16's second pass needs the same scores again: keep each tile's (the block's
		// whole row of scores, when it fits in attnKeepScores) rather than recompute it.
		tile := w.rows * w.kt
		keep := d.bf16 && (i1-jStart+w.kt-1)/w.kt*tile <= attnKeepScores
		if keep {
			attnGrow(&w.sKeep, (i1-jStart+w.kt-1)/w.kt*tile)
		}
		for j0 := jStart; j0 < i1; j0 += w.kt {
			nb := min(w.kt, i1-j0)
			w.scores(j0, nb)
			if keep {
				copy(w.sKeep[(j0-jStart)/w.kt*tile:], w.s[:tile])
			}
			w.tilePhase(phFwdTile, j0, nb)
			if !d.bf16 {
				w.accumulatePV(j0, nb)
			}
		}
		for r := range w.rows {
			w.lr[r] = w.m[r] + float32(math.Log(float64(w.l[r])))
		}
		if d.bf16 {
			w.pass2 = true
			for j0 := jStart; j0 < i1; j0 += w.kt {
				nb := min(w.kt, i1-j0)
				if keep {
					copy(w.s[:tile], w.sKeep[(j0-jStart)/w.kt*tile:])
				} else {
					w.scores(j0, nb)
				}
				w.tilePhase(phFwdTile, j0, nb)
				w.accumulatePV(j0, nb)
			}
		}
		w.phase = phFwdOut
		w.team(w.rows, max(1, 2048/hd))
	}
}

// backwardGroup accumulates dq, dk, dv of the current group.
func (w *attnGemm) backwardGroup(dk, dv []float32) {
	d, bi, g := &w.d, w.bi, w.g
	hd, ldk, ldt := d.hd, d.kv*d.hd, w.kt
	for i0 := 0; i0 < d.t; i0 += w.bq {
		i1 := min(i0+w.bq, d.t)
		w.setBlock(i0, i1-i0, phBwdInit)
		for j0 := w.firstTile(i0, i1); j0 < i1; j0 += w.kt {
			nb := min(w.kt, i1-j0)
			if w.tiles { // one chunk: groups mode
				_, _, cols, _ := w.chunk(0, j0, nb)
				w.scoresTiles(w.s, w.q16, w.kW, d.scale, j0, cols)
				w.scoresTiles(w.dp, w.do16, w.vW, 1, j0, cols)
				w.tilePhase(phBwdTile, j0, nb)
				w.packTilePairs(w.pT, w.s)
				w.packTilePairs(w.dsT, w.dp)
				w.backwardTileProducts(dk, dv, j0, cols)
				continue
			}
			kp := w.kp[j0*w.ld:]
			koff := d.kOff(bi, j0, g)
			for c := 0; ; c++ { // S and dP
				ra, rb, cols, ok := w.chunk(c, j0, nb)
				if !ok {
					break
				}
				if cols > 0 {
					Sgemm(false, false, rb-ra, cols, hd, d.scale, w.qs[ra*hd:], hd, w.kT[j0:], d.t, 0, w.s[ra*ldt:], ldt)
					Sgemm(false, false, rb-ra, cols, hd, 1, w.dos[ra*hd:], hd, w.vT[j0:], d.t, 0, w.dp[ra*ldt:], ldt)
				}
			}
			w.tilePhase(phBwdTile, j0, nb)
			for c := 0; ; c++ { // dV += Pᵀ·dO, dQ += dS·K, dK += dSᵀ·Q
				ra, rb, cols, ok := w.chunk(c, j0, nb)
				if !ok {
					break
				}
				if cols > 0 {
					Sgemm(true, false, cols, hd, rb-ra, 1, w.s[ra*ldt:], ldt, w.dos[ra*hd:], hd, 1, dv[koff:], ldk)
					Sgemm(false, false, rb-ra, hd, cols, 1, w.dp[ra*ldt:], ldt, kp, w.ld, 1, w.acc[ra*hd:], hd)
					Sgemm(true, false, cols, hd, rb-ra, 1, w.dp[ra*ldt:], ldt, w.qs[ra*hd:], hd, 1, dk[koff:], ldk)
				}
			}
		}
		w.phase = phBwdOut
		w.team(w.rows, max(1, 2048/hd))
	}
}

// run performs the current phase on rows [lo, hi) (keys for phPackKV).
func (w *attnGemm) run(lo, hi int) {
	d := &w.d
	hd := d.hd
	switch w.phase {
	case phPackKV:
		for j := lo; j < hi; j++ {
			off := d.kOff(w.bi, j, w.g)
			kr, vr := w.k[off:off+hd], w.v[off:off+hd]
			if d.bf16 {
				kr, vr = w.kbuf[j*hd:(j+1)*hd], w.vbuf[j*hd:(j+1)*hd]
				RoundBF16(kr, w.k[off:off+hd])
				RoundBF16(vr, w.v[off:off+hd])
			}
			for c := range hd {
				w.kT[c*d.t+j], w.vT[c*d.t+j] = kr[c], vr[c]
			}
		}
	case phFwdInit:
		for r := lo; r < hi; r++ {
			_, _, off := w.rowQuery(r)
			if w.tiles {
				pairRow(w.q16[r*hd/2:], w.q[off:off+hd])
			} else {
				w.packQ(r, off)
			}
			w.m[r], w.l[r] = float32(math.Inf(-1)), 0
			clear(w.acc[r*hd : (r+1)*hd])
		}
	case phFwdTile:
		for r := lo; r < hi; r++ {
			w.fwdRow(r)
		}
	case phFwdOut:
		for r := lo; r < hi; r++ {
			i, hh, off := w.rowQuery(r)
			w.lse[(w.bi*d.h+hh)*d.t+i] = w.lr[r]
			dst, src := w.o[off:off+hd], w.acc[r*hd:(r+1)*hd]
			if d.bf16 {
				copy(dst, src)
				continue
			}
			inv := 1 / w.l[r]
			for c, x := range src {
				dst[c] = x * inv
			}
		}
	case phBwdInit:
		for r := lo; r < hi; r++ {
			i, hh, off := w.rowQuery(r)
			dor := w.do[off : off+hd]
			switch {
			case w.tiles:
				pairRow(w.q16[r*hd/2:], w.q[off:off+hd])
				pairRow(w.do16[r*hd/2:], dor)
			case d.bf16:
				w.packQ(r, off)
				RoundBF16(w.dos[r*hd:(r+1)*hd], dor)
			default:
				w.packQ(r, off)
				copy(w.dos[r*hd:(r+1)*hd], dor)
			}
			var s float32
			for c, y := range w.o[off : off+hd] {
				s += y * dor[c]
			}
			w.dd[r] = s
			w.lr[r] = w.lse[(w.bi*d.h+hh)*d.t+i]
			clear(w.acc[r*hd : (r+1)*hd])
		}
	case phBwdTile:
		for r := lo; r < hi; r++ {
			w.bwdRow(r)
		}
	case phBwdOut:
		for r := lo; r < hi; r++ {
			_, _, off := w.rowQuery(r)
			dst := w.dq[off : off+hd]
			for c, x := range w.acc[r*hd : (r+1)*hd] {
				dst[c] += x
			}
		}
	}
}

// packQ copies q's row at off into block row r (rounded for BF16).
func (w *attnGemm) packQ(r, off int) {
	hd := w.d.hd
	if w.d.bf16 {
		RoundBF16(w.qs[r*hd:(r+1)*hd], w.q[off:off+hd])
	} else {
		copy(w.qs[r*hd:(r+1)*hd], w.q[off:off+hd])
	}
}

// fwdRow turns row r of the score tile into probabilities. Pass 1 (fp32, and BF16's first):
// online softmax, exp(S − running max), folding the tile into the row's max and sum and, for
// fp32, rescaling its accumulator. BF16's pass 2: bf16(exp(S − lse)).
func (w *attnGemm) fwdRow(r int) {
	i, _, _ := w.rowQuery(r)
	row := w.s[r*w.kt : r*w.kt+w.nb]
	jlo, jhi := w.keyRange(i)
	if jlo >= jhi {
		clear(row)
		if w.pass2 && w.tiles {
			pairRow(w.p16[r*w.kt/2:], row)
		}
		return
	}
	clear(row[:jlo])
	clear(row[jhi:])
	vis := row[jlo:jhi]
	if w.pass2 {
		expSubInPlace(vis, w.lr[r])
		if w.tiles {
			pairRow(w.p16[r*w.kt/2:], row)
		} else {
			RoundBF16(vis, vis)
		}
		return
	}
	mx := max(w.m[r], sliceMax(vis))
	alpha := exp32(w.m[r] - mx) // 0 on the first visible tile (m = −Inf)
	// BF16's pass 1 needs only the sum: pass 2 makes the probabilities from the scores.
	if w.d.bf16 {
		w.l[r] = w.l[r]*alpha + sumExpSubRow(vis, mx)
	} else {
		w.l[r] = w.l[r]*alpha + expSubInPlace(vis, mx)
	}
	w.m[r] = mx
	if !w.d.bf16 && alpha != 1 {
		acc := w.acc[r*w.d.hd : (r+1)*w.d.hd]
		for c := range acc {
			acc[c] *= alpha
		}
	}
}

// bwdRow turns row r of the tiles S and dP into P (rounded for BF16: dV's operand) and
// dS = scale·P∘(dP − D) from the unrounded P (rounded for BF16: dQ's and dK's operand);
// invisible entries become 0 in both.
func (w *attnGemm) bwdRow(r int) {
	i, _, _ := w.rowQuery(r)
	srow := w.s[r*w.kt : r*w.kt+w.nb]
	drow := w.dp[r*w.kt : r*w.kt+w.nb]
	jlo, jhi := w.keyRange(i)
	if jlo >= jhi {
		clear(srow)
		clear(drow)
		if w.tiles {
			pairRow(w.p16[r*w.kt/2:], drow)
		}
		return
	}
	clear(srow[:jlo])
	clear(srow[jhi:])
	clear(drow[:jlo])
	clear(drow[jhi:])
	ps, ds := srow[jlo:jhi], drow[jlo:jhi]
	ds = ds[:len(ps)]
	expSubInPlace(ps, w.lr[r])
	dd, scale := w.dd[r], w.d.scale
	for j, p := range ps {
		ds[j] = p * (ds[j] - dd) * scale
	}
	switch {
	case w.tiles: // rounded as they are packed: dS here, P by packTilePairs
		pairRow(w.p16[r*w.kt/2:], drow)
	case w.d.bf16:
		RoundBF16(ps, ps)
		RoundBF16(ds, ds)
	}
}

// attnRunner is a pooled state whose current phase runs over a range of rows.
type attnRunner interface{ run(lo, hi int) }

type attnTask struct {
	job    attnRunner
	lo, hi int
	wg     *sync.WaitGroup
}

// attnTeam is a set of goroutines kept between calls for the Go-side phases of the GEMM path:
// handing a phase's chunks to them costs a channel send, and allocates nothing, where starting
// goroutines (Parallel) would allocate a few objects per phase, hundreds of times per call.
// It grows to GOMAXPROCS−1 workers (the caller runs the first chunk); idle ones block on the
// channel and cost nothing.
var attnTeam struct {
	mu      sync.Mutex
	workers int
	tasks   chan attnTask
}

func attnTeamWorker(tasks chan attnTask) {
	for t := range tasks {
		t.job.run(t.lo, t.hi)
		t.wg.Done()
	}
}

// attnTeamRun calls job.run over [0, n) in up to GOMAXPROCS contiguous chunks of at least grain
// items, and returns when all are done. wg must belong to the caller alone.
func attnTeamRun(job attnRunner, wg *sync.WaitGroup, n, grain int) {
	workers := min(runtime.GOMAXPROCS(0), (n+grain-1)/grain)
	if workers <= 1 {
		job.run(0, n)
		return
	}
	attnTeam.mu.Lock()
	if attnTeam.tasks == nil {
		attnTeam.tasks = make(chan attnTask, 64)
	}
	for attnTeam.workers < workers-1 {
		attnTeam.workers++
		go attnTeamWorker(attnTeam.tasks)
	}
	tasks := attnTeam.tasks
	attnTeam.mu.Unlock()
	chunk := (n + workers - 1) / workers
	for lo := chunk; lo < n; lo += chunk {
		wg.Add(1)
		tasks <- attnTask{job: job, lo: lo, hi: min(lo+chunk, n), wg: wg}
	}
	job.run(0, min(chunk, n))
	wg.Wait()
}
