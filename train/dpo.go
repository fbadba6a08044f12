package train

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"

	"github.com/gwen-ml/gwen/data"
	"github.com/gwen-ml/gwen/data/tokenizer"
	"github.com/gwen-ml/gwen/dpo"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/lora"
	"github.com/gwen-ml/gwen/recipes"
	"github.com/gwen-ml/gwen/rewards"
)

// newObjective is the stage's DPO objective: the reference is the model with its adapters
// disabled (LoRA), or a frozen copy of the weights the stage starts from (full fine-tuning),
// which a resumed run loads again from where they came from (model.path, or the previous
// stage's final checkpoint, which prune keeps).
func (r *run) newObjective(si int, rc recipes.Recipe, resuming bool) (*dpo.Objective, error) {
	d := rc.DPO
	cfg := dpo.Config{Beta: d.Beta, Loss: d.Loss, LabelSmoothing: d.LabelSmoothing, LengthNormalize: d.LengthNormalize}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: dpo: %w", r.plan.File, err)
	}
	var ref *layers.Model
	if r.adapters != nil && r.adaptersFrom < si {
		// The adapters come from an earlier stage (SFT, then DPO): the reference is the model
		// as that stage left it, base + adapters merged into a frozen copy (disabling the
		// adapters would give the base before SFT).
		if !resuming {
			r.st.Reference = r.lastDir
		}
		ref, err := mergedReference(r.base, r.st.Reference, r.model)
		if err != nil {
			return nil, fmt.Errorf("DPO reference: %w", err)
		}
		return dpo.NewObjective(r.model, nil, ref, cfg), nil
	}
	if r.adapters == nil {
		var err error
		if !resuming {
			switch {
			case si == 0 && rc.Model.Path != "":
				r.st.Reference, err = filepath.Abs(rc.Model.Path)
			case si > 0 && r.lastDir != "":
				r.st.Reference = r.lastDir
			default:
				return nil, fmt.Errorf("%s: DPO's reference is the weights the stage starts from: set model.path, or put a training stage first", r.plan.File)
			}
			if err != nil {
				return nil, err
			}
			ref, err = frozenCopy(r.model)
		} else {
			ref, err = layers.Load(r.st.Reference)
			if err == nil {
				ref, err = withConfig(ref, r.model.Config)
			}
			if err == nil {
				for _, p := range ref.Params() {
					p.RequiresGrad = false
				}
				ref.BF16 = r.model.BF16
			}
		}
		if err != nil {
			return nil, fmt.Errorf("DPO reference: %w", err)
		}
	}
	return dpo.NewObjective(r.model, r.adapters, ref, cfg), nil
}

// frozenCopy is a copy of m's weights that takes no gradient.
func frozenCopy(m *layers.Model) (*layers.Model, error) {
	c, err := layers.New(m.Config)
	if err != nil {
		return nil, err
	}
	src := m.Params()
	for i, p := range c.Params() {
		copy(p.Data, src[i].Data)
		p.RequiresGrad = false
	}
	c.BF16 = m.BF16
	return c, nil
}

// OnlineState is where online DPO stands: the round's pairs (kept in the checkpoint, since a
// resumed model could not sample them again), how many of their batches were trained, and the
// next prompt.
type OnlineState struct {
	Round      int        `json:"round"`
	RoundStart int        `json:"round_start"` // stage step at which the round was sampled
	NextPrompt int        `json:"next_prompt"`
	Pos        int        `json:"pos"` // batches of the round consumed
	Pairs      []dpo.Pair `json:"pairs"`
}

// online samples and serves the pairs of online DPO.
type online struct {
	cfg     *recipes.Online
	seed    uint64
	model   *layers.Model
	run     *run
	tok     *tokenizer.Tokenizer
	prompts []dpo.Prompt // training prompts
	heldOut []dpo.Prompt
	rules   *rewards.Set
	rows    int // pairs per batch
	seqLen  int
	st      *OnlineState
	batches []data.Batch
	// sampled is set when the last call started a round: its mean rule reward, for metrics.
	sampled map[string]float64
}

func newOnline(r *run, rc recipes.Recipe, tok *tokenizer.Tokenizer, st *OnlineState) (*online, error) {
	o := rc.DPO.Online
	texts, err := readColumn(o.Prompts.Path, o.Prompts.Column)
	if err != nil {
		return nil, err
	}
	answers, err := readColumn(o.Prompts.Path, o.AnswerColumn)
	if err != nil {
		return nil, err
	}
	if len(texts) != len(answers) || len(texts) <= o.HeldOut {
		return nil, fmt.Errorf("dpo.online.prompts %s: %d prompts, %d answers, %d held out", o.Prompts.Path, len(texts), len(answers), o.HeldOut)
	}
	var ps []dpo.Prompt
	for i := range texts {
		ps = append(ps, dpo.Prompt{Text: texts[i], Answer: answers[i]})
	}
	rules, err := rewards.Parse(o.Rules, o.Weights)
	if err != nil {
		return nil, fmt.Errorf("dpo.online.rules: %w", err)
	}
	n := len(ps) - o.HeldOut
	if st == nil {
		st = &OnlineState{}
	}
	return &online{cfg: o, seed: rc.Train.Seed, model: r.model, run: r, tok: tok, prompts: ps[:n], heldOut: ps[n:],
		rules: rules, rows: rc.Train.BatchSize, seqLen: rc.Data.SeqLen, st: st}, nil
}

// readColumn reads every value of a string column, in file order.
func readColumn(path, column string) ([]string, error) {
	src, err := data.Open([]string{path}, data.Spec{Format: data.FormatText, Column: column})
	if err != nil {
		return nil, err
	}
	s := data.NewStream(src, false, 0)
	defer s.Close()
	var out []string
	for s.Epoch() == 0 {
		ex, err := s.Next()
		if err != nil {
			return nil, err
		}
		if s.Epoch() == 0 || len(out) == 0 {
			out = append(out, ex.Text)
		}
	}
	return out, nil
}

// sample runs one round of sampling over prompts and returns the pairs and the mean score of
// every sample under each rule ("dpo/sample_<rule>") and in total ("dpo/sample_reward").
func (o *online) sample(prompts []dpo.Prompt, seed uint64) ([]dpo.Pair, map[string]float64, error) {
	if a := o.run.adapters; a != nil {
		a.Eval()
	}
	sums := map[string]float64{}
	n := 0
	score := func(completion, answer string) float64 {
		per, total := o.rules.Score(completion, answer)
		for k, v := range per {
			sums["dpo/sample_"+k] += v
		}
		n++
		return total
	}
	pairs, mean, err := dpo.SamplePairs(o.model, o.tok, prompts, o.cfg.K, o.cfg.Temperature, o.cfg.MaxNewTokens, seed, score)
	if err != nil {
		return nil, nil, err
	}
	for k := range sums {
		sums[k] /= float64(max(n, 1))
	}
	sums["dpo/sample_reward"] = mean
	sums["dpo/pairs_sampled"] = float64(len(pairs))
	return pairs, sums, nil
}

// heldOutReward is the mean rule reward of samples on the held-out prompts (a fixed seed, so
// the numbers before and after training compare like with like).
func (o *online) heldOutReward() (map[string]float64, error) {
	if len(o.heldOut) == 0 {
		return nil, nil
	}
	_, m, err := o.sample(o.heldOut, o.seed^0x6865)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for k, v := range m {
		if k != "dpo/pairs_sampled" {
			out["heldout_"+k[len("dpo/sample_"):]] = v
		}
	}
	return out, nil
}

// next returns the next batch of pairs, sampling a new round when the round's batches are used
// up or regenerate_every steps have passed since it was sampled.
func (o *online) next(stageStep int) (data.Batch, error) {
	st := o.st
	due := st.Pairs == nil || (o.cfg.RegenerateEvery > 0 && stageStep-st.RoundStart >= o.cfg.RegenerateEvery) ||
		(o.cfg.RegenerateEvery == 0 && st.Pos >= len(o.roundBatches()))
	if due {
		for try := 0; ; try++ {
			var ps []dpo.Prompt
			for i := 0; i < o.cfg.PromptsPerRound; i++ {
				ps = append(ps, o.prompts[(st.NextPrompt+i)%len(o.prompts)])
			}
			st.NextPrompt = (st.NextPrompt + o.cfg.PromptsPerRound) % len(o.prompts)
			seed := rand.New(rand.NewPCG(o.seed, uint64(st.Round))).Uint64()
			pairs, m, err := o.sample(ps, seed)
			if err != nil {
				return data.Batch{}, err
			}
			st.Round++
			if len(pairs) > 0 {
				st.Pairs, st.Pos, st.RoundStart, o.batches, o.sampled = pairs, 0, stageStep, nil, m
				break
			}
			if tries := max(5, (len(o.prompts)+o.cfg.PromptsPerRound-1)/o.cfg.PromptsPerRound); try+1 >= tries {
				return data.Batch{}, fmt.Errorf("online DPO: %d rounds in a row (every prompt once) gave no pair: each prompt's samples scored the same; raise temperature or k, or fine-tune first", tries)
			}
		}
	}
	bs := o.roundBatches()
	if len(bs) == 0 {
		return data.Batch{}, fmt.Errorf("online DPO: no pair of round %d fits seq_len %d", st.Round, o.seqLen)
	}
	b := bs[st.Pos%len(bs)]
	st.Pos++
	return b, nil
}

// roundBatches lays the round's pairs out as preference batches (made again after a resume:
// they are a function of the pairs).
func (o *online) roundBatches() []data.Batch {
	if o.batches == nil && o.st.Pairs != nil {
		bs, _, err := dpo.PairBatches(o.st.Pairs, o.rows, o.seqLen, o.tok.Pad())
		if err == nil {
			o.batches = bs
		}
	}
	return o.batches
}

// mergedReference is a frozen model: the base weights of baseDir with the PEFT adapter in
// adapterDir folded in, in the config of like.
func mergedReference(baseDir, adapterDir string, like *layers.Model) (*layers.Model, error) {
	ref, err := layers.Load(baseDir)
	if err != nil {
		return nil, err
	}
	if ref, err = withConfig(ref, like.Config); err != nil {
		return nil, err
	}
	p, err := lora.Load(adapterDir)
	if err != nil {
		return nil, err
	}
	if err := p.Merge(ref); err != nil {
		return nil, err
	}
	for _, t := range ref.Params() {
		t.RequiresGrad = false
	}
	ref.BF16 = like.BF16
	return ref, nil
}
