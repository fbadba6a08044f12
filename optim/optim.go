// Package optim owns parameter updates: AdamW with decoupled weight decay (torch.optim.AdamW
// semantics), global-norm gradient clipping and learning-rate schedules. It knows parameters
// only as named fp32 tensors, nothing of the model's structure.
package optim

import (
	"fmt"
	"math"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/kernels"
)

// AdamW holds the hyperparameters and the moment estimates of every parameter it has updated.
// The learning rate is not one of them: each Update takes it (from a schedule). Weight decay applies to parameters with two or more dimensions (projections, embeddings,
// experts, routers), never to 1-D norm weights — the convention of HF Trainer and torchtune.
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float32

	Step  int                 // number of updates made so far
	State map[string]*Moments // by parameter name
}

// Moments are Adam's first and second moment estimates of one parameter.
type Moments struct {
	M, V []float32
}

// NewAdamW returns an optimizer with zero moments.
func NewAdamW(beta1, beta2, eps, weightDecay float32) *AdamW {
	return &AdamW{Beta1: beta1, Beta2: beta2, Eps: eps, WeightDecay: weightDecay, State: map[string]*Moments{}}
}

// Update applies one AdamW step to every parameter that has a gradient, at learning rate lr.
// Parameters must have distinct names (their HF names): the moments are keyed by them.
func (o *AdamW) Update(params []*autograd.Tensor, lr float32) { o.UpdateScaled(params, lr, 1) }

// UpdateScaled is Update on every gradient multiplied by gradScale, the gradients themselves
// left as they are: with ClipCoef's coefficient it is ClipGradNorm then Update, bit for bit,
// in one pass over the gradients fewer.
func (o *AdamW) UpdateScaled(params []*autograd.Tensor, lr, gradScale float32) {
	o.Step++
	for _, p := range params {
		g := p.Grad()
		if g == nil || !p.RequiresGrad {
			continue
		}
		st := o.State[p.Name]
		if st == nil {
			st = &Moments{M: make([]float32, len(p.Data)), V: make([]float32, len(p.Data))}
			o.State[p.Name] = st
		}
		if len(st.M) != len(p.Data) {
			panic(fmt.Sprintf("optim.AdamW: state of %s has %d values, parameter has %d", p.Name, len(st.M), len(p.Data)))
		}
		wd := o.WeightDecay
		if len(p.Shape) < 2 {
			wd = 0
		}
		kernels.AdamW(p.Data, g, st.M, st.V, gradScale, lr, o.Beta1, o.Beta2, o.Eps, wd, o.Step)
	}
}

// GradNorm is the global L2 norm of all gradients, accumulated in float64.
func GradNorm(params []*autograd.Tensor) float64 {
	var s float64
	for _, p := range params {
		if g := p.Grad(); g != nil {
			s += kernels.SumSquares(g)
		}
	}
	return math.Sqrt(s)
}

// ClipGradNorm scales every gradient by min(1, maxNorm/(norm+1e-6)) as
// torch.nn.utils.clip_grad_norm_ does, and returns the norm before clipping. A non-finite
// norm is returned unchanged and nothing is scaled: the caller decides (skip the step, stop).
func ClipGradNorm(params []*autograd.Tensor, maxNorm float64) float64 {
	norm, coef := ClipCoef(params, maxNorm)
	if coef == 1 {
		return norm
	}
	for _, p := range params {
		if g := p.Grad(); g != nil {
			kernels.Scale(g, coef)
		}
	}
	return norm
}

// ClipCoef returns the global gradient norm and the coefficient ClipGradNorm scales the
// gradients by: min(1, maxNorm/(norm+1e-6)) in float32, and 1 when maxNorm <= 0 or the norm
// is not finite. Pass it to AdamW.UpdateScaled to clip without rewriting the gradients.
func ClipCoef(params []*autograd.Tensor, maxNorm float64) (norm float64, coef float32) {
	norm = GradNorm(params)
	if maxNorm <= 0 || math.IsNaN(norm) || math.IsInf(norm, 0) {
		return norm, 1
	}
	c := maxNorm / (norm + 1e-6)
	if c >= 1 {
		return norm, 1
	}
	return norm, float32(c)
}

// ZeroGrad zeroes every parameter's gradient, keeping the buffers.
func ZeroGrad(params []*autograd.Tensor) {
	for _, p := range params {
		p.ZeroGrad()
	}
}
