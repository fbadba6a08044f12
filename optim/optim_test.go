package optim_test

import (
	"math"
	"slices"
	"testing"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/internal/golden"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/moe"
	"github.com/gwen-ml/gwen/optim"
)

// The golden AdamW step: grads from golden.safetensors, clipped to global norm 1.0, one
// torch.optim.AdamW step (lr 1e-3, betas 0.9/0.95, eps 1e-8, wd 0.1 on ≥2-D params).
func TestAdamWStepMatchesGolden(t *testing.T) {
	moe.Register() // tiny-moe has sparse layers
	for _, name := range []string{"tiny-dense", "tiny-moe"} {
		t.Run(name, func(t *testing.T) {
			m, err := layers.Load(golden.Dir(name))
			if err != nil {
				t.Fatal(err)
			}
			g, err := golden.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			params := m.Params()
			for _, p := range params {
				p.SetGrad(g.F32("grad." + p.Name))
			}
			norm := optim.ClipGradNorm(params, 1.0)
			if want := g.Scalar("grad_norm"); math.Abs(norm-want) > 1e-6*want {
				t.Errorf("grad norm %.9g, want %.9g", norm, want)
			}
			opt := optim.NewAdamW(0.9, 0.95, 1e-8, 0.1)
			opt.Update(params, 1e-3)
			for _, p := range params {
				if d := golden.Compare(p.Data, g.F32("step1."+p.Name), 5e-7); d.Max > 5e-7 {
					t.Errorf("step1.%s: %v", p.Name, d)
				}
			}
		})
	}
}

func TestClipLeavesSmallGradientsAlone(t *testing.T) {
	m, err := layers.Load(golden.Dir("tiny-dense"))
	if err != nil {
		t.Fatal(err)
	}
	p := m.Params()[0]
	p.SetGrad(make([]float32, len(p.Data)))
	p.Grad()[0] = 0.5
	if n := optim.ClipGradNorm(m.Params(), 1.0); n != 0.5 || p.Grad()[0] != 0.5 {
		t.Fatalf("norm %v, grad %v: a norm below the limit must not be scaled", n, p.Grad()[0])
	}
}

func TestSchedules(t *testing.T) {
	c := optim.Cosine{Peak: 1, Min: 0.1, Warmup: 10, Total: 110}
	// hand values: warm-up is linear from 1/10; the cosine midpoint is (1+0.1)/2.
	for _, tc := range []struct {
		step int
		want float64
	}{{0, 0.1}, {9, 1}, {10, 1}, {60, 0.55}, {110, 0.1}, {500, 0.1}} {
		if got := float64(c.LR(tc.step)); math.Abs(got-tc.want) > 1e-6 {
			t.Errorf("cosine LR(%d) = %v, want %v", tc.step, got, tc.want)
		}
	}
}

// ClipCoef with UpdateScaled is ClipGradNorm then Update, bit for bit, on the golden gradients
// (norm above 1, so they clip), and leaves the gradients as they were.
func TestUpdateScaledIsClipThenUpdate(t *testing.T) {
	load := func() ([]*autograd.Tensor, *golden.Case) {
		m, err := layers.Load(golden.Dir("tiny-dense"))
		if err != nil {
			t.Fatal(err)
		}
		g, err := golden.Open("tiny-dense")
		if err != nil {
			t.Fatal(err)
		}
		params := m.Params()
		for _, p := range params {
			p.SetGrad(g.F32("grad." + p.Name))
		}
		return params, g
	}
	a, g := load()
	b, _ := load()
	normA := optim.ClipGradNorm(a, 1.0)
	normB, coef := optim.ClipCoef(b, 1.0)
	if normA != normB || coef >= 1 {
		t.Fatalf("ClipCoef: norm %v coef %v, ClipGradNorm's norm %v (the golden norm %v must clip)", normB, coef, normA, g.Scalar("grad_norm"))
	}
	for step := range 2 {
		optA, optB := optim.NewAdamW(0.9, 0.95, 1e-8, 0.1), optim.NewAdamW(0.9, 0.95, 1e-8, 0.1)
		optA.Update(a, 1e-3)
		optB.UpdateScaled(b, 1e-3, coef)
		for i := range a {
			if !slices.Equal(a[i].Data, b[i].Data) {
				t.Fatalf("step %d: %s differs between ClipGradNorm+Update and UpdateScaled", step, a[i].Name)
			}
			if !slices.Equal(b[i].Grad(), g.F32("grad."+b[i].Name)) {
				t.Fatalf("UpdateScaled changed the gradient of %s", b[i].Name)
			}
		}
	}
}

func TestLinearAndWSDSchedules(t *testing.T) {
	lin := optim.Linear{Peak: 1, Min: 0.1, Warmup: 2, Total: 12}
	// warm-up 0.5, 1; then from 1 at step 2 down by 0.09 a step to 0.1 at step 12.
	for step, want := range map[int]float32{0: 0.5, 1: 1, 2: 1, 7: 0.55, 11: 0.19, 12: 0.1, 50: 0.1} {
		if got := lin.LR(step); math.Abs(float64(got-want)) > 1e-6 {
			t.Errorf("linear step %d: %v, want %v", step, got, want)
		}
	}
	wsd := optim.WSD{Peak: 1, Min: 0, Warmup: 2, Decay: 4, Total: 10}
	// warm-up, stable at 1 until step 6, then 1, 0.75, 0.5, 0.25, 0 at 6..10.
	for step, want := range map[int]float32{0: 0.5, 3: 1, 5: 1, 6: 1, 7: 0.75, 9: 0.25, 10: 0, 11: 0} {
		if got := wsd.LR(step); math.Abs(float64(got-want)) > 1e-6 {
			t.Errorf("wsd step %d: %v, want %v", step, got, want)
		}
	}
}
