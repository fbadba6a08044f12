package kernels

// AttnOpts configures causal grouped-query attention.
type AttnOpts struct {
	Scale    float32 // usually 1/sqrt(hd)
	DocStart []int32 // nil, or [B*T]: per token, the position (within its sequence) of its document's first token; token t attends to s iff DocStart[t] <= s <= t
	BF16     bool    // round every product's operands to bfloat16 (fp32 accumulation): q, k, v and the probabilities P, and in backward dO and scale·dS too
}

// attnDims carries one call's sizes and options through the block loops.
type attnDims struct {
	b, t, h, kv, hd, rep int
	scale                float32
	doc                  []int32
	bf16                 bool
}

func (d *attnDims) qOff(bi, i, hh int) int { return ((bi*d.t+i)*d.h + hh) * d.hd }
func (d *attnDims) kOff(bi, j, g int) int  { return ((bi*d.t+j)*d.kv + g) * d.hd }

// firstKey is the first key query i of sequence bi may attend to.
func (d *attnDims) firstKey(bi, i int) int {
	if d.doc == nil {
		return 0
	}
	return int(d.doc[bi*d.t+i])
}

// minFirstKey is the smallest first key over the query rows [i0, i1) of sequence bi.
func (d *attnDims) minFirstKey(bi, i0, i1 int) int {
	lo := d.firstKey(bi, i0)
	for i := i0 + 1; i < i1 && lo > 0; i++ {
		lo = min(lo, d.firstKey(bi, i))
	}
	return lo
}

func newAttnDims(b, t, h, kv, hd int, opt AttnOpts) attnDims {
	return attnDims{b: b, t: t, h: h, kv: kv, hd: hd, rep: h / kv, scale: opt.Scale, doc: opt.DocStart, bf16: opt.BF16}
}

// AttentionForward computes causal GQA attention: o [b,t,h,hd] from q [b,t,h,hd] and k, v
// [b,t,kv,hd]; query head j reads kv head j/(h/kv). It also writes the natural log-sum-exp
// of each scaled score row, lse [b,h,t], for the backward.
//
// With OpenBLAS loaded it runs attentionForwardGEMM (block products on Sgemm, flash-style
// online softmax between them); without, the pure-Go flash kernel attentionForwardFlash.
func AttentionForward(o, lse, q, k, v []float32, b, t, h, kv, hd int, opt AttnOpts) {
	checkAttention("AttentionForward", len(o), len(lse), len(q), len(k), len(v), b, t, h, kv, hd, opt)
	d := newAttnDims(b, t, h, kv, hd, opt)
	if blasLoaded() {
		attentionForwardGEMM(&d, o, lse, q, k, v)
		return
	}
	attentionForwardFlash(d, o, lse, q, k, v)
}

// AttentionBackward accumulates dq, dk, dv from do, given the forward's inputs, its output o
// and lse (FlashAttention-2: D = rowsum(dO∘O), P recomputed from lse tile by tile,
// dV += Pᵀ·dO, dS = P∘(dO·Vᵀ − D), dQ += scale·dS·K, dK += scale·dSᵀ·Q). With opt.BF16 every
// product's operands are rounded: q, k, v and P as in the forward, dO, and scale·dS (D is
// summed from the fp32 dO). Paths as AttentionForward.
func AttentionBackward(dq, dk, dv, do, q, k, v, o, lse []float32, b, t, h, kv, hd int, opt AttnOpts) {
	checkAttention("AttentionBackward", len(o), len(lse), len(q), len(k), len(v), b, t, h, kv, hd, opt)
	checkAttentionGrads("AttentionBackward", len(dq), len(dk), len(dv), len(do), b, t, h, kv, hd)
	d := newAttnDims(b, t, h, kv, hd, opt)
	if blasLoaded() {
		attentionBackwardGEMM(&d, dq, dk, dv, do, q, k, v, o, lse)
		return
	}
	attentionBackwardFlash(d, dq, dk, dv, do, q, k, v, o, lse)
}
