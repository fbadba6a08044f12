package dpo_test

import (
	"math"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/dpo"
)

// lossAt runs the Loss op on policy log-probs (chosen then rejected) and the reference's.
func lossAt(tp *autograd.Tape, policy, ref []float64, cfg dpo.Config) (*autograd.Tensor, []dpo.PairStats, *autograd.Tensor) {
	x := autograd.Param("logps", make([]float32, len(policy)), len(policy))
	for i, v := range policy {
		x.Data[i] = float32(v)
	}
	l, st := dpo.Loss(tp, dpo.LogProbs{Tensor: x, Values: policy}, ref, cfg)
	return l, st, x
}

// Each loss's backward against central differences of its forward in the policy log-probs,
// at pairs whose β·h spans both signs, the hinge's corner excluded.
func TestLossBackward(t *testing.T) {
	policy := []float64{-12.5, -30, -7.25, -20, -31.5, -6}
	ref := []float64{-13, -29, -8, -21, -30, -7}
	for _, cfg := range []dpo.Config{
		{Beta: 0.1}, {Beta: 0.5, LabelSmoothing: 0.3}, {Beta: 0.1, Loss: "ipo"}, {Beta: 0.2, Loss: "hinge"},
		{Beta: 3, Loss: "hinge"}, {Beta: 0.5, Loss: "robust", LabelSmoothing: 0.1}, {Beta: 2, Loss: "sigmoid"},
	} {
		tp := autograd.NewTape()
		loss, _, x := lossAt(tp, policy, ref, cfg)
		tp.BackwardFrom(loss, []float32{1.5}) // a scale, as the trainer passes
		g := x.Grad()
		for i := range policy {
			const eps = 1e-5
			p := append([]float64(nil), policy...)
			p[i] += eps
			_, up, _ := lossAt(nil, p, ref, cfg)
			p[i] -= 2 * eps
			_, dn, _ := lossAt(nil, p, ref, cfg)
			fd := 1.5 * (meanLoss(up) - meanLoss(dn)) / (2 * eps)
			if math.Abs(float64(g[i])-fd) > 1e-4*max(1, math.Abs(fd)) {
				t.Errorf("%+v: d loss/d logp[%d] = %v, finite difference %v", cfg, i, g[i], fd)
			}
		}
	}
}

func meanLoss(st []dpo.PairStats) float64 {
	s := 0.0
	for _, p := range st {
		s += p.Loss
	}
	return s / float64(len(st))
}

// Rewards, logits and the metrics on hand-made numbers: accuracy counts strict wins only.
func TestMetrics(t *testing.T) {
	policy := []float64{-10, -20, -5, -12, -19, -5} // chosen ×3, rejected ×3
	ref := []float64{-11, -20, -6, -11, -19, -6}
	_, st, _ := lossAt(nil, policy, ref, dpo.Config{Beta: 0.5})
	want := []struct{ c, r, h float64 }{{0.5, -0.5, 2}, {0, 0, 0}, {0.5, 0.5, 0}}
	for i, w := range want {
		if math.Abs(st[i].ChosenReward-w.c) > 1e-12 || math.Abs(st[i].RejectedReward-w.r) > 1e-12 || math.Abs(st[i].Logit-w.h) > 1e-12 {
			t.Errorf("pair %d: %+v, want rewards %v, %v and logit %v", i, st[i], w.c, w.r, w.h)
		}
	}
	m := dpo.Metrics(st)
	wantLoss := (math.Log1p(math.Exp(-1)) + 2*math.Log(2)) / 3 // −logσ(β·h) at β·h = 1, 0, 0
	for k, v := range map[string]float64{"loss": wantLoss, "dpo/reward_accuracy": 1.0 / 3, "dpo/margin": 1.0 / 3,
		"dpo/chosen_reward": 1.0 / 3, "dpo/rejected_reward": 0, "dpo/policy_chosen_logp": -35.0 / 3,
		"dpo/reference_rejected_logp": -12, "dpo/pairs": 3} {
		if math.Abs(m[k]-v) > 1e-12 {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (dpo.Config{}).Validate(); err != nil {
		t.Errorf("the zero config: %v", err)
	}
	for _, c := range []struct {
		cfg  dpo.Config
		want string
	}{
		{dpo.Config{Beta: -1}, "beta"},
		{dpo.Config{Beta: math.NaN()}, "beta"},
		{dpo.Config{Loss: "kto"}, `loss "kto"`},
		{dpo.Config{LabelSmoothing: 0.5}, "label_smoothing"},
		{dpo.Config{Loss: "robust", LabelSmoothing: -0.1}, "label_smoothing"},
		{dpo.Config{Loss: "ipo", LabelSmoothing: 0.1}, "not ipo"},
	} {
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error about %s", c.cfg, err, c.want)
		}
	}
}
