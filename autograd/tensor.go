// Package autograd owns Gwen's tensors and the tape: eager define-by-run ops, each with its
// forward and backward side by side, over the kernels package. It knows nothing of Qwen3.
//
// A nil *Tape is the no-grad mode: ops compute their outputs and record nothing. An inference
// tape (WithInferenceTape) is the same mode with recycled memory, which is how generation runs
// the model. Tensors hold fp32 data; mixed precision is an op argument (bf16
// rounding of matmul inputs), not a tensor dtype.
package autograd

import (
	"fmt"
	"slices"

	"github.com/gwen-ml/gwen/kernels"
)

// Tensor is a dense, row-major float32 array with an optional gradient of the same size. An
// activation whose values its tape took back early (Tape.takeData) has no Data but keeps its
// shape, and its gradient.
type Tensor struct {
	Shape        []int
	Data         []float32
	RequiresGrad bool
	Name         string // parameter name (HF), for messages and checkpoints

	grad []float32
	// gradStale: grad holds old values that count as zero (ZeroGrad); it is cleared when next
	// read or added to, or simply overwritten by an op that writes a whole gradient.
	gradStale bool
	base      *Tensor  // a Reshape view shares its base's data and gradient
	tape      *Tape    // where an activation's gradient memory comes from; nil for parameters
	stamp     int      // on its tape: the memory stamp of its data and gradient (Tape.now)
	bf16      []uint16 // this step's bfloat16 copy of Data (Tape.bf16Of); nil outside a step
}

// New wraps data (not copied) as a tensor of the given shape.
func New(data []float32, shape ...int) *Tensor {
	if n := numel(shape); n != len(data) {
		panic(fmt.Sprintf("autograd.New: shape %v holds %d values, data has %d", shape, n, len(data)))
	}
	return &Tensor{Shape: slices.Clone(shape), Data: data}
}

// Zeros returns a zero tensor of the given shape.
func Zeros(shape ...int) *Tensor { return New(make([]float32, numel(shape)), shape...) }

// Param wraps data as a named parameter that requires a gradient.
func Param(name string, data []float32, shape ...int) *Tensor {
	t := New(data, shape...)
	t.Name, t.RequiresGrad = name, true
	return t
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("autograd: negative dimension in shape %v", shape))
		}
		n *= d
	}
	return n
}

// Numel is the number of elements.
func (t *Tensor) Numel() int { return len(t.Data) }

// Grad returns the accumulated gradient, or nil if nothing has flowed into it yet.
func (t *Tensor) Grad() []float32 {
	if t.base != nil {
		return t.base.Grad()
	}
	t.freshen()
	return t.grad
}

// freshen clears a stale gradient (see ZeroGrad).
func (t *Tensor) freshen() {
	if t.gradStale {
		clear(t.grad)
		t.gradStale = false
	}
}

// GradForWrite returns the gradient buffer and the beta with which an op that writes the whole
// gradient as beta·grad + its contribution must combine them: 0 when the gradient is zero
// (new, or stale after ZeroGrad: then it is never cleared), else 1. A weight's gradient GEMM
// uses it, so zeroing every gradient each step costs nothing for them, and so does the first
// product to write an activation's gradient (its new buffer is not cleared first).
func (t *Tensor) GradForWrite() ([]float32, float32) {
	if t.base != nil {
		return t.base.GradForWrite()
	}
	switch {
	case t.gradStale:
		t.gradStale = false
		return t.grad, 0
	case t.grad == nil && t.tape != nil:
		t.grad = t.tape.mem.get(numel(t.Shape), t.stamp) // arbitrary contents: beta 0 overwrites them
		return t.grad, 0
	case t.grad == nil:
		return t.GradBuf(), 0
	}
	return t.grad, 1
}

// GradBuf returns the gradient buffer, allocating it (zeroed) on first use.
func (t *Tensor) GradBuf() []float32 {
	if t.base != nil {
		return t.base.GradBuf()
	}
	t.freshen()
	if t.grad == nil {
		if t.tape != nil {
			t.grad = t.tape.mem.get(numel(t.Shape), t.stamp)
			clear(t.grad)
		} else {
			t.grad = make([]float32, len(t.Data))
		}
	}
	return t.grad
}

// accumulateGrad adds g to t's gradient. A gradient that does not exist yet starts as a copy of
// g (no zeroing, then adding) or, with take, as g itself: the caller hands over g's buffer
// (tape memory it no longer reads), which t keeps only if it is an activation of tape tp, so
// the buffer is recycled with t's own memory.
func (t *Tensor) accumulateGrad(tp *Tape, g []float32, take bool) {
	r := t
	if r.base != nil {
		r = r.base
	}
	r.freshen()
	switch {
	case r.grad != nil:
		addInto(r.grad, g)
	case take && tp != nil && r.tape == tp:
		r.grad = g
		tp.mem.restamp(g, r.stamp) // it now lives as long as r
	case r.tape != nil:
		r.grad = r.tape.mem.get(numel(r.Shape), r.stamp)
		kernels.Copy(r.grad, g)
	default:
		r.grad = slices.Clone(g)
	}
}

// SetGrad replaces the gradient buffer (len must equal Numel), e.g. to feed known gradients.
func (t *Tensor) SetGrad(g []float32) {
	if g != nil && len(g) != len(t.Data) {
		panic(fmt.Sprintf("autograd.SetGrad %s: gradient has %d values, tensor %v has %d", t.Name, len(g), t.Shape, len(t.Data)))
	}
	if t.base != nil {
		t.base.SetGrad(g)
		return
	}
	t.grad, t.gradStale = g, false
	if t.tape != nil { // memory of t's tape handed over (a loss op's gradient buffer) lives as long as t
		t.tape.mem.restamp(g, t.stamp)
	}
}

// ZeroGrad zeroes the gradient in place (keeping the buffer for the next step). The clearing
// itself waits until the gradient is next read or added to, and is skipped by an op that
// overwrites it whole (a weight's gradient GEMM), so a training step's ZeroGrad costs nothing
// for those.
func (t *Tensor) ZeroGrad() {
	if t.base != nil {
		t.base.ZeroGrad()
		return
	}
	if t.grad != nil {
		t.gradStale = true
	}
}

// Reshape returns a view with another shape over the same data and gradient.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	if n := numel(shape); n != len(t.Data) {
		panic(fmt.Sprintf("autograd.Reshape: %v (%d values) to %v (%d values)", t.Shape, len(t.Data), shape, n))
	}
	b := t
	if t.base != nil {
		b = t.base
	}
	return &Tensor{Shape: slices.Clone(shape), Data: t.Data, RequiresGrad: t.RequiresGrad, Name: t.Name, base: b, tape: t.tape, stamp: b.stamp}
}

// Rows returns the size of the last dimension and how many rows of it the tensor holds.
func (t *Tensor) Rows() (rows, cols int) {
	if len(t.Shape) == 0 {
		return 1, 1
	}
	cols = t.Shape[len(t.Shape)-1]
	if cols == 0 {
		return 0, 0
	}
	return numel(t.Shape) / cols, cols
}

func (t *Tensor) String() string {
	if t.Name != "" {
		return fmt.Sprintf("%s%v", t.Name, t.Shape)
	}
	return fmt.Sprintf("tensor%v", t.Shape)
}
