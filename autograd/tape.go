package autograd

import (
	"unsafe"

	"github.com/gwen-ml/gwen/internal/freelist"
	"github.com/gwen-ml/gwen/kernels"
)

// Tape records, op by op, the closures that propagate gradients backwards. Ops append to it
// during the forward pass; Backward runs them in reverse. A nil *Tape records nothing.
//
// A tape also owns the memory of the activations and activation gradients made on it.
// Backward recycles it as it goes: once the backward of the op that made a tensor has run,
// nothing can read that tensor any more (every later op's backward ran before it), so its data,
// gradient and bfloat16 copy go back to the tape for the gradients still to come. After
// Backward (or Reset) every tensor an op produced on this tape — logits, loss — is invalid:
// read or copy what you need before. Parameter gradients are not affected. Make one tape and
// reuse it for every step: a new tape starts with no memory to recycle.
type Tape struct {
	noGrad   bool // an inference tape: memory only, nothing recorded
	backward []func()
	running  int // during Backward, 1 + the index of the step being run; 0 outside it
	mem      arena[float32]
	mem16    arena[uint16] // the bfloat16 copies bf16Of keeps for the step
	shadowed []*Tensor     // the tensors whose bf16 copy this tape made
	tmp16    []uint16      // scratch16's buffer
	fwd16    []uint16      // PassingBits' buffer, holding the bits of fwd16Of's data
	cat16    []uint16      // scratchCat's buffer
	fwd16Of  *Tensor
	grad16   []uint16 // GradBits' buffer, holding the bits of grad16Of's gradient
	grad16Of *Tensor
	sub      *Tape // reused for recomputing checkpointed blocks

	// OnFinal (see OnGradFinal): the hook, the record index of each parameter's first use,
	// and the parameters whose gradient is final once that record's backward has run.
	onFinal func(*Tensor)
	first   map[*Tensor]int
	finalAt map[int][]*Tensor
}

// OnGradFinal arms fn for the next forward and Backward on this tape: during that Backward fn
// is called once for each parameter (a tensor that requires a gradient and belongs to no
// tape) as soon as its gradient is final — right after the backward of the first op that
// used it ran — so that work on it (a data-parallel all-reduce) can overlap the rest of the
// backward. Parameters that no op passed to Recording on this tape (those inside a
// checkpointed block, whose ops record on a sub-tape) never reach fn: the caller handles
// them after Backward. fn runs on Backward's goroutine and must not write the gradient. The
// hook disarms after Backward; nil disarms it at once.
func (tp *Tape) OnGradFinal(fn func(p *Tensor)) {
	tp.onFinal = fn
	tp.first, tp.finalAt = nil, nil
	if fn != nil {
		tp.first, tp.finalAt = map[*Tensor]int{}, map[int][]*Tensor{}
	}
}

// NewTape returns an empty tape.
func NewTape() *Tape { return &Tape{} }

// WithInferenceTape runs fn on a pooled inference tape and resets it afterwards. The tape
// records nothing, like a nil tape, but hands out memory it keeps: a forward run on it
// allocates nothing after its first call. Its large buffers live outside the Go heap, so they
// do not inflate the garbage collector's heap goal; nothing fn makes on the tape may be used
// after fn returns (copy what must outlive it), and fn may Reset it to start over.
func WithInferenceTape(fn func(tp *Tape)) {
	tp := inferenceTapes.Get()
	defer inferenceTapes.Put(tp)
	if !tp.noGrad { // new
		tp.noGrad, tp.mem.shared, tp.mem16.shared = true, true, true
	}
	defer tp.Reset()
	fn(tp)
}

// inferenceTapes pools the tapes of WithInferenceTape: concurrent callers each take their own.
// They are never dropped, since their shared arenas' off-heap buffers are unmapped only when
// replaced.
var inferenceTapes freelist.List[Tape]

// Records reports whether ops on this tape record their backward: a tape that is not nil and
// not an inference tape.
func (tp *Tape) Records() bool { return tp != nil && !tp.noGrad }

// Recording reports whether an op over these inputs must record its backward: the tape is
// live and at least one input requires a gradient. Ops also mark their output with it.
func (tp *Tape) Recording(inputs ...*Tensor) bool {
	if !tp.Records() {
		return false
	}
	rec := false
	for _, t := range inputs {
		if t != nil && t.RequiresGrad {
			rec = true
			if tp.onFinal != nil {
				tp.noteUse(t)
			}
		}
	}
	return rec
}

// noteUse records the first use of a parameter: the index the op's backward will take.
func (tp *Tape) noteUse(t *Tensor) {
	r := t
	if r.base != nil {
		r = r.base
	}
	if r.tape != nil {
		return // an activation, not a parameter
	}
	if _, seen := tp.first[r]; !seen {
		i := len(tp.backward)
		tp.first[r] = i
		tp.finalAt[i] = append(tp.finalAt[i], r)
	}
}

// Record appends one backward closure. Ops outside this package (MoE, LoRA) use it too.
func (tp *Tape) Record(f func()) {
	if tp.Records() {
		tp.backward = append(tp.backward, f)
	}
}

// Len is the number of recorded backward steps.
func (tp *Tape) Len() int {
	if tp == nil {
		return 0
	}
	return len(tp.backward)
}

// Backward adds 1 to the gradient of the scalar loss and runs every recorded step in
// reverse, accumulating into the gradients of everything that requires one. The tape is
// empty afterwards.
func (tp *Tape) Backward(loss *Tensor) {
	if len(loss.Data) != 1 {
		panic("autograd.Backward: loss must be a scalar, got shape " + loss.String())
	}
	tp.BackwardFrom(loss, []float32{1})
}

// BackwardFrom adds grad (dL/dt, the size of t) to t's gradient and runs every recorded step
// in reverse. The tape is empty afterwards.
func (tp *Tape) BackwardFrom(t *Tensor, grad []float32) {
	addInto(t.GradBuf(), grad)
	hook := tp.onFinal
	for i := len(tp.backward) - 1; i >= 0; i-- {
		tp.running = i + 1
		tp.backward[i]()
		tp.backward[i] = nil
		if hook != nil {
			for _, p := range tp.finalAt[i] {
				hook(p)
			}
		}
		// What step i made (its outputs and their gradients, its saved buffers) and what it
		// allocated while running is read by no step still to run.
		tp.mem.releaseStamp(i)
		tp.mem16.releaseStamp(i)
	}
	tp.running = 0
	tp.onFinal, tp.first, tp.finalAt = nil, nil, nil
	tp.backward = tp.backward[:0]
	tp.releaseMem()
}

// now is the stamp of memory handed out at this moment (see arena): in the forward, the index
// the next recorded step will take, the first that can read it; in backward, the step being
// run, whose own temporaries end with it.
func (tp *Tape) now() int {
	if tp.running > 0 {
		return tp.running - 1
	}
	return len(tp.backward)
}

// stampOf is the stamp t's memory lives to: its own for a tensor made on this tape, else 0
// (a parameter or outside tensor: its bfloat16 copy lives to the end of the step).
func (tp *Tape) stampOf(t *Tensor) int {
	if t.tape == tp {
		return t.stamp
	}
	return 0
}

// releaseMem ends the step's memory: activations, their gradients and bf16 copies.
func (tp *Tape) releaseMem() {
	for i, t := range tp.shadowed {
		t.bf16 = nil
		tp.shadowed[i] = nil
	}
	tp.shadowed = tp.shadowed[:0]
	tp.fwd16Of, tp.grad16Of = nil, nil
	tp.mem.release()
	tp.mem16.release()
}

// takeData gives t's data back to the tape now, before the backward step that would: for an
// activation that nothing reads after the op calling it (a group of frozen projections that
// keeps its input's bits for its own backward), so that the layers after it reuse the memory.
// The op vouches that no op, forward or backward, reads t.Data again; t keeps its shape
// (Rows) and can still take a gradient. Nothing happens on a tape that records nothing, or for
// a view or a tensor that is not this tape's.
func (tp *Tape) takeData(t *Tensor) {
	if !tp.Records() || t.tape != tp || t.base != nil {
		return
	}
	if tp.mem.giveBack(t.Data) {
		t.Data = nil
	}
}

// bf16Of returns t's data rounded to bfloat16 bits (kernels.F32ToBF16): converted on first use
// in this step, then kept in this tape's memory until the step ends, so a tensor read by several
// bf16 products (x by the q, k and v projections, and again by their weight gradients) is
// converted once. t's data must not change until then, as every op already assumes of its
// inputs.
func (tp *Tape) bf16Of(t *Tensor) []uint16 {
	r := t
	if r.base != nil {
		r = r.base
	}
	if r.bf16 == nil {
		r.bf16 = tp.mem16.get(len(r.Data), tp.stampOf(r))
		kernels.F32ToBF16(r.bf16, r.Data)
		tp.shadowed = append(tp.shadowed, r)
	}
	return r.bf16[:len(t.Data)]
}

// PassingBits returns t's data rounded to bfloat16 bits for a product that needs them only
// now (a frozen weight's forward: its backward reads the weight, not t). The tape's own copy
// (bf16Of) is used where one exists; otherwise the bits go to one reused buffer, valid until
// the next call for another tensor, which also serves the next products of the same t (q, k
// and v read the same x, and so do their adapters), so that no copy is kept for the step. t's
// data must not change while it is in use. A nil tape converts into fresh memory.
func (tp *Tape) PassingBits(t *Tensor) []uint16 {
	if tp == nil {
		return convertInto(nil, t.Data)
	}
	r := t
	if r.base != nil {
		r = r.base
	}
	if r.bf16 != nil {
		return r.bf16[:len(t.Data)]
	}
	if tp.fwd16Of != r {
		tp.fwd16 = convertInto(tp.fwd16, r.Data)
		tp.fwd16Of = r
	}
	return tp.fwd16[:len(t.Data)]
}

// GradBits returns t's gradient rounded to bfloat16 bits, in one reused buffer valid until the
// next call for another tensor: the backward steps of the products that made t (a frozen
// weight's and its adapter's) read the same dy, which is final once they run, and convert it
// once.
func (tp *Tape) GradBits(t *Tensor) []uint16 {
	r := t
	if r.base != nil {
		r = r.base
	}
	if tp.grad16Of != r {
		tp.grad16 = convertInto(tp.grad16, r.Grad())
		tp.grad16Of = r
	}
	return tp.grad16[:len(t.Data)]
}

// Alloc16 is Alloc for bfloat16 bits: n values with arbitrary contents that live as long as
// memory Alloc would hand out now; with a nil tape, plain memory.
func (tp *Tape) Alloc16(n int) []uint16 {
	if tp == nil {
		return make([]uint16, n)
	}
	return tp.mem16.get(n, tp.now())
}

// scratchCat returns a buffer of n bfloat16 values with arbitrary contents, valid until the
// next call: the widened input of one FrozenLinears forward.
func (tp *Tape) scratchCat(n int) []uint16 {
	if tp == nil {
		return make([]uint16, n)
	}
	if cap(tp.cat16) < n {
		tp.cat16 = make([]uint16, n)
	}
	return tp.cat16[:n]
}

// convertInto rounds src to bfloat16 bits in buf, grown when needed, and returns them.
func convertInto(buf []uint16, src []float32) []uint16 {
	if cap(buf) < len(src) {
		buf = make([]uint16, len(src))
	}
	buf = buf[:len(src)]
	kernels.F32ToBF16(buf, src)
	return buf
}

// scratch16 returns a buffer of n bfloat16 values with arbitrary contents, valid until the next
// call: for a conversion used within one backward step.
func (tp *Tape) scratch16(n int) []uint16 {
	if cap(tp.tmp16) < n {
		tp.tmp16 = make([]uint16, n)
	}
	return tp.tmp16[:n]
}

// alloc32 is Alloc for packed bfloat16 pairs (kernels.GemmBF16Packed's B operand).
func (tp *Tape) alloc32(n int) []uint32 {
	f := tp.Alloc(n)
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(&f[0])), n)
}

// Alloc returns a buffer of n floats with arbitrary contents that lives until the end of this
// step (Backward or Reset); with a nil tape, plain memory. For ops defined outside this package.
func (tp *Tape) Alloc(n int) []float32 {
	if tp == nil {
		return make([]float32, n)
	}
	return tp.mem.get(n, tp.now())
}

// NewTensor returns a tensor whose data (arbitrary contents: the op must write all of it) and
// gradient live in this step's memory; with a nil tape, a plain zero tensor. Ops defined
// outside this package (MoE, LoRA) make their outputs with it.
func (tp *Tape) NewTensor(shape ...int) *Tensor {
	if tp == nil {
		return Zeros(shape...)
	}
	stamp := tp.now()
	t := &Tensor{Shape: append([]int(nil), shape...), Data: tp.mem.get(numel(shape), stamp), tape: tp, stamp: stamp}
	return t
}

// Reset drops everything recorded without running it (e.g. after an evaluation forward) and
// recycles the step's memory.
func (tp *Tape) Reset() {
	clear(tp.backward)
	tp.backward = tp.backward[:0]
	tp.releaseMem()
}

// Checkpoint runs fn without recording its internals, keeping nothing but what fn closes over; in backward
// it runs fn again on a fresh tape and backpropagates through that recomputation. It trades
// one extra forward of fn for not holding fn's activations (activation checkpointing). fn
// must be deterministic and must read only the given inputs and parameters it closes over.
func (tp *Tape) Checkpoint(fn func(tp *Tape) *Tensor) *Tensor {
	if !tp.Records() { // nothing to recompute for
		return fn(tp)
	}
	// The forward runs on a pooled inference tape (its activations in reused memory, not fresh
	// heap that the GC would let pile up) and its output is copied into this tape's memory,
	// which lives until the step's Backward.
	var out *Tensor
	WithInferenceTape(func(it *Tape) {
		o := fn(it)
		out = tp.NewTensor(o.Shape...)
		copy(out.Data, o.Data)
	})
	out.RequiresGrad = true
	tp.Record(func() {
		g := out.Grad()
		if g == nil {
			return
		}
		if tp.sub == nil {
			tp.sub = NewTape()
		}
		tp.sub.BackwardFrom(fn(tp.sub), g) // recycles the recomputed block's memory at once
	})
	return out
}
