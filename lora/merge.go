package lora

import (
	"fmt"

	"github.com/gwen-ml/gwen/kernels"
	"github.com/gwen-ml/gwen/layers"
)

// MergeDir loads the adapter in dir (Load) and folds it into m (Merge).
func MergeDir(m *layers.Model, dir string) error {
	ad, err := Load(dir)
	if err != nil {
		return err
	}
	return ad.Merge(m)
}

// Merge folds the adapter into m's weights: W += Scale·B·A for every module (fp32 GEMM), so
// that a plain forward of m is the adapted model — what generation wants, with no per-token
// cost. Every module is checked against m (it must name a Linear weight of m of shape
// [Out, In], and not the tied embedding) before any weight changes, so an error leaves m as it
// was. Merge before UseBF16Weights: its bf16 copies are snapshots of the weights.
func (ad *PEFT) Merge(m *layers.Model) error {
	params := map[string][]int{}
	data := map[string][]float32{}
	for _, p := range m.Params() {
		params[p.Name], data[p.Name] = p.Shape, p.Data
	}
	embed := m.Embed.Name
	for _, mod := range ad.Modules {
		name := mod.Name + ".weight"
		if name == embed {
			return fmt.Errorf("lora: %s: %s adapts the token embedding; embedding adapters are not supported", ad.file(), mod.keyA())
		}
		if mod.Name == "lm_head" && m.LMHead == m.Embed {
			return fmt.Errorf("lora: %s: %s adapts lm_head, which this model ties to the token embedding; adapting it would change the embedding too", ad.file(), mod.keyA())
		}
		shape, ok := params[name]
		if !ok {
			return fmt.Errorf("lora: %s: %s adapts %s, which the model (%s) does not have", ad.file(), mod.keyA(), name, m.Config.ModelType)
		}
		if len(shape) != 2 || shape[0] != mod.Out || shape[1] != mod.In {
			return fmt.Errorf("lora: %s: %s and %s make a [%d, %d] update for %s, which is %v", ad.file(), mod.keyA(), mod.keyB(), mod.Out, mod.In, name, shape)
		}
		if len(data[name]) == 0 {
			return fmt.Errorf("lora: cannot merge %s into %s: the model holds that weight as bfloat16 bits only (DropFP32Weights); load the base again to merge", ad.file(), name)
		}
	}
	for _, mod := range ad.Modules {
		w := data[mod.Name+".weight"]
		kernels.Sgemm(false, false, mod.Out, mod.In, mod.R, mod.Scale, mod.B, mod.R, mod.A, mod.In, 1, w, mod.In)
	}
	return nil
}
