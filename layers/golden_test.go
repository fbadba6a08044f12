package layers_test

import (
	"math"
	"testing"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/internal/golden"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/optim"
)

// goldenForward loads testdata/golden/<name>, runs input_ids through it (recording a tape),
// and returns the model, the golden case, the logits and the CE loss tensor.
func goldenForward(t *testing.T, name string, bf16 bool) (*layers.Model, *golden.Case, *autograd.Tape, layers.Output, *autograd.Tensor, float64) {
	t.Helper()
	m, g, in, targets := goldenCase(t, name)
	m.BF16 = bf16
	tp := autograd.NewTape()
	out := m.Forward(tp, in)
	logits := out.Logits.Reshape(in.B*in.T, m.Config.VocabSize)
	loss, sum, count := autograd.CrossEntropy(tp, logits, targets, 0)
	return m, g, tp, out, loss, sum / float64(count)
}

// goldenCase loads testdata/golden/<name>: the model, the case, its input_ids as an Input and
// its labels as causal targets.
func goldenCase(t *testing.T, name string) (*layers.Model, *golden.Case, layers.Input, []int32) {
	t.Helper()
	m, err := layers.Load(golden.Dir(name))
	if err != nil {
		t.Fatal(err)
	}
	g, err := golden.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	shape := g.Shape("input_ids")
	in := layers.Input{IDs: g.I32("input_ids"), B: shape[0], T: shape[1]}
	return m, g, in, layers.CausalTargets(g.I32("labels"), in.B, in.T)
}

func TestGoldenDenseLogitsLossGrads(t *testing.T) {
	m, g, tp, out, loss, lossF64 := goldenForward(t, "tiny-dense", false)
	if d := golden.Compare(out.Logits.Data, g.F32("logits"), 1e-4); d.Max > 1e-4 {
		t.Errorf("logits: %v", d)
	} else {
		t.Logf("logits: %v", d)
	}
	if want := g.Scalar("loss"); math.Abs(lossF64-want) > 1e-5 {
		t.Errorf("loss %.9f, want %.9f (diff %.3g)", lossF64, want, lossF64-want)
	}
	tp.Backward(loss)
	checkGoldenGrads(t, m, g)
	// End to end: our own gradients, clipped, one AdamW step (golden.json "adamw").
	params := m.Params()
	if norm, want := optim.ClipGradNorm(params, 1.0), g.Scalar("grad_norm"); math.Abs(norm-want) > 1e-5*want {
		t.Errorf("grad norm %.9g, want %.9g", norm, want)
	}
	optim.NewAdamW(0.9, 0.95, 1e-8, 0.1).Update(params, 1e-3)
	for _, p := range params {
		if d := golden.Compare(p.Data, g.F32("step1."+p.Name), 1e-4); d.Max > 1e-4 {
			t.Errorf("step1.%s end to end: %v", p.Name, d)
		}
	}
}

func TestGoldenDenseBF16Logits(t *testing.T) {
	_, g, _, out, _, _ := goldenForward(t, "tiny-dense", true)
	d := golden.Compare(out.Logits.Data, g.F32("logits_bf16"), 1e-2)
	if d.Max > 1e-2 || d.Mean > 2e-4 {
		t.Errorf("bf16 logits vs logits_bf16: %v (allowed max 1e-2, mean 2e-4)", d)
	} else {
		t.Logf("bf16 logits vs logits_bf16: %v", d)
	}
	// Forgetting to round would sit ~6e-4 (mean) away from the fp32 logits; rounding must
	// show: bf16 mode must differ from fp32 by more than rounding noise.
	if d32 := golden.Compare(out.Logits.Data, g.F32("logits"), 1); d32.Mean < 1e-4 {
		t.Errorf("bf16 logits are as close to the fp32 golden as fp32 itself (mean %.3g): matmul inputs were not rounded", d32.Mean)
	}
}

// The training loss without logits (SkipLMHead, then Model.CrossEntropy: the LM head and the
// cross-entropy a few rows at a time) gives the golden loss and every gradient, the LM head's
// and the embedding's included.
func TestGoldenDenseFusedLMHeadLossGrads(t *testing.T) {
	m, g, in, targets := goldenCase(t, "tiny-dense")
	in.SkipLMHead = true
	tp := autograd.NewTape()
	out := m.Forward(tp, in)
	if out.Logits != nil || out.Hidden == nil {
		t.Fatalf("SkipLMHead: logits %v, hidden %v", out.Logits, out.Hidden)
	}
	loss, sum, count := m.CrossEntropy(tp, out.Hidden, targets, 0)
	if want := g.Scalar("loss"); math.Abs(sum/float64(count)-want) > 1e-5 || math.Abs(float64(loss.Data[0])-want) > 1e-5 {
		t.Errorf("loss %.9f (sum/count %.9f), want %.9f", loss.Data[0], sum/float64(count), want)
	}
	tp.Backward(loss)
	checkGoldenGrads(t, m, g)
}

// checkGoldenGrads holds every parameter's gradient to the golden's, at its tolerance.
func checkGoldenGrads(t *testing.T, m *layers.Model, g *golden.Case) {
	t.Helper()
	for _, p := range m.Params() {
		want := g.F32("grad." + p.Name)
		tol := golden.GradTol(want)
		if d := golden.Compare(p.Grad(), want, tol); d.Max > tol {
			t.Errorf("grad.%s: %v (tolerance %.3g)", p.Name, d, tol)
		}
	}
}
