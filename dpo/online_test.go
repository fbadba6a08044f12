package dpo_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/data"
	"github.com/gwen-ml/gwen/data/chat"
	"github.com/gwen-ml/gwen/data/tokenizer"
	"github.com/gwen-ml/gwen/dpo"
	"github.com/gwen-ml/gwen/internal/testenv"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/optim"
)

// tinyTokenizer is the Qwen3 tokenizer's normalizer, pre-tokenizer and decoder over a
// vocabulary that fits tiny-dense's 512 ids: the 256 byte tokens (no merges) and the chat
// template's tokens, <|endoftext|> 256 (pad), <|im_start|> 257, <|im_end|> 258 (eos),
// <think> 259, </think> 260.
func tinyTokenizer(t *testing.T) *tokenizer.Tokenizer {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.Tokenizer(), "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	vocab := map[string]int{}
	for id := range 256 {
		vocab[string(byteLevel(byte(id)))] = id
	}
	model := doc["model"].(map[string]any)
	model["vocab"], model["merges"] = vocab, []any{}
	var added []any
	for i, s := range []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"} {
		added = append(added, map[string]any{"id": 256 + i, "content": s, "special": i < 3})
	}
	doc["added_tokens"] = added
	dir := t.TempDir()
	b, _ := json.Marshal(doc)
	cfg := `{"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}`
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// byteLevel is GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the
// others for 256, 257, … in byte order.
func byteLevel(b byte) rune {
	printable := func(c int) bool { return c >= '!' && c <= '~' || c >= 0xA1 && c <= 0xAC || c >= 0xAE && c <= 0xFF }
	if printable(int(b)) {
		return rune(b)
	}
	n := 0
	for c := 0; c < int(b); c++ {
		if !printable(c) {
			n++
		}
	}
	return rune(256 + n)
}

type scored struct {
	completion, answer string
	score              float64
}

// recorder scores a completion by its length in bytes mod 3 (so ties happen), or 1 for the
// answer "tie", and records every call in order.
func recorder(calls *[]scored) func(c, a string) float64 {
	return func(c, a string) float64 {
		s := float64(len(c) % 3)
		if a == "tie" {
			s = 1
		}
		*calls = append(*calls, scored{c, a, s})
		return s
	}
}

func onlinePrompts() []dpo.Prompt {
	return []dpo.Prompt{
		{Text: "What is 2+2?", Answer: "4"},
		{Text: "Say hi.", Answer: "tie"},
		{Messages: []data.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Name a colour."}}, Answer: "red"},
		{Text: "Count to three.", Answer: "1 2 3"},
	}
}

// Pairs are the best against the worst completion of each prompt by the given scores (the
// first of equals), ties give none, the mean reward is over every sample, and the same seed
// gives the same samples while another seed gives others.
func TestSamplePairs(t *testing.T) {
	m := loadBase(t)
	tok := tinyTokenizer(t)
	prompts := onlinePrompts()
	const k = 5
	var calls []scored
	pairs, mean, err := dpo.SamplePairs(m, tok, prompts, k, 1.0, 12, 42, recorder(&calls))
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != k*len(prompts) {
		t.Fatalf("%d scored samples, want %d", len(calls), k*len(prompts))
	}
	total, want := 0.0, 0
	for i, p := range prompts {
		c := calls[i*k : (i+1)*k]
		best, worst := 0, 0
		for j := range c {
			if c[j].answer != p.Answer {
				t.Fatalf("prompt %d sample %d scored against %q, want %q", i, j, c[j].answer, p.Answer)
			}
			total += c[j].score
			if c[j].score > c[best].score {
				best = j
			}
			if c[j].score < c[worst].score {
				worst = j
			}
		}
		if c[best].score != c[worst].score {
			want++
		}
		if p.Answer == "tie" && c[best].score != c[worst].score {
			t.Fatal("the tie prompt did not tie")
		}
	}
	if math.Abs(mean-total/float64(len(calls))) > 1e-12 {
		t.Errorf("mean reward %v, want %v", mean, total/float64(len(calls)))
	}
	if len(pairs) != want || want < 2 {
		t.Fatalf("%d pairs, want %d (and at least 2 for this test to mean something)", len(pairs), want)
	}
	// Match each pair to its prompt's samples: the chosen text is the first best sample's,
	// the rejected text the first worst sample's.
	w := 0
	for i := range prompts {
		c := calls[i*k : (i+1)*k]
		best, worst := 0, 0
		for j := range c {
			if c[j].score > c[best].score {
				best = j
			}
			if c[j].score < c[worst].score {
				worst = j
			}
		}
		if c[best].score == c[worst].score {
			continue
		}
		p := pairs[w]
		w++
		text := func(ids []int32) string {
			if n := len(ids); n > 0 && slices.Contains([]int32{256, 258}, ids[n-1]) {
				ids = ids[:n-1]
			}
			return tok.Decode(ids, false)
		}
		if text(p.Chosen) != c[best].completion || text(p.Rejected) != c[worst].completion {
			t.Errorf("prompt %d: pair (%q, %q), want best %q and worst %q", i, text(p.Chosen), text(p.Rejected), c[best].completion, c[worst].completion)
		}
		if p.ChosenScore != c[best].score || p.RejectedScore != c[worst].score || !(p.ChosenScore > p.RejectedScore) {
			t.Errorf("prompt %d: scores %v > %v, want %v > %v", i, p.ChosenScore, p.RejectedScore, c[best].score, c[worst].score)
		}
		prompt := tok.Decode(p.Prompt, false)
		user := prompts[i].Text
		if user == "" {
			user = prompts[i].Messages[len(prompts[i].Messages)-1].Content
		}
		if !strings.Contains(prompt, "<|im_start|>user\n"+user+"<|im_end|>\n<|im_start|>assistant\n") || strings.Contains(prompt, "<think>") {
			t.Errorf("prompt %d: %q is not a thinking-mode generation prompt", i, prompt)
		}
		if len(p.Chosen) == 0 || len(p.Chosen) > 12 || len(p.Rejected) == 0 || len(p.Rejected) > 12 {
			t.Errorf("prompt %d: responses of %d and %d tokens, want 1..12", i, len(p.Chosen), len(p.Rejected))
		}
	}
	t.Logf("%d pairs from %d prompts, mean reward %.3f; first: %q ≻ %q", len(pairs), len(prompts), mean, tok.Decode(pairs[0].Chosen, false), tok.Decode(pairs[0].Rejected, false))

	var again []scored
	pairs2, _, err := dpo.SamplePairs(m, tok, prompts, k, 1.0, 12, 42, recorder(&again))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pairs, pairs2) || !reflect.DeepEqual(calls, again) {
		t.Error("the same seed sampled differently")
	}
	var other []scored
	if _, _, err := dpo.SamplePairs(m, tok, prompts, k, 1.0, 12, 43, recorder(&other)); err != nil {
		t.Fatal(err)
	}
	same := 0
	for i := range other {
		if other[i].completion == calls[i].completion {
			same++
		}
	}
	if same > len(calls)/4 {
		t.Errorf("seed 43 repeated %d of %d samples of seed 42", same, len(calls))
	}
	if _, _, err := dpo.SamplePairs(m, tok, prompts, 1, 1.0, 12, 42, recorder(&other)); err == nil {
		t.Error("k = 1 was accepted")
	}
}

// PairBatches lays pairs out as data's preference batches (chosen in row i, rejected in row
// P+i, responses marked), cuts long rows, drops pairs left without a response, and the
// Objective trains on them.
func TestPairBatches(t *testing.T) {
	pairs := []dpo.Pair{
		{Prompt: []int32{1, 2, 3}, Chosen: []int32{4, 5}, Rejected: []int32{6, 7, 8, 9}},
		{Prompt: []int32{10, 11}, Chosen: []int32{12}, Rejected: []int32{13, 14, 15}},
		{Prompt: []int32{20, 21, 22, 23, 24, 25}, Chosen: []int32{26}, Rejected: []int32{27}}, // no response fits in 6
	}
	bs, dropped, err := dpo.PairBatches(pairs, 2, 6, 99)
	if err != nil {
		t.Fatal(err)
	}
	if dropped != 1 || len(bs) != 1 {
		t.Fatalf("%d batches, %d dropped; want 1 and 1", len(bs), dropped)
	}
	b := bs[0]
	if b.Pairs != 2 || b.B != 4 || b.T != 6 {
		t.Fatalf("batch of %d pairs, %d×%d", b.Pairs, b.B, b.T)
	}
	wantIDs := []int32{1, 2, 3, 4, 5, 99, 10, 11, 12, 99, 99, 99, 1, 2, 3, 6, 7, 8, 10, 11, 13, 14, 15, 99}
	wantResp := []int{0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0}
	for i := range wantIDs {
		if b.IDs[i] != wantIDs[i] || b.Response[i] != (wantResp[i] == 1) {
			t.Fatalf("row %d col %d: id %d response %v; want %d %v", i/6, i%6, b.IDs[i], b.Response[i], wantIDs[i], wantResp[i] == 1)
		}
	}
	bs, _, err = dpo.PairBatches(pairs[:2], 1, 0, 99)
	if err != nil || len(bs) != 2 || bs[0].T != 7 || bs[1].Pairs != 1 {
		t.Fatalf("one pair per batch at the longest row: %v, %d batches", err, len(bs))
	}

	m, set := loraPolicy(t)
	met, err := dpo.NewObjective(m, set, nil, dpo.Config{}).Step(autograd.NewTape(), bs[0], 1)
	if err != nil {
		t.Fatal(err)
	}
	if math.IsNaN(met["loss"]) || met["dpo/pairs"] != 1 {
		t.Errorf("metrics %v", met)
	}
	nonzero := false
	for _, p := range set.Params() {
		for _, g := range p.Grad() {
			nonzero = nonzero || g != 0
		}
	}
	if !nonzero {
		t.Error("no gradient reached the adapters")
	}
}

// letters scores a completion by its count of ASCII letters.
func letters(c, _ string) float64 {
	n := 0
	for _, r := range c {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			n++
		}
	}
	return float64(n)
}

// letterFirst scores 1 a completion that starts with an ASCII letter, else 0.
func letterFirst(c, _ string) float64 { return min(1, letters(c[:min(1, len(c))], "")) }

// The building blocks make online DPO: rounds of sampling, pairing by a rule (the reply starts
// with a letter), batching and Objective steps raise the rule's expected reward on held-out
// prompts. Full fine-tuning against a frozen copy: tiny-dense's frozen final norm and tied
// embeddings bound any logit to about ‖h‖·‖e‖ ≈ 1.3, too little for a LoRA adapter to move
// the probability of a letter much (it plateaus near 0.11 from 0.10).
func TestOnlineDPORaisesReward(t *testing.T) {
	m := loadBase(t)
	tok := tinyTokenizer(t)
	ref := loadBase(t) // the frozen reference copy
	for _, p := range ref.Params() {
		p.RequiresGrad = false
	}
	var train []dpo.Prompt
	for i := range 16 {
		train = append(train, dpo.Prompt{Text: fmt.Sprintf("Prompt number %d.", i)})
	}
	var heldOut []dpo.Prompt
	for i := range 8 {
		heldOut = append(heldOut, dpo.Prompt{Text: fmt.Sprintf("Held-out prompt %d?", i)})
	}
	const k, maxNew = 8, 8
	// The expected reward on the held-out prompts, without sampling noise: the probability
	// that the reply's first token is a letter.
	isLetter := make([]bool, m.Config.VocabSize)
	for id := range isLetter {
		isLetter[id] = letterFirst(tok.Decode([]int32{int32(id)}, false), "") == 1
	}
	on := true
	measure := func() float64 {
		p := 0.0
		for _, q := range heldOut {
			ids, _, err := chat.Encode(tok, []chat.Message{{Role: "user", Content: q.Text}}, chat.Options{AddGenerationPrompt: true, EnableThinking: &on})
			if err != nil {
				t.Fatal(err)
			}
			logits := m.Forward(nil, layers.Input{IDs: ids, B: 1, T: len(ids), KeepLogits: 1}).Logits.Data
			mx := float64(slices.Max(logits))
			z, l := 0.0, 0.0
			for id, x := range logits {
				e := math.Exp(float64(x) - mx)
				z += e
				if isLetter[id] {
					l += e
				}
			}
			p += l / z / float64(len(heldOut))
		}
		return p
	}
	before := measure()
	obj := dpo.NewObjective(m, nil, ref, dpo.Config{Beta: 0.1})
	opt := optim.NewAdamW(0.9, 0.95, 1e-8, 0)
	tp := autograd.NewTape()
	pad, _ := tok.TokenID("<|endoftext|>")
	for round := range 12 {
		pairs, mr, err := dpo.SamplePairs(m, tok, train, k, 1.0, maxNew, uint64(round), letterFirst)
		if err != nil {
			t.Fatal(err)
		}
		bs, _, err := dpo.PairBatches(pairs, len(train), 0, pad)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			optim.ZeroGrad(m.Params())
			met, err := obj.Step(tp, b, 1)
			if err != nil {
				t.Fatal(err)
			}
			if round%5 == 0 {
				t.Logf("round %d: mean reward %.3f, %d pairs, loss %.4f, margin %.4f", round, mr, len(pairs), met["loss"], met["dpo/margin"])
			}
			opt.Update(m.Params(), 2e-2)
		}
	}
	after := measure()
	t.Logf("probability that a held-out reply starts with a letter: %.3f before, %.3f after", before, after)
	if !(after > 2*before) {
		t.Errorf("online DPO did not raise the reward: %.3f before, %.3f after", before, after)
	}
}
