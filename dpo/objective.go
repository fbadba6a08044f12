package dpo

import (
	"fmt"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/data"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/lora"
)

// Objective is DPO as the trainer sees it: one preference batch in, the loss's gradient on the
// trainable tensors and named scalars out.
//
// The policy is the model (with its adapters on, when there are adapters); the reference is
// the same model with the adapters disabled, or, for full fine-tuning, a frozen copy. The
// reference runs without a tape, so it holds no activations and gets no gradient.
type Objective struct {
	Config   Config
	model    *layers.Model
	adapters *lora.Set
	ref      *layers.Model
}

// NewObjective makes the objective of policy m. With adapters (LoRA), the reference is m with
// them disabled and ref is ignored; with adapters nil (full fine-tuning), ref is the frozen
// reference copy. Zero fields of cfg take their defaults; Step reports an invalid cfg or a
// missing reference.
func NewObjective(m *layers.Model, adapters *lora.Set, ref *layers.Model, cfg Config) *Objective {
	if adapters != nil {
		ref = nil
	}
	return &Objective{Config: cfg.withDefaults(), model: m, adapters: adapters, ref: ref}
}

func (o *Objective) check(b data.Batch) error {
	if err := o.Config.Validate(); err != nil {
		return err
	}
	if o.adapters == nil && o.ref == nil {
		return errNoReference
	}
	if b.Pairs <= 0 || b.B != 2*b.Pairs || len(b.IDs) != b.B*b.T || len(b.Response) != len(b.IDs) {
		return fmt.Errorf("dpo: not a preference batch: %d pairs, %d rows of %d, %d ids, %d response flags", b.Pairs, b.B, b.T, len(b.IDs), len(b.Response))
	}
	return nil
}

func input(b data.Batch) layers.Input {
	return layers.Input{IDs: b.IDs, B: b.B, T: b.T, Pos: b.Pos, DocStart: b.DocStart}
}

// Reference returns the reference log-probs of the batch's rows (chosen rows, then rejected
// rows), run without a tape. A trainer that caches them (they do not change during training)
// passes them to StepWithReference.
func (o *Objective) Reference(b data.Batch) ([]float64, error) {
	if err := o.check(b); err != nil {
		return nil, err
	}
	ref := o.ref
	if o.adapters != nil {
		ref = o.model
		was := o.adapters.Disabled()
		o.adapters.SetDisabled(true)
		defer o.adapters.SetDisabled(was)
	}
	return o.logProbsNoTape(ref, b), nil
}

// tapelessLogits bounds the logits one tape-less forward makes (floats): rows are run in
// chunks, so a long batch over a large vocabulary (Qwen3: 151,936) never holds [B, T, V] at
// once for the reference.
var tapelessLogits = 1 << 26

// logProbsNoTape runs m without a tape over the batch's rows, a chunk of rows at a time (rows
// are independent), and returns each row's log-prob.
func (o *Objective) logProbsNoTape(m *layers.Model, b data.Batch) []float64 {
	per := max(1, tapelessLogits/max(1, b.T*m.Config.VocabSize))
	out := make([]float64, 0, b.B)
	for lo := 0; lo < b.B; lo += per {
		hi := min(lo+per, b.B)
		in := layers.Input{IDs: b.IDs[lo*b.T : hi*b.T], B: hi - lo, T: b.T}
		if b.Pos != nil {
			in.Pos = b.Pos[lo*b.T : hi*b.T]
		}
		if b.DocStart != nil {
			in.DocStart = b.DocStart[lo*b.T : hi*b.T]
		}
		logits := m.Forward(nil, in).Logits
		lp := SequenceLogProbs(nil, logits, in.IDs, b.Response[lo*b.T:hi*b.T], hi-lo, b.T, o.Config.LengthNormalize)
		out = append(out, lp.Values...)
	}
	return out
}

// Step runs one preference micro-batch: the reference log-probs (no tape), the policy's on tp,
// the mean loss over the batch's pairs times scale (the trainer passes 1/grad_accum), and
// backward on tp, which adds the gradients into the trainable tensors (the LoRA parameters, or
// every parameter of the model). With a nil tp it only evaluates. It returns Metrics of the
// batch's pairs (the loss unscaled).
func (o *Objective) Step(tp *autograd.Tape, b data.Batch, scale float64) (map[string]float64, error) {
	ref, err := o.Reference(b)
	if err != nil {
		return nil, err
	}
	return o.StepWithReference(tp, b, ref, scale)
}

// StepWithReference is Step with the reference log-probs given (Reference's result for this
// batch, e.g. cached).
func (o *Objective) StepWithReference(tp *autograd.Tape, b data.Batch, ref []float64, scale float64) (map[string]float64, error) {
	stats, err := o.step(tp, b, ref, scale)
	if err != nil {
		return nil, err
	}
	return Metrics(stats), nil
}

// Evaluate returns the statistics of every pair of the batch, without a tape.
func (o *Objective) Evaluate(b data.Batch) ([]PairStats, error) {
	ref, err := o.Reference(b)
	if err != nil {
		return nil, err
	}
	values := o.logProbsNoTape(o.model, b)
	policy := LogProbs{Tensor: autograd.New(make([]float32, len(values)), len(values)), Values: values}
	_, stats := Loss(nil, policy, ref, o.Config)
	return stats, nil
}

func (o *Objective) step(tp *autograd.Tape, b data.Batch, ref []float64, scale float64) ([]PairStats, error) {
	if err := o.check(b); err != nil {
		return nil, err
	}
	if len(ref) != b.B {
		return nil, fmt.Errorf("dpo: %d reference log-probs for a batch of %d rows", len(ref), b.B)
	}
	logits := o.model.Forward(tp, input(b)).Logits
	policy := SequenceLogProbs(tp, logits, b.IDs, b.Response, b.B, b.T, o.Config.LengthNormalize)
	loss, stats := Loss(tp, policy, ref, o.Config)
	if tp.Records() {
		if loss.RequiresGrad {
			tp.BackwardFrom(loss, []float32{float32(scale)})
		} else {
			tp.Reset() // nothing trainable: drop what the forward recorded
		}
	}
	return stats, nil
}
