package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/internal/golden"
	"github.com/gwen-ml/gwen/internal/testenv"
	"github.com/gwen-ml/gwen/layers/safetensors"
	"github.com/parquet-go/parquet-go"
)

// writePairs writes prompt_ids, chosen_ids and rejected_ids ([pairs, length] I64) to a file.
func writePairs(t *testing.T, path string, prompt, chosen, rejected [][]int64) string {
	t.Helper()
	var ts []safetensors.Tensor
	for _, c := range []struct {
		name string
		rows [][]int64
	}{{"prompt_ids", prompt}, {"chosen_ids", chosen}, {"rejected_ids", rejected}} {
		var flat []int64
		for _, r := range c.rows {
			flat = append(flat, r...)
		}
		ts = append(ts, safetensors.Tensor{Name: c.name, DType: "I64", Shape: []int{len(c.rows), len(c.rows[0])}, I64: flat})
	}
	if err := safetensors.Write(path, ts, nil); err != nil {
		t.Fatal(err)
	}
	return path
}

// goldenPairsFile writes the golden's dpo.prompt_ids, dpo.chosen_ids, dpo.rejected_ids.
func goldenPairsFile(t *testing.T, g *golden.Case) string {
	t.Helper()
	rows := func(name string) [][]int64 {
		sh := g.Shape(name)
		v, err := g.Tensors.Int64(name)
		if err != nil {
			t.Fatal(err)
		}
		var out [][]int64
		for i := range sh[0] {
			out = append(out, v[i*sh[1]:(i+1)*sh[1]])
		}
		return out
	}
	return writePairs(t, filepath.Join(t.TempDir(), "pairs.safetensors"), rows("dpo.prompt_ids"), rows("dpo.chosen_ids"), rows("dpo.rejected_ids"))
}

// dpoEval runs gwen dpo eval and decodes the last line of stdout.
func dpoEval(t *testing.T, args ...string) dpoEvalJSON {
	t.Helper()
	out := runGwen(t, append([]string{"dpo", "eval"}, args...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var res dpoEvalJSON
	dec := json.NewDecoder(strings.NewReader(lines[len(lines)-1]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	return res
}

// gwen dpo eval on the golden DPO case: per-pair log-probs and rewards, the sigmoid and IPO
// losses and the reward accuracy at the golden README's tolerances.
func TestDPOEvalMatchesGolden(t *testing.T) {
	g, err := golden.Open("tiny-dense/lora")
	if err != nil {
		t.Fatal(err)
	}
	pairs := goldenPairsFile(t, g)
	base := []string{"--model", golden.Dir("tiny-dense"), "--adapter", golden.Dir("tiny-dense/lora"), "--data", pairs}
	res := dpoEval(t, base...)
	if len(res.Pairs) != 2 {
		t.Fatalf("%d pairs, want 2", len(res.Pairs))
	}
	check := func(what string, got, want, tol float64) {
		t.Helper()
		if !(math.Abs(got-want) <= tol) {
			t.Errorf("%s = %.9g, golden %.9g (|diff| %.3g > %.3g)", what, got, want, math.Abs(got-want), tol)
		}
	}
	worst := 0.0
	for i, p := range res.Pairs {
		for _, c := range []struct {
			name string
			got  float64
			tol  float64
		}{
			{"policy_chosen_logps", p.PolicyChosen, 1e-4}, {"policy_rejected_logps", p.PolicyRejected, 1e-4},
			{"reference_chosen_logps", p.ReferenceChosen, 1e-4}, {"reference_rejected_logps", p.ReferenceRejected, 1e-4},
			{"chosen_rewards", p.ChosenReward, 1e-5}, {"rejected_rewards", p.RejectedReward, 1e-5},
		} {
			want := float64(g.F32("dpo." + c.name)[i])
			check(c.name, c.got, want, c.tol)
			worst = max(worst, math.Abs(c.got-want))
		}
	}
	check("loss", res.Loss, g.Scalar("dpo_loss"), 1e-5)
	check("reward_accuracy", res.RewardAccuracy, g.Scalar("dpo_reward_accuracy"), 0)
	t.Logf("max |diff| of log-probs and rewards %.3g; loss %.9g, golden %.9g", worst, res.Loss, g.Scalar("dpo_loss"))

	// IPO's loss ≈ 25 is (h − 5)²: h's fp32 error counts 10-fold, hence 1e-5 relative.
	ipo := dpoEval(t, append(base, "--loss", "ipo")...)
	check("ipo loss", ipo.Loss, g.Scalar("ipo_loss"), 1e-5*g.Scalar("ipo_loss"))
	ipoN := dpoEval(t, append(base, "--loss", "ipo", "--length-normalize")...)
	check("ipo loss, length-normalised", ipoN.Loss, g.Scalar("ipo_loss_length_normalised_trl"), 1e-5*g.Scalar("ipo_loss"))

	// One pair per forward: the same numbers (pairs are padded to their batch's longest row).
	one := dpoEval(t, append(base, "--batch", "1")...)
	for i := range one.Pairs {
		a, b := one.Pairs[i], res.Pairs[i]
		check("policy_chosen_logp, batch 1", a.PolicyChosen, b.PolicyChosen, 1e-5)
		check("policy_rejected_logp, batch 1", a.PolicyRejected, b.PolicyRejected, 1e-5)
	}
}

// writeTinyTokenizer writes into dir the Qwen3 tokenizer's normalizer, pre-tokenizer and
// decoder over a vocabulary that fits tiny-dense: the 256 byte tokens (ids = bytes, no
// merges), <|endoftext|> 256 (pad), <|im_start|> 257, <|im_end|> 258 (eos).
func writeTinyTokenizer(t *testing.T, dir string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.Tokenizer(), "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	printable := func(c int) bool { return c >= '!' && c <= '~' || c >= 0xA1 && c <= 0xAC || c >= 0xAE && c <= 0xFF }
	vocab, n := map[string]int{}, 0
	for b := range 256 { // GPT-2's bytes_to_unicode
		r := rune(b)
		if !printable(b) {
			r = rune(256 + n)
			n++
		}
		vocab[string(r)] = b
	}
	model := doc["model"].(map[string]any)
	model["vocab"], model["merges"] = vocab, []any{}
	var added []any
	for i, s := range []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>"} {
		added = append(added, map[string]any{"id": 256 + i, "content": s, "special": true})
	}
	doc["added_tokens"] = added
	b, _ := json.Marshal(doc)
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := `{"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}`
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Parquet pairs (prompt, chosen, rejected strings) are tokenized as data's pipeline does:
// prompt bytes ++ response bytes ++ <|im_end|> with this byte-level tokenizer. Each pair's
// numbers equal those of the same ids given as a safetensors file, and a pair too long for
// --seq-len is dropped.
func TestDPOEvalParquet(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(golden.Dir("tiny-dense"), f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeTinyTokenizer(t, dir)
	type row struct {
		Prompt   string `parquet:"prompt"`
		Chosen   string `parquet:"chosen"`
		Rejected string `parquet:"rejected"`
	}
	rows := []row{{"What is 2+2? ", "4", "five"}, {"Name a colour: ", "red", "a number"}, {"Too long: " + strings.Repeat("x", 40), "y", "z"}}
	pq := filepath.Join(t.TempDir(), "pairs.parquet")
	f, err := os.Create(pq)
	if err != nil {
		t.Fatal(err)
	}
	if err := parquet.Write(f, rows); err != nil {
		t.Fatal(err)
	}
	f.Close()
	res := dpoEval(t, "--model", dir, "--adapter", golden.Dir("tiny-dense/lora"), "--data", pq, "--seq-len", "32")
	if len(res.Pairs) != 2 {
		t.Fatalf("%d pairs, want 2 (the third is longer than --seq-len)", len(res.Pairs))
	}
	ids := func(s string, eos bool) []int64 {
		var v []int64
		for _, b := range []byte(s) {
			v = append(v, int64(b))
		}
		if eos {
			v = append(v, 258)
		}
		return v
	}
	for i, r := range rows[:2] {
		p := writePairs(t, filepath.Join(t.TempDir(), "pair.safetensors"), [][]int64{ids(r.Prompt, false)}, [][]int64{ids(r.Chosen, true)}, [][]int64{ids(r.Rejected, true)})
		want := dpoEval(t, "--model", dir, "--adapter", golden.Dir("tiny-dense/lora"), "--data", p).Pairs[0]
		got := res.Pairs[i]
		for _, d := range [][2]float64{{got.PolicyChosen, want.PolicyChosen}, {got.PolicyRejected, want.PolicyRejected},
			{got.ReferenceChosen, want.ReferenceChosen}, {got.ReferenceRejected, want.ReferenceRejected}} {
			if math.Abs(d[0]-d[1]) > 1e-5 {
				t.Errorf("pair %d: Parquet %+v, safetensors %+v", i, got, want)
				break
			}
		}
		if got.ChosenReward == 0 {
			t.Errorf("pair %d: reward 0 with an adapter", i)
		}
	}
}

func TestDPOEvalErrors(t *testing.T) {
	g, err := golden.Open("tiny-dense/lora")
	if err != nil {
		t.Fatal(err)
	}
	pairs := goldenPairsFile(t, g)
	bad := writePairs(t, filepath.Join(t.TempDir(), "bad.safetensors"), [][]int64{{1, 2}}, [][]int64{{600}}, [][]int64{{3}})
	model := golden.Dir("tiny-dense")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"dpo"}, 2, "gwen dpo eval"},
		{[]string{"dpo", "eval", "--model", model}, 2, "--data"},
		{[]string{"dpo", "eval", "--model", model, "--data", pairs, "--loss", "kto"}, 2, `loss "kto"`},
		{[]string{"dpo", "eval", "--model", model, "--data", pairs, "--adapter", golden.Dir("tiny-dense/lora"), "--reference", model}, 2, "exclude"},
		{[]string{"dpo", "eval", "--model", model, "--data", bad}, 1, "outside the vocabulary"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(c.args, nil, &stdout, &stderr)
		if code != c.code || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %s", c.args, code, stderr.String(), c.code, c.want)
		}
	}
	// Without an adapter or a reference, the reference is the model itself: every reward is 0.
	res := dpoEval(t, "--model", model, "--data", pairs)
	for _, p := range res.Pairs {
		if p.ChosenReward != 0 || p.RejectedReward != 0 || p.PolicyChosen != p.ReferenceChosen {
			t.Errorf("self-reference pair %+v", p)
		}
	}
	if math.Abs(res.Loss-math.Log(2)) > 1e-12 {
		t.Errorf("self-reference loss %v, want log 2", res.Loss)
	}
}
