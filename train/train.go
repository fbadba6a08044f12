// Package train owns the training run: one flat loop (setup, steps, cleanup) over the stages
// of a recipe, gradient accumulation, checkpoints that resume bit for bit, and metrics sinks.
package train

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/data"
	"github.com/gwen-ml/gwen/data/tokenizer"
	"github.com/gwen-ml/gwen/dist"
	"github.com/gwen-ml/gwen/dpo"
	"github.com/gwen-ml/gwen/internal/durable"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/lora"
	"github.com/gwen-ml/gwen/metrics"
	"github.com/gwen-ml/gwen/moe"
	"github.com/gwen-ml/gwen/optim"
	"github.com/gwen-ml/gwen/recipes"
)

// Options are the run's choices that are not part of the recipe.
type Options struct {
	Resume bool      // continue from the newest complete checkpoint (from the start if none)
	Log    io.Writer // progress and messages (stderr)
	// Terminal: Log is a terminal, so progress is a live bar instead of plain lines.
	Terminal bool
	// Comm is the data-parallel communicator (nil: one process). Rank 0 writes checkpoints and
	// metrics; every rank trains its slice of each batch.
	Comm dist.Comm
}

// testHook, when set by a test, is called after each step ("step") and in the middle of
// writing a checkpoint ("checkpoint"), so tests can kill or cancel a run at exact points.
var testHook func(event string, step int)

// ErrInterrupted is returned when the context is cancelled (Ctrl-C): the run saved a
// checkpoint first, so --resume continues exactly.
var ErrInterrupted = errors.New("interrupted")

// Result says where a finished (or interrupted) run left its outputs.
type Result struct {
	OutDir     string
	Checkpoint string // the newest complete checkpoint
	State      State
}

// run is the state of one training run across its stages.
type run struct {
	plan   *recipes.Plan
	opt    Options
	out    string
	ckRoot string
	recipe []byte
	sink   metrics.Sink

	st       State
	model    *layers.Model
	adapters *lora.Set // LoRA stages: the trainable adapters on the frozen model
	// adaptersFrom is the stage that attached them (later LoRA stages go on training them)
	adaptersFrom int
	base         string // LoRA stages: the folder the frozen base loads from
	adam         *optim.AdamW
	lastSave     int    // step of the newest checkpoint written or loaded (-1: none)
	lastDir      string // its folder
}

// Run trains the plan's stages in order. With opt.Resume it continues from the newest
// complete checkpoint in OUT/checkpoints, so that every step's loss and the final weights are
// those of an uninterrupted run, bit for bit (same machine and thread count).
func Run(ctx context.Context, plan *recipes.Plan, opt Options) (res Result, err error) {
	moe.Register()
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	if opt.Comm == nil {
		opt.Comm = dist.Single()
	}
	lead := opt.Comm.Rank() == 0
	first := plan.Stages[0].Recipe
	r := &run{plan: plan, opt: opt, out: first.OutDir, ckRoot: filepath.Join(first.OutDir, "checkpoints"),
		recipe: plan.JSON(), lastSave: -1}
	res.OutDir = r.out

	// Setup: where to start.
	for _, s := range plan.Stages {
		if n := opt.Comm.Size(); s.Recipe.Train.BatchSize%n != 0 {
			return res, fmt.Errorf("%s: train.batch_size %d does not split over %d ranks: make it a multiple of %d", plan.File, s.Recipe.Train.BatchSize, n, n)
		}
	}
	if lead {
		if err := os.MkdirAll(r.ckRoot, 0o755); err != nil {
			return res, err
		}
		if err := durable.CleanTemps(r.ckRoot); err != nil {
			return res, err
		}
	}
	if err := opt.Comm.Barrier(); err != nil {
		return res, err
	}
	cks, err := checkpoints(r.ckRoot)
	if err != nil {
		return res, err
	}
	var resumeFrom *checkpoint
	switch {
	case opt.Resume && len(cks) > 0:
		resumeFrom = &cks[len(cks)-1]
		r.st = resumeFrom.State
		r.lastSave, r.lastDir = r.st.Step, resumeFrom.Dir
		if r.st.RecipeHash != plan.Hash {
			fmt.Fprintf(opt.Log, "note: %s differs from the recipe %s was trained with; continuing with the new one\n", plan.File, resumeFrom.Dir)
		}
	case !opt.Resume && len(cks) > 0:
		return res, fmt.Errorf("%s already holds checkpoints (newest %s): pass --resume to continue that run, or set another out_dir", r.out, cks[len(cks)-1].Dir)
	}
	resumeStep := -1
	if resumeFrom != nil {
		resumeStep = r.st.Step
	}
	if lead {
		if err := durable.WriteFile(filepath.Join(r.out, "recipe.json"), r.recipe, 0o644); err != nil {
			return res, err
		}
		if r.sink, err = openSinks(plan, r.out, resumeStep, opt); err != nil {
			return res, err
		}
	} else {
		r.sink = metrics.Tee() // only rank 0 reports
	}
	exit := 0
	defer func() {
		if err != nil {
			exit = 1
		}
		if cerr := r.sink.Close(exit); err == nil && cerr != nil {
			err = cerr
		}
		res.Checkpoint, res.State = r.lastDir, r.st
	}()

	// The stages, each a flat loop.
	startStage := 0
	if resumeFrom != nil {
		startStage = r.st.Stage
		if r.st.StageDone {
			startStage++
		}
		if startStage >= len(plan.Stages) {
			fmt.Fprintf(opt.Log, "%s: finished already at step %d (%s)\n", r.out, r.st.Step, resumeFrom.Dir)
			return res, nil
		}
		dir := resumeFrom.Dir
		if r.st.Base != "" { // a LoRA checkpoint holds the adapters; the base loads from its folder
			dir, r.base = r.st.Base, r.st.Base
		}
		if r.model, err = layers.Load(dir); err != nil {
			return res, err
		}
	}
	for si := startStage; si < len(plan.Stages); si++ {
		midStage := resumeFrom != nil && si == r.st.Stage && !r.st.StageDone
		if err := r.stage(ctx, si, midStage, resumeFrom); err != nil {
			return res, err
		}
		resumeFrom = nil
	}
	return res, nil
}

// stage runs one stage: setup (model, optimizer, data), the loop, and a final checkpoint.
func (r *run) stage(ctx context.Context, si int, midStage bool, from *checkpoint) error {
	stage := r.plan.Stages[si]
	rc := stage.Recipe
	lead := r.opt.Comm.Rank() == 0
	accum := rc.Train.GradAccum

	// Model: the previous stage's weights (or the checkpoint's), with this stage's config.
	if err := r.setupModel(rc); err != nil {
		return err
	}
	m := r.model
	m.BF16 = rc.Model.Dtype == "bf16"
	m.Checkpointing = rc.Train.ActivationCheckpointing
	params := m.Params()
	if err := r.setupAdapters(si, rc, from); err != nil {
		return err
	}
	if r.adapters != nil {
		params = r.adapters.Params()
	}

	// Optimizer: fresh for each stage unless optim.keep_state; a checkpoint's mid-stage.
	keep := r.adam != nil && rc.Optim.KeepState
	newAdam := &optim.AdamW{Beta1: float32(rc.Optim.Betas[0]), Beta2: float32(rc.Optim.Betas[1]),
		Eps: float32(rc.Optim.Eps), WeightDecay: float32(*rc.Optim.WeightDecay), State: map[string]*optim.Moments{}}
	switch {
	case midStage || (from != nil && rc.Optim.KeepState):
		if err := loadOptimizer(filepath.Join(from.Dir, optimizerFile), newAdam); err != nil {
			return err
		}
		r.adam = newAdam
	case keep:
		r.adam.Beta1, r.adam.Beta2, r.adam.Eps, r.adam.WeightDecay = newAdam.Beta1, newAdam.Beta2, newAdam.Eps, newAdam.WeightDecay
	default:
		r.adam = newAdam
	}
	sched := schedule(rc)

	// Data.
	tok, err := tokenizer.Load(rc.Tokenizer)
	if err != nil {
		return err
	}
	var pipe *data.Pipeline // nil for online DPO, whose pairs the model samples
	if len(rc.Data.Train) > 0 && (rc.DPO == nil || rc.DPO.Online == nil) {
		if pipe, err = openPipeline(rc, rc.Data.Train, tok, rc.Train.Seed, *rc.Data.Shuffle); err != nil {
			return err
		}
		defer pipe.Close()
	}
	if midStage && pipe != nil {
		if err := pipe.Restore(r.st.Data); err != nil {
			return fmt.Errorf("restoring the data position of %s: %w", from.Dir, err)
		}
	}
	if !midStage {
		r.st.Stage, r.st.StageName, r.st.StageStep, r.st.StageDone, r.st.Online, r.st.Reference = si, stage.Name, 0, false, nil, ""
	}
	// DPO: the objective, and for online DPO the sampler of pairs.
	var obj *dpo.Objective
	var onl *online
	if rc.DPO != nil {
		if r.opt.Comm.Size() > 1 {
			return fmt.Errorf("%s: DPO does not run data-parallel yet; run it as one process", r.plan.File)
		}
		if obj, err = r.newObjective(si, rc, midStage); err != nil {
			return err
		}
		if rc.DPO.Online != nil {
			var st *OnlineState
			if midStage {
				st = r.st.Online
			}
			if onl, err = newOnline(r, rc, tok, st); err != nil {
				return err
			}
			r.st.Online = onl.st
			if !midStage && lead {
				if err := r.heldOut(onl, stage.Name); err != nil {
					return err
				}
			}
		}
	}
	r.st.Seed, r.st.RecipeHash = rc.Train.Seed, r.plan.Hash

	// The loop.
	tp := autograd.NewTape()
	var red *reducer // data parallelism: the overlapped gradient all-reduce
	if r.opt.Comm.Size() > 1 {
		red = newReducer(r.opt.Comm, params)
	}
	total := rc.Train.MaxSteps
	batches := make([]data.Batch, accum)
	targets := make([][]int32, accum)
	lastLog, lastTokens := time.Now(), r.st.Tokens
	for r.st.StageStep < total {
		if r.stopRequested(ctx) {
			return r.interrupted(rc)
		}
		// Read the whole accumulated batch first: the loss is normalised over all its counted
		// targets, not averaged over micro-batch means.
		count := 0
		for a := range batches {
			if onl != nil {
				batches[a], err = onl.next(r.st.StageStep)
			} else {
				batches[a], err = pipe.Next()
			}
			if err != nil {
				return fmt.Errorf("step %d: %w", r.st.Step+1, err)
			}
			if obj != nil {
				continue // DPO's loss is a mean over pairs, not over targets
			}
			targets[a] = layers.CausalTargets(batches[a].Labels, batches[a].B, batches[a].T)
			for _, t := range targets[a] {
				if t != data.Ignore {
					count++
				}
			}
		}
		var ceSum, auxSum float64
		var tokens int64
		comm := r.opt.Comm
		var dpoVals map[string]float64
		var dpoPairs float64
		for a, full := range batches {
			if r.adapters != nil {
				r.adapters.Train(r.st.Step+1, a) // dropout masks keyed by (step, micro-batch)
			}
			if obj != nil {
				v, err := obj.Step(tp, full, 1/float64(accum))
				if err != nil {
					return fmt.Errorf("step %d: %w", r.st.Step+1, err)
				}
				if dpoVals == nil {
					dpoVals = map[string]float64{}
				}
				n := v["dpo/pairs"]
				for k, x := range v {
					if k != "dpo/pairs" {
						dpoVals[k] += x * n
					}
				}
				dpoPairs += n
				tokens += int64(full.B*full.T - full.Padding)
				continue
			}
			if red != nil && a == len(batches)-1 { // the last micro-batch: overlap the all-reduce with its backward
				tp.OnGradFinal(red.arm())
			}
			b := shard(full, comm.Rank(), comm.Size())
			tgt := shardTargets(targets[a], full, comm.Rank(), comm.Size())
			out := m.Forward(tp, layers.Input{IDs: b.IDs, B: b.B, T: b.T, Pos: b.Pos, DocStart: b.DocStart, SkipLMHead: true})
			loss, sum, _ := m.CrossEntropy(tp, out.Hidden, tgt, float64(count))
			if len(out.RouterLogits) > 0 {
				aux, v := moe.LoadBalancingLoss(tp, out.RouterLogits, m.Config.NumExperts, m.Config.NumExpertsPerTok)
				loss = moe.AddScaled(tp, loss, aux, m.Config.RouterAuxLossCoef/float64(accum))
				auxSum += v
			}
			tp.Backward(loss)
			ceSum += sum
			tokens += int64(full.B*full.T - full.Padding)
		}
		if comm.Size() > 1 {
			if err := red.finish(); err != nil {
				return fmt.Errorf("step %d: %w", r.st.Step+1, err)
			}
			sums := []float64{ceSum, auxSum}
			if err := comm.AllReduceSumFloat64(sums); err != nil {
				return fmt.Errorf("step %d: %w", r.st.Step+1, err)
			}
			ceSum, auxSum = sums[0], sums[1]/float64(comm.Size())
		}
		loss := ceSum / float64(max(count, 1))
		if obj != nil { // pair-weighted means over the micro-batches
			for k := range dpoVals {
				dpoVals[k] /= max(dpoPairs, 1)
			}
			loss = dpoVals["loss"]
			delete(dpoVals, "loss")
			dpoVals["dpo/pairs"] = dpoPairs
		}
		norm, coef := optim.ClipCoef(params, *rc.Optim.GradClip)
		step := r.st.Step + 1
		if bad(loss) || bad(norm) {
			msg := fmt.Sprintf("step %d: the loss is %v and the gradient norm %v; stopped without updating the weights", step, loss, norm)
			if r.lastDir != "" {
				msg += "; the last good checkpoint is " + r.lastDir
			}
			return errors.New(msg)
		}
		lr := sched.LR(r.st.StageStep)
		r.adam.UpdateScaled(params, lr, coef)
		optim.ZeroGrad(params)
		r.st.Step, r.st.StageStep, r.st.Tokens = step, r.st.StageStep+1, r.st.Tokens+tokens
		r.st.StageDone = r.st.StageStep == total

		if step%rc.Log.Every == 0 || r.st.StageDone {
			now := time.Now()
			vals := map[string]float64{"loss": loss, "lr": float64(lr), "grad_norm": norm,
				"tokens": float64(r.st.Tokens), "tokens_per_s": float64(r.st.Tokens-lastTokens) / now.Sub(lastLog).Seconds()}
			if m.Config.NumExperts > 0 && obj == nil {
				vals["moe/aux_loss"] = auxSum / float64(accum)
				for layer, st := range moe.ModelStats(m) { // the routing of the step's last micro-batch
					pre := fmt.Sprintf("moe/layer%d/", layer)
					vals[pre+"max_load"], vals[pre+"min_load"], vals[pre+"aux_loss"] = float64(st.MaxLoad), float64(st.MinLoad), st.AuxLoss
				}
			}
			for k, v := range dpoVals {
				vals[k] = v
			}
			if onl != nil && onl.sampled != nil { // a round was sampled during this step
				for k, v := range onl.sampled {
					vals[k] = v
				}
				onl.sampled = nil
			}
			if err := r.sink.Write(metrics.Record{Step: step, Stage: stage.Name, Values: vals}); err != nil {
				return err
			}
			lastLog, lastTokens = now, r.st.Tokens
		}
		if lead && rc.Train.EvalEvery > 0 && (step%rc.Train.EvalEvery == 0 || r.st.StageDone) {
			if err := r.eval(rc, stage.Name, tok); err != nil {
				return err
			}
		}
		if pipe != nil {
			r.st.Data = pipe.State()
		}
		if testHook != nil {
			testHook("step", step)
		}
		if r.st.StageDone || (rc.Train.CheckpointEvery > 0 && r.st.StageStep%rc.Train.CheckpointEvery == 0) {
			if err := r.save(rc); err != nil {
				return err
			}
		}
	}
	if !lead {
		return nil
	}
	if r.adapters != nil {
		r.adapters.Eval()
	}
	if onl != nil {
		if err := r.heldOut(onl, stage.Name); err != nil {
			return err
		}
	}
	if rc.Eval.Passkey > 0 {
		acc, err := passkey(m, tok, rc.Data.SeqLen, rc.Eval.Passkey, rc.Train.Seed)
		if err != nil {
			return err
		}
		if err := r.sink.Write(metrics.Record{Step: r.st.Step, Stage: stage.Name, Eval: true,
			Values: map[string]float64{"passkey_accuracy": acc, "passkey_len": float64(rc.Data.SeqLen)}}); err != nil {
			return err
		}
	}
	return nil
}

func bad(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }

// setupModel makes r.model the stage's model: loaded or initialised for the first stage,
// carried over from the previous stage (or the checkpoint) otherwise, with the stage's
// config overrides (RoPE, context length) applied.
func (r *run) setupModel(rc recipes.Recipe) error {
	if r.model == nil {
		cfg, err := rc.ModelConfig()
		if err != nil {
			return err
		}
		if rc.Model.Path != "" {
			m, err := layers.Load(rc.Model.Path)
			if err != nil {
				return err
			}
			r.model, err = withConfig(m, *cfg)
			return err
		}
		m, err := layers.New(*cfg)
		if err != nil {
			return err
		}
		m.InitRandom(rc.Train.Seed, rc.Model.Init.Std)
		r.model = m
		return nil
	}
	cfg := r.model.Config
	if err := rc.ApplyModelOverrides(&cfg); err != nil {
		return fmt.Errorf("%s: model overrides: %w", r.plan.File, err)
	}
	m, err := withConfig(r.model, cfg)
	r.model = m
	return err
}

// withConfig returns m itself when cfg is its config, else a model of cfg holding m's weights
// (a RoPE or context-length change keeps every shape).
func withConfig(m *layers.Model, cfg layers.Config) (*layers.Model, error) {
	a, _ := m.Config.MarshalJSON()
	b, _ := cfg.MarshalJSON()
	if string(a) == string(b) {
		return m, nil
	}
	n, err := layers.New(cfg)
	if err != nil {
		return nil, err
	}
	np, op := n.Params(), m.Params()
	if len(np) != len(op) {
		return nil, fmt.Errorf("the new config changes the model's parameters (%d vs %d)", len(np), len(op))
	}
	for i := range np {
		if !slices.Equal(np[i].Shape, op[i].Shape) {
			return nil, fmt.Errorf("the new config changes %s from %v to %v", op[i].Name, op[i].Shape, np[i].Shape)
		}
		np[i].Data = op[i].Data
	}
	if n.LMHead != n.Embed {
		n.LMHead.Data = m.LMHead.Data
	}
	return n, nil
}

// schedule is the stage's learning-rate schedule over its steps.
func schedule(rc recipes.Recipe) optim.Schedule {
	s := rc.Optim.Schedule
	peak := float32(rc.Optim.LR)
	low := peak * float32(*s.MinLRRatio)
	n := rc.Train.MaxSteps
	switch s.Name {
	case "constant":
		return optim.Constant{Peak: peak, Warmup: s.WarmupSteps}
	case "linear":
		return optim.Linear{Peak: peak, Min: low, Warmup: s.WarmupSteps, Total: n}
	case "wsd":
		return optim.WSD{Peak: peak, Min: low, Warmup: s.WarmupSteps, Decay: int(math.Round(s.DecayRatio * float64(n))), Total: n}
	}
	return optim.Cosine{Peak: peak, Min: low, Warmup: s.WarmupSteps, Total: n}
}

// openPipeline opens the sources as one seeded mixture and its batching pipeline.
func openPipeline(rc recipes.Recipe, sources []recipes.Source, tok *tokenizer.Tokenizer, seed uint64, shuffle bool) (*data.Pipeline, error) {
	var streams []*data.Stream
	var weights []float64
	task := data.Task("")
	for i, s := range sources {
		f, err := data.ParseFormat(s.Format)
		if err != nil {
			return nil, err
		}
		t := taskOf(f)
		if task != "" && t != task {
			return nil, fmt.Errorf("%s: sources of one stage must be all text/tokens, all chat or all preference (source %d is %s)", rc.Name, i, s.Format)
		}
		task = t
		src, err := data.Open([]string{s.Path}, data.Spec{Format: f, Column: s.Column})
		if err != nil {
			for _, st := range streams {
				st.Close()
			}
			return nil, err
		}
		streams = append(streams, data.NewStream(src, shuffle, seed+uint64(i)))
		weights = append(weights, s.Weight)
	}
	if task == data.TaskPreference && rc.DPO == nil {
		return nil, fmt.Errorf("%s: preference data trains with DPO: add a dpo section to the recipe", rc.Name)
	}
	mix, err := data.NewMixture(streams, weights, seed)
	if err != nil {
		return nil, err
	}
	return data.NewPipeline(mix, tok, data.PipelineConfig{Task: task, Rows: rc.Train.BatchSize, SeqLen: rc.Data.SeqLen,
		Pack: *rc.Data.Packing, Truncate: rc.Data.Truncate, TrainEmptyThink: rc.Data.TrainEmptyThink})
}

func taskOf(f data.Format) data.Task {
	switch f {
	case data.FormatChat:
		return data.TaskSFT
	case data.FormatPreference:
		return data.TaskPreference
	}
	return data.TaskPretrain
}

// eval runs the eval sources from their start for eval_batches batches, without a tape, and
// records the mean loss over their counted targets and its perplexity.
func (r *run) eval(rc recipes.Recipe, stage string, tok *tokenizer.Tokenizer) error {
	pipe, err := openPipeline(rc, rc.Data.Eval, tok, rc.Train.Seed, false)
	if err != nil {
		return err
	}
	defer pipe.Close()
	if r.adapters != nil {
		r.adapters.Eval()
	}
	var sum float64
	var count int
	for range rc.Train.EvalBatches {
		b, err := pipe.Next()
		if err != nil {
			return fmt.Errorf("eval: %w", err)
		}
		out := r.model.Forward(nil, layers.Input{IDs: b.IDs, B: b.B, T: b.T, Pos: b.Pos, DocStart: b.DocStart, SkipLMHead: true})
		_, s, c := r.model.CrossEntropy(nil, out.Hidden, layers.CausalTargets(b.Labels, b.B, b.T), 0)
		sum += s
		count += c
	}
	loss := sum / float64(max(count, 1))
	return r.sink.Write(metrics.Record{Step: r.st.Step, Stage: stage, Eval: true,
		Values: map[string]float64{"loss": loss, "ppl": math.Exp(loss)}})
}

// save writes a checkpoint of the current state (once per step).
func (r *run) save(rc recipes.Recipe) error {
	if r.lastSave == r.st.Step {
		return nil
	}
	if r.opt.Comm.Rank() != 0 { // rank 0 writes; the others only note where it is
		r.lastSave, r.lastDir = r.st.Step, filepath.Join(r.ckRoot, checkpointName(r.st.Step))
		return nil
	}
	r.st.RNG = map[string]string{
		"data_mixture": base64.StdEncoding.EncodeToString(r.st.Data.Mixture.RNG),
		"init":         fmt.Sprintf("seed %d, drawn once before step 1", rc.Train.Seed),
	}
	r.st.Base = r.base
	dir, err := saveCheckpoint(r.ckRoot, r.st, r.model, r.adapters, r.base, r.adam, rc.Tokenizer, r.recipe, rc.Train.KeepCheckpoints, r.st.Reference)
	if err != nil {
		return err
	}
	r.lastSave, r.lastDir = r.st.Step, dir
	return nil
}

// interrupted saves a checkpoint at the last completed step and returns ErrInterrupted.
func (r *run) interrupted(rc recipes.Recipe) error {
	if r.st.Step > 0 {
		if err := r.save(rc); err != nil {
			return fmt.Errorf("interrupted, and the checkpoint failed: %w", err)
		}
	}
	return ErrInterrupted
}

// setupAdapters attaches the stage's LoRA adapters (once: later LoRA stages go on training the
// same ones), freezing the model, and restores them from a LoRA checkpoint when resuming.
func (r *run) setupAdapters(si int, rc recipes.Recipe, from *checkpoint) error {
	if rc.LoRA == nil {
		if r.adapters != nil {
			return fmt.Errorf("%s: stage %q trains the full model after a LoRA stage; LoRA stages must come last", r.plan.File, r.plan.Stages[si].Name)
		}
		return nil
	}
	if r.adapters == nil {
		if r.base == "" {
			switch {
			case si == 0 && rc.Model.Path != "":
				abs, err := filepath.Abs(rc.Model.Path)
				if err != nil {
					return err
				}
				r.base = abs
			case si > 0 && r.lastDir != "":
				r.base = r.lastDir // the previous stage's final checkpoint: kept by prune
			default:
				return fmt.Errorf("%s: LoRA trains adapters on a saved base: set model.path, or put a full training stage first", r.plan.File)
			}
		}
		l := rc.LoRA
		cfg := lora.Config{R: l.R, Alpha: l.Alpha, Dropout: l.Dropout, Layers: l.Layers, UseRSLoRA: l.UseRSLoRA, InitFrom: l.InitFrom,
			TargetModules: lora.Targets{Names: l.TargetModules.Names, Pattern: l.TargetModules.Pattern}}
		set, err := lora.Attach(r.model, cfg, rc.Train.Seed)
		if err != nil {
			return fmt.Errorf("%s: %w", r.plan.File, err)
		}
		r.adapters, r.adaptersFrom = set, si
		if rc.Model.Dtype == "bf16" {
			r.model.UseBF16Weights()
			if err := r.model.DropFP32Weights(); err != nil { // the frozen base in bf16 only
				return err
			}
		}
	}
	if from != nil && from.State.Base != "" {
		if err := r.adapters.LoadDir(from.Dir); err != nil {
			return fmt.Errorf("resuming from %s: %w", from.Dir, err)
		}
	}
	return nil
}

// stopRequested reports whether the run should stop (Ctrl-C, SIGTERM): under data parallelism
// the ranks agree first, so that all stop at the same step.
func (r *run) stopRequested(ctx context.Context) bool {
	stop := 0.0
	if ctx.Err() != nil {
		stop = 1
	}
	if c := r.opt.Comm; c.Size() > 1 {
		buf := []float64{stop}
		if err := c.AllReduceSumFloat64(buf); err == nil {
			stop = buf[0]
		}
	}
	return stop > 0
}

// heldOut records the mean rule reward of samples on online DPO's held-out prompts.
func (r *run) heldOut(o *online, stage string) error {
	vals, err := o.heldOutReward()
	if err != nil || vals == nil {
		return err
	}
	return r.sink.Write(metrics.Record{Step: r.st.Step, Stage: stage, Eval: true, Values: vals})
}
