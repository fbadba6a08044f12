package autograd

import (
	"fmt"
	"slices"

	"github.com/gwen-ml/gwen/kernels"
)

// LinearBF16Bits is Linear for a frozen weight held only as bfloat16 bits wb [out, in] (a
// frozen base under LoRA): y[N, out] = bf16(x)·wbᵀ, accumulated in fp32 — the mixed-precision
// rule, the only one a bfloat16 weight allows, with the numbers Linear gives in bf16 mode.
// Backward gives x its gradient (dy rounded, times wb); the weight has none.
func LinearBF16Bits(tp *Tape, x *Tensor, wb []uint16, out int) *Tensor {
	n, in := x.Rows()
	if out <= 0 || len(wb) != out*in {
		panic(fmt.Sprintf("autograd.LinearBF16Bits: x %v, %d weight bits for %d outputs", x.Shape, len(wb), out))
	}
	shape := append(slices.Clone(x.Shape[:len(x.Shape)-1]), out)
	y, rec := result(tp, shape, x)
	xb := tp.PassingBits(x) // backward reads dy and wb only
	kernels.GemmBF16(false, true, n, out, in, 1, xb, in, wb, in, 0, y.Data, out)
	if rec {
		tp.Record(func() {
			g := y.Grad()
			if g == nil {
				return
			}
			gb := tp.GradBits(y) // dx[N,in] += dy[N,out] · w[out,in]; dy's bits shared with an adapter
			gx, beta := x.GradForWrite()
			kernels.GemmBF16(false, false, n, in, out, 1, gb, out, wb, in, beta, gx, in)
		})
	}
	return y
}
