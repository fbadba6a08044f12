package lora

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/internal/freelist"
	"github.com/gwen-ml/gwen/kernels"
)

// Shapes: N token rows, In and Out the wrapped Linear's sizes, R the adapter's rank.

// Adapter is a trainable LoRA pair on one Linear (it implements layers.Adapter): the Linear's
// output becomes y = x·Wᵀ + Scale·(dropout(x)·Aᵀ)·Bᵀ, as PEFT's lora.Linear computes it. A and
// B are parameters named by their PEFT keys; the base W is not touched.
type Adapter struct {
	Name       string           // module path, e.g. model.layers.0.self_attn.q_proj
	A          *autograd.Tensor // lora_A.weight [R, In]
	B          *autograd.Tensor // lora_B.weight [Out, R]
	R, In, Out int
	Scale      float32

	set *Set
	key uint64 // FNV-1a of Name: the module's part of its dropout key
	lr  autograd.LowRank
}

// Rank is the adapter's rank R (layers.LowRankAdapter).
func (a *Adapter) Rank() int { return a.R }

// LowRank returns the adapter as the update Scale·(x·Aᵀ)·Bᵀ for a product that folds it in
// (layers.LowRankAdapter, autograd.FrozenLinears): nil while the set is switched off, and not
// ok while dropout is on (then Forward runs it on the base's output).
func (a *Adapter) LowRank() (*autograd.LowRank, bool) {
	switch {
	case a.set.disabled:
		return nil, true
	case a.set.dropping():
		return nil, false
	}
	a.lr = autograd.LowRank{A: a.A, B: a.B, Scale: a.Scale}
	return &a.lr, true
}

// Forward adds the adapter's correction to y = base(x), the Linear's fresh output [.., Out]
// for x [.., In], and returns y. The sum is written into y itself: y is the base product's
// output, which nothing has read yet, so an adapted Linear needs no second [N, Out] buffer,
// and the gradient of the sum flows to the base product unchanged (∂/∂y = 1). With bf16 the
// inputs of the two products (x and A, then x·Aᵀ and B) are rounded to bfloat16 and
// accumulated in fp32, and so are backward's (dy, B, x·Aᵀ, and the adapter-input gradient).
// A disabled set (Set.SetDisabled) returns y unchanged and records nothing.
func (a *Adapter) Forward(tp *autograd.Tape, x, y *autograd.Tensor, bf16 bool) *autograd.Tensor {
	s := a.set
	if s.disabled {
		return y
	}
	n, in := x.Rows()
	if ny, out := y.Rows(); in != a.In || out != a.Out || ny != n {
		panic(fmt.Sprintf("lora.Adapter.Forward %s: x %v, y %v; the adapter maps [N, %d] to [N, %d]", a.Name, x.Shape, y.Shape, a.In, a.Out))
	}
	if bf16 {
		return a.forwardBF16(tp, x, y)
	}
	r, out, scale := a.R, a.Out, a.Scale
	gemm := kernels.Sgemm

	// Dropout on the adapter's input, as PEFT's lora_dropout: kept values are divided by 1-p.
	xd, drop := x.Data, s.dropping()
	var mask []uint16
	_, keep := s.dropoutRule()
	if drop {
		mask = tp.Alloc16((len(x.Data) + 15) / 16)
		s.dropoutMask(mask, len(x.Data), s.dropoutKey(a.key))
		xd = tp.Alloc(len(x.Data))
		dropped(xd, x.Data, mask, keep)
	}
	h := tp.Alloc(n * r) // [N, R] = dropout(x)·Aᵀ
	gemm(false, true, n, r, in, 1, xd, in, a.A.Data, in, 0, h, r)
	gemm(false, true, n, out, r, scale, h, r, a.B.Data, r, 1, y.Data, out)

	if !tp.Recording(x, a.A, a.B) {
		return y
	}
	y.RequiresGrad = true
	A, B := a.A, a.B
	tp.Record(func() {
		g := y.Grad() // [N, Out]
		if g == nil {
			return
		}
		if B.RequiresGrad { // dB[Out,R] = Scale·dyᵀ·h
			gb, beta := B.GradForWrite()
			gemm(true, false, out, r, n, scale, g, out, h, r, beta, gb, r)
		}
		if !A.RequiresGrad && !x.RequiresGrad {
			return
		}
		dh := tp.Alloc(n * r) // [N, R] = Scale·dy·B
		gemm(false, false, n, r, out, scale, g, out, B.Data, r, 0, dh, r)
		if A.RequiresGrad { // dA[R,In] = dhᵀ·dropout(x)
			ga, beta := A.GradForWrite()
			gemm(true, false, r, in, n, 1, dh, r, xd, in, beta, ga, in)
		}
		if x.RequiresGrad { // dx[N,In] += dropout'(dh·A)
			if !drop {
				gx, beta := x.GradForWrite()
				gemm(false, false, n, in, r, 1, dh, r, A.Data, in, beta, gx, in)
				return
			}
			dxd := tp.Alloc(n * in) // the forward's mask and 1/(1-p)
			gemm(false, false, n, in, r, keep, dh, r, A.Data, in, 0, dxd, in)
			zeroDropped(dxd, mask, len(dxd))
			kernels.Add(x.GradBuf(), x.GradBuf(), dxd)
		}
	})
	return y
}

// forwardBF16 is Forward in mixed precision: the numbers of SgemmBF16 (operands rounded to
// bfloat16, fp32 accumulation) on bits the tape shares. x's bits are the ones the base product
// just made (Tape.PassingBits), made again once in backward for all adapters reading x, and
// dy's are the ones the base product's backward uses too (Tape.GradBits); only the thin
// [N, R] products are kept for backward.
func (a *Adapter) forwardBF16(tp *autograd.Tape, x, y *autograd.Tensor) *autograd.Tensor {
	s := a.set
	n, in := x.Rows()
	r, out, scale := a.R, a.Out, a.Scale
	A, B := a.A, a.B

	// Dropout on the adapter's input, as PEFT's lora_dropout: kept values are divided by 1-p.
	// The mask is drawn once (1 bit per element, kept for backward); the dropped input's bits
	// are made from it when a product needs them, in forward and again in backward, rather than
	// kept for the step.
	drop := s.dropping()
	var mask []uint16
	_, keep := s.dropoutRule()
	if drop {
		mask = tp.Alloc16((len(x.Data) + 15) / 16)
		s.dropoutMask(mask, len(x.Data), s.dropoutKey(a.key))
	}
	withInBits := func(f func(b []uint16)) {
		if !drop {
			f(tp.PassingBits(x))
			return
		}
		buf := dropBits.Get()
		defer dropBits.Put(buf)
		if cap(*buf) < len(x.Data) {
			*buf = make([]uint16, len(x.Data))
		}
		b := (*buf)[:len(x.Data)]
		maskedBits(b, x.Data, mask, keep)
		f(b)
	}
	h := tp.Alloc(n * r) // [N, R] = dropout(x)·Aᵀ
	withInBits(func(xb []uint16) { kernels.GemmBF16F32B(false, true, n, r, in, 1, xb, in, A.Data, in, 0, h, r) })
	hb := tp.Alloc16(n * r)
	kernels.F32ToBF16(hb, h)
	kernels.GemmBF16F32B(false, true, n, out, r, scale, hb, r, B.Data, r, 1, y.Data, out)

	if !tp.Recording(x, A, B) {
		return y
	}
	y.RequiresGrad = true
	tp.Record(func() {
		g := y.Grad() // [N, Out]
		if g == nil {
			return
		}
		gb := tp.GradBits(y)
		if B.RequiresGrad { // dB[Out,R] = Scale·dyᵀ·h
			gB, beta := B.GradForWrite()
			kernels.GemmBF16(true, false, out, r, n, scale, gb, out, hb, r, beta, gB, r)
		}
		if !A.RequiresGrad && !x.RequiresGrad {
			return
		}
		dh := tp.Alloc(n * r) // [N, R] = Scale·dy·B
		kernels.GemmBF16F32B(false, false, n, r, out, scale, gb, out, B.Data, r, 0, dh, r)
		dhb := tp.Alloc16(n * r)
		kernels.F32ToBF16(dhb, dh)
		if A.RequiresGrad { // dA[R,In] = dhᵀ·dropout(x)
			gA, beta := A.GradForWrite()
			withInBits(func(xb []uint16) { kernels.GemmBF16(true, false, r, in, n, 1, dhb, r, xb, in, beta, gA, in) })
		}
		if x.RequiresGrad { // dx[N,In] += dropout'(dh·A)
			if !drop {
				gx, beta := x.GradForWrite()
				kernels.GemmBF16F32B(false, false, n, in, r, 1, dhb, r, A.Data, in, beta, gx, in)
				return
			}
			dxd := tp.Alloc(n * in) // the forward's mask and 1/(1-p)
			kernels.GemmBF16F32B(false, false, n, in, r, keep, dhb, r, A.Data, in, 0, dxd, in)
			zeroDropped(dxd, mask, len(dxd))
			kernels.Add(x.GradBuf(), x.GradBuf(), dxd)
		}
	})
	return y
}

// dropBits holds the dropped inputs' bits of forwardBF16 between uses.
var dropBits freelist.List[[]uint16]

// newAdapter makes the adapter of module name ([out, in] Linear) with zero weights.
func newAdapter(s *Set, name string, r, in, out int, sc float32) *Adapter {
	h := fnv.New64a()
	h.Write([]byte(name))
	return &Adapter{
		Name: name, R: r, In: in, Out: out, Scale: sc, set: s, key: h.Sum64(),
		A: autograd.Param(keyPrefix+name+suffixA, make([]float32, r*in), r, in),
		B: autograd.Param(keyPrefix+name+suffixB, make([]float32, out*r), out, r),
	}
}

// initPEFT is PEFT's default initialisation (reset_lora_parameters with
// init_lora_weights=True): A kaiming-uniform with a=√5, which is U(-1/√in, 1/√in) (torch's
// kaiming_uniform_: gain √(2/(1+a²)) = √(1/3), bound gain·√(3/fan_in), fan_in = in), and B
// zero, so the adapted model starts equal to the base. A's values come from a PCG seeded by
// (seed, the module's name), so each module's draw does not depend on which others are adapted.
func (a *Adapter) initPEFT(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, a.key))
	bound := 1 / math.Sqrt(float64(a.In))
	for i := range a.A.Data {
		a.A.Data[i] = float32((2*rng.Float64() - 1) * bound)
	}
	clear(a.B.Data)
}

// mix64 is SplitMix64's finaliser: a bijection of 64-bit values with full avalanche.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
