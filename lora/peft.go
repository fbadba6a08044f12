package lora

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gwen-ml/gwen/layers/safetensors"
)

// PEFTConfig is what Gwen reads of a PEFT adapter_config.json. Keys it does not know are
// ignored (PEFT adds options over time); the ones that would change what the weights mean and
// that Gwen does not implement are refused by name.
type PEFTConfig struct {
	PEFTType  string  `json:"peft_type"`
	R         int     `json:"r"`
	Alpha     float64 `json:"lora_alpha"`
	Dropout   float64 `json:"lora_dropout"`
	UseRSLoRA bool    `json:"use_rslora"`
	BaseModel string  `json:"base_model_name_or_path"`
	// TargetModules is kept as written (a list of names or a regular expression) for
	// messages and re-export; the adapter's tensors say which modules it adapts.
	TargetModules     json.RawMessage `json:"target_modules"`
	LayersToTransform json.RawMessage `json:"layers_to_transform"`
}

// refused are adapter_config.json keys whose non-default values Gwen does not implement.
var refused = []struct {
	key, why string
}{
	{"use_dora", "DoRA adapters are not supported"},
	{"fan_in_fan_out", "fan_in_fan_out (transposed Conv1D weights) does not apply to Qwen3"},
	{"modules_to_save", "modules_to_save (fully trained copies of modules) is not supported"},
	{"alpha_pattern", "per-module lora_alpha (alpha_pattern) is not supported"},
	{"lora_bias", "LoRA biases are not supported"},
	{"trainable_token_indices", "trainable token indices are not supported"},
}

// Module is the LoRA pair of one adapted Linear: y = x·Wᵀ + Scale·(x·Aᵀ)·Bᵀ.
type Module struct {
	Name       string    // the module path in the model, e.g. model.layers.0.self_attn.q_proj
	A          []float32 // lora_A.weight [R, In]
	B          []float32 // lora_B.weight [Out, R]
	R, In, Out int
	Scale      float32 // lora_alpha / R (or / sqrt(R) with use_rslora)
}

// PEFT is a PEFT LoRA adapter as files hold it (Load): plain weights, not yet attached to a
// model. Attach (or AttachPEFT) makes trainable Adapters of it; Merge folds it into a model.
type PEFT struct {
	Dir     string
	Config  PEFTConfig
	Modules []Module // sorted by name
}

// keyA and keyB are the module's tensor names in adapter_model.safetensors.
func (m *Module) keyA() string { return keyPrefix + m.Name + suffixA }
func (m *Module) keyB() string { return keyPrefix + m.Name + suffixB }

// file is the adapter's tensor file, for messages.
func (ad *PEFT) file() string { return filepath.Join(ad.Dir, "adapter_model.safetensors") }

// Key prefix and suffixes of PEFT's saved tensor names (the adapter name is not saved).
const (
	keyPrefix = "base_model.model."
	suffixA   = ".lora_A.weight"
	suffixB   = ".lora_B.weight"
)

// Load reads the adapter in dir: adapter_config.json and adapter_model.safetensors (F32, BF16
// or F16). Every tensor must be the lora_A or lora_B of some module, each module needs both, and
// their shapes must agree ([r, in] and [out, r]); errors name the file and the key.
func Load(dir string) (*PEFT, error) {
	cfgPath := filepath.Join(dir, "adapter_config.json")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}
	cfg, err := parseConfig(cfgPath, raw)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "adapter_model.safetensors")
	f, err := safetensors.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if _, binErr := os.Stat(filepath.Join(dir, "adapter_model.bin")); binErr == nil {
				return nil, fmt.Errorf("lora: %s holds adapter_model.bin (a pickle); save the adapter with safe_serialization=True", dir)
			}
		}
		return nil, fmt.Errorf("lora: %w", err)
	}
	defer f.Close()
	type pair struct{ a, b string }
	pairs := map[string]*pair{}
	for _, name := range f.Names() {
		var mod string
		var isA bool
		switch {
		case strings.HasPrefix(name, keyPrefix) && strings.HasSuffix(name, suffixA):
			mod, isA = strings.TrimSuffix(strings.TrimPrefix(name, keyPrefix), suffixA), true
		case strings.HasPrefix(name, keyPrefix) && strings.HasSuffix(name, suffixB):
			mod = strings.TrimSuffix(strings.TrimPrefix(name, keyPrefix), suffixB)
		default:
			return nil, fmt.Errorf("lora: %s: tensor %q is not a LoRA weight (want %s<module>%s or %s); DoRA, LoRA biases, embedding adapters and saved modules are not supported",
				path, name, keyPrefix, suffixA, suffixB)
		}
		p := pairs[mod]
		if p == nil {
			p = &pair{}
			pairs[mod] = p
		}
		if isA {
			p.a = name
		} else {
			p.b = name
		}
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("lora: %s holds no LoRA weights", path)
	}
	ad := &PEFT{Dir: dir, Config: cfg}
	for _, mod := range slices.Sorted(maps.Keys(pairs)) {
		p := pairs[mod]
		if p.a == "" || p.b == "" {
			missing := keyPrefix + mod + suffixA
			if p.b == "" {
				missing = keyPrefix + mod + suffixB
			}
			return nil, fmt.Errorf("lora: %s: %s is missing (module %s needs both lora_A and lora_B)", path, missing, mod)
		}
		ia, _ := f.Info(p.a)
		ib, _ := f.Info(p.b)
		if len(ia.Shape) != 2 || len(ib.Shape) != 2 || ia.Shape[0] != ib.Shape[1] || ia.Shape[0] < 1 {
			return nil, fmt.Errorf("lora: %s: %s has shape %v and %s %v; want [r, in] and [out, r] with the same r ≥ 1",
				path, p.a, ia.Shape, p.b, ib.Shape)
		}
		m := Module{Name: mod, R: int(ia.Shape[0]), In: int(ia.Shape[1]), Out: int(ib.Shape[0])}
		if m.A, err = f.Float32(p.a); err != nil {
			return nil, fmt.Errorf("lora: %w", err)
		}
		if m.B, err = f.Float32(p.b); err != nil {
			return nil, fmt.Errorf("lora: %w", err)
		}
		// The rank of this module (rank_pattern may give modules different ranks) sets its
		// scale, as PEFT's LoraLayer.update_layer does.
		m.Scale = scale(cfg.Alpha, m.R, cfg.UseRSLoRA)
		ad.Modules = append(ad.Modules, m)
	}
	return ad, nil
}

// parseConfig reads adapter_config.json: a LoRA adapter, r ≥ 1, and none of the refused options.
func parseConfig(path string, raw []byte) (PEFTConfig, error) {
	var cfg PEFTConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return cfg, fmt.Errorf("lora: %s: %w", path, err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		return cfg, fmt.Errorf("lora: %s: %w", path, err)
	}
	if cfg.PEFTType != "LORA" {
		return cfg, fmt.Errorf("lora: %s: peft_type %q; only LORA adapters are supported", path, cfg.PEFTType)
	}
	if cfg.R < 1 {
		return cfg, fmt.Errorf("lora: %s: r = %d; want ≥ 1", path, cfg.R)
	}
	if _, ok := all["lora_alpha"]; !ok {
		return cfg, fmt.Errorf("lora: %s: lora_alpha is missing", path)
	}
	if b, ok := all["bias"]; ok {
		var bias string
		if err := json.Unmarshal(b, &bias); err != nil || bias != "none" {
			return cfg, fmt.Errorf("lora: %s: bias %s; only \"none\" is supported (LoRA biases are not)", path, b)
		}
	}
	for _, r := range refused {
		if v, ok := all[r.key]; ok && !isDefault(v) {
			return cfg, fmt.Errorf("lora: %s: %s is %s: %s", path, r.key, v, r.why)
		}
	}
	return cfg, nil
}

// isDefault reports whether a JSON value is null, false, empty (string, array, object) or 0.
func isDefault(v json.RawMessage) bool {
	switch s := strings.TrimSpace(string(v)); s {
	case "null", "false", `""`, "[]", "{}", "0":
		return true
	default:
		var x any
		if json.Unmarshal(v, &x) == nil {
			switch t := x.(type) {
			case []any:
				return len(t) == 0
			case map[string]any:
				return len(t) == 0
			}
		}
		return false
	}
}
