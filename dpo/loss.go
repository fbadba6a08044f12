package dpo

import (
	"errors"
	"fmt"
	"math"

	"github.com/gwen-ml/gwen/autograd"
)

// The loss names of Config.Loss, TRL's loss_type values.
const (
	LossSigmoid = "sigmoid"
	LossIPO     = "ipo"
	LossHinge   = "hinge"
	LossRobust  = "robust"
)

// Config is DPO's part of a recipe. The zero value is TRL's default: sigmoid, β = 0.1.
type Config struct {
	Beta float64 `json:"beta" yaml:"beta"` // β; 0 means 0.1
	// Loss is sigmoid (""), ipo, hinge or robust.
	Loss string `json:"loss" yaml:"loss"`
	// LabelSmoothing is the assumed probability that a pair's labels are flipped (cDPO, for
	// sigmoid; robust DPO divides by 1 − 2·ls); in [0, 0.5). Only sigmoid and robust use it.
	LabelSmoothing float64 `json:"label_smoothing" yaml:"label_smoothing"`
	// LengthNormalize divides each response's log-prob by its token count (TRL does so for
	// ipo); the rewards then use the normalised log-probs too.
	LengthNormalize bool `json:"length_normalize" yaml:"length_normalize"`
}

// DefaultConfig is sigmoid DPO with β = 0.1 on summed log-probs.
func DefaultConfig() Config { return Config{Beta: 0.1, Loss: LossSigmoid} }

// withDefaults fills the zero fields: β 0.1, loss sigmoid.
func (c Config) withDefaults() Config {
	if c.Beta == 0 {
		c.Beta = 0.1
	}
	if c.Loss == "" {
		c.Loss = LossSigmoid
	}
	return c
}

// Validate checks the values; errors name the key. Zero fields take their defaults first.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case !(c.Beta > 0) || math.IsInf(c.Beta, 0):
		return fmt.Errorf("dpo: beta %v must be a positive number", c.Beta)
	case c.Loss != LossSigmoid && c.Loss != LossIPO && c.Loss != LossHinge && c.Loss != LossRobust:
		return fmt.Errorf("dpo: loss %q: want sigmoid, ipo, hinge or robust", c.Loss)
	case !(c.LabelSmoothing >= 0 && c.LabelSmoothing < 0.5):
		return fmt.Errorf("dpo: label_smoothing %v must be in [0, 0.5)", c.LabelSmoothing)
	case c.LabelSmoothing != 0 && (c.Loss == LossIPO || c.Loss == LossHinge):
		return fmt.Errorf("dpo: label_smoothing %v applies to the sigmoid and robust losses, not %s", c.LabelSmoothing, c.Loss)
	}
	return nil
}

// logSigmoid is log σ(x) without overflow.
func logSigmoid(x float64) float64 { return min(x, 0) - math.Log1p(math.Exp(-math.Abs(x))) }

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// pairLoss is one pair's loss at h = (π_c − π_r) − (ref_c − ref_r) and its derivative in h.
// The config is valid and has its defaults.
func (c Config) pairLoss(h float64) (loss, dh float64) {
	b, ls := c.Beta, c.LabelSmoothing
	// d/dh −logσ(βh) = −β·σ(−βh); d/dh −logσ(−βh) = β·σ(βh).
	switch c.Loss {
	case LossIPO:
		d := h - 1/(2*b)
		return d * d, 2 * d
	case LossHinge:
		if m := 1 - b*h; m > 0 {
			return m, -b
		}
		return 0, 0 // torch.relu's gradient at 0 is 0 too
	case LossRobust:
		l := (-logSigmoid(b*h)*(1-ls) + logSigmoid(-b*h)*ls) / (1 - 2*ls)
		return l, (-b*sigmoid(-b*h)*(1-ls) - b*sigmoid(b*h)*ls) / (1 - 2*ls)
	default: // sigmoid
		l := -logSigmoid(b*h)*(1-ls) - logSigmoid(-b*h)*ls
		return l, -b*sigmoid(-b*h)*(1-ls) + b*sigmoid(b*h)*ls
	}
}

// PairStats are one pair's numbers: log-probs (normalised when the config says so), rewards
// β·(π − ref), the logit h and the pair's loss.
type PairStats struct {
	PolicyChosen, PolicyRejected       float64
	ReferenceChosen, ReferenceRejected float64
	ChosenReward, RejectedReward       float64
	Logit, Loss                        float64
}

// Loss is the op policy log-probs [2P] (chosen rows [0, P), rejected rows [P, 2P), data's
// preference layout) and the reference's 2P constants → the mean loss over the P pairs, a
// scalar. It returns every pair's statistics too. cfg must be valid (zero fields take
// their defaults).
func Loss(tp *autograd.Tape, policy LogProbs, reference []float64, cfg Config) (*autograd.Tensor, []PairStats) {
	cfg = cfg.withDefaults()
	rows := len(policy.Values)
	if rows%2 != 0 || len(reference) != rows || len(policy.Tensor.Data) != rows {
		panic(fmt.Sprintf("dpo.Loss: %d policy log-probs (tensor %v), %d reference: want 2·pairs of each", rows, policy.Tensor.Shape, len(reference)))
	}
	P := rows / 2
	stats := make([]PairStats, P)
	dh := make([]float64, P)
	mean := 0.0
	for i := range stats {
		s := &stats[i]
		s.PolicyChosen, s.PolicyRejected = policy.Values[i], policy.Values[P+i]
		s.ReferenceChosen, s.ReferenceRejected = reference[i], reference[P+i]
		s.ChosenReward = cfg.Beta * (s.PolicyChosen - s.ReferenceChosen)
		s.RejectedReward = cfg.Beta * (s.PolicyRejected - s.ReferenceRejected)
		s.Logit = (s.PolicyChosen - s.PolicyRejected) - (s.ReferenceChosen - s.ReferenceRejected)
		s.Loss, dh[i] = cfg.pairLoss(s.Logit)
		mean += s.Loss
	}
	loss := tp.NewTensor(1)
	if P > 0 {
		mean /= float64(P)
	}
	loss.Data[0] = float32(mean)
	if !tp.Recording(policy.Tensor) || P == 0 {
		return loss, stats
	}
	loss.RequiresGrad = true
	x := policy.Tensor
	tp.Record(func() {
		g := loss.Grad()
		if g == nil {
			return
		}
		gx := x.GradBuf()
		for i := 0; i < P; i++ {
			d := float64(g[0]) * dh[i] / float64(P)
			gx[i] += float32(d)
			gx[P+i] -= float32(d)
		}
	})
	return loss, stats
}

// Metrics averages pair statistics over the pairs under the keys the trainer logs: "loss",
// "dpo/reward_accuracy" (the fraction of pairs whose chosen reward is strictly higher, TRL's
// rewards/accuracies), "dpo/chosen_reward", "dpo/rejected_reward", "dpo/margin" (chosen −
// rejected reward), "dpo/logit" (h), "dpo/policy_chosen_logp", "dpo/policy_rejected_logp",
// "dpo/reference_chosen_logp", "dpo/reference_rejected_logp", and "dpo/pairs" (the count,
// not averaged: weigh micro-batches by it).
func Metrics(stats []PairStats) map[string]float64 {
	m := map[string]float64{}
	n := float64(len(stats))
	if n == 0 {
		m["dpo/pairs"] = 0
		return m
	}
	for _, s := range stats {
		m["loss"] += s.Loss / n
		if s.ChosenReward > s.RejectedReward {
			m["dpo/reward_accuracy"] += 1 / n
		}
		m["dpo/chosen_reward"] += s.ChosenReward / n
		m["dpo/rejected_reward"] += s.RejectedReward / n
		m["dpo/margin"] += (s.ChosenReward - s.RejectedReward) / n
		m["dpo/logit"] += s.Logit / n
		m["dpo/policy_chosen_logp"] += s.PolicyChosen / n
		m["dpo/policy_rejected_logp"] += s.PolicyRejected / n
		m["dpo/reference_chosen_logp"] += s.ReferenceChosen / n
		m["dpo/reference_rejected_logp"] += s.ReferenceRejected / n
	}
	m["dpo/pairs"] = n
	return m
}

var errNoReference = errors.New("dpo: no reference: pass the LoRA set, or a frozen copy of the model for full fine-tuning")
