package layers

import (
	"fmt"
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
// the experts of sparse layers, still use the fp32 weights.
func (m *Model) UseBF16Weights() {
	m.BF16 = true
	for _, b := range m.Blocks {
		ls := []*Linear{&b.Attn.Q, &b.Attn.K, &b.Attn.V, &b.Attn.O}
		if b.MLP != nil {
			ls = append(ls, &b.MLP.Gate, &b.MLP.Up, &b.MLP.Down)
		}
		for _, l := range ls {
			l.WBF16 = toBF16(l.W.Data)
		}
	}
	m.lmHeadBF16 = toBF16(m.LMHead.Data)
}

func toBF16(w []float32) []uint16 {
	b := make([]uint16, len(w))
	kernels.F32ToBF16(b, w)
	return b
}

// linear is autograd.Linear (y = x·wᵀ), on wb, the bfloat16 copy of w, when there is one, bf16
// is on and there is no tape: GemvBF16Batch for up to GemvBatchMaxRows rows (decoding), GemmBF16
// for more (prefill).
func linear(tp *autograd.Tape, x, w *autograd.Tensor, wb []uint16, bf16 bool) *autograd.Tensor {
	if tp != nil || !bf16 || wb == nil {
		return autograd.Linear(tp, x, w, bf16)
	}
	n, in := x.Rows()
	if len(w.Shape) != 2 || w.Shape[1] != in || len(wb) != len(w.Data) {
		panic(fmt.Sprintf("layers.linear: x %v, weight %v, bf16 copy of %d", x.Shape, w.Shape, len(wb)))
	}
	o := w.Shape[0]
	y := autograd.Zeros(append(slices.Clone(x.Shape[:len(x.Shape)-1]), o)...)
	if n <= kernels.GemvBatchMaxRows { // decoding: a row per sequence, or the tokens to verify
		kernels.GemvBF16Batch(y.Data, o, wb, x.Data, in, n, o, in)
		return y
	}
	xb := make([]uint16, len(x.Data))
	kernels.F32ToBF16(xb, x.Data)
	kernels.GemmBF16(false, true, n, o, in, 1, xb, in, wb, in, 0, y.Data, o)
	return y
}
