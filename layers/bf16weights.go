package layers

import (
	"fmt"
	"runtime/debug"
	"slices"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/kernels"
)

// UseBF16Weights prepares the model for bfloat16 inference: it turns on mixed precision
// (m.BF16) and keeps a bfloat16 copy (F32ToBF16, round to nearest even) of every dense
// projection weight and of lm_head, which forwards without a tape then read instead of the fp32
// weights — half the bytes per decoded token. The numbers are the mixed-precision rule's
// (operands rounded to bfloat16, fp32 accumulation), the ones a BF16 training forward gives.
// The copies are a snapshot: call it again after the weights change. Forwards with a tape, and
// the experts of sparse layers, still use the fp32 weights. Linears that carry a LowRankAdapter
// (LoRA attached before this call) get their copies laid out with room for it (layoutBF16):
// their bf16 forwards then fold the adapter into the base's products.
func (m *Model) UseBF16Weights() {
	m.BF16 = true
	if m.fp32Dropped() {
		return // the bits are the weights already
	}
	for _, b := range m.Blocks {
		b.qkvBF16 = layoutBF16(&b.Attn.Q, &b.Attn.K, &b.Attn.V)
		layoutBF16(&b.Attn.O)
		if b.MLP != nil {
			b.gateUpBF16 = layoutBF16(&b.MLP.Gate, &b.MLP.Up)
			layoutBF16(&b.MLP.Down)
		}
	}
	m.lmHeadBF16 = toBF16(m.LMHead.Data)
}

// DropFP32Weights frees the fp32 weights of the dense projections (q, k, v, o, gate, up, down)
// once UseBF16Weights has made their bfloat16 copies, so that a frozen base under LoRA is held
// in bf16 only; so are the embedding and lm_head when they are frozen too. Every projection must
// be frozen (RequiresGrad false, as lora.Attach leaves them). Afterwards forwards, with or
// without a tape, multiply on the bits under the bf16 rule (the numbers of a BF16 forward on the
// fp32 weights, for weights that are bfloat16 values, as a bf16 checkpoint's are), the
// embedding looks its rows up in bits, and backward gives the inputs' gradients; the dropped
// weights' Data are nil, so Save, LoadWeights, merging an adapter and full training need the
// model loaded again. MoE experts keep fp32.
func (m *Model) DropFP32Weights() error {
	var ls []*Linear
	for _, b := range m.Blocks {
		ls = append(ls, &b.Attn.Q, &b.Attn.K, &b.Attn.V, &b.Attn.O)
		if b.MLP != nil {
			ls = append(ls, &b.MLP.Gate, &b.MLP.Up, &b.MLP.Down)
		}
	}
	for _, l := range ls {
		switch {
		case l.WBF16 == nil:
			return fmt.Errorf("layers: %s has no bfloat16 copy; call UseBF16Weights before DropFP32Weights", l.W.Name)
		case l.W.RequiresGrad:
			return fmt.Errorf("layers: %s is trainable; only a frozen weight can be held in bf16 only (lora.Attach freezes the base)", l.W.Name)
		}
	}
	for _, l := range ls {
		l.W.Data = nil
	}
	if m.lmHeadBF16 == nil {
		return nil
	}
	if !m.Embed.RequiresGrad && m.Embed.Data != nil {
		if m.LMHead == m.Embed {
			m.embedBF16 = m.lmHeadBF16
		} else {
			m.embedBF16 = toBF16(m.Embed.Data)
		}
		m.Embed.Data = nil
	}
	if !m.LMHead.RequiresGrad {
		m.LMHead.Data = nil
	}
	// The fp32 weights are most of the heap (2.4 GB for Qwen3-0.6B): collect them now, so
	// that the garbage collector's next goal is set by the bf16 base, not by twice the fp32
	// model, and give their pages back.
	debug.FreeOSMemory()
	return nil
}

// embedding is the lookup of the token rows: from the bfloat16 bits when the fp32 table was
// dropped (DropFP32Weights; frozen, so nothing is recorded).
func (m *Model) embedding(tp *autograd.Tape, ids []int32) *autograd.Tensor {
	if m.Embed.Data != nil || m.embedBF16 == nil {
		return autograd.Embedding(tp, m.Embed, ids)
	}
	d := m.Embed.Shape[1]
	x := tp.NewTensor(len(ids), d)
	for i, id := range ids {
		kernels.BF16ToF32(x.Data[i*d:(i+1)*d], m.embedBF16[int(id)*d:(int(id)+1)*d])
	}
	return x
}

// fp32Dropped reports whether DropFP32Weights has run.
func (m *Model) fp32Dropped() bool {
	return len(m.Blocks) > 0 && m.Blocks[0].Attn.Q.W.Data == nil
}

// layoutBF16 makes the bfloat16 copies of linears that read the same input. When some carry a
// LowRankAdapter, the copies go into one autograd.FrozenGroup with room for the adapters'
// ranks, which forwards then run as one op (Linear.fold), and it returns nil; otherwise into
// one buffer (fuseBF16, for several), which it returns.
func layoutBF16(ls ...*Linear) []uint16 {
	ranks, folded := make([]int, len(ls)), false
	for i, l := range ls {
		l.fold, l.member = nil, 0
		if a, ok := l.Adapter.(LowRankAdapter); ok {
			ranks[i], folded = a.Rank(), true
		}
	}
	if !folded {
		if len(ls) == 1 {
			ls[0].WBF16 = toBF16(ls[0].W.Data)
			return nil
		}
		return fuseBF16(ls...)
	}
	outs := make([]int, len(ls))
	for i, l := range ls {
		outs[i] = l.W.Shape[0]
	}
	f := &fold{g: autograd.NewFrozenGroup(ls[0].W.Shape[1], outs, ranks), ls: ls}
	for i, l := range ls {
		f.g.SetWeight(i, l.W.Data)
		l.WBF16, l.fold, l.member = f.g.Weight(i), f, i
	}
	return nil
}

// fuseBF16 makes the bfloat16 copies of linears that read the same input in one buffer, each
// one's rows after the previous one's, and returns it: one product then serves them all (see
// fusedLinear).
func fuseBF16(ls ...*Linear) []uint16 {
	n := 0
	for _, l := range ls {
		n += len(l.W.Data)
	}
	buf, off := make([]uint16, n), 0
	for _, l := range ls {
		w := buf[off : off+len(l.W.Data) : off+len(l.W.Data)]
		kernels.F32ToBF16(w, l.W.Data)
		l.WBF16 = w
		off += len(w)
	}
	return buf
}

// fusedLinear runs linears that read the same x as one product on their fused bfloat16 copy
// wb (fuseBF16) and returns their outputs, or nil where that does not apply: a recording tape, bf16 off,
// no fused copy, or a linear with an adapter. Each output equals that linear's own tape-less
// forward on its copy (up to the summation order of a wider GEMM).
func fusedLinear(tp *autograd.Tape, x *autograd.Tensor, wb []uint16, bf16 bool, ls ...*Linear) []*autograd.Tensor {
	if tp.Records() || !bf16 || wb == nil {
		return nil
	}
	for _, l := range ls {
		if l.Adapter != nil {
			return nil
		}
	}
	n, in := x.Rows()
	o := len(wb) / in
	y := tp.Alloc(n * o)
	productBF16(y, x.Data, wb, n, o, in)
	outs, off := make([]*autograd.Tensor, len(ls)), 0
	for i, l := range ls {
		od := l.W.Shape[0]
		t := tp.NewTensor(append(slices.Clone(x.Shape[:len(x.Shape)-1]), od)...) // written whole below
		for r := range n {
			copy(t.Data[r*od:(r+1)*od], y[r*o+off:r*o+off+od])
		}
		outs[i], off = t, off+od
	}
	return outs
}

func toBF16(w []float32) []uint16 {
	b := make([]uint16, len(w))
	kernels.F32ToBF16(b, w)
	return b
}

// linear is autograd.Linear (y = x·wᵀ), on wb, the bfloat16 copy of w, when there is one, bf16
// is on and no tape records: GemvBF16Batch for up to GemvBatchMaxRows rows (decoding), GemmBF16
// for more (prefill).
func linear(tp *autograd.Tape, x, w *autograd.Tensor, wb []uint16, bf16 bool) *autograd.Tensor {
	bitsOnly := wb != nil && w.Data == nil // DropFP32Weights: the bits are the weight
	switch {
	case bitsOnly && tp.Records():
		return autograd.LinearBF16Bits(tp, x, wb, w.Shape[0])
	case !bitsOnly && (tp.Records() || !bf16 || wb == nil):
		return autograd.Linear(tp, x, w, bf16)
	}
	n, in := x.Rows()
	if len(w.Shape) != 2 || w.Shape[1] != in || len(wb) != w.Shape[0]*in {
		panic(fmt.Sprintf("layers.linear: x %v, weight %v, bf16 copy of %d", x.Shape, w.Shape, len(wb)))
	}
	o := w.Shape[0]
	y := tp.NewTensor(append(slices.Clone(x.Shape[:len(x.Shape)-1]), o)...)
	productBF16(y.Data, x.Data, wb, n, o, in)
	return y
}

// productBF16 sets y [n,o] = x [n,in] · wbᵀ under the bf16 rule, wb the bfloat16 copy of a
// [o,in] weight: the batched GEMV for a few rows (decoding: a row per sequence, or the tokens
// to verify), else x rounded once and a GEMM (prefill).
func productBF16(y, x []float32, wb []uint16, n, o, in int) {
	if n <= kernels.GemvBatchMaxRows {
		kernels.GemvBF16Batch(y, o, wb, x, in, n, o, in)
		return
	}
	xb := make([]uint16, len(x))
	kernels.F32ToBF16(xb, x)
	kernels.GemmBF16(false, true, n, o, in, 1, xb, in, wb, in, 0, y, o)
}
