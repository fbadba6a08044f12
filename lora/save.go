package lora

import (
	"encoding/json"
	"fmt"
	"github.com/gwen-ml/gwen/internal/durable"
	"os"
	"path/filepath"
	"slices"

	"github.com/gwen-ml/gwen/layers/safetensors"
)

// The files of a PEFT adapter folder.
const (
	ConfigFile  = "adapter_config.json"
	WeightsFile = "adapter_model.safetensors"
)

// Save writes the set as PEFT's save_pretrained does: dir/adapter_model.safetensors with
// base_model.model.<module>.lora_A.weight [r, in] and .lora_B.weight [out, r] (F32, metadata
// format=pt), and dir/adapter_config.json with every key PEFT writes (PEFTConfigKeys).
// baseModel is written as base_model_name_or_path. Each file is written atomically; dir is
// created if needed. The result loads with Load, and in PEFT, transformers and vLLM.
func (s *Set) Save(dir, baseModel string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lora: %w", err)
	}
	ts := make([]safetensors.Tensor, 0, 2*len(s.Adapters))
	for _, p := range s.Params() {
		ts = append(ts, safetensors.Tensor{Name: p.Name, DType: "F32", Shape: p.Shape, F32: p.Data})
	}
	if err := safetensors.Write(filepath.Join(dir, WeightsFile), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("lora: %w", err)
	}
	b, err := json.MarshalIndent(s.peftConfig(baseModel), "", "  ")
	if err != nil {
		return fmt.Errorf("lora: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, ConfigFile), append(b, '\n'))
}

// PEFTConfigKeys are the keys of adapter_config.json as PEFT's LoraConfig writes them (the
// version that wrote ../shared/golden/tiny-dense/lora); Save writes exactly these. Newer PEFT
// versions add keys that older ones refuse to load, so no others are written.
var PEFTConfigKeys = []string{
	"alpha_pattern", "auto_mapping", "base_model_name_or_path", "bias", "fan_in_fan_out",
	"inference_mode", "init_lora_weights", "layer_replication", "layers_pattern",
	"layers_to_transform", "loftq_config", "lora_alpha", "lora_dropout", "megatron_config",
	"megatron_core", "modules_to_save", "peft_type", "r", "rank_pattern", "revision",
	"target_modules", "task_type", "use_dora", "use_rslora",
}

// peftConfig is the set's adapter_config.json, as a map (written with sorted keys, as PEFT's
// json.dumps(sort_keys=True)).
func (s *Set) peftConfig(baseModel string) map[string]any {
	cfg := s.Config
	var layersTo any // null: every layer
	targets := any(cfg.TargetModules)
	if !s.peftSelects() {
		// PEFT's reading of the config would adapt other modules than the set holds (MoE
		// experts, or a config read from a file): name the adapted modules themselves.
		var names []string
		for _, a := range s.Adapters {
			names = append(names, a.Name)
		}
		targets = names
	} else if cfg.TargetModules.Pattern == "" {
		names := slices.Clone(cfg.TargetModules.Names)
		slices.Sort(names) // PEFT keeps target_modules as a set and writes it sorted
		targets = slices.Compact(names)
		if len(cfg.Layers) > 0 {
			l := slices.Clone(cfg.Layers)
			slices.Sort(l)
			layersTo = slices.Compact(l)
		}
	}
	rankPattern := map[string]int{}
	for _, a := range s.Adapters {
		if a.R != cfg.R {
			rankPattern[a.Name] = a.R
		}
	}
	return map[string]any{
		"alpha_pattern":           map[string]any{},
		"auto_mapping":            nil,
		"base_model_name_or_path": baseModel,
		"bias":                    "none",
		"fan_in_fan_out":          false,
		"inference_mode":          true,
		"init_lora_weights":       true,
		"layer_replication":       nil,
		"layers_pattern":          nil,
		"layers_to_transform":     layersTo,
		"loftq_config":            map[string]any{},
		"lora_alpha":              cfg.Alpha,
		"lora_dropout":            cfg.Dropout,
		"megatron_config":         nil,
		"megatron_core":           "megatron.core",
		"modules_to_save":         nil,
		"peft_type":               "LORA",
		"r":                       cfg.R,
		"rank_pattern":            rankPattern,
		"revision":                nil,
		"target_modules":          targets,
		"task_type":               "CAUSAL_LM",
		"use_dora":                false,
		"use_rslora":              cfg.UseRSLoRA,
	}
}

// peftSelects reports whether PEFT, reading the set's Config over the model's modules (its
// check_target_module_exists: a name matches the path or its "."+name suffix, within
// layers_to_transform; a string must match the whole path), would adapt exactly the set's
// modules.
func (s *Set) peftSelects() bool {
	cfg := s.Config
	if cfg.TargetModules.Pattern == "" && len(cfg.TargetModules.Names) == 0 {
		return false
	}
	if cfg.Validate() != nil {
		return false
	}
	targeted := cfg.matcher()
	var picked []string
	for _, t := range modules(s.model) {
		if targeted(t.name, t.layer) {
			picked = append(picked, t.name)
		}
	}
	if len(picked) != len(s.Adapters) {
		return false
	}
	for i, a := range s.Adapters {
		if picked[i] != a.Name {
			return false
		}
	}
	return true
}

// jsonInts reads a JSON list of integers (null or absent: nil).
func jsonInts(raw json.RawMessage, dst *[]int) error {
	*dst = nil
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var one int
	if json.Unmarshal(raw, &one) == nil { // PEFT also accepts a single layer
		*dst = []int{one}
		return nil
	}
	return json.Unmarshal(raw, dst)
}

// LoadDir reads the PEFT adapter in dir (Load) into the set (LoadPEFT): resuming from a
// checkpoint that Save wrote, or starting from another run's adapter.
func (s *Set) LoadDir(dir string) error {
	p, err := Load(dir)
	if err != nil {
		return err
	}
	if err := s.LoadPEFT(p); err != nil {
		return fmt.Errorf("lora: %w", err)
	}
	return nil
}

// writeFileAtomic writes a small file safely (internal/durable), with lora's error prefix.
func writeFileAtomic(path string, data []byte) error {
	if err := durable.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("lora: %w", err)
	}
	return nil
}
