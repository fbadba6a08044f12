package layers_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/internal/golden"
	"github.com/gwen-ml/gwen/kernels"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/layers/safetensors"
)

func logitsOf(t *testing.T, m *layers.Model, g *golden.Case) []float32 {
	t.Helper()
	shape := g.Shape("input_ids")
	return m.Forward(nil, layers.Input{IDs: g.I32("input_ids"), B: shape[0], T: shape[1]}).Logits.Data
}

// The golden model saved by our writer as one file, as shards, and in BF16 loads back to the
// same numbers (BF16: to the numbers of bf16-rounded weights).
func TestSaveLoadRoundTrips(t *testing.T) {
	m, err := layers.Load(golden.Dir("tiny-dense"))
	if err != nil {
		t.Fatal(err)
	}
	g, _ := golden.Open("tiny-dense")
	want := logitsOf(t, m, g)

	for _, tc := range []struct {
		name  string
		dtype string
		shard int64
		files int
	}{{"single", "F32", 0, 1}, {"sharded", "F32", 100_000, 6}, {"bf16", "BF16", 0, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := m.Save(dir, tc.dtype, tc.shard); err != nil {
				t.Fatal(err)
			}
			shards, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
			if len(shards) < tc.files {
				t.Fatalf("%d safetensors files, want at least %d", len(shards), tc.files)
			}
			if tc.shard > 0 {
				if _, err := os.Stat(filepath.Join(dir, "model.safetensors.index.json")); err != nil {
					t.Fatal("sharded save wrote no index:", err)
				}
			}
			back, err := layers.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			ref := want
			if tc.dtype == "BF16" {
				for i, p := range m.Params() {
					if got, w := back.Params()[i], kernels.RoundBF16Value(p.Data[0]); got.Data[0] != w {
						t.Fatalf("%s[0] = %v after BF16 round trip, want %v", p.Name, got.Data[0], w)
					}
				}
				rounded, _ := layers.New(m.Config)
				for i, p := range m.Params() {
					kernels.RoundBF16(rounded.Params()[i].Data, p.Data)
				}
				ref = logitsOf(t, rounded, g)
			}
			if d := golden.Compare(logitsOf(t, back, g), ref, 0); d.Max != 0 {
				t.Errorf("logits after %s round trip: %v", tc.name, d)
			}
		})
	}
}

// An untied copy (lm_head.weight stored separately, equal to the embedding) gives the same
// logits as the tied original.
func TestUntiedModelLoads(t *testing.T) {
	m, err := layers.Load(golden.Dir("tiny-dense"))
	if err != nil {
		t.Fatal(err)
	}
	g, _ := golden.Open("tiny-dense")
	cfg := m.Config
	cfg.TieWordEmbeddings = false
	u, err := layers.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range m.Params() {
		copy(u.Params()[i].Data, p.Data)
	}
	copy(u.LMHead.Data, m.Embed.Data)
	dir := t.TempDir()
	if err := u.Save(dir, "F32", 0); err != nil {
		t.Fatal(err)
	}
	back, err := layers.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.LMHead == back.Embed {
		t.Fatal("untied config loaded with a tied lm_head")
	}
	if d := golden.Compare(logitsOf(t, back, g), g.F32("logits"), 1e-4); d.Max > 1e-4 {
		t.Errorf("untied logits: %v", d)
	}
}

// Weights that do not fit the config are refused with the tensor and file named.
func TestLoadRejectsWeightsThatDoNotFit(t *testing.T) {
	m, err := layers.Load(golden.Dir("tiny-dense"))
	if err != nil {
		t.Fatal(err)
	}
	cfgBytes, _ := os.ReadFile(filepath.Join(golden.Dir("tiny-dense"), "config.json"))
	write := func(t *testing.T, mutate func([]safetensors.Tensor) []safetensors.Tensor) string {
		var ts []safetensors.Tensor
		for _, p := range m.Params() {
			ts = append(ts, safetensors.Tensor{Name: p.Name, DType: "F32", Shape: p.Shape, F32: p.Data})
		}
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "config.json"), cfgBytes, 0o644)
		if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), mutate(ts), nil); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	for _, tc := range []struct {
		name   string
		mutate func([]safetensors.Tensor) []safetensors.Tensor
		msg    []string
	}{
		{"missing", func(ts []safetensors.Tensor) []safetensors.Tensor { return ts[:len(ts)-1] },
			[]string{"model.norm.weight"}},
		{"unexpected", func(ts []safetensors.Tensor) []safetensors.Tensor {
			return append(ts, safetensors.Tensor{Name: "model.layers.7.mlp.up_proj.weight", DType: "F32", Shape: []int{1}, F32: []float32{0}})
		}, []string{"model.layers.7.mlp.up_proj.weight", "model.safetensors"}},
		{"misshapen", func(ts []safetensors.Tensor) []safetensors.Tensor {
			ts[1] = safetensors.Tensor{Name: ts[1].Name, DType: "F32", Shape: []int{48, 64}, F32: make([]float32, 48*64)}
			return ts
		}, []string{"model.layers.0.self_attn.q_proj.weight", "[48 64]", "[96 64]", "model.safetensors"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := layers.Load(write(t, tc.mutate))
			if err == nil {
				t.Fatal("loaded weights that do not fit the config")
			}
			for _, s := range tc.msg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	base, err := os.ReadFile(filepath.Join(golden.Dir("tiny-dense"), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, to, msg string }{
		{`"model_type": "qwen3"`, `"model_type": "llama"`, `model_type "llama" is not supported`},
		{`"head_dim": 24,`, ``, `lacks [head_dim]`},
		{`"rope_theta": 1000000.0,`, `"rope_theta": null,`, `lacks [rope_theta]`},
		{`"num_key_value_heads": 2`, `"num_key_value_heads": 3`, `not a multiple`},
		{`"rope_scaling": null`, `"rope_scaling": {"rope_type": "longrope", "factor": 2}`, `"longrope" is not supported`},
		{`"hidden_act": "silu"`, `"hidden_act": "gelu"`, `hidden_act "gelu"`},
		{`{`, `{"num_experts": 4, `, ``}, // a dense model ignores MoE fields
	} {
		src := strings.Replace(string(base), tc.from, tc.to, 1)
		if src == string(base) {
			t.Fatalf("fixture edit %q did not apply", tc.from)
		}
		c, err := layers.ParseConfig([]byte(src))
		switch {
		case tc.msg == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tc.to, err)
		case tc.msg == "" && c.IsSparseLayer(0):
			t.Errorf("dense config reports a sparse layer")
		case tc.msg != "" && (err == nil || !strings.Contains(err.Error(), tc.msg)):
			t.Errorf("%s: error %v, want one mentioning %q", tc.to, err, tc.msg)
		}
	}
}

func TestSparseLayerRule(t *testing.T) {
	c := layers.Config{ModelType: "qwen3_moe", NumExperts: 8, NumHiddenLayers: 6, DecoderSparseStep: 2, MLPOnlyLayers: []int{3}}
	var got []int
	for i := 0; i < 6; i++ {
		if c.IsSparseLayer(i) {
			got = append(got, i)
		}
	}
	// (i+1) % 2 == 0 → 1, 3, 5; layer 3 is forced dense.
	if len(got) != 2 || got[0] != 1 || got[1] != 5 {
		t.Fatalf("sparse layers %v, want [1 5]", got)
	}
}
