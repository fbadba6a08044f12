package layers

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/internal/durable"
	"github.com/gwen-ml/gwen/layers/safetensors"
)

// Load reads a Hugging Face model folder: config.json and model.safetensors (or the shards
// named by model.safetensors.index.json), F32, BF16 or F16 on disk. Every parameter the config
// implies must be present with the shape the config implies; a missing, misshapen or
// unexpected tensor is an error naming the tensor and its file.
func Load(dir string) (*Model, error) {
	cfg, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	m, err := New(*cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
	}
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	defer set.Close()
	if err := m.LoadWeights(set); err != nil {
		return nil, err
	}
	return m, nil
}

// ignoredTensors are tensors HF checkpoints may carry that the model rebuilds itself.
func ignoredTensor(name string, tied bool) bool {
	return (tied && name == "lm_head.weight") || filepath.Ext(name) == ".inv_freq"
}

// LoadWeights fills the model's parameters from an opened safetensors set.
func (m *Model) LoadWeights(set *safetensors.Set) error {
	want := map[string]*autograd.Tensor{}
	for _, p := range m.Params() {
		want[p.Name] = p
	}
	for _, name := range set.Names() {
		if want[name] == nil && !ignoredTensor(name, m.Config.TieWordEmbeddings) {
			_, file, _ := set.Info(name)
			return fmt.Errorf("%s: tensor %q is not a parameter of this %s model (check config.json)", file, name, m.Config.ModelType)
		}
	}
	for _, p := range m.Params() {
		info, file, ok := set.Info(p.Name)
		if !ok {
			return fmt.Errorf("model weights lack tensor %q (shape %v)", p.Name, p.Shape)
		}
		if !slices.Equal(info.Shape, p.Shape) {
			return fmt.Errorf("%s: tensor %q has shape %v, config.json implies %v", file, p.Name, info.Shape, p.Shape)
		}
		if err := set.Float32Into(p.Data, p.Name); err != nil { // no second copy of the model
			return err
		}
	}
	return nil
}

// Save writes the model as a Hugging Face folder: config.json and model.safetensors (sharded
// when larger than maxShardBytes > 0), tensors in dtype "F32" or "BF16". Files are written
// atomically.
func (m *Model) Save(dir, dtype string, maxShardBytes int64) error {
	if dtype != "F32" && dtype != "BF16" {
		return fmt.Errorf("saving %s: dtype %q (F32 or BF16)", dir, dtype)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var ts []safetensors.Tensor
	for _, p := range m.Params() {
		ts = append(ts, safetensors.Tensor{Name: p.Name, DType: safetensors.DType(dtype), Shape: p.Shape, F32: p.Data})
	}
	cfg := m.Config
	if dtype == "BF16" {
		cfg.TorchDType = "bfloat16"
	} else {
		cfg.TorchDType = "float32"
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := durable.WriteFile(filepath.Join(dir, "config.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return safetensors.WriteDir(dir, ts, map[string]string{"format": "pt"}, maxShardBytes)
}
