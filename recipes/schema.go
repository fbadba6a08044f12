// Package recipes owns training recipes: the YAML schema as typed structs, strict decoding
// with errors naming file:line and the nearest valid key, key=value overrides, stages, defaults
// and every check that can be made before any work starts.
package recipes

import (
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// A Recipe is one training run (or one stage of one) as written in YAML. The key names are a
// contract: programs outside the repository write recipes with them.
type Recipe struct {
	Name      string `yaml:"name" json:"name"`
	OutDir    string `yaml:"out_dir" json:"out_dir"`
	Model     Model  `yaml:"model" json:"model"`
	Tokenizer string `yaml:"tokenizer" json:"tokenizer"`
	Data      Data   `yaml:"data" json:"data"`
	Optim     Optim  `yaml:"optim" json:"optim"`
	Train     Train  `yaml:"train" json:"train"`
	Log       Log    `yaml:"log" json:"log"`
	Eval      Eval   `yaml:"eval" json:"eval"`
	LoRA      *LoRA  `yaml:"lora" json:"lora,omitempty"`
	DPO       *DPO   `yaml:"dpo" json:"dpo,omitempty"`
	// A recipe file may also hold `stages`: a list of mappings, each with a name and any of the
	// keys above, which override the recipe's own for that stage (see Load).
}

// Model says where the weights come from and how they are computed.
type Model struct {
	Path string `yaml:"path" json:"path,omitempty"` // a Hugging Face model folder
	Init *Init  `yaml:"init" json:"init,omitempty"` // or a new model with random weights
	// Dtype is f32 (default) or bf16 (mixed precision: matmul inputs rounded to bfloat16,
	// fp32 master weights and reductions).
	Dtype string `yaml:"dtype" json:"dtype"`
	// Overrides of config.json, e.g. for a long-context stage.
	RopeTheta             float64      `yaml:"rope_theta" json:"rope_theta,omitempty"`
	RopeScaling           *RopeScaling `yaml:"rope_scaling" json:"rope_scaling,omitempty"`
	MaxPositionEmbeddings int          `yaml:"max_position_embeddings" json:"max_position_embeddings,omitempty"`
}

// Init makes a new model from a config.json.
type Init struct {
	Config string  `yaml:"config" json:"config"`
	Std    float64 `yaml:"std" json:"std"` // normal init of 2-D weights (default 0.02)
}

// RopeScaling is config.json's rope_scaling, with its field names.
type RopeScaling struct {
	RopeType                      string  `yaml:"rope_type" json:"rope_type"` // linear, dynamic, yarn
	Factor                        float64 `yaml:"factor" json:"factor"`
	OriginalMaxPositionEmbeddings int     `yaml:"original_max_position_embeddings" json:"original_max_position_embeddings,omitempty"`
	BetaFast                      float64 `yaml:"beta_fast" json:"beta_fast,omitempty"`
	BetaSlow                      float64 `yaml:"beta_slow" json:"beta_slow,omitempty"`
	AttentionFactor               float64 `yaml:"attention_factor" json:"attention_factor,omitempty"`
}

// Data lists the training and evaluation sources and how examples become rows.
type Data struct {
	Train  []Source `yaml:"train" json:"train"`
	Eval   []Source `yaml:"eval" json:"eval,omitempty"`
	SeqLen int      `yaml:"seq_len" json:"seq_len"`
	// Packing (chat data): several conversations per row with per-document attention; text and
	// tokens are always packed. Default true.
	Packing *bool `yaml:"packing" json:"packing"`
	// Shuffle each source's row groups and rows per epoch (default true).
	Shuffle *bool `yaml:"shuffle" json:"shuffle"`
	// TrainEmptyThink trains the empty think block of non-thinking answers (default: masked).
	TrainEmptyThink bool `yaml:"train_empty_think" json:"train_empty_think,omitempty"`
	// Truncate over-long chat examples to seq_len instead of dropping them.
	Truncate bool `yaml:"truncate" json:"truncate,omitempty"`
}

// Source is one Parquet file, glob or folder.
type Source struct {
	Path   string  `yaml:"path" json:"path"`
	Format string  `yaml:"format" json:"format"` // text, chat, preference, tokens
	Column string  `yaml:"column" json:"column,omitempty"`
	Weight float64 `yaml:"weight" json:"weight"` // mixture weight (default 1)
}

// Optim is AdamW and its learning-rate schedule.
type Optim struct {
	LR          float64   `yaml:"lr" json:"lr"`
	Betas       []float64 `yaml:"betas" json:"betas"`
	Eps         float64   `yaml:"eps" json:"eps"`
	WeightDecay *float64  `yaml:"weight_decay" json:"weight_decay"` // 2-D weights only (default 0.1)
	GradClip    *float64  `yaml:"grad_clip" json:"grad_clip"`       // global norm; 0 = off (default 1)
	Schedule    Schedule  `yaml:"schedule" json:"schedule"`
	// KeepState carries the optimizer moments from the previous stage instead of starting fresh.
	KeepState bool `yaml:"keep_state" json:"keep_state,omitempty"`
}

// Schedule is the learning-rate schedule over the stage's steps.
type Schedule struct {
	Name        string   `yaml:"name" json:"name"` // cosine (default), linear, constant, wsd
	WarmupSteps int      `yaml:"warmup_steps" json:"warmup_steps"`
	MinLRRatio  *float64 `yaml:"min_lr_ratio" json:"min_lr_ratio"`         // floor as a fraction of lr (default 0.1)
	DecayRatio  float64  `yaml:"decay_ratio" json:"decay_ratio,omitempty"` // wsd: the last fraction of steps that decays (default 0.1)
}

// Train is the loop's shape.
type Train struct {
	BatchSize               int    `yaml:"batch_size" json:"batch_size"`
	GradAccum               int    `yaml:"grad_accum" json:"grad_accum"`
	MaxSteps                int    `yaml:"max_steps" json:"max_steps"`
	MaxTokens               int64  `yaml:"max_tokens" json:"max_tokens,omitempty"`
	Seed                    uint64 `yaml:"seed" json:"seed"`
	CheckpointEvery         int    `yaml:"checkpoint_every" json:"checkpoint_every"`
	KeepCheckpoints         int    `yaml:"keep_checkpoints" json:"keep_checkpoints"`
	EvalEvery               int    `yaml:"eval_every" json:"eval_every"`
	EvalBatches             int    `yaml:"eval_batches" json:"eval_batches"`
	ActivationCheckpointing bool   `yaml:"activation_checkpointing" json:"activation_checkpointing"`
}

// Log says where metrics go besides OUT/metrics.jsonl and the progress display.
type Log struct {
	Every       int    `yaml:"every" json:"every"`
	TensorBoard bool   `yaml:"tensorboard" json:"tensorboard,omitempty"`
	WandB       *WandB `yaml:"wandb" json:"wandb,omitempty"`
}

// WandB names the Weights & Biases run; the API key comes from WANDB_API_KEY only.
type WandB struct {
	Project string   `yaml:"project" json:"project"`
	Entity  string   `yaml:"entity" json:"entity,omitempty"`
	Name    string   `yaml:"name" json:"name,omitempty"`
	Tags    []string `yaml:"tags" json:"tags,omitempty"`
}

// Eval holds checks beyond eval loss.
type Eval struct {
	// Passkey > 0 runs that many passkey-retrieval trials at seq_len after the stage's last step
	// and reports the accuracy (the long-context check of the third pretraining stage).
	Passkey int `yaml:"passkey" json:"passkey,omitempty"`
}

// LoRA trains rank-r adapters on a frozen base; the key names are PEFT's.
type LoRA struct {
	R             int     `yaml:"r" json:"r"`
	Alpha         float64 `yaml:"alpha" json:"alpha"`
	Dropout       float64 `yaml:"dropout" json:"dropout"`
	TargetModules Modules `yaml:"target_modules" json:"target_modules"`
	Layers        []int   `yaml:"layers" json:"layers,omitempty"`
	UseRSLoRA     bool    `yaml:"use_rslora" json:"use_rslora,omitempty"`
	InitFrom      string  `yaml:"init_from" json:"init_from,omitempty"`
}

// Modules is a list of module names, or one regular expression over module paths.
type Modules struct {
	Names   []string
	Pattern string
}

// UnmarshalYAML takes a list of names or one pattern string.
func (m *Modules) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.SequenceNode:
		m.Pattern = ""
		return n.Decode(&m.Names)
	case yaml.ScalarNode:
		m.Names = nil
		return n.Decode(&m.Pattern)
	}
	return fmt.Errorf("want a list of module names or a pattern string")
}

// MarshalJSON writes the list, or the pattern as a string.
func (m Modules) MarshalJSON() ([]byte, error) {
	if m.Pattern != "" {
		return json.Marshal(m.Pattern)
	}
	return json.Marshal(m.Names)
}

// DPO trains on preference pairs instead of next-token prediction: offline from `format:
// preference` sources, or online from pairs the model samples and the rules score. The
// reference is the model with its adapters disabled (LoRA) or a frozen copy of the stage's
// starting weights.
type DPO struct {
	Beta            float64 `yaml:"beta" json:"beta"` // default 0.1
	Loss            string  `yaml:"loss" json:"loss"` // sigmoid (default), ipo, hinge, robust
	LabelSmoothing  float64 `yaml:"label_smoothing" json:"label_smoothing,omitempty"`
	LengthNormalize bool    `yaml:"length_normalize" json:"length_normalize,omitempty"`
	Online          *Online `yaml:"online" json:"online,omitempty"`
}

// Online is iterative DPO: every round the model samples k completions per prompt (thinking
// on), the rules score them against the prompt's reference answer, and the best and worst
// completion of each prompt (ties skipped) become a pair.
type Online struct {
	Prompts      Source  `yaml:"prompts" json:"prompts"`             // Parquet with a prompt column (column) and an answer column
	AnswerColumn string  `yaml:"answer_column" json:"answer_column"` // default "answer"
	K            int     `yaml:"k" json:"k"`                         // samples per prompt (default 4)
	Temperature  float64 `yaml:"temperature" json:"temperature"`     // default 1
	MaxNewTokens int     `yaml:"max_new_tokens" json:"max_new_tokens"`
	// PromptsPerRound are sampled each round, in file order from where the last round ended.
	PromptsPerRound int `yaml:"prompts_per_round" json:"prompts_per_round"`
	// RegenerateEvery: steps between rounds (default: as many steps as the round's pairs fill).
	RegenerateEvery int    `yaml:"regenerate_every" json:"regenerate_every"`
	Rules           string `yaml:"rules" json:"rules"`     // default "format,answer"
	Weights         string `yaml:"weights" json:"weights"` // default 1 each
	// HeldOut prompts (the file's last ones, never trained on) measure the mean rule reward of
	// samples before the stage and after it.
	HeldOut int `yaml:"held_out" json:"held_out"`
}
