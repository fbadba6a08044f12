package moe

import (
	"fmt"
	"sync"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/internal/freelist"
	"github.com/gwen-ml/gwen/kernels"
)

// MixExperts is the routed expert op: with the routing of logits [N, E] (softmax, top-K,
// renormalised when norm),
//
//	y[n] = Σ_j w[n,j] · down_e(silu(gate_e(x[n])) · up_e(x[n])),  e = experts[n,j]
//
// for x [N, D]. Token-slots are grouped by expert and every expert runs one GEMM per
// projection over its rows, in forward and in backward; the gradient reaches x, every expert
// weight, and the logits through the mixing weights. bf16 rounds the expert GEMMs' inputs.
// It saves the gathered inputs [M, D] and the expert activations gate, up, h [M, I].
func MixExperts(tp *autograd.Tape, x, logits *autograd.Tensor, experts []Expert, k int, norm, bf16 bool) (*autograd.Tensor, *Routing) {
	n, d := x.Rows()
	E := len(experts)
	if E == 0 || len(logits.Data) != n*E {
		panic(fmt.Sprintf("moe.MixExperts: x %v, logits %v, %d experts", x.Shape, logits.Shape, E))
	}
	I := experts[0].Gate.Shape[0]
	for e, ex := range experts {
		if !shapeIs(ex.Gate, I, d) || !shapeIs(ex.Up, I, d) || !shapeIs(ex.Down, d, I) {
			panic(fmt.Sprintf("moe.MixExperts: x %v, expert %d gate %v up %v down %v", x.Shape, e, ex.Gate.Shape, ex.Up.Shape, ex.Down.Shape))
		}
	}
	r := route(logits.Data, n, E, k, norm)
	m := n * k
	inputs := []*autograd.Tensor{x, logits}
	for _, ex := range experts {
		inputs = append(inputs, ex.Gate, ex.Up, ex.Down)
	}
	rec := tp.Recording(inputs...)
	out := tp.NewTensor(x.Shape...) // this step's memory; written whole below
	clear(out.Data)
	out.RequiresGrad = rec

	// Work buffers come from pools and go back when backward is done (or now, without a
	// tape): the steady-state step allocates none of them. Every one is fully overwritten.
	// In mixed precision an activation that several products read is converted to bfloat16
	// once: x's gathered rows (gate, up, and their weight gradients) and h (down and its).
	bxg, bg, bu, bh, bo := getBuf(m*d), getBuf(m*I), getBuf(m*I), getBuf(m*I), getBuf(m*d)
	xg := operand{f: *bxg}   // [M, D] x's rows in grouped order
	g, u, h := *bg, *bu, *bh // [M, I] gate, up, silu(gate)·up
	o := *bo                 // [M, D] expert outputs, unweighted
	gathered(xg.f, x.Data, r.rowToken, d)
	var bits []*[]uint16 // xg's and h's bits, kept for backward
	hb := operand{f: h}
	if bf16 {
		bx, bhb := getBits(m*d), getBits(m*I)
		bits = []*[]uint16{bx, bhb}
		xg.b, hb.b = *bx, *bhb
		kernels.F32ToBF16(xg.b, xg.f)
		putBuf(bxg) // the bits are all that is read from here on
		bxg, xg.f = nil, nil
	}
	for e, ex := range experts {
		lo, c := r.offsets[e], r.Counts[e]
		if c == 0 {
			continue
		}
		xg.times(false, true, c, I, d, lo*d, ex.Gate.Data, d, 0, g[lo*I:], I)
		xg.times(false, true, c, I, d, lo*d, ex.Up.Data, d, 0, u[lo*I:], I)
	}
	kernels.SwiGLUForward(h, g, u, m*I)
	if bf16 {
		kernels.F32ToBF16(hb.b, h)
	}
	for e, ex := range experts {
		lo, c := r.offsets[e], r.Counts[e]
		if c == 0 {
			continue
		}
		hb.times(false, true, c, d, I, lo*I, ex.Down.Data, I, 0, o[lo*d:], d)
	}
	kernels.Parallel(n, 64, func(lo, hi int) { // y[n] = Σ_j w[n,j] · o[row of slot (n,j)]
		for t := lo; t < hi; t++ {
			y := out.Data[t*d : (t+1)*d]
			for j := 0; j < k; j++ {
				w, src := r.Weights[t*k+j], o[int(r.slotRow[t*k+j])*d:][:d]
				for i, v := range src {
					y[i] += w * v
				}
			}
		}
	})
	putBuf(bo)
	release := func() {
		if bxg != nil {
			putBuf(bxg)
		}
		putBuf(bg, bu, bh)
		putBits(bits...)
	}
	if !rec {
		release()
		return out, r
	}
	tp.Record(func() {
		if dy := out.Grad(); dy != nil {
			mixExpertsBackward(r, dy, x, logits, experts, xg, g, u, hb, d, I)
		}
		release()
	})
	return out, r
}

// operand is an activation matrix that the experts' products read: fp32 data f, and in mixed
// precision its bfloat16 bits b, converted once and read by every bf16 product instead of f.
type operand struct {
	f []float32
	b []uint16
}

// times computes C = op(A)·op(W) + beta·C for A = this operand from element off (stride lda)
// and a weight W in fp32 (rounded per product in mixed precision).
func (a operand) times(transA, transB bool, m, n, k, off int, w []float32, ldw int, beta float32, c []float32, ldc int) {
	if a.b != nil {
		kernels.GemmBF16F32B(transA, transB, m, n, k, 1, a.b[off:], lda(transA, m, k), w, ldw, beta, c, ldc)
		return
	}
	kernels.Sgemm(transA, transB, m, n, k, 1, a.f[off:], lda(transA, m, k), w, ldw, beta, c, ldc)
}

// timesAct is times with B another operand from element offB (stride ldb).
func (a operand) timesAct(transA bool, m, n, k, off int, b operand, offB, ldb int, beta float32, c []float32, ldc int) {
	if a.b != nil {
		kernels.GemmBF16(transA, false, m, n, k, 1, a.b[off:], lda(transA, m, k), b.b[offB:], ldb, beta, c, ldc)
		return
	}
	kernels.Sgemm(transA, false, m, n, k, 1, a.f[off:], lda(transA, m, k), b.f[offB:], ldb, beta, c, ldc)
}

// lda is the row stride of a packed op(A) of m×k: k, or m when transposed.
func lda(trans bool, m, k int) int {
	if trans {
		return m
	}
	return k
}

// toBits converts f into the bits of a pooled buffer (appended to held) when bf16.
func toBits(f []float32, bf16 bool, held *[]*[]uint16) operand {
	op := operand{f: f}
	if bf16 {
		p := getBits(len(f))
		*held = append(*held, p)
		op.b = *p
		kernels.F32ToBF16(op.b, f)
	}
	return op
}

// mixExpertsBackward propagates dy [N, D] through MixExperts.
func mixExpertsBackward(r *Routing, dy []float32, x, logits *autograd.Tensor, experts []Expert,
	xg operand, g, u []float32, hb operand, d, I int) {
	n, k := r.N, r.K
	m := n * k
	h := hb.f
	bf16 := hb.b != nil
	bdyg, bdhu, bdg, bdu, bdw := getBuf(m*d), getBuf(m*I), getBuf(m*I), getBuf(m*I), getBuf(m)
	defer putBuf(bdyg, bdhu, bdg, bdu, bdw)
	var held []*[]uint16
	defer func() { putBits(held...) }()
	dyg := *bdyg // [M, D] dy in grouped order, unweighted; later dx in grouped order
	dhu := *bdhu // [M, I] dy·down, before the mixing weight; later dh
	dg, du := *bdg, *bdu
	gathered(dyg, dy, r.rowToken, d)
	dygOp := toBits(dyg, bf16, &held)
	for e, ex := range experts {
		lo, c := r.offsets[e], r.Counts[e]
		if c > 0 {
			dygOp.times(false, false, c, I, d, lo*d, ex.Down.Data, I, 0, dhu[lo*I:], I)
		}
	}
	// dL/dw of a slot is <dy[n], o_row> = <dy[n]·down, h_row>. Then scale by w: dh = w·dhu
	// (in place) and dy_row = w·dy[n] (for down's gradient).
	dw := *bdw // [M] by slot n·K+j; every element written below
	kernels.Parallel(m, 32, func(lo, hi int) {
		for row := lo; row < hi; row++ {
			slot := r.rowSlot[row]
			w := r.Weights[slot]
			hr, dr := h[row*I:][:I], dhu[row*I:][:I]
			var s float32
			for i, v := range dr {
				s += v * hr[i]
				dr[i] = w * v
			}
			dw[slot] = s
			for i := range dyg[row*d : (row+1)*d] {
				dyg[row*d+i] *= w
			}
		}
	})
	kernels.SwiGLUBackwardWrite(dg, du, dhu, g, u, m*I)
	if bf16 { // the weighted dy, in the bits buffer the unweighted one used
		kernels.F32ToBF16(dygOp.b, dyg)
	}
	dgOp, duOp := toBits(dg, bf16, &held), toBits(du, bf16, &held)
	for e, ex := range experts {
		lo, c := r.offsets[e], r.Counts[e]
		if c == 0 {
			continue
		}
		if ex.Down.RequiresGrad { // ddown[D, I] += (w·dy)ᵀ · h
			gw, beta := ex.Down.GradForWrite()
			dygOp.timesAct(true, d, I, c, lo*d, hb, lo*I, I, beta, gw, I)
		}
		if ex.Gate.RequiresGrad { // dgate[I, D] += dgᵀ · x
			gw, beta := ex.Gate.GradForWrite()
			dgOp.timesAct(true, I, d, c, lo*I, xg, lo*d, d, beta, gw, d)
		}
		if ex.Up.RequiresGrad {
			gw, beta := ex.Up.GradForWrite()
			duOp.timesAct(true, I, d, c, lo*I, xg, lo*d, d, beta, gw, d)
		}
		if x.RequiresGrad { // dx rows = dg·gate + du·up, over dyg's memory
			dgOp.times(false, false, c, d, I, lo*I, ex.Gate.Data, d, 0, dyg[lo*d:], d)
			duOp.times(false, false, c, d, I, lo*I, ex.Up.Data, d, 1, dyg[lo*d:], d)
		}
	}
	if x.RequiresGrad {
		dx := x.GradBuf()
		kernels.Parallel(n, 64, func(lo, hi int) {
			for t := lo; t < hi; t++ {
				dst := dx[t*d : (t+1)*d]
				for j := 0; j < k; j++ {
					src := dyg[int(r.slotRow[t*k+j])*d:][:d]
					for i, v := range src {
						dst[i] += v
					}
				}
			}
		})
	}
	if logits.RequiresGrad {
		routerBackward(logits.GradBuf(), r, dw)
	}
}

// routerBackward accumulates into dl [N, E] the gradient of the logits from the gradient of
// the mixing weights dw [N, K]. Renormalised, w = softmax over the chosen logits only, so
// dl_e = w_j·(dw_j − Σ w·dw) on the chosen and 0 elsewhere; otherwise w_j = p_e of the full
// softmax and dl_i = p_i·([i chosen]·dw_i − Σ_j w_j·dw_j).
func routerBackward(dl []float32, r *Routing, dw []float32) {
	E, k := r.E, r.K
	kernels.Parallel(r.N, 256, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			w, gw, ex := r.Weights[t*k:(t+1)*k], dw[t*k:(t+1)*k], r.Experts[t*k:(t+1)*k]
			var dot float64
			for j := range w {
				dot += float64(w[j]) * float64(gw[j])
			}
			row := dl[t*E : (t+1)*E]
			if r.norm {
				for j, e := range ex {
					row[e] += w[j] * (gw[j] - float32(dot))
				}
				continue
			}
			p := r.Probs[t*E : (t+1)*E]
			for i, pi := range p {
				row[i] -= pi * float32(dot)
			}
			for j, e := range ex {
				row[e] += p[e] * gw[j]
			}
		}
	})
}

// gathered writes dst[row] = src[idx[row]] for rows of width d.
func gathered(dst, src []float32, idx []int32, d int) {
	kernels.Parallel(len(idx), 256, func(lo, hi int) {
		for row := lo; row < hi; row++ {
			copy(dst[row*d:(row+1)*d], src[int(idx[row])*d:][:d])
		}
	})
}

func shapeIs(t *autograd.Tensor, rows, cols int) bool {
	return len(t.Shape) == 2 && t.Shape[0] == rows && t.Shape[1] == cols
}

// bufPool holds the op's work buffers between steps. get takes the smallest buffer that fits,
// so every size keeps its own buffer from step to step. (A sync.Pool drops its buffers at
// every garbage collection, and hands any size to any request: the steady-state step then
// allocated, and page-faulted on, hundreds of MB.)
type bufPool[T any] struct {
	mu   sync.Mutex
	bufs []*[]T
}

var (
	f32Bufs bufPool[float32]
	b16Bufs bufPool[uint16] // bfloat16 bits
)

// get returns a buffer of length n (contents undefined): the smallest free one that fits,
// else the largest free one grown, else a new one.
func (bp *bufPool[T]) get(n int) *[]T {
	bp.mu.Lock()
	pick, _ := freelist.BestFit(len(bp.bufs), n, func(i int) int { return cap(*bp.bufs[i]) })
	var p *[]T
	if pick >= 0 {
		p = bp.bufs[pick]
		last := len(bp.bufs) - 1
		bp.bufs[pick] = bp.bufs[last]
		bp.bufs[last] = nil
		bp.bufs = bp.bufs[:last]
	} else {
		p = new([]T)
	}
	bp.mu.Unlock()
	if cap(*p) < n {
		*p = make([]T, n)
	}
	*p = (*p)[:n]
	return p
}

func (bp *bufPool[T]) put(ps ...*[]T) {
	bp.mu.Lock()
	bp.bufs = append(bp.bufs, ps...)
	bp.mu.Unlock()
}

// getBuf and putBuf are f32Bufs' get and put.
func getBuf(n int) *[]float32 { return f32Bufs.get(n) }
func putBuf(ps ...*[]float32) { f32Bufs.put(ps...) }
func getBits(n int) *[]uint16 { return b16Bufs.get(n) }
func putBits(ps ...*[]uint16) { b16Bufs.put(ps...) }
