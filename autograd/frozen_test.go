package autograd

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gwen-ml/gwen/kernels/bf16"
)

// TestFrozenLinears checks a group of three frozen bf16 projections (one without an update
// slot, one whose update is switched off in the second case) against a float64 computation of
// the bf16 rule: outputs, and the gradients of x, A and B, from the forward's GEMM path, and the
// outputs of the decoding path. The shapes take the rank products onto the packed tiles, off
// them (an odd input width), and both within one group (the last projection's rows start at
// an odd row of [dy | dh], so its dh alone runs on oneDNN).
func TestFrozenLinears(t *testing.T) {
	for _, c := range []struct {
		name string
		in   int
		outs []int
	}{{"tiles", 40, []int{24, 12, 20}}, {"odd-input", 39, []int{24, 12, 20}}, {"odd-row", 40, []int{24, 13, 20}}} {
		t.Run(c.name, func(t *testing.T) { testFrozenLinears(t, c.in, c.outs) })
	}
}

func testFrozenLinears(t *testing.T, in int, outs []int) {
	const n = 37
	ranks := []int{4, 0, 4}
	scales := []float32{2, 0, 0.75}
	rng := rand.New(rand.NewPCG(1, 2))
	uni := func(k int, bound float64) []float32 {
		v := make([]float32, k)
		for i := range v {
			v[i] = float32((2*rng.Float64() - 1) * bound)
		}
		return v
	}
	ws := make([][]float32, 3)
	for i := range ws {
		ws[i] = uni(outs[i]*in, 1/math.Sqrt(float64(in)))
	}
	as, bs := make([][]float32, 3), make([][]float32, 3)
	for _, i := range []int{0, 2} {
		as[i], bs[i] = uni(ranks[i]*in, 1/math.Sqrt(float64(in))), uni(outs[i]*ranks[i], 0.5)
	}
	x0 := uni(n*in, 1)
	gs := make([][]float32, 3)
	for i := range gs {
		gs[i] = uni(n*outs[i], 1)
	}
	g := NewFrozenGroup(in, outs, ranks)
	for i := range ws {
		g.SetWeight(i, ws[i])
	}
	rd := func(v float32) float64 { return float64(bf16.Round(v)) }

	for _, on := range [][]bool{{true, false, true}, {true, false, false}} {
		// float64 reference of the bf16 rule.
		yRef := make([][]float64, 3)
		dxRef := make([]float64, n*in)
		dxBase := make([]float64, n*in) // without the updates' part: the test must see it
		dARef, dBRef := make([][]float64, 3), make([][]float64, 3)
		for i := range 3 {
			o, r := outs[i], ranks[i]
			yRef[i] = make([]float64, n*o)
			sh := make([]float64, n*r)
			if on[i] {
				for p := range n {
					for j := range r {
						h := 0.0
						for k := range in {
							h += rd(x0[p*in+k]) * rd(as[i][j*in+k])
						}
						sh[p*r+j] = rd(scales[i] * float32(h))
					}
				}
			}
			for p := range n {
				for q := range o {
					y := 0.0
					for k := range in {
						y += rd(x0[p*in+k]) * rd(ws[i][q*in+k])
					}
					for j := 0; on[i] && j < r; j++ {
						y += sh[p*r+j] * rd(bs[i][q*r+j])
					}
					yRef[i][p*o+q] = y
					dy := rd(gs[i][p*o+q])
					for k := range in {
						dxRef[p*in+k] += dy * rd(ws[i][q*in+k])
						dxBase[p*in+k] += dy * rd(ws[i][q*in+k])
					}
				}
			}
			if !on[i] {
				continue
			}
			dARef[i], dBRef[i] = make([]float64, r*in), make([]float64, o*r)
			for p := range n {
				for j := range r {
					dh := 0.0
					for q := range o {
						dy := rd(gs[i][p*o+q])
						dh += dy * rd(bs[i][q*r+j])
						dBRef[i][q*r+j] += dy * sh[p*r+j]
					}
					dhb := rd(scales[i] * float32(dh))
					for k := range in {
						dARef[i][j*in+k] += dhb * rd(x0[p*in+k])
						dxRef[p*in+k] += dhb * rd(as[i][j*in+k])
					}
				}
			}
		}

		var ups []*LowRank
		var params []*Tensor
		// FrozenLinears on a parameter x, then FrozenLinearsTaking on an activation (x + 0, on
		// the tape) whose data it must take: the same numbers, from bits kept instead of
		// converted again.
		for _, take := range []bool{false, true} {
			ups, params = make([]*LowRank, 3), nil
			for i := range 3 {
				if on[i] {
					ups[i] = &LowRank{A: Param("a", slices.Clone(as[i]), ranks[i], in), B: Param("b", slices.Clone(bs[i]), outs[i], ranks[i]), Scale: scales[i]}
					params = append(params, ups[i].A, ups[i].B)
				}
			}
			xp := Param("x", slices.Clone(x0), n, in)
			tp := NewTape()
			x, op := xp, FrozenLinears
			if take {
				x, op = Add(tp, xp, New(make([]float32, n*in), n, in)), FrozenLinearsTaking
			}
			ys := op(tp, x, g, ups)
			if take && x.Data != nil {
				t.Fatal("FrozenLinearsTaking kept its input's data")
			}
			for i := range 3 {
				near(t, "y", ys[i].Data, yRef[i], 4e-3)
			}
			ys[1].SetGrad(slices.Clone(gs[1]))
			ys[2].SetGrad(slices.Clone(gs[2]))
			tp.BackwardFrom(ys[0], gs[0])
			near(t, "dx", xp.Grad(), dxRef, 4e-3)
			if d := maxDiff(dxRef, dxBase); d < 0.05*maxAbs(dxRef) {
				t.Fatalf("the updates' part of dx is too small (%g) to test", d)
			}
			for i := range 3 {
				if on[i] {
					near(t, "dA", ups[i].A.Grad(), dARef[i], 4e-3)
					near(t, "dB", ups[i].B.Grad(), dBRef[i], 4e-3)
				}
			}
		}

		// Without a tape: the GEMM path for many rows, the batched GEMV for a decoding step.
		for _, rows := range []int{n, 3} {
			xi := New(slices.Clone(x0[:rows*in]), rows, in)
			for _, p := range params {
				p.RequiresGrad = false
			}
			ys := FrozenLinears(nil, xi, g, ups)
			for _, p := range params {
				p.RequiresGrad = true
			}
			for i := range 3 {
				near(t, "inference y", ys[i].Data, yRef[i][:rows*outs[i]], 4e-3)
			}
		}
	}
}

// near fails unless got is within tol·max|want| of want everywhere.
func near(t *testing.T, name string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	lim := tol * maxAbs(want)
	for i := range got {
		if d := math.Abs(float64(got[i]) - want[i]); !(d <= lim) {
			t.Fatalf("%s[%d] = %g, want %g (tolerance %g)", name, i, got[i], want[i], lim)
		}
	}
}

func maxAbs(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, math.Abs(x))
	}
	return m
}

func maxDiff(a, b []float64) float64 {
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(a[i]-b[i]))
	}
	return m
}
