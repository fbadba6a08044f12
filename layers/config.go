package layers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"

	"github.com/gwen-ml/gwen/kernels"
)

// Config is a Qwen3 / Qwen3-MoE config.json, with Hugging Face's field names. Fields that
// change the numbers are required to be present in the file: Gwen never fills them from
// transformers' class defaults, which differ between versions and from released checkpoints.
type Config struct {
	ModelType             string         `json:"model_type"`
	Architectures         []string       `json:"architectures,omitempty"`
	VocabSize             int            `json:"vocab_size"`
	HiddenSize            int            `json:"hidden_size"`
	IntermediateSize      int            `json:"intermediate_size"`
	NumHiddenLayers       int            `json:"num_hidden_layers"`
	NumAttentionHeads     int            `json:"num_attention_heads"`
	NumKeyValueHeads      int            `json:"num_key_value_heads"`
	HeadDim               int            `json:"head_dim"`
	HiddenAct             string         `json:"hidden_act"`
	MaxPositionEmbeddings int            `json:"max_position_embeddings"`
	RMSNormEps            float64        `json:"rms_norm_eps"`
	RopeTheta             float64        `json:"rope_theta"`
	RopeScaling           *RopeScaling   `json:"rope_scaling"`
	TieWordEmbeddings     bool           `json:"tie_word_embeddings"`
	AttentionBias         bool           `json:"attention_bias"`
	UseSlidingWindow      bool           `json:"use_sliding_window"`
	BOSTokenID            *int           `json:"bos_token_id,omitempty"`
	EOSTokenID            any            `json:"eos_token_id,omitempty"` // an int or a list of ints
	TorchDType            string         `json:"torch_dtype,omitempty"`
	Extra                 map[string]any `json:"-"` // fields Gwen does not interpret, written back unchanged

	// Mixture of experts (model_type qwen3_moe).
	NumExperts          int     `json:"num_experts,omitempty"`
	NumExpertsPerTok    int     `json:"num_experts_per_tok,omitempty"`
	MoEIntermediateSize int     `json:"moe_intermediate_size,omitempty"`
	NormTopKProb        bool    `json:"norm_topk_prob,omitempty"`
	DecoderSparseStep   int     `json:"decoder_sparse_step,omitempty"`
	MLPOnlyLayers       []int   `json:"mlp_only_layers,omitempty"`
	RouterAuxLossCoef   float64 `json:"router_aux_loss_coef,omitempty"`
	OutputRouterLogits  bool    `json:"output_router_logits,omitempty"`
}

// RopeScaling is config.json's rope_scaling object.
type RopeScaling struct {
	RopeType                      string   `json:"rope_type,omitempty"`
	Type                          string   `json:"type,omitempty"` // older spelling of rope_type
	Factor                        float64  `json:"factor,omitempty"`
	OriginalMaxPositionEmbeddings int      `json:"original_max_position_embeddings,omitempty"`
	BetaFast                      float64  `json:"beta_fast,omitempty"`
	BetaSlow                      float64  `json:"beta_slow,omitempty"`
	AttentionFactor               float64  `json:"attention_factor,omitempty"`
	MScale                        float64  `json:"mscale,omitempty"`
	MScaleAllDim                  float64  `json:"mscale_all_dim,omitempty"`
	Truncate                      *bool    `json:"truncate,omitempty"`
	LowFreqFactor                 *float64 `json:"low_freq_factor,omitempty"`
}

var requiredFields = []string{
	"model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
	"num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings",
	"rms_norm_eps", "rope_theta", "tie_word_embeddings",
}

var requiredMoEFields = []string{
	"num_experts", "num_experts_per_tok", "moe_intermediate_size", "norm_topk_prob",
	"decoder_sparse_step", "router_aux_loss_coef",
}

// LoadConfig reads and validates a config.json.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("model config: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes and validates config.json bytes.
func ParseConfig(b []byte) (*Config, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("config.json is not a JSON object: %w", err)
	}
	present := func(k string) bool {
		v, ok := raw[k]
		return ok && !bytes.Equal(bytes.TrimSpace(v), []byte("null"))
	}
	var mt string
	if present("model_type") {
		_ = json.Unmarshal(raw["model_type"], &mt)
	}
	if mt != "qwen3" && mt != "qwen3_moe" {
		return nil, fmt.Errorf("model_type %q is not supported (Gwen runs \"qwen3\" and \"qwen3_moe\")", mt)
	}
	req := requiredFields
	if mt == "qwen3_moe" {
		req = append(slices.Clone(req), requiredMoEFields...)
	}
	var missing []string
	for _, k := range req {
		if !present(k) {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("config.json lacks %v (Gwen does not guess these from transformers' class defaults)", missing)
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	c.Extra = map[string]any{}
	known := knownFields()
	for k, v := range raw {
		if !known[k] {
			var x any
			_ = json.Unmarshal(v, &x)
			c.Extra[k] = x
		}
	}
	if mt == "qwen3" {
		c.NumExperts = 0 // a dense model has no sparse layers whatever the file says
	}
	return &c, c.Validate()
}

func knownFields() map[string]bool {
	m := map[string]bool{}
	for _, k := range []string{"model_type", "architectures", "vocab_size", "hidden_size",
		"intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
		"head_dim", "hidden_act", "max_position_embeddings", "rms_norm_eps", "rope_theta",
		"rope_scaling", "tie_word_embeddings", "attention_bias", "use_sliding_window",
		"bos_token_id", "eos_token_id", "torch_dtype", "num_experts", "num_experts_per_tok",
		"moe_intermediate_size", "norm_topk_prob", "decoder_sparse_step", "mlp_only_layers",
		"router_aux_loss_coef", "output_router_logits"} {
		m[k] = true
	}
	return m
}

// Validate checks that the sizes are positive and consistent and that no feature Gwen does
// not implement is switched on. Errors name the field.
func (c *Config) Validate() error {
	pos := []struct {
		name string
		v    int
	}{{"vocab_size", c.VocabSize}, {"hidden_size", c.HiddenSize}, {"intermediate_size", c.IntermediateSize},
		{"num_hidden_layers", c.NumHiddenLayers}, {"num_attention_heads", c.NumAttentionHeads},
		{"num_key_value_heads", c.NumKeyValueHeads}, {"head_dim", c.HeadDim},
		{"max_position_embeddings", c.MaxPositionEmbeddings}}
	for _, p := range pos {
		if p.v <= 0 {
			return fmt.Errorf("config.json: %s = %d, must be positive", p.name, p.v)
		}
	}
	if c.NumAttentionHeads%c.NumKeyValueHeads != 0 {
		return fmt.Errorf("config.json: num_attention_heads %d is not a multiple of num_key_value_heads %d", c.NumAttentionHeads, c.NumKeyValueHeads)
	}
	if c.HeadDim%2 != 0 {
		return fmt.Errorf("config.json: head_dim %d must be even for RoPE", c.HeadDim)
	}
	if c.RMSNormEps <= 0 || c.RopeTheta <= 0 {
		return fmt.Errorf("config.json: rms_norm_eps (%g) and rope_theta (%g) must be positive", c.RMSNormEps, c.RopeTheta)
	}
	if c.HiddenAct != "" && c.HiddenAct != "silu" {
		return fmt.Errorf("config.json: hidden_act %q is not supported (Qwen3 uses \"silu\")", c.HiddenAct)
	}
	if c.AttentionBias {
		return fmt.Errorf("config.json: attention_bias true is not supported (Qwen3 projections have no bias)")
	}
	if c.UseSlidingWindow {
		return fmt.Errorf("config.json: use_sliding_window true is not supported")
	}
	if _, err := c.RoPE(); err != nil {
		return err
	}
	if c.ModelType == "qwen3_moe" {
		if c.NumExperts <= 0 || c.NumExpertsPerTok <= 0 || c.MoEIntermediateSize <= 0 || c.DecoderSparseStep <= 0 {
			return fmt.Errorf("config.json: num_experts (%d), num_experts_per_tok (%d), moe_intermediate_size (%d) and decoder_sparse_step (%d) must be positive",
				c.NumExperts, c.NumExpertsPerTok, c.MoEIntermediateSize, c.DecoderSparseStep)
		}
		if c.NumExpertsPerTok > c.NumExperts {
			return fmt.Errorf("config.json: num_experts_per_tok %d exceeds num_experts %d", c.NumExpertsPerTok, c.NumExperts)
		}
		for _, l := range c.MLPOnlyLayers {
			if l < 0 || l >= c.NumHiddenLayers {
				return fmt.Errorf("config.json: mlp_only_layers names layer %d; the model has %d", l, c.NumHiddenLayers)
			}
		}
	}
	return nil
}

// IsSparseLayer reports whether decoder layer i has a mixture-of-experts MLP, by the rule of
// transformers' Qwen3MoeDecoderLayer.
func (c *Config) IsSparseLayer(i int) bool {
	return c.ModelType == "qwen3_moe" && c.NumExperts > 0 && !slices.Contains(c.MLPOnlyLayers, i) &&
		(i+1)%c.DecoderSparseStep == 0
}

// RoPE returns the rotary-embedding parameters the config describes.
func (c *Config) RoPE() (kernels.RoPE, error) {
	r := kernels.RoPE{Type: "default", Theta: c.RopeTheta, HeadDim: c.HeadDim, MaxPositionEmbeddings: c.MaxPositionEmbeddings}
	s := c.RopeScaling
	if s == nil {
		return r, nil
	}
	t := s.RopeType
	if t == "" {
		t = s.Type
	}
	switch t {
	case "", "default":
		return r, nil
	case "linear", "dynamic", "yarn":
	default:
		return r, fmt.Errorf("config.json: rope_scaling.rope_type %q is not supported (default, linear, dynamic, yarn are)", t)
	}
	if s.Factor < 1 {
		return r, fmt.Errorf("config.json: rope_scaling.factor %g must be >= 1", s.Factor)
	}
	r.Type, r.Factor = t, s.Factor
	r.OriginalMaxPositionEmbeddings = s.OriginalMaxPositionEmbeddings
	r.BetaFast, r.BetaSlow, r.AttentionFactor = s.BetaFast, s.BetaSlow, s.AttentionFactor
	r.MScale, r.MScaleAllDim, r.Truncate = s.MScale, s.MScaleAllDim, s.Truncate
	return r, nil
}

// MarshalJSON writes the config with Hugging Face's field names, the uninterpreted fields
// included, keys sorted as transformers writes them.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	b, err := json.Marshal(plain(c))
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range c.Extra {
		m[k] = v
	}
	m["rope_scaling"] = c.RopeScaling
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	buf.WriteString("{\n")
	for i, k := range keys {
		v, err := json.Marshal(m[k])
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&buf, "  %q: %s", k, v)
		if i < len(keys)-1 {
			buf.WriteString(",")
		}
		buf.WriteString("\n")
	}
	buf.WriteString("}")
	return buf.Bytes(), nil
}

// InitializerRange is the standard deviation transformers initialises weights with:
// config.json's initializer_range, 0.02 (Qwen3Config's default) when absent.
func (c *Config) InitializerRange() (float64, error) {
	v, ok := c.Extra["initializer_range"]
	if !ok || v == nil {
		return 0.02, nil
	}
	f, ok := v.(float64)
	if !ok || !(f > 0) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("initializer_range = %v, must be a positive number", v)
	}
	return f, nil
}

// PaddingIdx is the embedding row transformers zeroes at initialisation (nn.Embedding's
// padding_idx = config.pad_token_id), or -1 when config.json sets none.
func (c *Config) PaddingIdx() (int, error) {
	v, ok := c.Extra["pad_token_id"]
	if !ok || v == nil {
		return -1, nil
	}
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || f < 0 || f >= float64(c.VocabSize) {
		return 0, fmt.Errorf("pad_token_id = %v, must be a token id in [0, vocab_size %d)", v, c.VocabSize)
	}
	return int(f), nil
}
