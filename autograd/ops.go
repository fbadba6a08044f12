package autograd

import (
	"fmt"
	"slices"

	"github.com/gwen-ml/gwen/kernels"
)

// Shapes in the comments use one vocabulary: N token rows (B·T), D model width, H query heads,
// KV key/value heads, hd head size, V vocabulary, in/out a Linear's sizes.

// result makes an op's output tensor on the tape (contents arbitrary: every forward kernel
// overwrites its output) and reports whether the op must record its backward.
func result(tp *Tape, shape []int, inputs ...*Tensor) (*Tensor, bool) {
	out := tp.NewTensor(shape...)
	rec := tp.Recording(inputs...)
	out.RequiresGrad = rec
	return out, rec
}

func addInto(dst, src []float32) { kernels.Add(dst, dst, src) }

// gradOrScratch is t's gradient buffer, or, when t needs no gradient (a frozen weight under
// LoRA), zeroed scratch of this step for a kernel that computes both gradients at once: a
// frozen parameter never gains a gradient.
func gradOrScratch(tp *Tape, t *Tensor) []float32 {
	if t.RequiresGrad {
		return t.GradBuf()
	}
	buf := tp.Alloc(len(t.Data))
	clear(buf)
	return buf
}

// Add: out = a + b (same shape), the residual connection.
func Add(tp *Tape, a, b *Tensor) *Tensor {
	if len(a.Data) != len(b.Data) {
		panic(fmt.Sprintf("autograd.Add: %v + %v", a.Shape, b.Shape))
	}
	out, rec := result(tp, a.Shape, a, b)
	kernels.Add(out.Data, a.Data, b.Data)
	if rec {
		tp.Record(func() {
			g := out.Grad()
			if g == nil {
				return
			}
			if a.RequiresGrad {
				a.accumulateGrad(tp, g, true)
			}
			if b.RequiresGrad {
				b.accumulateGrad(tp, g, false)
			}
		})
	}
	return out
}

// Embedding: [N, D] = table[V, D] rows picked by ids[N].
func Embedding(tp *Tape, table *Tensor, ids []int32) *Tensor {
	if len(table.Shape) != 2 {
		panic(fmt.Sprintf("autograd.Embedding: table %v is not 2-D", table.Shape))
	}
	d := table.Shape[1]
	out, rec := result(tp, []int{len(ids), d}, table)
	kernels.EmbeddingForward(out.Data, table.Data, ids, len(ids), d)
	if rec {
		tp.Record(func() {
			if g := out.Grad(); g != nil {
				kernels.EmbeddingBackward(table.GradBuf(), g, ids, len(ids), d)
			}
		})
	}
	return out
}

// RMSNorm normalises every row of x's last dimension: [.., d] with w [d].
func RMSNorm(tp *Tape, x, w *Tensor, eps float32) *Tensor {
	n, d := x.Rows()
	if len(w.Data) != d {
		panic(fmt.Sprintf("autograd.RMSNorm: x %v, weight %v", x.Shape, w.Shape))
	}
	out, rec := result(tp, x.Shape, x, w)
	rstd := tp.Alloc(n)
	kernels.RMSNormForward(out.Data, rstd, x.Data, w.Data, n, d, eps)
	if rec {
		tp.Record(func() {
			g := out.Grad()
			if g == nil {
				return
			}
			kernels.RMSNormBackward(gradOrScratch(tp, x), gradOrScratch(tp, w), g, x.Data, w.Data, rstd, n, d)
		})
	}
	return out
}

// Linear: y[N, out] = x[N, in] · w[out, in]ᵀ (no bias, as every Qwen3 projection). With bf16
// the GEMM inputs are rounded to bfloat16 and accumulated in fp32, in backward as well.
func Linear(tp *Tape, x, w *Tensor, bf16 bool) *Tensor {
	n, in := x.Rows()
	if len(w.Shape) != 2 || w.Shape[1] != in {
		panic(fmt.Sprintf("autograd.Linear: x %v, weight %v", x.Shape, w.Shape))
	}
	o := w.Shape[0]
	shape := append(slices.Clone(x.Shape[:len(x.Shape)-1]), o)
	out, rec := result(tp, shape, x, w)
	if bf16 && tp != nil {
		linearBF16(tp, x, w, out, rec, n, in, o)
		return out
	}
	gemm := kernels.Sgemm
	if bf16 {
		gemm = kernels.SgemmBF16
	}
	gemm(false, true, n, o, in, 1, x.Data, in, w.Data, in, 0, out.Data, o)
	if rec {
		tp.Record(func() {
			g := out.Grad()
			if g == nil {
				return
			}
			if x.RequiresGrad { // dx[N,in] += dy[N,out] · w[out,in]
				gx, beta := x.GradForWrite()
				gemm(false, false, n, in, o, 1, g, o, w.Data, in, beta, gx, in)
			}
			if w.RequiresGrad { // dw[out,in] += dyᵀ · x
				gw, beta := w.GradForWrite()
				gemm(true, false, o, in, n, 1, g, o, x.Data, in, beta, gw, in)
			}
		})
	}
	return out
}

// linearBF16 is Linear in mixed precision on a tape, with the same numbers as SgemmBF16 but
// fewer conversions: x's bfloat16 bits are made once per step (bf16Of) and shared by every
// product that reads x, forward and backward; dy is converted once for its two products; the
// weight is rounded per product (GemmBF16F32B), as keeping every weight's bits would cost a
// bf16 copy of the model.
func linearBF16(tp *Tape, x, w, out *Tensor, rec bool, n, in, o int) {
	xb := tp.bf16Of(x)
	kernels.GemmBF16F32B(false, true, n, o, in, 1, xb, in, w.Data, in, 0, out.Data, o)
	if !rec {
		return
	}
	tp.Record(func() {
		g := out.Grad()
		if g == nil {
			return
		}
		gb := tp.scratch16(len(g))
		kernels.F32ToBF16(gb, g)
		if x.RequiresGrad { // dx[N,in] += dy[N,out] · w[out,in]
			gx, beta := x.GradForWrite()
			kernels.GemmBF16F32B(false, false, n, in, o, 1, gb, o, w.Data, in, beta, gx, in)
		}
		if w.RequiresGrad { // dw[out,in] += dyᵀ · x
			gw, beta := w.GradForWrite()
			kernels.GemmBF16(true, false, o, in, n, 1, gb, o, xb, in, beta, gw, in)
		}
	})
}

// RoPE rotates every head of x [N, heads·hd] by the table row pos[i] of token i.
func RoPE(tp *Tape, x *Tensor, pos []int32, cos, sin []float32, heads, hd int) *Tensor {
	n := len(x.Data) / (heads * hd)
	if n*heads*hd != len(x.Data) || len(pos) != n {
		panic(fmt.Sprintf("autograd.RoPE: x %v, %d heads of %d, %d positions", x.Shape, heads, hd, len(pos)))
	}
	out, rec := result(tp, x.Shape, x)
	kernels.RoPEForward(out.Data, x.Data, pos, cos, sin, n, heads, hd)
	if rec {
		tp.Record(func() {
			if g := out.Grad(); g != nil {
				kernels.RoPEBackward(x.GradBuf(), g, pos, cos, sin, n, heads, hd)
			}
		})
	}
	return out
}

// NormRoPE is Qwen3's QK-norm followed by RoPE as one op: RMSNorm (weight w [hd]) over each
// head's row of x [N, heads·hd], then the rotation of token i by table row pos[i]. It equals
// RMSNorm then RoPE to the bit, in one pass and without the intermediate tensor.
func NormRoPE(tp *Tape, x, w *Tensor, eps float32, pos []int32, cos, sin []float32, heads, hd int) *Tensor {
	n := len(x.Data) / (heads * hd)
	if n*heads*hd != len(x.Data) || len(w.Data) != hd || len(pos) != n {
		panic(fmt.Sprintf("autograd.NormRoPE: x %v, weight %v, %d heads of %d, %d positions", x.Shape, w.Shape, heads, hd, len(pos)))
	}
	out, rec := result(tp, x.Shape, x, w)
	rstd := tp.Alloc(n * heads)
	kernels.NormRoPEForward(out.Data, rstd, x.Data, w.Data, pos, cos, sin, n, heads, hd, eps)
	if rec {
		tp.Record(func() {
			g := out.Grad()
			if g == nil {
				return
			}
			kernels.NormRoPEBackward(gradOrScratch(tp, x), gradOrScratch(tp, w), g, x.Data, w.Data, rstd, pos, cos, sin, n, heads, hd)
		})
	}
	return out
}

// Attention is causal grouped-query attention: q [B·T, H·hd], k and v [B·T, KV·hd] give
// o [B·T, H·hd]. Only the log-sum-exp per (query, head) is kept for backward.
func Attention(tp *Tape, q, k, v *Tensor, b, t, h, kv, hd int, opt kernels.AttnOpts) *Tensor {
	if len(q.Data) != b*t*h*hd || len(k.Data) != b*t*kv*hd || len(v.Data) != b*t*kv*hd {
		panic(fmt.Sprintf("autograd.Attention: q %v k %v v %v for B=%d T=%d H=%d KV=%d hd=%d", q.Shape, k.Shape, v.Shape, b, t, h, kv, hd))
	}
	out, rec := result(tp, q.Shape, q, k, v)
	lse := tp.Alloc(b * h * t)
	kernels.AttentionForward(out.Data, lse, q.Data, k.Data, v.Data, b, t, h, kv, hd, opt)
	if rec {
		tp.Record(func() {
			g := out.Grad()
			if g == nil {
				return
			}
			kernels.AttentionBackward(q.GradBuf(), k.GradBuf(), v.GradBuf(), g, q.Data, k.Data, v.Data, out.Data, lse, b, t, h, kv, hd, opt)
		})
	}
	return out
}

// SwiGLU: silu(gate) · up, element-wise, same shapes.
func SwiGLU(tp *Tape, gate, up *Tensor) *Tensor {
	if len(gate.Data) != len(up.Data) {
		panic(fmt.Sprintf("autograd.SwiGLU: gate %v, up %v", gate.Shape, up.Shape))
	}
	out, rec := result(tp, gate.Shape, gate, up)
	kernels.SwiGLUForward(out.Data, gate.Data, up.Data, len(out.Data))
	if rec {
		tp.Record(func() {
			g := out.Grad()
			if g == nil {
				return
			}
			// Gradients that do not exist yet (the usual case: gate and up feed only this op)
			// are written, not cleared and added to.
			dg, betaG := gate.GradForWrite()
			du, betaU := up.GradForWrite()
			if betaG == 0 && betaU == 0 {
				kernels.SwiGLUBackwardWrite(dg, du, g, gate.Data, up.Data, len(g))
				return
			}
			if betaG == 0 {
				clear(dg)
			}
			if betaU == 0 {
				clear(du)
			}
			kernels.SwiGLUBackward(dg, du, g, gate.Data, up.Data, len(g))
		})
	}
	return out
}

// CrossEntropy is the fused log-softmax cross-entropy of logits [N, V] against targets [N]
// (-100 = ignored), divided by denom (pass the count of counted targets over the whole
// accumulated batch; denom <= 0 means this call's own count). It returns the scalar loss,
// the unscaled sum of -log p and the count.
//
// To avoid a second [N, V] buffer, backward writes the gradient over the logits' data: after
// Backward, logits.Data holds dL/dlogits. Read the logits before calling Backward.
func CrossEntropy(tp *Tape, logits *Tensor, targets []int32, denom float64) (loss *Tensor, sum float64, count int) {
	n, v := logits.Rows()
	if len(targets) != n {
		panic(fmt.Sprintf("autograd.CrossEntropy: logits %v, %d targets", logits.Shape, len(targets)))
	}
	lse := tp.Alloc(n)
	sum, count = kernels.CrossEntropyForward(lse, logits.Data, targets, n, v)
	if denom <= 0 {
		denom = float64(count)
	}
	loss, rec := result(tp, []int{1}, logits)
	if denom > 0 {
		loss.Data[0] = float32(sum / denom)
	}
	if rec {
		tp.Record(func() {
			g := loss.Grad()
			if g == nil || denom == 0 {
				return
			}
			scale := float32(float64(g[0]) / denom)
			if logits.Grad() == nil { // common case: take over the logits' memory
				kernels.CrossEntropyBackward(logits.Data, logits.Data, lse, targets, n, v, scale)
				logits.SetGrad(logits.Data)
				return
			}
			tmp := tp.Alloc(len(logits.Data))
			kernels.CrossEntropyBackward(tmp, logits.Data, lse, targets, n, v, scale)
			addInto(logits.GradBuf(), tmp)
		})
	}
	return loss, sum, count
}
