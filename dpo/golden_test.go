package dpo_test

import (
	"math"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/data"
	"github.com/gwen-ml/gwen/dpo"
	"github.com/gwen-ml/gwen/internal/golden"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/lora"
)

// The golden DPO case (testdata/golden/tiny-dense/lora, golden.json "dpo"): 2 pairs, the
// policy is tiny-dense with the golden PEFT adapter, the reference the base alone, β = 0.1.

func openGolden(t *testing.T) *golden.Case {
	t.Helper()
	g, err := golden.Open("tiny-dense/lora")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// goldenPairs are the golden's dpo.prompt_ids, dpo.chosen_ids and dpo.rejected_ids.
func goldenPairs(t *testing.T, g *golden.Case) []dpo.Pair {
	t.Helper()
	rows := func(name string) [][]int32 {
		sh := g.Shape(name)
		v := g.I32(name)
		out := make([][]int32, sh[0])
		for i := range out {
			out[i] = v[i*sh[1] : (i+1)*sh[1]]
		}
		return out
	}
	p, c, r := rows("dpo.prompt_ids"), rows("dpo.chosen_ids"), rows("dpo.rejected_ids")
	pairs := make([]dpo.Pair, len(p))
	for i := range pairs {
		pairs[i] = dpo.Pair{Prompt: p[i], Chosen: c[i], Rejected: r[i]}
	}
	return pairs
}

func loadBase(t *testing.T) *layers.Model {
	t.Helper()
	m, err := layers.Load(golden.Dir("tiny-dense"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// loraPolicy is tiny-dense with the golden adapter attached unmerged.
func loraPolicy(t *testing.T) (*layers.Model, *lora.Set) {
	t.Helper()
	p, err := lora.Load(golden.Dir("tiny-dense/lora"))
	if err != nil {
		t.Fatal(err)
	}
	m := loadBase(t)
	set, err := lora.AttachPEFT(m, p)
	if err != nil {
		t.Fatal(err)
	}
	return m, set
}

func batches(t *testing.T, pairs []dpo.Pair, perBatch int) []data.Batch {
	t.Helper()
	bs, dropped, err := dpo.PairBatches(pairs, perBatch, 0, 0)
	if err != nil || dropped != 0 {
		t.Fatalf("PairBatches: %v, %d dropped", err, dropped)
	}
	return bs
}

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if !(math.Abs(got-want) <= tol) {
		t.Errorf("%s = %.9g, golden %.9g (|diff| %.3g > %.3g)", what, got, want, math.Abs(got-want), tol)
	}
}

// checkPairs compares per-pair log-probs and rewards with the golden's.
func checkPairs(t *testing.T, g *golden.Case, stats []dpo.PairStats) {
	t.Helper()
	want := map[string][]float32{}
	for _, k := range []string{"policy_chosen_logps", "policy_rejected_logps", "reference_chosen_logps", "reference_rejected_logps", "chosen_rewards", "rejected_rewards"} {
		want[k] = g.F32("dpo." + k)
	}
	if len(stats) != len(want["chosen_rewards"]) {
		t.Fatalf("%d pairs, golden %d", len(stats), len(want["chosen_rewards"]))
	}
	maxLogp, maxReward := 0.0, 0.0
	for i, s := range stats {
		for k, v := range map[string]float64{"policy_chosen_logps": s.PolicyChosen, "policy_rejected_logps": s.PolicyRejected,
			"reference_chosen_logps": s.ReferenceChosen, "reference_rejected_logps": s.ReferenceRejected} {
			near(t, k, v, float64(want[k][i]), 1e-4)
			maxLogp = max(maxLogp, math.Abs(v-float64(want[k][i])))
		}
		near(t, "chosen_reward", s.ChosenReward, float64(want["chosen_rewards"][i]), 1e-5)
		near(t, "rejected_reward", s.RejectedReward, float64(want["rejected_rewards"][i]), 1e-5)
		maxReward = max(maxReward, math.Abs(s.ChosenReward-float64(want["chosen_rewards"][i])), math.Abs(s.RejectedReward-float64(want["rejected_rewards"][i])))
	}
	t.Logf("max |diff|: log-probs %.3g, rewards %.3g", maxLogp, maxReward)
}

// Sigmoid DPO through the Objective: per-pair log-probs, rewards, the loss, the metrics and
// every dpo_grad.<PEFT key> against the golden; the frozen base gets no gradient.
func TestObjectiveMatchesGolden(t *testing.T) {
	g := openGolden(t)
	m, set := loraPolicy(t)
	obj := dpo.NewObjective(m, set, nil, dpo.Config{Beta: g.Scalar("dpo_beta")})
	b := batches(t, goldenPairs(t, g), 2)[0]

	stats, err := obj.Evaluate(b)
	if err != nil {
		t.Fatal(err)
	}
	checkPairs(t, g, stats)
	restore := dpo.SetTapelessLogits(1) // tape-less forwards one row at a time
	one, err := obj.Evaluate(b)
	restore()
	if err != nil {
		t.Fatal(err)
	}
	checkPairs(t, g, one)
	logits := g.Scalars["dpo_logits"].([]any)
	for i, s := range stats {
		near(t, "logit", s.Logit, logits[i].(float64), 1e-4)
	}

	tp := autograd.NewTape()
	met, err := obj.Step(tp, b, 1)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "loss", met["loss"], g.Scalar("dpo_loss"), 1e-5)
	near(t, "dpo/reward_accuracy", met["dpo/reward_accuracy"], g.Scalar("dpo_reward_accuracy"), 0)
	near(t, "dpo/margin", met["dpo/margin"], g.Scalar("dpo_reward_margin_mean"), 1e-5)
	near(t, "dpo/pairs", met["dpo/pairs"], 2, 0)
	pc := g.F32("dpo.policy_chosen_logps")
	near(t, "dpo/policy_chosen_logp", met["dpo/policy_chosen_logp"], (float64(pc[0])+float64(pc[1]))/2, 1e-4)
	cr := g.F32("dpo.chosen_rewards")
	near(t, "dpo/chosen_reward", met["dpo/chosen_reward"], (float64(cr[0])+float64(cr[1]))/2, 1e-5)
	t.Logf("loss %.9g, golden %.9g", met["loss"], g.Scalar("dpo_loss"))

	grads := map[string][]float32{}
	for _, p := range set.Params() {
		grads[p.Name] = p.Grad()
	}
	n, worst := 0, 0.0
	for _, name := range g.Tensors.Names() {
		key, ok := strings.CutPrefix(name, "dpo_grad.")
		if !ok {
			continue
		}
		n++
		want := g.F32(name)
		tol := golden.GradTol(want)
		d := golden.Compare(grads[key], want, tol)
		if d.Max > tol {
			t.Errorf("%s: %s", key, d)
		}
		worst = max(worst, d.Max/tol)
	}
	if n != 28 || len(grads) != 28 {
		t.Errorf("compared %d dpo gradients of %d adapter tensors, want 28", n, len(grads))
	}
	t.Logf("gradients: worst |diff| is %.3g of the tolerance", worst)
	for _, p := range m.Params() {
		if p.Grad() != nil {
			t.Errorf("frozen base parameter %s has a gradient", p.Name)
		}
	}
	if set.Disabled() {
		t.Error("Step left the adapters disabled")
	}
}

// The trainer's accumulation: two micro-batches of one pair each with scale ½ give the
// gradient of the whole batch (the golden's), and the loss of each pair is the golden
// per-pair loss.
func TestObjectiveAccumulates(t *testing.T) {
	g := openGolden(t)
	m, set := loraPolicy(t)
	obj := dpo.NewObjective(m, set, nil, dpo.Config{}) // zero config: sigmoid, β 0.1
	tp := autograd.NewTape()
	sum := 0.0
	for _, b := range batches(t, goldenPairs(t, g), 1) {
		met, err := obj.Step(tp, b, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		sum += met["loss"] / 2
	}
	near(t, "mean loss over micro-batches", sum, g.Scalar("dpo_loss"), 1e-5)
	for _, p := range set.Params() {
		want := g.F32("dpo_grad." + p.Name)
		if d := golden.Compare(p.Grad(), want, golden.GradTol(want)); d.Max > golden.GradTol(want) {
			t.Errorf("%s: %s", p.Name, d)
		}
	}
}

// With activation checkpointing (blocks recomputed in backward) the gradients are still the
// golden's.
func TestObjectiveCheckpointing(t *testing.T) {
	g := openGolden(t)
	m, set := loraPolicy(t)
	m.Checkpointing = true
	if _, err := dpo.NewObjective(m, set, nil, dpo.Config{}).Step(autograd.NewTape(), batches(t, goldenPairs(t, g), 2)[0], 1); err != nil {
		t.Fatal(err)
	}
	for _, p := range set.Params() {
		want := g.F32("dpo_grad." + p.Name)
		if d := golden.Compare(p.Grad(), want, golden.GradTol(want)); d.Max > golden.GradTol(want) {
			t.Errorf("%s: %s", p.Name, d)
		}
	}
}

// IPO on summed log-probs and with TRL's length normalisation; hinge and robust from the
// golden's logits h by TRL's formulas (written out here, not taken from the package).
func TestLossesMatchGolden(t *testing.T) {
	g := openGolden(t)
	m, set := loraPolicy(t)
	b := batches(t, goldenPairs(t, g), 2)[0]
	beta := g.Scalar("dpo_beta")
	var h []float64
	for _, v := range g.Scalars["dpo_logits"].([]any) {
		h = append(h, v.(float64))
	}
	logsig := func(x float64) float64 { return -math.Log1p(math.Exp(-x)) }
	mean := func(f func(h float64) float64) float64 { return (f(h[0]) + f(h[1])) / 2 }
	const ls = 0.2
	for _, c := range []struct {
		cfg  dpo.Config
		want float64
		tol  float64
	}{
		// IPO's loss is (h − 5)² ≈ 25, so its error is 2|h − 5| ≈ 10 times h's: 1e-5 relative.
		{dpo.Config{Beta: beta, Loss: "ipo"}, g.Scalar("ipo_loss"), 1e-5 * g.Scalar("ipo_loss")},
		{dpo.Config{Beta: beta, Loss: "ipo", LengthNormalize: true}, g.Scalar("ipo_loss_length_normalised_trl"), 1e-5 * g.Scalar("ipo_loss")},
		{dpo.Config{Beta: beta, Loss: "hinge"}, mean(func(h float64) float64 { return max(0, 1-beta*h) }), 1e-5},
		// β 60 puts the second pair past the hinge (1 − 60·h < 0); h's error is scaled by β.
		{dpo.Config{Beta: 60, Loss: "hinge"}, mean(func(h float64) float64 { return max(0, 1-60*h) }), 3e-4},
		{dpo.Config{Beta: beta, Loss: "sigmoid", LabelSmoothing: ls}, mean(func(h float64) float64 {
			return -logsig(beta*h)*(1-ls) - logsig(-beta*h)*ls
		}), 1e-5},
		{dpo.Config{Beta: beta, Loss: "robust", LabelSmoothing: ls}, mean(func(h float64) float64 {
			return (-logsig(beta*h)*(1-ls) + logsig(-beta*h)*ls) / (1 - 2*ls)
		}), 1e-5},
		{dpo.Config{Beta: beta, Loss: "robust"}, g.Scalar("dpo_loss"), 1e-5}, // robust without smoothing is sigmoid
	} {
		stats, err := dpo.NewObjective(m, set, nil, c.cfg).Evaluate(b)
		if err != nil {
			t.Fatal(err)
		}
		got := dpo.Metrics(stats)["loss"]
		near(t, c.cfg.Loss+" loss", got, c.want, c.tol)
		t.Logf("%+v: loss %.9g, want %.9g, |diff| %.3g", c.cfg, got, c.want, math.Abs(got-c.want))
	}
}

// Full fine-tuning: the policy is the golden's merged model (base + scale·B·A in every
// projection), the reference a frozen copy of the base. Log-probs and loss are the golden's;
// every parameter of the policy gets a gradient, the reference none.
func TestObjectiveFrozenCopy(t *testing.T) {
	g := openGolden(t)
	policy, ref := loadBase(t), loadBase(t)
	merged := 0
	for _, p := range policy.Params() {
		if w, err := g.Tensors.Float32("merged." + p.Name); err == nil {
			copy(p.Data, w)
			merged++
		}
	}
	if merged != 14 {
		t.Fatalf("merged %d projections, want 14", merged)
	}
	for _, p := range ref.Params() {
		p.RequiresGrad = false
	}
	obj := dpo.NewObjective(policy, nil, ref, dpo.Config{})
	b := batches(t, goldenPairs(t, g), 2)[0]
	stats, err := obj.Evaluate(b)
	if err != nil {
		t.Fatal(err)
	}
	checkPairs(t, g, stats)
	met, err := obj.Step(autograd.NewTape(), b, 1)
	if err != nil {
		t.Fatal(err)
	}
	near(t, "loss", met["loss"], g.Scalar("dpo_loss"), 1e-5)
	for _, p := range policy.Params() {
		if p.Grad() == nil {
			t.Errorf("policy parameter %s got no gradient", p.Name)
		}
	}
	for _, p := range ref.Params() {
		if p.Grad() != nil {
			t.Errorf("reference parameter %s got a gradient", p.Name)
		}
	}
	if _, err := dpo.NewObjective(policy, nil, nil, dpo.Config{}).Step(autograd.NewTape(), b, 1); err == nil {
		t.Error("an objective without adapters or a reference copy ran")
	}
}
