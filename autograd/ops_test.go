package autograd

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/kernels"
)

// Every op's backward is checked against central finite differences of an independent float64
// forward (the kernels' generic naive references instantiated at float64, or plain loops), for
// the scalar L = Σ r·out with random r.

type gradCase struct {
	name   string
	inputs [][]float32                          // initial values of the differentiable inputs
	shapes [][]int                              // their shapes
	fwd    func(tp *Tape, in []*Tensor) *Tensor // the op under test (float32)
	ref    func(in [][]float64) []float64       // the same function in float64
}

func randVec(r *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * scale)
	}
	return v
}

func to64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

func runGradCase(t *testing.T, c gradCase) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 11))
	tp := NewTape()
	var ins []*Tensor
	for i, data := range c.inputs {
		x := New(append([]float32(nil), data...), c.shapes[i]...)
		x.RequiresGrad = true
		ins = append(ins, x)
	}
	out := c.fwd(tp, ins)
	weights := randVec(r, len(out.Data), 1)
	// the forward itself must agree with the float64 reference
	in64 := make([][]float64, len(c.inputs))
	for i := range c.inputs {
		in64[i] = to64(c.inputs[i])
	}
	ref := c.ref(in64)
	for j := range ref {
		if math.Abs(float64(out.Data[j])-ref[j]) > 1e-4*(1+math.Abs(ref[j])) {
			t.Fatalf("%s forward [%d] = %g, float64 reference %g", c.name, j, out.Data[j], ref[j])
		}
	}
	tp.BackwardFrom(out, weights)
	loss := func(in [][]float64) float64 {
		o := c.ref(in)
		s := 0.0
		for j, v := range o {
			s += float64(weights[j]) * v
		}
		return s
	}
	const h = 1e-6
	for i := range in64 {
		g := ins[i].Grad()
		step := max(1, len(in64[i])/40) // probe at most ~40 elements per input
		for j := 0; j < len(in64[i]); j += step {
			old := in64[i][j]
			in64[i][j] = old + h
			lp := loss(in64)
			in64[i][j] = old - h
			lm := loss(in64)
			in64[i][j] = old
			fd := (lp - lm) / (2 * h)
			var got float64
			if g != nil {
				got = float64(g[j])
			}
			if math.Abs(got-fd) > 2e-3*(1+math.Abs(fd)) {
				t.Errorf("%s: d/d input%d[%d] = %.7g, finite difference %.7g", c.name, i, j, got, fd)
			}
		}
	}
}

func TestOpGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n, d, out = 6, 10, 7
	ids := []int32{3, 1, 3, 0, 4, 1}
	pos := []int32{0, 1, 2, 0, 1, 5}
	hd, heads := 8, 2
	rope := kernels.RoPE{Type: "default", Theta: 10000, HeadDim: hd, MaxPositionEmbeddings: 64}
	inv, sc := rope.InvFreq(8)
	cos, sin := make([]float32, 8*hd), make([]float32, 8*hd)
	kernels.RoPETables(cos, sin, inv, sc, 8, hd)
	cos64, sin64 := to64(cos), to64(sin)

	B, T, H, KV, HD := 2, 5, 4, 2, 6
	docs := []int32{0, 0, 2, 2, 2, 0, 1, 1, 1, 4}
	opt := kernels.AttnOpts{Scale: 0.4, DocStart: docs}
	targets := []int32{2, -100, 0, 6, 6, 1}

	cases := []gradCase{
		{
			name: "Add", inputs: [][]float32{randVec(r, n*d, 1), randVec(r, n*d, 1)}, shapes: [][]int{{n, d}, {n, d}},
			fwd: func(tp *Tape, in []*Tensor) *Tensor { return Add(tp, in[0], in[1]) },
			ref: func(in [][]float64) []float64 {
				o := make([]float64, len(in[0]))
				for i := range o {
					o[i] = in[0][i] + in[1][i]
				}
				return o
			},
		},
		{
			name: "Embedding", inputs: [][]float32{randVec(r, 5*d, 1)}, shapes: [][]int{{5, d}},
			fwd: func(tp *Tape, in []*Tensor) *Tensor { return Embedding(tp, in[0], ids) },
			ref: func(in [][]float64) []float64 {
				o := make([]float64, n*d)
				kernels.EmbeddingForwardRef(o, in[0], ids, n, d)
				return o
			},
		},
		{
			name: "RMSNorm", inputs: [][]float32{randVec(r, n*d, 1), randVec(r, d, 1)}, shapes: [][]int{{n, d}, {d}},
			fwd: func(tp *Tape, in []*Tensor) *Tensor { return RMSNorm(tp, in[0], in[1], 1e-6) },
			ref: func(in [][]float64) []float64 {
				o, rstd := make([]float64, n*d), make([]float64, n)
				kernels.RMSNormForwardRef(o, rstd, in[0], in[1], n, d, 1e-6)
				return o
			},
		},
		{
			name: "Linear", inputs: [][]float32{randVec(r, n*d, 1), randVec(r, out*d, 1)}, shapes: [][]int{{n, d}, {out, d}},
			fwd: func(tp *Tape, in []*Tensor) *Tensor { return Linear(tp, in[0], in[1], false) },
			ref: func(in [][]float64) []float64 {
				o := make([]float64, n*out)
				for i := 0; i < n; i++ {
					for j := 0; j < out; j++ {
						for k := 0; k < d; k++ {
							o[i*out+j] += in[0][i*d+k] * in[1][j*d+k]
						}
					}
				}
				return o
			},
		},
		{
			name: "RoPE", inputs: [][]float32{randVec(r, n*heads*hd, 1)}, shapes: [][]int{{n, heads * hd}},
			fwd: func(tp *Tape, in []*Tensor) *Tensor { return RoPE(tp, in[0], pos, cos, sin, heads, hd) },
			ref: func(in [][]float64) []float64 {
				o := make([]float64, len(in[0]))
				kernels.RoPEForwardRef(o, in[0], pos, cos64, sin64, n, heads, hd)
				return o
			},
		},
		{
			name: "NormRoPE", inputs: [][]float32{randVec(r, n*heads*hd, 1), randVec(r, hd, 1)}, shapes: [][]int{{n, heads * hd}, {hd}},
			fwd: func(tp *Tape, in []*Tensor) *Tensor {
				return NormRoPE(tp, in[0], in[1], 1e-6, pos, cos, sin, heads, hd)
			},
			ref: func(in [][]float64) []float64 {
				mid, rstd, o := make([]float64, len(in[0])), make([]float64, n*heads), make([]float64, len(in[0]))
				kernels.RMSNormForwardRef(mid, rstd, in[0], in[1], n*heads, hd, 1e-6)
				kernels.RoPEForwardRef(o, mid, pos, cos64, sin64, n, heads, hd)
				return o
			},
		},
		{
			name:   "Attention",
			inputs: [][]float32{randVec(r, B*T*H*HD, 1), randVec(r, B*T*KV*HD, 1), randVec(r, B*T*KV*HD, 1)},
			shapes: [][]int{{B * T, H * HD}, {B * T, KV * HD}, {B * T, KV * HD}},
			fwd:    func(tp *Tape, in []*Tensor) *Tensor { return Attention(tp, in[0], in[1], in[2], B, T, H, KV, HD, opt) },
			ref: func(in [][]float64) []float64 {
				o, lse := make([]float64, B*T*H*HD), make([]float64, B*H*T)
				kernels.AttentionForwardRef(o, lse, in[0], in[1], in[2], B, T, H, KV, HD, opt)
				return o
			},
		},
		{
			name: "SwiGLU", inputs: [][]float32{randVec(r, n*d, 2), randVec(r, n*d, 1)}, shapes: [][]int{{n, d}, {n, d}},
			fwd: func(tp *Tape, in []*Tensor) *Tensor { return SwiGLU(tp, in[0], in[1]) },
			ref: func(in [][]float64) []float64 {
				o := make([]float64, n*d)
				kernels.SwiGLUForwardRef(o, in[0], in[1], n*d)
				return o
			},
		},
		{
			name: "CrossEntropy", inputs: [][]float32{randVec(r, n*out, 2)}, shapes: [][]int{{n, out}},
			fwd: func(tp *Tape, in []*Tensor) *Tensor {
				l, _, _ := CrossEntropy(tp, in[0], targets, 3) // denominator from a larger accumulated batch
				return l
			},
			ref: func(in [][]float64) []float64 {
				lse := make([]float64, n)
				s, _ := kernels.CrossEntropyForwardRef(lse, in[0], targets, n, out)
				return []float64{s / 3}
			},
		},
		{
			name: "Checkpoint(RMSNorm∘Linear∘Add)", inputs: [][]float32{randVec(r, n*d, 1), randVec(r, d, 1), randVec(r, d*d, 0.3)},
			shapes: [][]int{{n, d}, {d}, {d, d}},
			fwd: func(tp *Tape, in []*Tensor) *Tensor {
				return tp.Checkpoint(func(tp *Tape) *Tensor {
					return Add(tp, in[0], Linear(tp, RMSNorm(tp, in[0], in[1], 1e-6), in[2], false))
				})
			},
			ref: func(in [][]float64) []float64 {
				h, rstd := make([]float64, n*d), make([]float64, n)
				kernels.RMSNormForwardRef(h, rstd, in[0], in[1], n, d, 1e-6)
				o := append([]float64(nil), in[0]...)
				for i := 0; i < n; i++ {
					for j := 0; j < d; j++ {
						for k := 0; k < d; k++ {
							o[i*d+j] += h[i*d+k] * in[2][j*d+k]
						}
					}
				}
				return o
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runGradCase(t, c) })
	}
}

func TestGradientsAccumulateAcrossUses(t *testing.T) {
	// x used twice (x + x) must collect both contributions: d/dx Σ r·2x = 2r.
	tp := NewTape()
	x := New([]float32{1, 2, 3}, 3)
	x.RequiresGrad = true
	y := Add(tp, x, x)
	tp.BackwardFrom(y, []float32{0.5, -1, 2})
	for i, want := range []float32{1, -2, 4} {
		if x.Grad()[i] != want {
			t.Fatalf("grad %v, want [1 -2 4]", x.Grad())
		}
	}
}

func TestNoGradRecordsNothing(t *testing.T) {
	w := Param("w", []float32{1, 2, 3, 4}, 2, 2)
	x := New([]float32{1, 1}, 1, 2)
	var tp *Tape
	y := Linear(tp, x, w, false)
	if y.RequiresGrad || tp.Len() != 0 || w.Grad() != nil {
		t.Fatal("a nil tape recorded or allocated gradients")
	}
	if y.Data[0] != 3 || y.Data[1] != 7 {
		t.Fatalf("Linear = %v, want [3 7]", y.Data)
	}
}

func TestShapeMismatchPanicsNamingShapes(t *testing.T) {
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("Linear with mismatched shapes did not panic")
		}
		if s, _ := r.(string); s == "" || !strings.Contains(s, "[2 3]") || !strings.Contains(s, "[4 5]") {
			t.Fatalf("panic %q does not name both shapes", r)
		}
	}()
	Linear(nil, Zeros(2, 3), Zeros(4, 5), false)
}

// A bf16 Linear on a tape follows the mixed-precision rule in forward and backward: out, dx and
// dw equal float64 products of bfloat16-rounded x, w and dy. x feeds two Linears, one through a
// Reshape view (so its bf16 copy is shared), and a second step after x's data changed must see
// the new data, not the first step's copy.
func TestLinearBF16OnTape(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n, in, o1, o2 = 5, 40, 33, 17
	rnd := func(v []float32) []float64 {
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(kernels.RoundBF16Value(x))
		}
		return out
	}
	w1 := Param("w1", randVec(rng, o1*in, 1), o1, in)
	w2 := Param("w2", randVec(rng, o2*in, 1), o2, in)
	tp := NewTape()
	x := New(randVec(rng, n*in, 1), n, in)
	x.RequiresGrad = true
	for step := range 2 {
		if step == 1 { // new values in the same tensor: a stale bf16 copy would show
			copy(x.Data, randVec(rng, n*in, 1))
			x.SetGrad(nil)
		}
		w1.SetGrad(nil)
		w2.SetGrad(nil)
		y1 := Linear(tp, x, w1, true)
		y2 := Linear(tp, x.Reshape(n, 1, in), w2, true)
		r1, r2 := randVec(rng, n*o1, 1), randVec(rng, n*o2, 1)
		xr, w1r, w2r, d1, d2 := rnd(x.Data), rnd(w1.Data), rnd(w2.Data), rnd(r1), rnd(r2)
		check := func(name string, got []float32, want []float64) {
			t.Helper()
			for i := range want {
				if math.Abs(float64(got[i])-want[i]) > 1e-5*(1+math.Abs(want[i])) {
					t.Fatalf("step %d %s[%d] = %v, want %v", step, name, i, got[i], want[i])
				}
			}
		}
		for _, c := range []struct {
			name string
			y    *Tensor
			wr   []float64
			o    int
		}{{"y1", y1, w1r, o1}, {"y2", y2, w2r, o2}} {
			want := make([]float64, n*c.o)
			for i := range n {
				for j := range c.o {
					for k := range in {
						want[i*c.o+j] += xr[i*in+k] * c.wr[j*in+k]
					}
				}
			}
			check(c.name, c.y.Data, want)
		}
		// L = Σ r1·y1 + Σ r2·y2, as one backward through both.
		y2.SetGrad(append([]float32(nil), r2...))
		tp.BackwardFrom(y1, r1)
		dx := make([]float64, n*in)
		dw1, dw2 := make([]float64, o1*in), make([]float64, o2*in)
		for i := range n {
			for k := range in {
				for j := range o1 {
					dx[i*in+k] += d1[i*o1+j] * w1r[j*in+k]
					dw1[j*in+k] += d1[i*o1+j] * xr[i*in+k]
				}
				for j := range o2 {
					dx[i*in+k] += d2[i*o2+j] * w2r[j*in+k]
					dw2[j*in+k] += d2[i*o2+j] * xr[i*in+k]
				}
			}
		}
		check("dx", x.Grad(), dx)
		check("dw1", w1.Grad(), dw1)
		check("dw2", w2.Grad(), dw2)
		if x.bf16 != nil {
			t.Fatalf("step %d: x keeps its bf16 copy after the step", step)
		}
	}
}

// Add hands its output's gradient buffer to its first input when that input is an activation
// of the same tape with no gradient yet; what later flows into that input adds to it. Chains of
// residual adds, an input also read earlier by another op, and x + x keep the right sums
// (analytic: d = 2(a + silu(a)·p), a = p + q).
func TestAddPassesGradientBuffers(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const n = 300
	p := Param("p", randVec(rng, n, 1), n)
	q := Param("q", randVec(rng, n, 1), n)
	r := randVec(rng, n, 1)
	tp := NewTape()
	for range 2 {
		p.SetGrad(nil)
		q.SetGrad(nil)
		a := Add(tp, p, q)    // an activation: takes nothing (p, q are parameters)
		s := SwiGLU(tp, a, p) // reads a before the Add below: adds into a's gradient later
		c := Add(tp, a, s)    // a takes c's gradient buffer
		d := Add(tp, c, c)    // c takes d's, then adds it again
		tp.BackwardFrom(d, r)
		for i := range n {
			av, pv := float64(p.Data[i]+q.Data[i]), float64(p.Data[i])
			sig := 1 / (1 + math.Exp(-av))
			silu, dsilu := av*sig, sig*(1+av*(1-sig))
			da := 2 * float64(r[i]) * (1 + dsilu*pv)
			dp, dq := da+2*float64(r[i])*silu, da
			if math.Abs(float64(p.Grad()[i])-dp) > 1e-5*(1+math.Abs(dp)) || math.Abs(float64(q.Grad()[i])-dq) > 1e-5*(1+math.Abs(dq)) {
				t.Fatalf("element %d: dp %v dq %v, want %v %v", i, p.Grad()[i], q.Grad()[i], dp, dq)
			}
		}
	}
}

// ZeroGrad defers its clearing: a zeroed gradient reads as zeros, adds start from zero, and a
// weight-gradient GEMM overwrites it without it ever being cleared; the second step's
// gradients equal the first's, in fp32 and bf16.
func TestZeroGradIsLazyButExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	w := Param("w", randVec(rng, 6*4, 1), 6, 4)
	u := Param("u", randVec(rng, 4, 1), 4) // read by nothing in step 2
	x := New(randVec(rng, 3*4, 1), 3, 4)
	r := randVec(rng, 3*6, 1)
	for _, bf16 := range []bool{false, true} {
		tp := NewTape()
		var first []float32
		for step := range 3 {
			w.ZeroGrad()
			u.ZeroGrad()
			if step == 0 {
				u.SetGrad([]float32{1, 2, 3, 4})
				w.SetGrad(make([]float32, len(w.Data)))
				w.ZeroGrad()
				u.ZeroGrad()
			}
			y := Linear(tp, x, w, bf16)
			tp.BackwardFrom(y, r)
			if step == 0 {
				first = append([]float32(nil), w.Grad()...)
				continue
			}
			for i, g := range w.Grad() {
				if g != first[i] {
					t.Fatalf("bf16=%v step %d: dw[%d] = %v, the first step gave %v (stale values leaked in)", bf16, step, i, g, first[i])
				}
			}
			for i, g := range u.Grad() {
				if g != 0 {
					t.Fatalf("bf16=%v: a zeroed, untouched gradient reads %v at %d", bf16, g, i)
				}
			}
		}
	}
}

// A frozen norm weight (RequiresGrad false, as LoRA leaves the base) gains no gradient, and the
// input's gradient is the same as with a trainable weight.
func TestFrozenNormWeightGetsNoGradient(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const n, heads, hd = 3, 2, 4
	xd, wd := randVec(r, n*heads*hd, 1), randVec(r, hd, 1)
	pos := []int32{0, 1, 2}
	cos, sin := make([]float32, 3*hd), make([]float32, 3*hd)
	kernels.RoPETables(cos, sin, []float32{1, 0.1}, 1, 3, hd)
	for _, op := range []string{"RMSNorm", "NormRoPE"} {
		var dx [2][]float32
		for i, frozen := range []bool{false, true} {
			x, w := Param("x", append([]float32(nil), xd...), n*heads, hd), Param("w", append([]float32(nil), wd...), hd)
			w.RequiresGrad = !frozen
			tp := NewTape()
			var out *Tensor
			if op == "RMSNorm" {
				out = RMSNorm(tp, x, w, 1e-6)
			} else {
				out = NormRoPE(tp, x.Reshape(n, heads*hd), w, 1e-6, pos, cos, sin, heads, hd)
			}
			tp.BackwardFrom(out, randVec(rand.New(rand.NewPCG(5, 6)), len(out.Data), 1))
			dx[i] = append([]float32(nil), x.Grad()...)
			if frozen && w.Grad() != nil {
				t.Errorf("%s: the frozen weight gained a gradient", op)
			}
		}
		for j := range dx[0] {
			if dx[0][j] != dx[1][j] {
				t.Fatalf("%s: dx[%d] = %v with a frozen weight, %v with a trainable one", op, j, dx[1][j], dx[0][j])
			}
		}
	}
}
