package autograd

import (
	"fmt"

	"github.com/gwen-ml/gwen/internal/freelist"
	"github.com/gwen-ml/gwen/kernels"
)

// LinearCrossEntropy is Linear then CrossEntropy — the LM head and the causal-LM loss — without
// the [N, V] logits: x [N, H] times w [V, H]ᵀ, a few rows at a time, each block of logits turned
// at once into its log-sum-exps, its loss and its gradient (softmax − onehot, divided by denom),
// then dropped. What backward needs is kept instead: x's gradient [N, H] when w is frozen (a
// LoRA base), or the logits' gradient in bfloat16 (fp32 without bf16) when w trains, from which
// backward makes the gradients of x and w. wb, when not nil, is w's bfloat16 copy and the only
// weight (w.Data may be nil: a frozen base held in bf16 only). targets, denom and the results
// are CrossEntropy's; with bf16 the products are bfloat16 products accumulated in fp32, and the
// numbers are those of Linear(bf16) then CrossEntropy when the loss's upstream gradient is 1
// (as a training loss's is; otherwise the logits' gradient is rounded to bfloat16 before it is
// scaled by it rather than after).
func LinearCrossEntropy(tp *Tape, x, w *Tensor, wb []uint16, targets []int32, denom float64, bf16 bool) (loss *Tensor, sum float64, count int) {
	n, h := x.Rows()
	if len(w.Shape) != 2 || w.Shape[1] != h || len(targets) != n ||
		(wb == nil && len(w.Data) != w.Shape[0]*h) || (wb != nil && len(wb) != w.Shape[0]*h) {
		panic(fmt.Sprintf("autograd.LinearCrossEntropy: x %v, weight %v with %d values (%d bf16), %d targets", x.Shape, w.Shape, len(w.Data), len(wb), len(targets)))
	}
	if wb != nil && w.RequiresGrad {
		panic(fmt.Sprintf("autograd.LinearCrossEntropy: %s trains but is given as bfloat16 bits", w))
	}
	bf16 = bf16 || wb != nil
	v := w.Shape[0]
	for _, t := range targets {
		if t != kernels.IgnoreIndex {
			count++
		}
	}
	if denom <= 0 {
		denom = float64(count)
	}
	loss, rec := result(tp, []int{1}, x, w)
	rec = rec && count > 0

	var xb, wbits []uint16 // bf16: the bits of x and w
	if bf16 {
		xb, wbits = tp.PassingBits(x), wb // a frozen head's backward does not read x
		if w.RequiresGrad {
			xb = bitsOf(tp, x)
		}
		if wbits == nil {
			wbits = bitsOf(tp, w)
		}
	}
	var dx []float32 // frozen w: x's gradient, made here
	var d16 []uint16 // w trains (bf16): the logits' gradient
	var d32 []float32
	if rec {
		switch {
		case !w.RequiresGrad:
			dx = tp.Alloc(n * h)
		case bf16:
			d16 = tp.mem16.get(n*v, tp.now())
		default:
			d32 = tp.Alloc(n * v)
		}
	}
	lse := tp.Alloc(n) // recycled with the step (plain memory without a tape)
	chunk := max(1, min(n, lmHeadChunk/v))
	buf := lmHeadScratch.Get()
	defer lmHeadScratch.Put(buf)
	if cap(*buf) < chunk*v {
		*buf = make([]float32, chunk*v)
	}
	var bits *[]uint16
	if bf16 && rec && dx != nil {
		bits = lmHeadBits.Get()
		defer lmHeadBits.Put(bits)
		if cap(*bits) < chunk*v {
			*bits = make([]uint16, chunk*v)
		}
	}
	scale := float32(1 / denom)
	for r0 := 0; r0 < n; r0 += chunk {
		m := min(chunk, n-r0)
		lg, tg := (*buf)[:m*v], targets[r0:r0+m]
		if bf16 {
			kernels.GemmBF16(false, true, m, v, h, 1, xb[r0*h:], h, wbits, h, 0, lg, v)
		} else {
			kernels.Sgemm(false, true, m, v, h, 1, x.Data[r0*h:], h, w.Data, h, 0, lg, v)
		}
		s, _ := kernels.CrossEntropyForward(lse[r0:r0+m], lg, tg, m, v)
		sum += s
		if !rec {
			continue
		}
		kernels.CrossEntropyBackward(lg, lg, lse[r0:r0+m], tg, m, v, scale)
		switch {
		case dx != nil && bf16: // dx = dlogits·w, the dlogits rounded as Linear's backward rounds dy
			lb := (*bits)[:m*v]
			kernels.F32ToBF16(lb, lg)
			kernels.GemmBF16(false, false, m, h, v, 1, lb, v, wbits, h, 0, dx[r0*h:(r0+m)*h], h)
		case dx != nil:
			kernels.Sgemm(false, false, m, h, v, 1, lg, v, w.Data, h, 0, dx[r0*h:(r0+m)*h], h)
		case d16 != nil:
			kernels.F32ToBF16(d16[r0*v:(r0+m)*v], lg)
		default:
			kernels.Copy(d32[r0*v:(r0+m)*v], lg)
		}
	}
	if denom > 0 {
		loss.Data[0] = float32(sum / denom)
	} else {
		loss.Data[0] = 0
	}
	if !rec {
		return loss, sum, count
	}
	tp.Record(func() {
		g := loss.Grad()
		if g == nil {
			return
		}
		gs := g[0]
		switch {
		case dx != nil:
			if x.RequiresGrad {
				if gs != 1 {
					kernels.Scale(dx, gs)
				}
				x.accumulateGrad(tp, dx, true) // dx is this step's memory, read by nothing else
			}
		case d16 != nil:
			if x.RequiresGrad { // dx[N,H] += g·dlogits·w
				kernels.GemmBF16(false, false, n, h, v, gs, d16, v, wbits, h, 1, x.GradBuf(), h)
			}
			gw, beta := w.GradForWrite() // dw[V,H] += g·dlogitsᵀ·x
			kernels.GemmBF16(true, false, v, h, n, gs, d16, v, xb, h, beta, gw, h)
		default:
			if x.RequiresGrad {
				kernels.Sgemm(false, false, n, h, v, gs, d32, v, w.Data, h, 1, x.GradBuf(), h)
			}
			gw, beta := w.GradForWrite()
			kernels.Sgemm(true, false, v, h, n, gs, d32, v, x.Data, h, beta, gw, h)
		}
	})
	return loss, sum, count
}

// lmHeadChunk is how many logits LinearCrossEntropy makes at once (128 MB of fp32): enough rows
// for the products to run at full speed (oneDNN's bf16 product of Qwen3's 151,936-row head
// reaches 640 GFLOP/s from about 220 rows, 530 at 110, 420 at 55), few enough that the block is
// small beside the activations.
var lmHeadChunk = 32 << 20

// lmHeadScratch and lmHeadBits hold LinearCrossEntropy's block of logits and its bfloat16 bits
// between calls.
var (
	lmHeadScratch freelist.List[[]float32]
	lmHeadBits    freelist.List[[]uint16]
)

// bitsOf is t's bfloat16 bits: the tape's copy for the step, or a fresh conversion without a
// tape.
func bitsOf(tp *Tape, t *Tensor) []uint16 {
	if tp != nil {
		return tp.bf16Of(t)
	}
	return convertInto(nil, t.Data)
}
