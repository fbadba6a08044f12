package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/data/chat"
	"github.com/gwen-ml/gwen/data/tokenizer"
	"github.com/gwen-ml/gwen/generate"
	"github.com/gwen-ml/gwen/internal/golden"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/lora"

	"github.com/gwen-ml/gwen/internal/testenv"
)

// gwen generate --prompt-ids prints the golden greedy continuation (independent PyTorch
// implementation), with and without a draft model.
func TestGenerateCommandPromptIDs(t *testing.T) {
	for _, name := range []string{"tiny-dense", "tiny-moe"} {
		g, err := golden.Open(name)
		if err != nil {
			t.Skipf("golden %s: %v", name, err)
		}
		prompt, want := g.I32("gen.prompt_ids"), g.I32("gen.output_ids")
		var ids []string
		for _, id := range prompt {
			ids = append(ids, jsonInt(id))
		}
		args := []string{"generate", "--model", golden.Dir(name), "--prompt-ids", strings.Join(ids, ","), "--max-new-tokens", "20", "--temperature", "0"}
		for _, extra := range [][]string{nil, {"--draft", golden.Dir(name), "--draft-tokens", "3"}} {
			var stdout, stderr bytes.Buffer
			if code := run(append(slices.Clone(args), extra...), nil, &stdout, &stderr); code != 0 {
				t.Fatalf("%s %v: exit %d: %s", name, extra, code, stderr.String())
			}
			var out struct {
				NewIDs []int32 `json:"new_ids"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
				t.Fatalf("%s: output %q: %v", name, stdout.String(), err)
			}
			if !slices.Equal(out.NewIDs, want[len(prompt):]) {
				t.Errorf("%s %v: new_ids %v, want %v", name, extra, out.NewIDs, want[len(prompt):])
			}
			if extra != nil && !strings.Contains(stderr.String(), "acceptance 1.00") {
				t.Errorf("%s: the model as its own draft: %q", name, stderr.String())
			}
		}
	}
}

// gwen generate --adapter folds a PEFT adapter into the model (lora's own test checks the
// merge against the reference): its greedy continuation is that of the merged model, and not
// the base model's. The golden adapter is too small to change a greedy pick, so this one is
// the golden adapter with lora_alpha 8 raised to 4000.
func TestGenerateCommandAdapter(t *testing.T) {
	g, err := golden.Open("tiny-dense")
	if err != nil {
		t.Fatal(err)
	}
	src, dir := golden.Dir("tiny-dense/lora"), t.TempDir()
	for _, f := range []string{"adapter_config.json", "adapter_model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "adapter_config.json" {
			b = []byte(strings.Replace(string(b), `"lora_alpha": 8,`, `"lora_alpha": 4000,`, 1))
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	prompt, baseOut := g.I32("gen.prompt_ids"), g.I32("gen.output_ids")
	const n = 6
	m, err := layers.Load(golden.Dir("tiny-dense"))
	if err != nil {
		t.Fatal(err)
	}
	if err := lora.MergeDir(m, dir); err != nil {
		t.Fatal(err)
	}
	res, err := generate.Generate(m, [][]int32{prompt}, generate.Options{MaxNewTokens: n})
	if err != nil {
		t.Fatal(err)
	}
	want := res[0].IDs
	if slices.Equal(want, baseOut[len(prompt):len(prompt)+n]) {
		t.Fatal("fixture: the scaled adapter does not change the greedy continuation")
	}
	var ids []string
	for _, id := range prompt {
		ids = append(ids, jsonInt(id))
	}
	args := []string{"generate", "--model", golden.Dir("tiny-dense"), "--adapter", dir,
		"--prompt-ids", strings.Join(ids, ","), "--max-new-tokens", jsonInt(n), "--temperature", "0"}
	var stdout, stderr bytes.Buffer
	if code := run(args, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var out struct {
		NewIDs []int32 `json:"new_ids"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || !slices.Equal(out.NewIDs, want) {
		t.Fatalf("output %q (%v), want new_ids %v (the base model gives %v)", stdout.String(), err, want, baseOut[len(prompt):len(prompt)+n])
	}
}

func jsonInt(v int32) string { b, _ := json.Marshal(v); return string(b) }

func TestGenerateCommandRefusals(t *testing.T) {
	dir := golden.Dir("tiny-dense")
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"generate", "--model", dir, "--adapter", "no-such-dir", "--prompt-ids", "1"}, 1, "no-such-dir/adapter_config.json"},
		{[]string{"generate", "--model", golden.Dir("tiny-moe"), "--adapter", golden.Dir("tiny-dense/lora"), "--prompt-ids", "1"}, 1, "lora_A.weight"},
		{[]string{"generate", "--model", dir}, 2, "prompt"},
		{[]string{"generate", "--model", dir, "--prompt-ids", "1,x"}, 2, "not a token id"},
		{[]string{"generate", "--model", dir, "--think", "--no-think", "--prompt-ids", "1"}, 2, "exclude"},
		{[]string{"generate", "--model", dir, "--prompt-ids", "600"}, 1, "outside the vocabulary"},
		{[]string{"generate", "--model", dir, "hello"}, 1, "tokenizer"}, // the golden folder has none
	} {
		var stdout, stderr bytes.Buffer
		code := run(c.args, nil, &stdout, &stderr)
		if code != c.code || !strings.Contains(stderr.String(), c.msg) {
			t.Errorf("%v: exit %d (%q), want %d mentioning %q", c.args, code, stderr.String(), c.code, c.msg)
		}
	}
}

// Text mode and chat: a random model over the real Qwen3 vocabulary. The streamed text must be
// the decoded greedy continuation of the template-rendered prompt (enable_thinking=false
// under --no-think), and chat's second turn must see the first reply.
func TestGenerateAndChatText(t *testing.T) {
	tokDir := testenv.Tokenizer()
	tok, err := tokenizer.Load(tokDir)
	if err != nil {
		t.Skipf("tokenizer: %v", err)
	}
	cfg := layers.Config{ModelType: "qwen3", VocabSize: 151936, HiddenSize: 16, IntermediateSize: 32,
		NumHiddenLayers: 1, NumAttentionHeads: 2, NumKeyValueHeads: 1, HeadDim: 8,
		TieWordEmbeddings: true, RopeTheta: 1e6, MaxPositionEmbeddings: 512, RMSNormEps: 1e-6}
	m, err := layers.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.InitRandom(3, 0.5)
	dir := t.TempDir()
	if err := m.Save(dir, "F32", 0); err != nil {
		t.Fatal(err)
	}
	imEnd, _ := tok.TokenID("<|im_end|>")
	expect := func(msgs []chat.Message, enable *bool) string {
		ids, _, err := chat.Encode(tok, msgs, chat.Options{AddGenerationPrompt: true, EnableThinking: enable})
		if err != nil {
			t.Fatal(err)
		}
		res, err := generate.Generate(m, [][]int32{ids}, generate.Options{MaxNewTokens: 6, StopIDs: []int32{imEnd, tok.EOS()}})
		if err != nil {
			t.Fatal(err)
		}
		return tok.Decode(res[0].IDs, true)
	}
	off := false
	var stdout, stderr bytes.Buffer
	args := []string{"--model", dir, "--tokenizer", tokDir, "--temperature", "0", "--max-new-tokens", "6"}
	if code := run(append([]string{"generate", "--no-think", "Hello there"}, args...), nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want := expect([]chat.Message{{Role: "user", Content: "Hello there"}}, &off)
	if strings.TrimSpace(want) == "" {
		t.Fatal("the random model's continuation is empty: the test would see nothing")
	}
	if stdout.String() != want+"\n" {
		t.Errorf("generate printed %q, want %q", stdout.String(), want+"\n")
	}
	// Without --no-think the template leaves the think block to the model: another prompt.
	if thinking := expect([]chat.Message{{Role: "user", Content: "Hello there"}}, nil); thinking == want {
		t.Logf("note: thinking and non-thinking prompts gave the same continuation %q", want)
	}

	stdout.Reset()
	if code := run(append([]string{"chat", "--no-think"}, args...), strings.NewReader("Hi\n\nWhat now? /no_think\n"), &stdout, &stderr); code != 0 {
		t.Fatalf("chat exit %d: %s", code, stderr.String())
	}
	first := expect([]chat.Message{{Role: "user", Content: "Hi"}}, &off)
	second := expect([]chat.Message{{Role: "user", Content: "Hi"}, {Role: "assistant", Content: first},
		{Role: "user", Content: "What now? /no_think"}}, &off)
	if stdout.String() != first+"\n"+second+"\n" {
		t.Errorf("chat printed %q, want %q", stdout.String(), first+"\n"+second+"\n")
	}
}
