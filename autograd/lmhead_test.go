package autograd

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gwen-ml/gwen/kernels"
)

// LinearCrossEntropy, a few rows at a time (here 3 of 7 per block), gives the loss and the
// gradients of x and w that the logits would: in fp32 against a float64 reference
// (softmax − onehot through the product), in bf16 against Linear(bf16) then CrossEntropy —
// with w trained, frozen, or held as bits only, with an ignored target and an upstream
// gradient of 2 (a power of two: the fused op rounds the logits' gradient before scaling it by
// the upstream gradient, the unfused one after, the same bits for 1 or 2).
func TestLinearCrossEntropy(t *testing.T) {
	const n, h, v = 7, 24, 37
	defer func(c int) { lmHeadChunk = c }(lmHeadChunk)
	lmHeadChunk = 3 * v
	rng := rand.New(rand.NewPCG(5, 6))
	x0, w0 := randVec(rng, n*h, 1), randVec(rng, v*h, 0.5)
	targets := []int32{3, 0, kernels.IgnoreIndex, 36, 12, 12, 7}
	const g, denom = 2.0, 10.0

	// float64 reference (fp32 mode)
	lossRef, dxRef, dwRef := 0.0, make([]float64, n*h), make([]float64, v*h)
	for i := range n {
		if targets[i] == kernels.IgnoreIndex {
			continue
		}
		lg := make([]float64, v)
		mx := math.Inf(-1)
		for j := range v {
			for k := range h {
				lg[j] += float64(x0[i*h+k]) * float64(w0[j*h+k])
			}
			mx = max(mx, lg[j])
		}
		s := 0.0
		for j := range v {
			s += math.Exp(lg[j] - mx)
		}
		lse := mx + math.Log(s)
		lossRef += (lse - lg[targets[i]]) / denom
		for j := range v {
			d := math.Exp(lg[j] - lse)
			if j == int(targets[i]) {
				d--
			}
			d *= g / denom
			for k := range h {
				dxRef[i*h+k] += d * float64(w0[j*h+k])
				dwRef[j*h+k] += d * float64(x0[i*h+k])
			}
		}
	}
	close := func(name string, got []float32, want []float64, tol float64) {
		t.Helper()
		for i := range want {
			if math.Abs(float64(got[i])-want[i]) > tol*(1+math.Abs(want[i])) || math.IsNaN(float64(got[i])) {
				t.Fatalf("%s[%d] = %v, want %v", name, i, got[i], want[i])
			}
		}
	}
	type result struct {
		loss   float32
		dx, dw []float32
	}
	run := func(fused, bf16, trainW, bits bool) result {
		tp := NewTape()
		var res result
		for range 2 { // the second step runs on recycled (in tests, poisoned) memory
			x := New(append([]float32(nil), x0...), n, h)
			x.RequiresGrad = true
			w := New(append([]float32(nil), w0...), v, h)
			w.RequiresGrad = trainW
			var loss *Tensor
			if fused {
				var wb []uint16
				if bits {
					wb = make([]uint16, v*h)
					kernels.F32ToBF16(wb, w0)
					w.Data = nil
				}
				loss, _, _ = LinearCrossEntropy(tp, x, w, wb, targets, denom, bf16)
			} else {
				loss, _, _ = CrossEntropy(tp, Linear(tp, x, w, bf16), targets, denom)
			}
			res = result{loss: loss.Data[0]}
			tp.BackwardFrom(loss, []float32{g})
			res.dx = x.Grad()
			if trainW {
				res.dw = w.Grad()
			}
		}
		return res
	}
	for _, trainW := range []bool{true, false} {
		got := run(true, false, trainW, false)
		close("fp32 loss", []float32{got.loss}, []float64{lossRef}, 1e-5)
		close("fp32 dx", got.dx, dxRef, 1e-5)
		if trainW {
			close("fp32 dw", got.dw, dwRef, 1e-5)
		}
		want := run(false, true, trainW, false)
		for _, bits := range []bool{false, true} {
			if bits && trainW {
				continue
			}
			got := run(true, true, trainW, bits)
			if got.loss != want.loss {
				t.Fatalf("bf16 (w trains %v, bits %v): loss %v, unfused %v", trainW, bits, got.loss, want.loss)
			}
			close("bf16 dx", got.dx, to64(want.dx), 1e-6)
			if trainW {
				close("bf16 dw", got.dw, to64(want.dw), 1e-6)
			}
		}
	}

	// Without a tape: the loss alone, the same.
	x, w := New(x0, n, h), New(w0, v, h)
	loss, sum, count := LinearCrossEntropy(nil, x, w, nil, targets, 0, false)
	if count != 6 || math.Abs(float64(loss.Data[0])-lossRef*denom/6) > 1e-5 || math.Abs(sum-lossRef*denom) > 1e-4 {
		t.Fatalf("no tape: loss %v sum %v count %d, want %v, %v, 6", loss.Data[0], sum, count, lossRef*denom/6, lossRef*denom)
	}
}
