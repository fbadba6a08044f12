package lora

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
)

// Config is the `lora:` section of a recipe: which Linears get trainable adapters and how.
// The yaml/json key names are a contract with the recipes (and match issue 16):
//
//	lora: {r: 16, alpha: 32, dropout: 0.05, target_modules: [q_proj, v_proj], layers: [0, 1],
//	       use_rslora: false, init_from: path/to/peft-adapter}
type Config struct {
	R       int     `yaml:"r" json:"r"`             // rank, ≥ 1
	Alpha   float64 `yaml:"alpha" json:"alpha"`     // lora_alpha: scale = alpha/r (alpha/√r with use_rslora)
	Dropout float64 `yaml:"dropout" json:"dropout"` // lora_dropout on the adapter's input, in [0, 1)
	// TargetModules: module names (PEFT's list semantics: a module matches a name when its
	// path ends with "."+name) or one regular expression matched against the whole module path
	// (PEFT's string semantics), e.g. `model\.layers\.\d+\.self_attn\.(q|v)_proj`, or
	// "all-linear" (PEFT's shorthand: every projection).
	TargetModules Targets `yaml:"target_modules" json:"target_modules"`
	Layers        []int   `yaml:"layers" json:"layers"` // decoder layers to adapt; empty: all (PEFT's layers_to_transform)
	UseRSLoRA     bool    `yaml:"use_rslora" json:"use_rslora"`
	InitFrom      string  `yaml:"init_from" json:"init_from"` // a PEFT adapter folder to start from; "": PEFT's init from the seed
}

// DefaultTargets are the projections of every decoder layer, PEFT's usual choice for Qwen3.
var DefaultTargets = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// DefaultConfig is r 16, alpha 32, no dropout, every projection of every layer.
func DefaultConfig() Config {
	return Config{R: 16, Alpha: 32, TargetModules: Targets{Names: slices.Clone(DefaultTargets)}}
}

// Targets is target_modules: a list of module names, or (Pattern) a regular expression.
// Exactly one of the two is set in a valid Config.
type Targets struct {
	Names   []string
	Pattern string
}

// UnmarshalJSON accepts a list of names or a string (a pattern).
func (t *Targets) UnmarshalJSON(b []byte) error {
	*t = Targets{}
	if s := strings.TrimSpace(string(b)); s == "null" {
		return nil
	} else if strings.HasPrefix(s, `"`) {
		return json.Unmarshal(b, &t.Pattern)
	}
	if err := json.Unmarshal(b, &t.Names); err != nil {
		return fmt.Errorf("target_modules: want a list of module names or one pattern string: %w", err)
	}
	return nil
}

// MarshalJSON writes the list, or the pattern as a string (PEFT's adapter_config.json form).
func (t Targets) MarshalJSON() ([]byte, error) {
	if t.Pattern != "" {
		return json.Marshal(t.Pattern)
	}
	return json.Marshal(t.Names)
}

// UnmarshalYAML accepts a list of names or a string, for YAML libraries with the
// unmarshal-function interface (gopkg.in/yaml.v2 and v3, goccy/go-yaml); lora imports none.
func (t *Targets) UnmarshalYAML(unmarshal func(any) error) error {
	*t = Targets{}
	var s string
	if err := unmarshal(&s); err == nil {
		t.Pattern = s
		return nil
	}
	if err := unmarshal(&t.Names); err != nil {
		return fmt.Errorf("target_modules: want a list of module names or one pattern string: %w", err)
	}
	return nil
}

// MarshalYAML writes the list or the pattern.
func (t Targets) MarshalYAML() (any, error) {
	if t.Pattern != "" {
		return t.Pattern, nil
	}
	return t.Names, nil
}

func (t Targets) String() string {
	if t.Pattern != "" {
		return fmt.Sprintf("pattern %q", t.Pattern)
	}
	return fmt.Sprintf("%v", t.Names)
}

// Validate checks the values on their own (Attach checks them against a model); errors name
// the key as the recipe spells it.
func (c *Config) Validate() error {
	switch {
	case c.R < 1:
		return fmt.Errorf("lora.r = %d; want ≥ 1", c.R)
	case !(c.Alpha > 0):
		return fmt.Errorf("lora.alpha = %v; want > 0", c.Alpha)
	case !(c.Dropout >= 0 && c.Dropout < 1):
		return fmt.Errorf("lora.dropout = %v; want 0 ≤ dropout < 1", c.Dropout)
	case c.TargetModules.Pattern != "" && len(c.TargetModules.Names) > 0:
		return fmt.Errorf("lora.target_modules: give names or a pattern, not both")
	case c.TargetModules.Pattern == "" && len(c.TargetModules.Names) == 0:
		return fmt.Errorf("lora.target_modules is empty; name modules (e.g. %v) or give a pattern", DefaultTargets)
	case c.TargetModules.Pattern != "" && len(c.Layers) > 0:
		// PEFT refuses layers_to_transform with a string target_modules too.
		return fmt.Errorf("lora.layers cannot be combined with a target_modules pattern (write the layers into the pattern)")
	}
	if c.TargetModules.Pattern != "" {
		if _, err := regexp.Compile(`^(?:` + c.TargetModules.Pattern + `)$`); err != nil {
			return fmt.Errorf("lora.target_modules pattern: %w", err)
		}
	}
	for _, n := range c.TargetModules.Names {
		if n == "" || strings.ContainsAny(n, " \t") {
			return fmt.Errorf("lora.target_modules: %q is not a module name", n)
		}
	}
	for _, l := range c.Layers {
		if l < 0 {
			return fmt.Errorf("lora.layers: %d is negative", l)
		}
	}
	return nil
}

// AllLinear is PEFT's target_modules shorthand for every linear layer but the output layer.
const AllLinear = "all-linear"

// matcher is PEFT's check_target_module_exists for c: whether the module at path (in decoder
// layer `layer`) is targeted. A name matches a path equal to it or ending in "."+name, within
// Layers when given; a pattern must match the whole path; AllLinear matches every module.
// c must be valid.
func (c *Config) matcher() func(path string, layer int) bool {
	switch p := c.TargetModules.Pattern; {
	case p == AllLinear:
		return func(string, int) bool { return true }
	case p != "":
		re := regexp.MustCompile(`^(?:` + p + `)$`)
		return func(path string, _ int) bool { return re.MatchString(path) }
	}
	return func(path string, layer int) bool {
		if len(c.Layers) > 0 && !slices.Contains(c.Layers, layer) {
			return false
		}
		for _, n := range c.TargetModules.Names {
			if nameMatches(path, n) {
				return true
			}
		}
		return false
	}
}

// nameMatches is PEFT's list rule: the path is the name or ends with "."+name.
func nameMatches(path, name string) bool { return path == name || strings.HasSuffix(path, "."+name) }

// scale is alpha/r, or alpha/√r with rsLoRA (PEFT's LoraLayer.update_layer).
func scale(alpha float64, r int, rslora bool) float32 {
	if rslora {
		return float32(alpha / math.Sqrt(float64(r)))
	}
	return float32(alpha / float64(r))
}
