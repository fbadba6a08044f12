package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/layers/safetensors"

	"github.com/gwen-ml/gwen/internal/testenv"
)

// tinyInitConfig is a small dense Qwen3 config.json; extra adds or replaces fields.
func tinyInitConfig(t *testing.T, extra map[string]any) string {
	t.Helper()
	c := map[string]any{
		"model_type": "qwen3", "vocab_size": 96, "hidden_size": 32, "intermediate_size": 64,
		"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
		"max_position_embeddings": 128, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
		"tie_word_embeddings": false, "hidden_act": "silu", "initializer_range": 0.05,
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func runInit(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(append([]string{"init"}, args...), nil, &stdout, &stderr); code != 0 {
		t.Fatalf("gwen init %v: exit %d: %s", args, code, stderr.String())
	}
	return stdout.String()
}

// The folder gwen init writes loads with layers.Load; every parameter has the shape the
// config implies (written out by hand here), RMSNorm weights are exactly 1, and the other
// weights are N(0, initializer_range²) as transformers' _init_weights draws them.
func TestInitWritesAModelThatLoads(t *testing.T) {
	cfg := tinyInitConfig(t, nil)
	dir := filepath.Join(t.TempDir(), "model")
	runInit(t, "--config", cfg, "--out", dir, "--dtype", "f32", "--seed", "7")
	m, err := layers.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	// D=32, H=4, KV=2, hd=8, I=64, V=96.
	want := map[string][]int{
		"model.embed_tokens.weight": {96, 32}, "lm_head.weight": {96, 32}, "model.norm.weight": {32},
	}
	for i := range 2 {
		p := fmt.Sprintf("model.layers.%d.", i)
		for k, v := range map[string][]int{
			"self_attn.q_proj.weight": {32, 32}, "self_attn.k_proj.weight": {16, 32},
			"self_attn.v_proj.weight": {16, 32}, "self_attn.o_proj.weight": {32, 32},
			"self_attn.q_norm.weight": {8}, "self_attn.k_norm.weight": {8},
			"mlp.gate_proj.weight": {64, 32}, "mlp.up_proj.weight": {64, 32}, "mlp.down_proj.weight": {32, 64},
			"input_layernorm.weight": {32}, "post_attention_layernorm.weight": {32},
		} {
			want[p+k] = v
		}
	}
	params := m.Params()
	if len(params) != len(want) {
		t.Fatalf("%d parameters, want %d", len(params), len(want))
	}
	var sum, sumSq, n float64
	for _, p := range params {
		if !slices.Equal(p.Shape, want[p.Name]) {
			t.Errorf("%s: shape %v, want %v", p.Name, p.Shape, want[p.Name])
		}
		if len(p.Shape) == 1 {
			for i, v := range p.Data {
				if v != 1 {
					t.Fatalf("%s[%d] = %v, want 1 (RMSNorm weights start at 1)", p.Name, i, v)
				}
			}
			continue
		}
		var s, s2 float64
		for _, v := range p.Data {
			s += float64(v)
			s2 += float64(v) * float64(v)
		}
		sum, sumSq, n = sum+s, sumSq+s2, n+float64(len(p.Data))
		// Per tensor (≥ 512 samples): the sample std is within 10% of 0.05 with room to spare.
		if sd := math.Sqrt(s2 / float64(len(p.Data))); math.Abs(sd/0.05-1) > 0.1 {
			t.Errorf("%s: std %.4f, want 0.05 ± 10%%", p.Name, sd)
		}
	}
	// Pooled (≈ 21k samples, standard error of the std ≈ 0.5%): within 2%; mean within 4 SE.
	if sd := math.Sqrt(sumSq / n); math.Abs(sd/0.05-1) > 0.02 {
		t.Errorf("pooled std %.5f, want 0.05 ± 2%%", sd)
	}
	if mean := sum / n; math.Abs(mean) > 4*0.05/math.Sqrt(n) {
		t.Errorf("pooled mean %.5f, want 0 within %.5f", mean, 4*0.05/math.Sqrt(n))
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"torch_dtype": "float32"`) || !strings.Contains(string(b), `"initializer_range": 0.05`) {
		t.Errorf("config.json does not say float32 or lost initializer_range:\n%s", b)
	}
}

// The weights are those of Model.InitRandom (one PCG stream over the parameters in order),
// so `gwen init --seed N` starts from exactly the model `gwen bench` and the layers tests
// build; the same seed gives byte-identical files, another seed other weights.
func TestInitIsDeterministicBySeed(t *testing.T) {
	cfg := tinyInitConfig(t, map[string]any{"tie_word_embeddings": true})
	tmp := t.TempDir()
	a, b, c := filepath.Join(tmp, "a"), filepath.Join(tmp, "b"), filepath.Join(tmp, "c")
	runInit(t, "--config", cfg, "--out", a, "--dtype", "f32", "--seed", "3", "--std", "0.1")
	runInit(t, "--config", cfg, "--out", b, "--dtype", "f32", "--seed", "3", "--std", "0.1")
	runInit(t, "--config", cfg, "--out", c, "--dtype", "f32", "--seed", "4", "--std", "0.1")
	fa, _ := os.ReadFile(filepath.Join(a, "model.safetensors"))
	fb, _ := os.ReadFile(filepath.Join(b, "model.safetensors"))
	fc, _ := os.ReadFile(filepath.Join(c, "model.safetensors"))
	if len(fa) == 0 || !bytes.Equal(fa, fb) {
		t.Error("the same seed gave different files")
	}
	if bytes.Equal(fa, fc) {
		t.Error("seeds 3 and 4 gave the same weights")
	}
	got, err := layers.Load(a)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := layers.LoadConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := layers.New(*c2)
	if err != nil {
		t.Fatal(err)
	}
	ref.InitRandom(3, 0.1)
	for i, p := range got.Params() {
		if !slices.Equal(p.Data, ref.Params()[i].Data) {
			t.Fatalf("%s differs from Model.InitRandom(3, 0.1)", p.Name)
		}
	}
}

// bf16RNE rounds to bfloat16 precision, round to nearest even (finite inputs).
func bf16RNE(f float32) float32 {
	b := math.Float32bits(f)
	b += 0x7fff + (b>>16)&1
	return math.Float32frombits(b &^ 0xffff)
}

// BF16 and sharding: shards hold at most --shard-size bytes (or one larger tensor), the index names every
// tensor's shard and the total size, and the weights read back are the f32 ones rounded to
// bfloat16 — the shard size changes nothing but the files.
func TestInitBF16ShardedRoundTrip(t *testing.T) {
	cfg := tinyInitConfig(t, nil)
	tmp := t.TempDir()
	f32, sharded := filepath.Join(tmp, "f32"), filepath.Join(tmp, "bf16")
	runInit(t, "--config", cfg, "--out", f32, "--dtype", "f32", "--seed", "1")
	out := runInit(t, "--config", cfg, "--out", sharded, "--dtype", "bf16", "--seed", "1", "--shard-size", "5KB")
	if !strings.Contains(out, "BF16") {
		t.Errorf("summary %q does not say BF16", out)
	}
	if _, err := os.Stat(filepath.Join(sharded, safetensors.SingleFileName)); err == nil {
		t.Fatal("a sharded save also wrote model.safetensors")
	}
	var index struct {
		Metadata  map[string]int64  `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	b, err := os.ReadFile(filepath.Join(sharded, safetensors.IndexFileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatal(err)
	}
	want, err := layers.Load(f32)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range want.Params() {
		total += int64(2 * len(p.Data))
	}
	if index.Metadata["total_size"] != total {
		t.Errorf("index total_size %d, want %d (2 bytes per parameter)", index.Metadata["total_size"], total)
	}
	shards := map[string]int64{}
	count := map[string]int{}
	prev := ""
	for _, p := range want.Params() {
		s := index.WeightMap[p.Name]
		if s == "" {
			t.Fatalf("index lacks %s", p.Name)
		}
		if s < prev {
			t.Errorf("%s is in %s, after a parameter in %s: shards do not follow the parameters' order", p.Name, s, prev)
		}
		prev = s
		shards[s] += int64(2 * len(p.Data))
		count[s]++
	}
	if len(shards) < 3 {
		t.Errorf("%d shards for %d bytes at 5KB a shard", len(shards), total)
	}
	for s, size := range shards {
		// At most 5000 bytes, unless the shard is one tensor larger than that (embed_tokens
		// and lm_head: 96·32·2 = 6144 bytes).
		if size > 5000 && count[s] != 1 {
			t.Errorf("%s holds %d bytes in %d tensors", s, size, count[s])
		}
		if !strings.HasSuffix(s, fmt.Sprintf("-of-%05d.safetensors", len(shards))) {
			t.Errorf("shard name %s does not end in -of-%05d.safetensors", s, len(shards))
		}
	}
	got, err := layers.Load(sharded)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range got.Params() {
		for j, v := range p.Data {
			if w := bf16RNE(want.Params()[i].Data[j]); v != w {
				t.Fatalf("%s[%d] = %v, want %v (the f32 weight rounded to bf16)", p.Name, j, v, w)
			}
		}
	}
	b, _ = os.ReadFile(filepath.Join(sharded, "config.json"))
	if !strings.Contains(string(b), `"torch_dtype": "bfloat16"`) {
		t.Errorf("config.json does not say bfloat16:\n%s", b)
	}
}

// pad_token_id's embedding row is zero (nn.Embedding's padding_idx); without --std the
// config's initializer_range applies, with it the flag.
func TestInitPaddingRowAndStd(t *testing.T) {
	cfg := tinyInitConfig(t, map[string]any{"pad_token_id": 5, "initializer_range": nil})
	dir := filepath.Join(t.TempDir(), "m")
	out := runInit(t, "--config", cfg, "--out", dir, "--dtype", "f32")
	if !strings.Contains(out, "std 0.02,") {
		t.Errorf("summary %q: without initializer_range the std is transformers' default 0.02", out)
	}
	m, err := layers.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	D := m.Config.HiddenSize
	for r := 0; r < m.Config.VocabSize; r++ {
		row := m.Embed.Data[r*D : (r+1)*D]
		zero := !slices.ContainsFunc(row, func(v float32) bool { return v != 0 })
		if zero != (r == 5) {
			t.Errorf("embedding row %d all zero: %v (pad_token_id is 5)", r, zero)
		}
	}
}

// Errors name the flag, the config field or the path at fault, and nothing is left behind.
func TestInitErrors(t *testing.T) {
	good := tinyInitConfig(t, nil)
	tmp := t.TempDir()
	full := filepath.Join(tmp, "full")
	os.MkdirAll(full, 0o755)
	os.WriteFile(filepath.Join(full, "notes.txt"), []byte("mine"), 0o644)
	tok := testenv.Tokenizer()
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--config", good}, 2, "need --config"},
		{[]string{"--config", good, "--out", filepath.Join(tmp, "a"), "--dtype", "f16"}, 2, "--dtype"},
		{[]string{"--config", good, "--out", filepath.Join(tmp, "a"), "--shard-size", "lots"}, 2, "--shard-size"},
		{[]string{"--config", good, "--out", filepath.Join(tmp, "a"), "--std", "-1"}, 2, "--std"},
		{[]string{"--config", filepath.Join(tmp, "nosuch.json"), "--out", filepath.Join(tmp, "a")}, 1, "nosuch.json"},
		{[]string{"--config", tinyInitConfig(t, map[string]any{"head_dim": nil}), "--out", filepath.Join(tmp, "a")}, 1, "head_dim"},
		{[]string{"--config", tinyInitConfig(t, map[string]any{"initializer_range": "big"}), "--out", filepath.Join(tmp, "a")}, 1, "initializer_range"},
		{[]string{"--config", tinyInitConfig(t, map[string]any{"pad_token_id": 96}), "--out", filepath.Join(tmp, "a")}, 1, "pad_token_id"},
		{[]string{"--config", good, "--out", full}, 1, "notes.txt"},
		{[]string{"--config", good, "--out", filepath.Join(tmp, "a"), "--tokenizer", tmp}, 1, "tokenizer.json"},
		// The real Qwen3 tokenizer has ids up to 151668: a 96-token embedding cannot hold them.
		{[]string{"--config", good, "--out", filepath.Join(tmp, "a"), "--tokenizer", tok}, 1, "vocab_size is 96"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"init"}, tc.args...), nil, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr.String(), tc.code, tc.msg)
		}
	}
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		if e.Name() != "full" {
			t.Errorf("a failed init left %s behind", e.Name())
		}
	}
}

func TestParseByteSize(t *testing.T) {
	for s, want := range map[string]int64{"2GB": 2e9, "500MB": 5e8, "1.5GB": 15e8, "1GiB": 1 << 30,
		"64KiB": 64 << 10, "123": 123, "0": 0, "10 mb": 1e7, "7B": 7} {
		if got, err := parseByteSize(s); err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "GB", "-1MB", "2XB", "NaN"} {
		if _, err := parseByteSize(s); err == nil {
			t.Errorf("parseByteSize(%q) accepted", s)
		}
	}
}

// CI-sized version of the Qwen3-0.6B checks: the real 151,936-token vocabulary and tokenizer
// with a one-layer, 32-wide model, BF16 and sharded, through gwen init → gwen forward --grads.
// A fresh model's loss is ln V + σ²/2 for logits of standard deviation σ = std·√D (the final
// RMSNorm leaves rows of RMS 1): 11.9313 + 0.0064.
func TestInitLargeVocabForward(t *testing.T) {
	const V, D = 151936, 32
	cfg := tinyInitConfig(t, map[string]any{"vocab_size": V, "hidden_size": D, "num_hidden_layers": 1,
		"tie_word_embeddings": true, "initializer_range": 0.02})
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "model")
	runInit(t, "--config", cfg, "--out", dir, "--shard-size", "4MB", "--seed", "11",
		"--tokenizer", testenv.Tokenizer())
	for _, f := range []string{safetensors.IndexFileName, "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "tokenizer.json", "tokenizer_config.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("model folder: %v", err)
		}
	}
	const B, T = 2, 16
	ids := make([]int64, B*T)
	for i := range ids {
		ids[i] = int64((i*7919 + 151000) % V) // spans the top of the vocabulary too
	}
	in := filepath.Join(tmp, "in.safetensors")
	if err := safetensors.Write(in, []safetensors.Tensor{
		{Name: "input_ids", DType: "I64", Shape: []int{B, T}, I64: ids},
		{Name: "labels", DType: "I64", Shape: []int{B, T}, I64: ids}}, nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "out.safetensors")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"forward", "--model", dir, "--input", in, "--out", out, "--grads"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("gwen forward: exit %d: %s", code, stderr.String())
	}
	f, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if info, _ := f.Info("logits"); !slices.Equal(info.Shape, []int{B, T, V}) {
		t.Errorf("logits shape %v, want [%d %d %d]", info.Shape, B, T, V)
	}
	loss, err := f.Float32("loss")
	if err != nil {
		t.Fatal(err)
	}
	if want := math.Log(V) + 0.02*0.02*D/2; math.Abs(float64(loss[0])-want) > 0.1 {
		t.Errorf("loss %.4f, want %.4f ± 0.1 for a fresh model", loss[0], want)
	}
	g, err := f.Float32("grad.model.embed_tokens.weight")
	if err != nil {
		t.Fatal(err)
	}
	if len(g) != V*D || slices.ContainsFunc(g, func(v float32) bool { return math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) }) {
		t.Errorf("embedding gradient: %d values (want %d), or not all finite", len(g), V*D)
	}
}
