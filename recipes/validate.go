package recipes

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/gwen-ml/gwen/data"
	"github.com/gwen-ml/gwen/layers"
)

// defaults fills what the recipe leaves out. They are the choices of torchtune and HF Trainer
// for causal LM training, said once here.
func defaults(r *Recipe, file string) {
	if r.Name == "" {
		r.Name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	if r.OutDir == "" {
		r.OutDir = filepath.Join("runs", r.Name)
	}
	if r.Model.Dtype == "" {
		r.Model.Dtype = "f32"
	}
	if r.Model.Init != nil && r.Model.Init.Std == 0 {
		r.Model.Init.Std = 0.02
	}
	if r.Tokenizer == "" && r.Model.Path != "" && dirHas(r.Model.Path, "tokenizer.json") {
		r.Tokenizer = r.Model.Path
	}
	t := true
	if r.Data.Packing == nil {
		r.Data.Packing = &t
	}
	if r.Data.Shuffle == nil {
		r.Data.Shuffle = &t
	}
	for _, list := range [][]Source{r.Data.Train, r.Data.Eval} {
		for i := range list {
			if list[i].Weight == 0 {
				list[i].Weight = 1
			}
		}
	}
	if r.Optim.Betas == nil {
		r.Optim.Betas = []float64{0.9, 0.95}
	}
	if r.Optim.Eps == 0 {
		r.Optim.Eps = 1e-8
	}
	if r.Optim.WeightDecay == nil {
		wd := 0.1
		r.Optim.WeightDecay = &wd
	}
	if r.Optim.GradClip == nil {
		c := 1.0
		r.Optim.GradClip = &c
	}
	if r.Optim.Schedule.Name == "" {
		r.Optim.Schedule.Name = "cosine"
	}
	if r.Optim.Schedule.MinLRRatio == nil {
		m := 0.1
		r.Optim.Schedule.MinLRRatio = &m
	}
	if r.Optim.Schedule.Name == "wsd" && r.Optim.Schedule.DecayRatio == 0 {
		r.Optim.Schedule.DecayRatio = 0.1
	}
	if r.Train.BatchSize == 0 {
		r.Train.BatchSize = 8
	}
	if r.Train.GradAccum == 0 {
		r.Train.GradAccum = 1
	}
	if r.Train.KeepCheckpoints == 0 {
		r.Train.KeepCheckpoints = 3
	}
	if r.Train.EvalBatches == 0 {
		r.Train.EvalBatches = 4
	}
	if r.Log.Every == 0 {
		r.Log.Every = 1
	}
	if r.LoRA != nil {
		if r.LoRA.R == 0 {
			r.LoRA.R = 16
		}
		if r.LoRA.Alpha == 0 {
			r.LoRA.Alpha = 2 * float64(r.LoRA.R)
		}
		if r.LoRA.TargetModules.Names == nil && r.LoRA.TargetModules.Pattern == "" {
			r.LoRA.TargetModules.Names = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
		}
	}
	if d := r.DPO; d != nil {
		if d.Beta == 0 {
			d.Beta = 0.1
		}
		if d.Loss == "" {
			d.Loss = "sigmoid"
		}
		if o := d.Online; o != nil {
			if o.AnswerColumn == "" {
				o.AnswerColumn = "answer"
			}
			if o.Prompts.Column == "" {
				o.Prompts.Column = "prompt"
			}
			if o.Prompts.Format == "" {
				o.Prompts.Format = "text"
			}
			if o.K == 0 {
				o.K = 4
			}
			if o.Temperature == 0 {
				o.Temperature = 1
			}
			if o.MaxNewTokens == 0 {
				o.MaxNewTokens = 256
			}
			if o.PromptsPerRound == 0 {
				o.PromptsPerRound = 16
			}
			if o.Rules == "" {
				o.Rules = "format,answer"
			}
		}
	}
	if r.Train.MaxSteps == 0 && r.Train.MaxTokens > 0 && r.Data.SeqLen > 0 {
		per := int64(r.Train.BatchSize * r.Train.GradAccum * r.Data.SeqLen)
		r.Train.MaxSteps = int((r.Train.MaxTokens + per - 1) / per)
	}
}

// validate checks one resolved stage; errors point at the key's line.
func (l *loader) validate(r *Recipe) error {
	m := r.Model
	switch {
	case m.Path == "" && m.Init == nil:
		return l.at("model", "%v", errNoModel)
	case m.Path != "" && m.Init != nil:
		return l.at("model", "set model.path or model.init, not both")
	case m.Path != "" && !dirHas(m.Path, "config.json"):
		return l.at("model.path", "%s is not a Hugging Face model folder (no config.json)", m.Path)
	case m.Init != nil && !fileExists(m.Init.Config):
		return l.at("model.init.config", "no file %s", m.Init.Config)
	}
	if m.Dtype != "f32" && m.Dtype != "bf16" {
		return l.at("model.dtype", "want f32 or bf16, got %q", m.Dtype)
	}
	cfg, err := r.ModelConfig()
	if err != nil {
		key := "model.path"
		if m.Init != nil {
			key = "model.init.config"
		}
		if m.RopeScaling != nil || m.RopeTheta != 0 || m.MaxPositionEmbeddings != 0 {
			key = "model"
		}
		return l.at(key, "%v", err)
	}
	if r.Tokenizer == "" {
		return l.at("tokenizer", "set tokenizer: a folder with tokenizer.json and tokenizer_config.json")
	}
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		if !dirHas(r.Tokenizer, f) {
			return l.at("tokenizer", "%s has no %s", r.Tokenizer, f)
		}
	}

	d := r.Data
	if len(d.Train) == 0 && (r.DPO == nil || r.DPO.Online == nil) {
		return l.at("data.train", "list at least one training source (path, format)")
	}
	if d.SeqLen <= 0 {
		return l.at("data.seq_len", "set a positive seq_len (tokens per row)")
	}
	if d.SeqLen > cfg.MaxPositionEmbeddings {
		return l.at("data.seq_len", "%d is over the model's max_position_embeddings %d (raise model.max_position_embeddings, with rope scaling if the model was not trained that long)", d.SeqLen, cfg.MaxPositionEmbeddings)
	}
	for _, part := range []struct {
		key  string
		list []Source
	}{{"data.train", d.Train}, {"data.eval", d.Eval}} {
		for i, s := range part.list {
			key := fmt.Sprintf("%s[%d]", part.key, i)
			if err := checkSource(s); err != nil {
				sub := ".path"
				var se *data.SchemaError
				if errors.As(err, &se) {
					sub = ".column"
				} else if strings.Contains(err.Error(), "format") {
					sub = ".format"
				}
				return l.at(key+sub, "%v", err)
			}
			if s.Weight < 0 || math.IsNaN(s.Weight) {
				return l.at(key+".weight", "want a positive weight, got %v", s.Weight)
			}
		}
	}

	o := r.Optim
	if !(o.LR > 0) {
		return l.at("optim.lr", "set a positive learning rate")
	}
	if len(o.Betas) != 2 || o.Betas[0] < 0 || o.Betas[0] >= 1 || o.Betas[1] < 0 || o.Betas[1] >= 1 {
		return l.at("optim.betas", "want two numbers in [0, 1), e.g. [0.9, 0.95]")
	}
	if *o.WeightDecay < 0 {
		return l.at("optim.weight_decay", "must not be negative")
	}
	if *o.GradClip < 0 {
		return l.at("optim.grad_clip", "must not be negative (0 turns clipping off)")
	}
	switch o.Schedule.Name {
	case "cosine", "linear", "constant", "wsd":
	default:
		return l.at("optim.schedule.name", "want cosine, linear, constant or wsd, got %q", o.Schedule.Name)
	}
	if o.Schedule.WarmupSteps < 0 {
		return l.at("optim.schedule.warmup_steps", "must not be negative")
	}
	if mr := *o.Schedule.MinLRRatio; mr < 0 || mr > 1 {
		return l.at("optim.schedule.min_lr_ratio", "want a number in [0, 1]")
	}
	if dr := o.Schedule.DecayRatio; dr < 0 || dr > 1 {
		return l.at("optim.schedule.decay_ratio", "want a number in [0, 1]")
	}

	t := r.Train
	for _, c := range []struct {
		key string
		v   int
	}{{"train.batch_size", t.BatchSize}, {"train.grad_accum", t.GradAccum}, {"train.keep_checkpoints", t.KeepCheckpoints}, {"train.eval_batches", t.EvalBatches}, {"log.every", r.Log.Every}} {
		if c.v <= 0 {
			return l.at(c.key, "want a positive integer, got %d", c.v)
		}
	}
	if t.MaxSteps <= 0 {
		return l.at("train", "set train.max_steps or train.max_tokens")
	}
	if t.CheckpointEvery < 0 || t.EvalEvery < 0 {
		return l.at("train", "checkpoint_every and eval_every must not be negative")
	}
	if t.EvalEvery > 0 && len(d.Eval) == 0 {
		return l.at("train.eval_every", "needs data.eval sources")
	}
	if r.Log.WandB != nil && r.Log.WandB.Project == "" {
		return l.at("log.wandb.project", "set the W&B project")
	}
	if r.Eval.Passkey < 0 {
		return l.at("eval.passkey", "must not be negative")
	}
	if lr := r.LoRA; lr != nil {
		if lr.R <= 0 {
			return l.at("lora.r", "want a positive rank")
		}
		if lr.Dropout < 0 || lr.Dropout >= 1 {
			return l.at("lora.dropout", "want a number in [0, 1)")
		}
		if lr.TargetModules.Pattern != "" {
			if _, err := regexp.Compile(lr.TargetModules.Pattern); err != nil {
				return l.at("lora.target_modules", "%v", err)
			}
		}
		for _, li := range lr.Layers {
			if li < 0 || li >= cfg.NumHiddenLayers {
				return l.at("lora.layers", "layer %d is out of range (the model has %d)", li, cfg.NumHiddenLayers)
			}
		}
		if lr.InitFrom != "" && !dirHas(lr.InitFrom, "adapter_config.json") {
			return l.at("lora.init_from", "%s is not a PEFT adapter folder (no adapter_config.json)", lr.InitFrom)
		}
	}
	if dp := r.DPO; dp != nil {
		switch dp.Loss {
		case "sigmoid", "ipo", "hinge", "robust":
		default:
			return l.at("dpo.loss", "want sigmoid, ipo, hinge or robust, got %q", dp.Loss)
		}
		if dp.Beta <= 0 {
			return l.at("dpo.beta", "want a positive beta")
		}
		if dp.LabelSmoothing < 0 || dp.LabelSmoothing >= 0.5 {
			return l.at("dpo.label_smoothing", "want a number in [0, 0.5)")
		}
		if o := dp.Online; o != nil {
			if err := checkSource(o.Prompts); err != nil {
				return l.at("dpo.online.prompts", "%v", err)
			}
			if err := checkSource(Source{Path: o.Prompts.Path, Format: "text", Column: o.AnswerColumn}); err != nil {
				return l.at("dpo.online.answer_column", "%v", err)
			}
			if o.K < 2 {
				return l.at("dpo.online.k", "want at least 2 samples per prompt")
			}
			if o.Temperature < 0 || o.MaxNewTokens < 1 || o.PromptsPerRound < 1 || o.HeldOut < 0 || o.RegenerateEvery < 0 {
				return l.at("dpo.online", "temperature ≥ 0, max_new_tokens, prompts_per_round ≥ 1, held_out and regenerate_every ≥ 0")
			}
		} else {
			for i, s := range d.Train {
				if s.Format != "preference" {
					return l.at(fmt.Sprintf("data.train[%d].format", i), "offline DPO trains on preference pairs (format: preference); for sampled pairs set dpo.online")
				}
			}
		}
	}
	return nil
}

// checkSource opens a source's files and checks their columns, without reading rows.
func checkSource(s Source) error {
	if s.Path == "" {
		return fmt.Errorf("set the path of the Parquet file, glob or folder")
	}
	f, err := data.ParseFormat(s.Format)
	if err != nil {
		return err
	}
	src, err := data.Open([]string{s.Path}, data.Spec{Format: f, Column: s.Column})
	if err != nil {
		return err
	}
	return src.Close()
}

// ModelConfig is the model's config.json (from model.path or model.init.config) with the
// recipe's overrides applied and validated.
func (r *Recipe) ModelConfig() (*layers.Config, error) {
	path := ""
	if r.Model.Path != "" {
		path = filepath.Join(r.Model.Path, "config.json")
	} else if r.Model.Init != nil {
		path = r.Model.Init.Config
	} else {
		return nil, errNoModel
	}
	cfg, err := layers.LoadConfig(path)
	if err != nil {
		return nil, err
	}
	if err := r.ApplyModelOverrides(cfg); err != nil {
		return nil, fmt.Errorf("%s with the recipe's model overrides: %w", path, err)
	}
	return cfg, nil
}

// ApplyModelOverrides sets the recipe's rope_theta, rope_scaling and max_position_embeddings
// on cfg and validates the result.
func (r *Recipe) ApplyModelOverrides(cfg *layers.Config) error {
	m := r.Model
	if m.RopeTheta != 0 {
		cfg.RopeTheta = m.RopeTheta
	}
	if m.MaxPositionEmbeddings != 0 {
		cfg.MaxPositionEmbeddings = m.MaxPositionEmbeddings
	}
	if s := m.RopeScaling; s != nil {
		cfg.RopeScaling = &layers.RopeScaling{RopeType: s.RopeType, Factor: s.Factor,
			OriginalMaxPositionEmbeddings: s.OriginalMaxPositionEmbeddings, BetaFast: s.BetaFast,
			BetaSlow: s.BetaSlow, AttentionFactor: s.AttentionFactor}
	}
	return cfg.Validate()
}
