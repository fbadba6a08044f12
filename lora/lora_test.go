package lora_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/internal/golden"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/layers/safetensors"
	"github.com/gwen-ml/gwen/lora"
	"github.com/gwen-ml/gwen/moe"
)

func loadBase(t *testing.T) *layers.Model {
	t.Helper()
	m, err := layers.Load(golden.Dir("tiny-dense"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The golden PEFT adapter (r=4, alpha 8, every projection), merged into tiny-dense, gives the
// reference's merged weights (W + scale·B·A in float64) and the reference's logits and loss of
// the adapted model (y = x·Wᵀ + scale·(x·Aᵀ)·Bᵀ, float64).
func TestMergeMatchesGolden(t *testing.T) {
	g, err := golden.Open("tiny-dense/lora")
	if err != nil {
		t.Fatal(err)
	}
	base, err := golden.Open("tiny-dense")
	if err != nil {
		t.Fatal(err)
	}
	ad, err := lora.Load(golden.Dir("tiny-dense/lora"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ad.Modules) != 14 { // 2 layers × q, k, v, o, gate, up, down
		t.Fatalf("%d modules, want 14", len(ad.Modules))
	}
	for _, mod := range ad.Modules {
		if mod.R != 4 || mod.Scale != 2 {
			t.Fatalf("%s: r %d scale %v, want 4 and 2 (lora_alpha 8 / r 4)", mod.Name, mod.R, mod.Scale)
		}
	}
	m := loadBase(t)
	if err := ad.Merge(m); err != nil {
		t.Fatal(err)
	}
	merged := 0
	for _, p := range m.Params() {
		key := "merged." + p.Name
		if _, ok := g.Tensors.Info(key); !ok {
			continue
		}
		merged++
		if d := golden.Compare(p.Data, g.F32(key), 1e-6); d.Max > 1e-6 {
			t.Errorf("%s: %s", p.Name, d)
		}
	}
	if merged != 14 {
		t.Fatalf("compared %d merged weights, want 14", merged)
	}
	ids, labels := base.I32("input_ids"), base.I32("labels")
	shape := base.Shape("input_ids")
	b, tt := shape[0], shape[1]
	tp := autograd.NewTape()
	logits := m.Forward(tp, layers.Input{IDs: ids, B: b, T: tt}).Logits
	if d := golden.Compare(logits.Data, g.F32("lora.logits"), 1e-4); d.Max > 1e-4 {
		t.Errorf("logits: %s", d)
	}
	loss, _, _ := autograd.CrossEntropy(tp, logits, layers.CausalTargets(labels, b, tt), 0)
	if d := float64(loss.Data[0]) - g.Scalar("lora_loss"); d > 1e-5 || d < -1e-5 {
		t.Errorf("loss %v, golden %v", loss.Data[0], g.Scalar("lora_loss"))
	}
	tp.Reset()
}

// copyAdapter copies the golden adapter into a temporary folder, with its config edited by
// edit and its tensors by tensors (nil: unchanged).
func copyAdapter(t *testing.T, edit func(string) string, tensors func([]safetensors.Tensor) []safetensors.Tensor) string {
	t.Helper()
	src := golden.Dir("tiny-dense/lora")
	dir := t.TempDir()
	cfg, err := os.ReadFile(filepath.Join(src, "adapter_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		cfg = []byte(edit(string(cfg)))
	}
	if err := os.WriteFile(filepath.Join(dir, "adapter_config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	ts, err := golden.ReadAll(filepath.Join(src, "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if tensors != nil {
		ts = tensors(ts)
	}
	if err := safetensors.Write(filepath.Join(dir, "adapter_model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

const qA = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"

func TestLoadRefusesWithTheKeyAndFile(t *testing.T) {
	drop := func(name string) func([]safetensors.Tensor) []safetensors.Tensor {
		return func(ts []safetensors.Tensor) []safetensors.Tensor {
			var out []safetensors.Tensor
			for _, x := range ts {
				if x.Name != name {
					out = append(out, x)
				}
			}
			return out
		}
	}
	cases := []struct {
		name    string
		edit    func(string) string
		tensors func([]safetensors.Tensor) []safetensors.Tensor
		want    []string
	}{
		{"not LoRA", func(s string) string { return strings.Replace(s, `"peft_type": "LORA"`, `"peft_type": "IA3"`, 1) }, nil,
			[]string{"adapter_config.json", `peft_type "IA3"`}},
		{"DoRA", func(s string) string { return strings.Replace(s, `"use_dora": false`, `"use_dora": true`, 1) }, nil,
			[]string{"use_dora", "DoRA"}},
		{"bias", func(s string) string { return strings.Replace(s, `"bias": "none"`, `"bias": "all"`, 1) }, nil,
			[]string{"bias", `"all"`}},
		{"saved modules", func(s string) string {
			return strings.Replace(s, `"modules_to_save": null`, `"modules_to_save": ["lm_head"]`, 1)
		}, nil, []string{"modules_to_save"}},
		{"r zero", func(s string) string { return strings.Replace(s, `"r": 4`, `"r": 0`, 1) }, nil, []string{"r = 0"}},
		{"broken JSON", func(s string) string { return s[:len(s)/2] }, nil, []string{"adapter_config.json"}},
		{"missing B", nil, drop(strings.Replace(qA, "lora_A", "lora_B", 1)),
			[]string{"adapter_model.safetensors", strings.Replace(qA, "lora_A", "lora_B", 1), "is missing"}},
		{"foreign tensor", nil, func(ts []safetensors.Tensor) []safetensors.Tensor {
			return append(ts, safetensors.Tensor{Name: "base_model.model.lm_head.weight", DType: "F32", Shape: []int{2, 2}, F32: make([]float32, 4)})
		}, []string{"base_model.model.lm_head.weight", "not a LoRA weight"}},
		{"ranks disagree", nil, func(ts []safetensors.Tensor) []safetensors.Tensor {
			for i := range ts {
				if ts[i].Name == qA {
					ts[i].Shape = []int{2, 128}
				}
			}
			return ts
		}, []string{qA, "[2 128]", "same r"}},
	}
	for _, c := range cases {
		dir := copyAdapter(t, c.edit, c.tensors)
		_, err := lora.Load(dir)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not name %q", c.name, err, w)
			}
		}
	}
	if _, err := lora.Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "adapter_config.json") {
		t.Errorf("empty folder: %v", err)
	}
}

// rsLoRA scales by alpha/sqrt(r), and a module's own rank (rank_pattern) sets its scale.
func TestLoadScales(t *testing.T) {
	ad, err := lora.Load(copyAdapter(t, func(s string) string {
		return strings.Replace(s, `"use_rslora": false`, `"use_rslora": true`, 1)
	}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if s := ad.Modules[0].Scale; s != 4 { // 8 / sqrt(4)
		t.Errorf("rsLoRA scale %v, want 4", s)
	}
}

// A module the model lacks, or of the wrong size, is refused before any weight changes.
func TestMergeRefusesAndLeavesTheModel(t *testing.T) {
	rename := func(from, to string) func([]safetensors.Tensor) []safetensors.Tensor {
		return func(ts []safetensors.Tensor) []safetensors.Tensor {
			for i := range ts {
				ts[i].Name = strings.Replace(ts[i].Name, from, to, 1)
			}
			return ts
		}
	}
	cases := []struct {
		name    string
		tensors func([]safetensors.Tensor) []safetensors.Tensor
		want    string
	}{
		// Sorted last, so the earlier modules are checked (and would be merged) first.
		{"unknown module", rename("layers.1.mlp.up_proj", "layers.7.mlp.up_proj"), "model.layers.7.mlp.up_proj.weight, which the model"},
		{"wrong size", func(ts []safetensors.Tensor) []safetensors.Tensor {
			// layer 1's down_proj pair ([64, 160] update) stands in for its q_proj ([96, 64]).
			var out []safetensors.Tensor
			for _, x := range ts {
				if !strings.Contains(x.Name, "layers.1.self_attn.q_proj") {
					out = append(out, x)
				}
			}
			return rename("layers.1.mlp.down_proj", "layers.1.self_attn.q_proj")(out)
		}, "make a [64, 160] update for model.layers.1.self_attn.q_proj.weight, which is [96 64]"},
		{"tied lm_head", rename("model.layers.1.mlp.up_proj", "lm_head"), "ties to the token embedding"},
	}
	for _, c := range cases {
		ad, err := lora.Load(copyAdapter(t, nil, c.tensors))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		m := loadBase(t)
		before := map[string][]float32{}
		for _, p := range m.Params() {
			before[p.Name] = append([]float32(nil), p.Data...)
		}
		err = ad.Merge(m)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %q", c.name, err, c.want)
		}
		for _, p := range m.Params() {
			for i, v := range p.Data {
				if v != before[p.Name][i] {
					t.Fatalf("%s: %s changed although Merge failed", c.name, p.Name)
				}
			}
		}
	}
}

// A Qwen3-MoE adapter may target single experts (mlp.experts.<e>.<proj>, as PEFT names them):
// exactly those weights move, by scale·B·A computed here in float64, and nothing else does.
func TestMergeIntoExperts(t *testing.T) {
	moe.Register() // tiny-moe has sparse layers
	m, err := layers.Load(golden.Dir("tiny-moe"))
	if err != nil {
		t.Fatal(err)
	}
	shapes := map[string][]int{}
	before := map[string][]float32{}
	for _, p := range m.Params() {
		shapes[p.Name] = p.Shape
		before[p.Name] = append([]float32(nil), p.Data...)
	}
	targets := []string{"model.layers.1.mlp.experts.3.up_proj", "model.layers.2.self_attn.o_proj"}
	r := 2
	dir := t.TempDir()
	var ts []safetensors.Tensor
	ab := map[string][2][]float32{}
	for i, mod := range targets {
		sh := shapes[mod+".weight"]
		if sh == nil {
			t.Fatalf("fixture: tiny-moe has no %s", mod)
		}
		a, b := make([]float32, r*sh[1]), make([]float32, sh[0]*r)
		for j := range a {
			a[j] = float32((j*7+i)%11) / 50
		}
		for j := range b {
			b[j] = float32((j*5+i)%13) / 40
		}
		ab[mod] = [2][]float32{a, b}
		ts = append(ts,
			safetensors.Tensor{Name: "base_model.model." + mod + ".lora_A.weight", DType: "F32", Shape: []int{r, sh[1]}, F32: a},
			safetensors.Tensor{Name: "base_model.model." + mod + ".lora_B.weight", DType: "F32", Shape: []int{sh[0], r}, F32: b})
	}
	if err := safetensors.Write(filepath.Join(dir, "adapter_model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	cfg := `{"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["up_proj", "o_proj"], "bias": "none"}`
	if err := os.WriteFile(filepath.Join(dir, "adapter_config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := lora.MergeDir(m, dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		mod := strings.TrimSuffix(p.Name, ".weight")
		pair, adapted := ab[mod]
		for i, v := range p.Data {
			want := float64(before[p.Name][i])
			if adapted {
				out, in := i/p.Shape[1], i%p.Shape[1]
				for q := range r {
					want += 2 * float64(pair[1][out*r+q]) * float64(pair[0][q*p.Shape[1]+in])
				}
			}
			if d := math.Abs(float64(v) - want); d > 1e-6 || (!adapted && d != 0) {
				t.Fatalf("%s[%d] = %v, want %v", p.Name, i, v, want)
			}
		}
	}
}
