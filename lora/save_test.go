package lora_test

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/internal/golden"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/layers/safetensors"
	"github.com/gwen-ml/gwen/lora"
)

// trainedSet attaches cfg to a fresh tiny-dense and gives every B random values (a trained
// adapter's stand-in).
func trainedSet(t *testing.T, cfg lora.Config) (*layers.Model, *lora.Set) {
	t.Helper()
	m := loadBase(t)
	s, err := lora.Attach(m, cfg, 21)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range s.Adapters {
		copy(a.B.Data, randData(uint64(100+i), len(a.B.Data)))
	}
	return m, s
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// Save writes what PEFT writes: the golden adapter_config.json's keys exactly, the recipe's
// values under PEFT's names, and adapter_model.safetensors under PEFT keys with [r, in] and
// [out, r]; Load reads it back to the bit, and the adapter runs from the files with the logits
// of the set that wrote them.
func TestSaveIsPEFT(t *testing.T) {
	cfg := lora.Config{R: 8, Alpha: 16, Dropout: 0.05, UseRSLoRA: true, TargetModules: lora.Targets{Names: []string{"v_proj", "q_proj", "down_proj"}}, Layers: []int{1, 0}}
	m, s := trainedSet(t, cfg)
	dir := filepath.Join(t.TempDir(), "adapter")
	if err := s.Save(dir, "Qwen/Qwen3-0.6B"); err != nil {
		t.Fatal(err)
	}
	got := readJSON(t, filepath.Join(dir, "adapter_config.json"))
	peft := readJSON(t, filepath.Join(golden.Dir("tiny-dense/lora"), "adapter_config.json"))
	gk, pk := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(peft))
	if !slices.Equal(gk, pk) {
		t.Errorf("adapter_config.json keys %v\nPEFT writes %v", gk, pk)
	}
	want := map[string]any{
		"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 8.0, "lora_alpha": 16.0, "lora_dropout": 0.05,
		"use_rslora": true, "use_dora": false, "bias": "none", "base_model_name_or_path": "Qwen/Qwen3-0.6B",
		"fan_in_fan_out": false, "inference_mode": true, "init_lora_weights": true, "modules_to_save": nil,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if tm, _ := json.Marshal(got["target_modules"]); string(tm) != `["down_proj","q_proj","v_proj"]` {
		t.Errorf("target_modules %s, want the sorted list", tm)
	}
	if lt, _ := json.Marshal(got["layers_to_transform"]); string(lt) != `[0,1]` {
		t.Errorf("layers_to_transform %s, want [0,1]", lt)
	}
	f, err := safetensors.Open(filepath.Join(dir, "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Names()) != 12 || f.Metadata()["format"] != "pt" {
		t.Errorf("%d tensors, metadata %v; want 12 and format pt", len(f.Names()), f.Metadata())
	}
	for _, a := range s.Adapters {
		ia, okA := f.Info("base_model.model." + a.Name + ".lora_A.weight")
		ib, okB := f.Info("base_model.model." + a.Name + ".lora_B.weight")
		if !okA || !okB || !slices.Equal(ia.Shape, []int{8, a.In}) || !slices.Equal(ib.Shape, []int{a.Out, 8}) {
			t.Errorf("%s: lora_A %v %v, lora_B %v %v", a.Name, okA, ia.Shape, okB, ib.Shape)
		}
	}

	p, err := lora.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range s.Adapters {
		mod := p.Modules[slices.IndexFunc(p.Modules, func(md lora.Module) bool { return md.Name == a.Name })]
		if !slices.Equal(mod.A, a.A.Data) || !slices.Equal(mod.B, a.B.Data) || mod.Scale != a.Scale {
			t.Errorf("module %d %s does not read back to the bit", i, a.Name)
		}
	}
	in := goldenBatch(t)
	s.Eval()
	wantLogits := m.Forward(nil, layers.Input{IDs: in.ids, B: in.b, T: in.t}).Logits.Data
	m2 := loadBase(t)
	if _, err := lora.AttachPEFT(m2, p); err != nil {
		t.Fatal(err)
	}
	if got := m2.Forward(nil, layers.Input{IDs: in.ids, B: in.b, T: in.t}).Logits.Data; !slices.Equal(got, wantLogits) {
		t.Errorf("the saved adapter's logits differ from the set's")
	}

	// Resume: a set attached with another seed takes the saved weights (LoadDir), and
	// init_from does the same at Attach.
	_, s3 := trainedSet(t, cfg)
	if err := s3.LoadDir(dir); err != nil {
		t.Fatal(err)
	}
	cfg.InitFrom = dir
	m4 := loadBase(t)
	s4, err := lora.Attach(m4, cfg, 99)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range s.Adapters {
		if !slices.Equal(a.A.Data, s3.Adapters[i].A.Data) || !slices.Equal(a.B.Data, s4.Adapters[i].B.Data) {
			t.Errorf("%s: LoadDir / init_from did not restore the weights", a.Name)
		}
	}

	// A pattern is written as PEFT's string form.
	_, sp := trainedSet(t, lora.Config{R: 2, Alpha: 2, TargetModules: lora.Targets{Pattern: `.*\.(q|v)_proj`}})
	pdir := t.TempDir()
	if err := sp.Save(pdir, "base"); err != nil {
		t.Fatal(err)
	}
	if got := readJSON(t, filepath.Join(pdir, "adapter_config.json")); got["target_modules"] != `.*\.(q|v)_proj` || got["layers_to_transform"] != nil {
		t.Errorf("pattern export: target_modules %#v, layers_to_transform %#v", got["target_modules"], got["layers_to_transform"])
	}
	_, sa := trainedSet(t, lora.Config{R: 2, Alpha: 2, TargetModules: lora.Targets{Pattern: lora.AllLinear}})
	if err := sa.Save(pdir, "base"); err != nil {
		t.Fatal(err)
	}
	if got := readJSON(t, filepath.Join(pdir, "adapter_config.json")); got["target_modules"] != "all-linear" {
		t.Errorf("all-linear export: target_modules %#v", got["target_modules"])
	}
}

// init_from refuses an adapter that lacks a module the run selects, or whose weights have
// another shape (another base model), naming the module.
func TestInitFromRefusesAMismatchedAdapter(t *testing.T) {
	_, q := trainedSet(t, lora.Config{R: 4, Alpha: 8, TargetModules: lora.Targets{Names: []string{"q_proj"}}})
	qdir := t.TempDir()
	if err := q.Save(qdir, "base"); err != nil {
		t.Fatal(err)
	}
	narrow := copyAdapter(t, nil, func(ts []safetensors.Tensor) []safetensors.Tensor {
		for i := range ts {
			if ts[i].Name == qA { // [4, 64] → [4, 32]; still a consistent pair for Load
				ts[i].Shape, ts[i].F32 = []int{4, 32}, ts[i].F32[:4*32]
			}
		}
		return ts
	})
	for _, c := range []struct {
		dir, want string
	}{
		{qdir, "no adapter for module model.layers.0.self_attn.k_proj"},
		{narrow, "module model.layers.0.self_attn.q_proj adapts a [96, 32] weight; the model's is [96, 64]"},
	} {
		m := loadBase(t)
		_, err := lora.Attach(m, lora.Config{R: 4, Alpha: 8, TargetModules: lora.Targets{Names: lora.DefaultTargets}, InitFrom: c.dir}, 1)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "lora.init_from") {
			t.Errorf("init_from %s: %v; want an error containing %q", c.dir, err, c.want)
		}
		if m.Blocks[0].Attn.Q.Adapter != nil {
			t.Errorf("a refused init_from left an adapter on the model")
		}
	}
}

// The recipe's lora section reads from JSON and from YAML libraries' unmarshal functions, with
// target_modules a list or a pattern.
func TestConfigDecodes(t *testing.T) {
	var c lora.Config
	raw := `{"r": 16, "alpha": 32, "dropout": 0.1, "target_modules": ["q_proj", "v_proj"], "layers": [1], "use_rslora": true, "init_from": "a/b"}`
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		t.Fatal(err)
	}
	if c.R != 16 || c.Alpha != 32 || c.Dropout != 0.1 || !slices.Equal(c.TargetModules.Names, []string{"q_proj", "v_proj"}) ||
		!slices.Equal(c.Layers, []int{1}) || !c.UseRSLoRA || c.InitFrom != "a/b" {
		t.Errorf("decoded %+v", c)
	}
	if err := json.Unmarshal([]byte(`{"target_modules": ".*_proj"}`), &c); err != nil || c.TargetModules.Pattern != ".*_proj" || c.TargetModules.Names != nil {
		t.Errorf("pattern: %+v, %v", c.TargetModules, err)
	}
	if err := json.Unmarshal([]byte(`{"target_modules": 3}`), &c); err == nil || !strings.Contains(err.Error(), "target_modules") {
		t.Errorf("a number as target_modules: %v", err)
	}
	// A YAML library calls UnmarshalYAML with its own decoder; JSON stands in for it here.
	var tg lora.Targets
	yamlLike := func(src string) func(any) error {
		return func(v any) error { return json.Unmarshal([]byte(src), v) }
	}
	if err := tg.UnmarshalYAML(yamlLike(`["o_proj"]`)); err != nil || !slices.Equal(tg.Names, []string{"o_proj"}) {
		t.Errorf("yaml list: %+v %v", tg, err)
	}
	if err := tg.UnmarshalYAML(yamlLike(`"x.*"`)); err != nil || tg.Pattern != "x.*" || tg.Names != nil {
		t.Errorf("yaml pattern: %+v %v", tg, err)
	}
	if d := lora.DefaultConfig(); d.R != 16 || d.Alpha != 32 || len(d.TargetModules.Names) != 7 || d.Validate() != nil {
		t.Errorf("DefaultConfig %+v", d)
	}
}

// AttachPEFT refuses, naming the module, an adapter for a module the model lacks or of another
// size, and leaves the model unchanged.
func TestAttachPEFTRefuses(t *testing.T) {
	rename := func(from, to string) func([]safetensors.Tensor) []safetensors.Tensor {
		return func(ts []safetensors.Tensor) []safetensors.Tensor {
			var out []safetensors.Tensor
			for _, x := range ts {
				if strings.Contains(x.Name, to) {
					continue
				}
				x.Name = strings.Replace(x.Name, from, to, 1)
				out = append(out, x)
			}
			return out
		}
	}
	for _, c := range []struct {
		tensors func([]safetensors.Tensor) []safetensors.Tensor
		want    string
	}{
		{rename("layers.1.mlp.up_proj", "layers.7.mlp.up_proj"), "module model.layers.7.mlp.up_proj is not a projection"},
		{rename("layers.1.mlp.down_proj", "layers.1.self_attn.q_proj"), "make a [64, 160] update for model.layers.1.self_attn.q_proj.weight, which is [96 64]"},
	} {
		p, err := lora.Load(copyAdapter(t, nil, c.tensors))
		if err != nil {
			t.Fatal(err)
		}
		m := loadBase(t)
		_, err = lora.AttachPEFT(m, p)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want one containing %q", err, c.want)
		}
		if m.Blocks[0].Attn.Q.Adapter != nil || !m.Params()[0].RequiresGrad {
			t.Errorf("a refused AttachPEFT changed the model")
		}
	}
}
