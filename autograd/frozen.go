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

// FrozenGroup is frozen projections that read the same input (q, k and v; gate and up; or one
// projection alone), held as bfloat16 bits in one buffer laid out so that low-rank updates of
// their outputs (LoRA without dropout) fold into the projections' own products (FrozenLinears).
//
// Bits is [ΣOuts + ΣRanks, LD] with LD = In + ΣRanks. Projection i's rows hold its weight (In
// values) and, in its slot (columns In+Slot(i) to In+Slot(i)+Ranks[i]), its update's B [Outs[i],
// Ranks[i]]; after every projection's rows come the updates' A [Ranks[i], In], slot by slot
// (rows ΣOuts+Slot(i) on). Every other value is zero. A projection with rank 0 has no update.
type FrozenGroup struct {
	Bits        []uint16
	In, LD      int
	Outs, Ranks []int

	row, slot    []int // projection i's first row; update i's first slot column (from In)
	sumOut, sumR int
}

// NewFrozenGroup makes a zero group of projections [outs[i], in] with room for updates of
// ranks[i] (0: none).
func NewFrozenGroup(in int, outs, ranks []int) *FrozenGroup {
	if len(outs) == 0 || len(ranks) != len(outs) || in <= 0 {
		panic(fmt.Sprintf("autograd.NewFrozenGroup: in %d, outs %v, ranks %v", in, outs, ranks))
	}
	g := &FrozenGroup{In: in, Outs: slices.Clone(outs), Ranks: slices.Clone(ranks)}
	for i := range outs {
		if outs[i] <= 0 || ranks[i] < 0 {
			panic(fmt.Sprintf("autograd.NewFrozenGroup: outs %v, ranks %v", outs, ranks))
		}
		g.row, g.slot = append(g.row, g.sumOut), append(g.slot, g.sumR)
		g.sumOut += outs[i]
		g.sumR += ranks[i]
	}
	g.LD = in + g.sumR
	g.Bits = make([]uint16, (g.sumOut+g.sumR)*g.LD)
	return g
}

// Weight returns projection i's rows of Bits (row stride LD; its weight is the first In
// values of each row).
func (g *FrozenGroup) Weight(i int) []uint16 {
	return g.Bits[g.row[i]*g.LD : (g.row[i]+g.Outs[i])*g.LD]
}

// SetWeight rounds projection i's weight w [Outs[i], In] into its rows.
func (g *FrozenGroup) SetWeight(i int, w []float32) {
	if len(w) != g.Outs[i]*g.In {
		panic(fmt.Sprintf("autograd.FrozenGroup.SetWeight: %d values for a [%d, %d] projection", len(w), g.Outs[i], g.In))
	}
	kernels.F32ToBF16Matrix(g.Weight(i), g.LD, w, g.In, g.Outs[i], g.In)
}

// LowRank is the update y += Scale·(x·Aᵀ)·Bᵀ of one projection's output: A [R, In] and B
// [Out, R] are trainable (LoRA's lora_A and lora_B).
type LowRank struct {
	A, B  *Tensor
	Scale float32
}

// FrozenLinears returns y_i = x·W_iᵀ + Scale_i·(x·A_iᵀ)·B_iᵀ for each projection of g, ups[i]
// its update or nil for none, under the bf16 rule: x, Scale_i·x·A_iᵀ, dy and the
// weights are rounded to bfloat16, products accumulate in fp32. The update is folded into the
// projection's own product — [x | s·x·Aᵀ]·[W | B]ᵀ, K grown by R — and in backward x's
// gradient is one product for the whole group, [dy_0 … dy_n | dh_0 … dh_n]·[W_0; …; W_n; A_0;
// …; A_n]: no extra pass over y or over x's gradient per update. A's and B's bits are
// written into g from their fp32 values by each forward. Backward gives x, A and B their
// gradients (dB = dyᵀ·bf16(s·x·Aᵀ), dA = dhᵀ·bf16(x), dh = s·dy·bf16(B)); W has none.
func FrozenLinears(tp *Tape, x *Tensor, g *FrozenGroup, ups []*LowRank) []*Tensor {
	return frozenLinears(tp, x, g, ups, false)
}

// FrozenLinearsTaking is FrozenLinears for an x that nothing reads after it, forward or
// backward (an RMSNorm's or SwiGLU's output that feeds this group alone): the caller vouches
// for that. When the group trains updates, its widened input's bits — bf16(x) and the slots —
// are kept for its backward (dA and dB read them) and x's fp32 data goes back to the tape at
// once (x.Data is nil afterwards): no second conversion of x in backward, and the bits take
// half the memory the data did.
func FrozenLinearsTaking(tp *Tape, x *Tensor, g *FrozenGroup, ups []*LowRank) []*Tensor {
	return frozenLinears(tp, x, g, ups, true)
}

func frozenLinears(tp *Tape, x *Tensor, g *FrozenGroup, ups []*LowRank, take bool) []*Tensor {
	n, in := x.Rows()
	if in != g.In || len(ups) != len(g.Outs) {
		panic(fmt.Sprintf("autograd.FrozenLinears: x %v and %d updates for a group of %d projections of %d inputs", x.Shape, len(ups), len(g.Outs), g.In))
	}
	inputs := []*Tensor{x}
	active := false
	for i, u := range ups {
		if u == nil {
			continue
		}
		r := g.Ranks[i]
		if r == 0 || len(u.A.Shape) != 2 || u.A.Shape[0] != r || u.A.Shape[1] != in || len(u.B.Shape) != 2 || u.B.Shape[0] != g.Outs[i] || u.B.Shape[1] != r {
			panic(fmt.Sprintf("autograd.FrozenLinears: update %d has A %v, B %v; its slot is [%d, %d] by rank %d", i, u.A.Shape, u.B.Shape, g.Outs[i], in, r))
		}
		kernels.F32ToBF16Matrix(g.Bits[(g.sumOut+g.slot[i])*g.LD:], g.LD, u.A.Data, in, r, in)
		kernels.F32ToBF16Matrix(g.Weight(i)[in+g.slot[i]:], g.LD, u.B.Data, r, g.Outs[i], r)
		inputs = append(inputs, u.A, u.B)
		active = true
	}
	lead := x.Shape[:len(x.Shape)-1]
	outs := make([]*Tensor, len(ups))
	rec := false
	for i, o := range g.Outs {
		outs[i], rec = result(tp, append(slices.Clone(lead), o), inputs...)
	}
	if !tp.Records() && n <= kernels.GemvBatchMaxRows {
		g.decode(tp, x, ups, outs, active)
		return outs
	}

	// xc [N, LD] = [bf16(x) | bf16(s_i·x·A_iᵀ) …], in one buffer reused by every group, or
	// kept for backward when taking x.
	ld := in
	var hb []uint16 // the slots' bits, kept for dB: [N, ΣR], or xc's slot columns
	hld := g.sumR   // hb's row stride
	var xc []uint16
	keep := take && active && rec
	if active {
		ld = g.LD
		if keep {
			xc = tp.Alloc16(n * ld)
		} else {
			xc = tp.scratchCat(n * ld)
		}
		kernels.F32ToBF16Matrix(xc, ld, x.Data, in, n, in)
		h := tp.Alloc(n * g.sumR)
		if g.packed() { // h = xc·Aᵀ on the VDPBF16PS tiles, A packed from its fp32 values
			ap := tp.alloc32(in / 2 * g.sumR)
			for i, u := range ups {
				if u == nil {
					for p := range in / 2 {
						clear(ap[p*g.sumR+g.slot[i] : p*g.sumR+g.slot[i]+g.Ranks[i]])
					}
					continue
				}
				kernels.PackBF16Transposed(ap[g.slot[i]:], g.sumR, u.A.Data, in, g.Ranks[i], in)
			}
			kernels.GemmBF16Packed(h, g.sumR, xc, ld, ap, g.sumR, n, g.sumR, in, 1)
		} else {
			kernels.GemmBF16(false, true, n, g.sumR, in, 1, xc, ld, g.Bits[g.sumOut*g.LD:], g.LD, 0, h, g.sumR)
		}
		g.scaleSlots(h, n, ups)
		if keep {
			kernels.F32ToBF16Matrix(xc[in:], ld, h, g.sumR, n, g.sumR)
			hb, hld = xc[in:], ld
		} else {
			hb = tp.Alloc16(n * g.sumR)
			kernels.F32ToBF16(hb, h)
			kernels.Parallel(n, 1024, func(lo, hi int) {
				for r := lo; r < hi; r++ {
					copy(xc[r*ld+in:(r+1)*ld], hb[r*g.sumR:(r+1)*g.sumR])
				}
			})
		}
	} else {
		xc = tp.PassingBits(x)
	}
	for i, y := range outs {
		k := in
		if ups[i] != nil {
			k = in + g.slot[i] + g.Ranks[i] // the earlier slots of this projection's rows are zero
		}
		kernels.GemmBF16(false, true, n, g.Outs[i], k, 1, xc, ld, g.Weight(i), g.LD, 0, y.Data, g.Outs[i])
	}
	if !rec {
		return outs
	}
	var xb []uint16 // bf16(x) for dA, row stride ld, when kept
	if keep {
		xb = xc
		tp.takeData(x)
	}
	tp.Record(func() { g.backward(tp, x, ups, outs, hb, hld, xb, ld, active) })
	return outs
}

// packed reports whether the narrow products through the updates' ranks (x·Aᵀ, dy·B) run on
// kernels.GemmBF16Packed: where its VDPBF16PS tiles exist and the rows of the widened input
// are whole pairs. oneDNN's matmul runs products with n = 16 on its generic gemm:jit, 1.5 to 3
// times slower in a training step of `small`.
func (g *FrozenGroup) packed() bool {
	return kernels.HasGemmBF16Packed() && g.In%2 == 0 && g.LD%2 == 0
}

// scaleSlots multiplies h [N, ΣR]'s slot i by Scale_i, and zeroes the slots of projections
// without an update.
func (g *FrozenGroup) scaleSlots(h []float32, n int, ups []*LowRank) {
	for r := range n {
		row := h[r*g.sumR : (r+1)*g.sumR]
		for i, u := range ups {
			s := row[g.slot[i] : g.slot[i]+g.Ranks[i]]
			if u == nil {
				clear(s)
				continue
			}
			for j := range s {
				s[j] *= u.Scale
			}
		}
	}
}

// decode is FrozenLinears for the few rows of a decoding step, on the batched GEMV: x and its
// slots in fp32 (the GEMV rounds each row once), every projection over all LD columns (its
// other slots are zero).
func (g *FrozenGroup) decode(tp *Tape, x *Tensor, ups []*LowRank, outs []*Tensor, active bool) {
	n, in := x.Rows()
	xc := tp.Alloc(n * g.LD)
	for r := range n {
		copy(xc[r*g.LD:r*g.LD+in], x.Data[r*in:(r+1)*in])
		clear(xc[r*g.LD+in : (r+1)*g.LD])
	}
	if active {
		h := tp.Alloc(n * g.sumR)
		kernels.GemvBF16Batch(h, g.sumR, g.Bits[g.sumOut*g.LD:], xc, g.LD, n, g.sumR, g.LD)
		g.scaleSlots(h, n, ups)
		for r := range n {
			copy(xc[r*g.LD+in:(r+1)*g.LD], h[r*g.sumR:(r+1)*g.sumR])
		}
	}
	for i, y := range outs {
		kernels.GemvBF16Batch(y.Data, g.Outs[i], g.Weight(i), xc, g.LD, n, g.Outs[i], g.LD)
	}
}

// backward is FrozenLinears' backward: the group's dy and dh as bits side by side, so that x's
// gradient is one product over the stacked weights and A's.
// hb holds the slots' bits (row stride hld); xb, when not nil, bf16(x) (row stride xld).
func (g *FrozenGroup) backward(tp *Tape, x *Tensor, ups []*LowRank, outs []*Tensor, hb []uint16, hld int, xb []uint16, xld int, active bool) {
	n, in := x.Rows()
	ld := g.sumOut // d [N, ld] = [dy_0 … dy_n | dh_0 … dh_n]
	if active {
		ld += g.sumR
	}
	d := tp.scratch16(n * ld)
	flowing := false
	for i, y := range outs {
		if dy := y.Grad(); dy != nil {
			kernels.F32ToBF16Matrix(d[g.row[i]:], ld, dy, g.Outs[i], n, g.Outs[i])
			flowing = true
		} else {
			clearCols(d[g.row[i]:], ld, n, g.Outs[i])
		}
	}
	if !flowing {
		return
	}
	if active {
		needDh := x.RequiresGrad
		for i, u := range ups {
			if u == nil {
				clearCols(d[g.sumOut+g.slot[i]:], ld, n, g.Ranks[i])
				continue
			}
			r, o := g.Ranks[i], g.Outs[i]
			dy := d[g.row[i]:]
			if u.B.RequiresGrad { // dB[Out,R] = dyᵀ·bf16(s·h), made as its transpose [R, Out]: oneDNN runs that shape faster
				dBt := tp.Alloc(r * o)
				kernels.GemmBF16(true, false, r, o, n, 1, hb[g.slot[i]:], hld, dy, ld, 0, dBt, o)
				gB, beta := u.B.GradForWrite()
				if beta == 0 {
					clear(gB)
				}
				for q := range o {
					for j := range r {
						gB[q*r+j] += dBt[j*o+q]
					}
				}
			}
			needDh = needDh || u.A.RequiresGrad
		}
		if needDh {
			dh := tp.Alloc(n * g.sumR)
			for i, u := range ups {
				if u == nil {
					continue
				}
				r, o := g.Ranks[i], g.Outs[i]
				// dh[N,R] = s·dy·bf16(B): B's bits are the projection's slot columns.
				if g.packed() && ld%2 == 0 && g.row[i]%2 == 0 && o%2 == 0 {
					bp := tp.alloc32(o / 2 * r)
					kernels.PackBF16Rows(bp, r, u.B.Data, r, o, r)
					kernels.GemmBF16Packed(dh[g.slot[i]:], g.sumR, d[g.row[i]:], ld, bp, r, n, r, o, u.Scale)
					continue
				}
				kernels.GemmBF16(false, false, n, r, o, u.Scale, d[g.row[i]:], ld, g.Weight(i)[in+g.slot[i]:], g.LD, 0, dh[g.slot[i]:], g.sumR)
			}
			kernels.F32ToBF16Matrix(d[g.sumOut:], ld, dh, g.sumR, n, g.sumR)
			g.gradA(tp, x, ups, d[g.sumOut:], ld, xb, xld)
		}
	}
	if x.RequiresGrad { // dx[N,In] += [dy | dh]·[W; A]
		gx, beta := x.GradForWrite()
		kernels.GemmBF16(false, false, n, in, ld, 1, d, ld, g.Bits, g.LD, beta, gx, in)
	}
}

// gradA gives each update's A its gradient dA[R,In] = dhᵀ·bf16(x), all slots in one product
// (dh's bits are the columns of d from dh, row stride ld): bf16(x) is xb (row stride xld) when
// kept, else x converted again.
func (g *FrozenGroup) gradA(tp *Tape, x *Tensor, ups []*LowRank, dh []uint16, ld int, xb []uint16, xld int) {
	n, in := x.Rows()
	needed := false
	for _, u := range ups {
		needed = needed || (u != nil && u.A.RequiresGrad)
	}
	if !needed {
		return
	}
	if xb == nil {
		xb, xld = tp.PassingBits(x), in
	}
	ga := tp.Alloc(g.sumR * in)
	kernels.GemmBF16(true, false, g.sumR, in, n, 1, dh, ld, xb, xld, 0, ga, in)
	for i, u := range ups {
		if u == nil || !u.A.RequiresGrad {
			continue
		}
		src := ga[g.slot[i]*in : (g.slot[i]+g.Ranks[i])*in]
		if dst, beta := u.A.GradForWrite(); beta == 0 {
			copy(dst, src)
		} else {
			kernels.Add(dst, dst, src)
		}
	}
}

// clearCols zeroes cols columns of n rows of m (row stride ld).
func clearCols(m []uint16, ld, n, cols int) {
	for r := range n {
		clear(m[r*ld : r*ld+cols])
	}
}
