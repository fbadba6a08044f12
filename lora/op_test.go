package lora_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/kernels"
	"github.com/gwen-ml/gwen/lora"
)

// oneAdapter attaches a single adapter (layer 0's q_proj: in 64, out 96) with the given
// dropout, and fills its B with random values so that every gradient is non-zero.
func oneAdapter(t *testing.T, dropout float64) (*lora.Set, *lora.Adapter) {
	t.Helper()
	s, err := lora.Attach(loadBase(t), lora.Config{R: 4, Alpha: 8, Dropout: dropout,
		TargetModules: lora.Targets{Pattern: `model\.layers\.0\.self_attn\.q_proj`}}, 11)
	if err != nil {
		t.Fatal(err)
	}
	a := s.Adapters[0]
	r := rand.New(rand.NewPCG(1, 2))
	for i := range a.B.Data {
		a.B.Data[i] = float32(r.NormFloat64() * 0.1)
	}
	return s, a
}

func randData(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 99))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// adapterRun applies the adapter alone (base output y = 0) to x [n, In] and, with a tape,
// backpropagates L = Σ w·out; it returns out, and the gradients of x, A and B (nil without a tape).
func adapterRun(a *lora.Adapter, x []float32, n int, w []float32, bf16, grads bool) (out, dx, dA, dB []float32) {
	var tp *autograd.Tape
	if grads {
		tp = autograd.NewTape()
	}
	xt := autograd.Param("x", slices.Clone(x), n, a.In)
	y := autograd.Zeros(n, a.Out)
	a.A.SetGrad(nil)
	a.B.SetGrad(nil)
	o := a.Forward(tp, xt, y, bf16)
	out = slices.Clone(o.Data)
	if grads {
		tp.BackwardFrom(o, w)
		dx, dA, dB = slices.Clone(xt.Grad()), slices.Clone(a.A.Grad()), slices.Clone(a.B.Grad())
	}
	return
}

func dot(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// The adapter's output is linear in x, in A and in B separately, so L = Σ w·out changes by
// exactly ⟨∇L, d⟩ along any direction d: with dropout on, this holds only if backward applies
// the forward's mask (and 1/(1-p)) to dx and uses the dropped input for dA.
func TestAdapterGradientsAreExactDirectionalDerivatives(t *testing.T) {
	for _, p := range []float64{0, 0.3} {
		s, a := oneAdapter(t, p)
		s.Train(5, 0)
		const n = 8
		x, w := randData(1, n*a.In), randData(2, n*a.Out)
		out, dx, dA, dB := adapterRun(a, x, n, w, false, true)
		L := dot(out, w)
		d := randData(3, len(x))
		x2 := slices.Clone(x)
		for i := range x2 {
			x2[i] += d[i]
		}
		o2, _, _, _ := adapterRun(a, x2, n, w, false, false)
		if got, want := dot(o2, w)-L, dot(dx, d); math.Abs(got-want) > 1e-3*(1+math.Abs(want)) {
			t.Errorf("dropout %v: L(x+d)-L(x) = %.6g, ⟨∇x, d⟩ = %.6g", p, got, want)
		}
		for _, c := range []struct {
			name string
			data []float32
			grad []float32
		}{{"A", a.A.Data, dA}, {"B", a.B.Data, dB}} {
			d := randData(4, len(c.data))
			saved := slices.Clone(c.data)
			for i := range c.data {
				c.data[i] += d[i]
			}
			o2, _, _, _ := adapterRun(a, x, n, w, false, false)
			copy(c.data, saved)
			got, want := dot(o2, w)-L, dot(c.grad, d)
			if math.Abs(got-want) > 1e-3*(1+math.Abs(want)) {
				t.Errorf("dropout %v: L(%s+d)-L(%s) = %.6g, ⟨∇%s, d⟩ = %.6g", p, c.name, c.name, got, c.name, want)
			}
		}
	}
}

// Dropout zeroes a fraction p of the adapter's input and scales the rest by 1/(1-p) (seen in
// dx against the eval-mode dx); its masks are a pure function of (step, micro-batch): the same
// key gives the same output, another key another mask; Eval turns it off.
func TestAdapterDropoutMasks(t *testing.T) {
	const p, n = 0.25, 16
	s, a := oneAdapter(t, p)
	x, w := randData(1, n*a.In), randData(2, n*a.Out)
	s.Eval()
	evalOut, evalDx, _, _ := adapterRun(a, x, n, w, false, true)
	s.Train(7, 2)
	out1, dx, _, _ := adapterRun(a, x, n, w, false, true)
	zeros := 0
	for i := range dx {
		switch {
		case dx[i] == 0:
			zeros++
		case math.Abs(float64(dx[i])-float64(evalDx[i])/(1-p)) > 1e-5*(1+math.Abs(float64(dx[i]))):
			t.Fatalf("dx[%d] = %v with dropout, %v without: want 0 or ×1/(1-p)", i, dx[i], evalDx[i])
		}
	}
	if f := float64(zeros) / float64(len(dx)); math.Abs(f-p) > 0.05 {
		t.Errorf("dropout zeroed %.3f of the input, want %v", f, p)
	}
	out2, _, _, _ := adapterRun(a, x, n, w, false, false)
	if !slices.Equal(out1, out2) {
		t.Errorf("the same (step, micro) gave another output")
	}
	for _, k := range [][2]int{{8, 2}, {7, 3}} {
		s.Train(k[0], k[1])
		o, _, _, _ := adapterRun(a, x, n, w, false, false)
		if slices.Equal(o, out1) {
			t.Errorf("step %d micro %d drew the mask of step 7 micro 2", k[0], k[1])
		}
	}
	s.Eval()
	if o, _, _, _ := adapterRun(a, x, n, w, false, false); !slices.Equal(o, evalOut) {
		t.Errorf("Eval does not turn dropout off")
	}
}

// With bf16, the adapter follows the engine's rule: the inputs of its two products are rounded
// to bfloat16 and accumulate in fp32. It lands on a float64 computation of that rule far
// closer than on the unrounded product.
func TestAdapterBF16Rule(t *testing.T) {
	_, a := oneAdapter(t, 0)
	const n = 8
	x := randData(1, n*a.In)
	got, _, _, _ := adapterRun(a, x, n, make([]float32, n*a.Out), true, false)
	rb := func(v float32) float64 { return float64(kernels.RoundBF16Value(v)) }
	ref := func(round func(float32) float64) []float64 {
		h := make([]float32, n*a.R)
		for i := range n {
			for q := range a.R {
				s := 0.0
				for k := range a.In {
					s += round(x[i*a.In+k]) * round(a.A.Data[q*a.In+k])
				}
				h[i*a.R+q] = float32(s)
			}
		}
		out := make([]float64, n*a.Out)
		for i := range n {
			for o := range a.Out {
				s := 0.0
				for q := range a.R {
					s += round(h[i*a.R+q]) * round(a.B.Data[o*a.R+q])
				}
				out[i*a.Out+o] = float64(a.Scale) * s
			}
		}
		return out
	}
	rounded, exact := ref(rb), ref(func(v float32) float64 { return float64(v) })
	var dr, de float64
	for i := range got {
		dr += math.Abs(float64(got[i]) - rounded[i])
		de += math.Abs(float64(got[i]) - exact[i])
	}
	if dr > 0.05*de || de == 0 {
		t.Errorf("bf16 adapter output: mean |diff| %.3g from the rounded rule, %.3g from the fp32 product", dr/float64(len(got)), de/float64(len(got)))
	}
}

// Recomputing checkpointed blocks draws the same dropout masks (they are keyed, not drawn from
// a stream), so the gradients equal those of a run that keeps its activations.
func TestDropoutWithCheckpointing(t *testing.T) {
	in := goldenBatch(t)
	var grads [2]map[string][]float32
	for i, ck := range []bool{false, true} {
		m := loadBase(t)
		s, err := lora.Attach(m, lora.Config{R: 4, Alpha: 8, Dropout: 0.2, TargetModules: lora.Targets{Names: lora.DefaultTargets}}, 5)
		if err != nil {
			t.Fatal(err)
		}
		for _, ad := range s.Adapters {
			copy(ad.B.Data, randData(uint64(len(ad.Name)), len(ad.B.Data)))
		}
		m.Checkpointing = ck
		s.Train(3, 1)
		_, _, grads[i] = lossAndGrads(t, m, s.Params(), in)
	}
	for name, g := range grads[0] {
		if g == nil {
			t.Fatalf("%s: no gradient", name)
		}
		for j := range g {
			if math.Abs(float64(g[j]-grads[1][name][j])) > 1e-6*(1+math.Abs(float64(g[j]))) {
				t.Fatalf("%s[%d]: %v with activations kept, %v with checkpointing", name, j, g[j], grads[1][name][j])
			}
		}
	}
}

// With bf16, backward follows the rule too: dy, h, B, the dropped input and A are rounded to
// bfloat16 before each product, fp32 accumulation (as SgemmBF16 does), dropout or not. The
// gradients land on a float64 computation of that rule far closer than on the unrounded one.
// With dropout the mask is read off the fp32 run's dx (zero where dropped).
func TestAdapterBF16Gradients(t *testing.T) {
	const n = 8
	for _, p := range []float64{0, 0.25} {
		s, a := oneAdapter(t, p)
		s.Train(3, 1)
		x, w := randData(1, n*a.In), randData(2, n*a.Out)
		_, dx32, _, _ := adapterRun(a, x, n, w, false, true)
		_, dx, dA, dB := adapterRun(a, x, n, w, true, true)
		xd := slices.Clone(x) // the dropped input
		if p > 0 {
			for i := range xd {
				if dx32[i] == 0 {
					xd[i] = 0
				} else {
					xd[i] = float32(float64(x[i]) / (1 - p))
				}
			}
		}
		rb := func(v float32) float64 { return float64(kernels.RoundBF16Value(v)) }
		exact := func(v float32) float64 { return float64(v) }
		ref := func(round func(float32) float64) (dx, dA, dB []float64) {
			mm := func(m, k, o int, at func(i, q int) float32, bt func(q, j int) float32, scale float64) []float32 {
				c := make([]float32, m*o)
				for i := range m {
					for j := range o {
						acc := 0.0
						for q := range k {
							acc += round(at(i, q)) * round(bt(q, j))
						}
						c[i*o+j] = float32(scale * acc)
					}
				}
				return c
			}
			r, in, out, sc := a.R, a.In, a.Out, float64(a.Scale)
			h := mm(n, in, r, func(i, q int) float32 { return xd[i*in+q] }, func(q, j int) float32 { return a.A.Data[j*in+q] }, 1)
			gB := mm(out, n, r, func(i, q int) float32 { return w[q*out+i] }, func(q, j int) float32 { return h[q*r+j] }, sc)
			dh := mm(n, out, r, func(i, q int) float32 { return w[i*out+q] }, func(q, j int) float32 { return a.B.Data[q*r+j] }, sc)
			gA := mm(r, n, in, func(i, q int) float32 { return dh[q*r+i] }, func(q, j int) float32 { return xd[q*in+j] }, 1)
			gx := mm(n, r, in, func(i, q int) float32 { return dh[i*r+q] }, func(q, j int) float32 { return a.A.Data[q*in+j] }, 1)
			if p > 0 {
				for i := range gx {
					if xd[i] == 0 {
						gx[i] = 0
					} else {
						gx[i] = float32(float64(gx[i]) / (1 - p))
					}
				}
			}
			return to64(gx), to64(gA), to64(gB)
		}
		rx, rA, rB := ref(rb)
		ex, eA, eB := ref(exact)
		for _, c := range []struct {
			name             string
			got              []float32
			rounded, unround []float64
		}{{"dx", dx, rx, ex}, {"dA", dA, rA, eA}, {"dB", dB, rB, eB}} {
			var dr, de float64
			for i := range c.got {
				dr += math.Abs(float64(c.got[i]) - c.rounded[i])
				de += math.Abs(float64(c.got[i]) - c.unround[i])
			}
			if dr > 0.05*de || de == 0 {
				t.Errorf("dropout %v: bf16 %s: mean |diff| %.3g from the rounded rule, %.3g from the fp32 one", p, c.name, dr/float64(len(c.got)), de/float64(len(c.got)))
			}
		}
	}
}

func to64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}
