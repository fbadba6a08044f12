package train

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/gwen-ml/gwen/data/synth"
	"github.com/gwen-ml/gwen/internal/testenv"
)

// saveBase writes a small random model to dir and returns it.
func saveBase(t *testing.T, dir string) string {
	t.Helper()
	m := tinyModel(t, 1, 0.05)
	if err := m.Save(dir, "F32", 0); err != nil {
		t.Fatal(err)
	}
	return dir
}

// withBase rewrites a recipe from recipe() to start from the model folder base.
func withBase(t *testing.T, p, base string) {
	t.Helper()
	src, _ := os.ReadFile(p)
	from := []byte("  init:\n    config: " + tinyConfig())
	if !bytes.Contains(src, from) {
		t.Fatalf("%s does not start from model.init", p)
	}
	os.WriteFile(p, bytes.Replace(src, from, []byte("  path: "+base), 1), 0o644)
}

// Offline DPO with LoRA: at the first step the policy is the reference (B = 0), so the sigmoid
// loss is exactly ln 2 and the rewards are zero; training then moves them.
func TestOfflineDPOWithLoRA(t *testing.T) {
	dir := t.TempDir()
	base := saveBase(t, filepath.Join(dir, "base"))
	out := filepath.Join(dir, "dpo")
	p := recipe(t, out, "lora:\n  r: 4\n  alpha: 8\ndpo:\n  beta: 0.1\n")
	withBase(t, p, base)
	src, _ := os.ReadFile(p)
	src = bytes.Replace(src, []byte("math_prompts.parquet\n      format: text\n      column: problem"), []byte("dpo_pairs.parquet\n      format: preference"), 1)
	src = bytes.Replace(src, []byte("seq_len: 64"), []byte("seq_len: 256\n  truncate: true"), 1)
	os.WriteFile(p, src, 0o644)
	if _, err := runRecipe(t, p, false); err != nil {
		t.Fatal(err)
	}
	m := readMetrics(t, out)
	first := m[1].Values
	if math.Abs(first["loss"]-math.Ln2) > 1e-6 || first["dpo/chosen_reward"] != 0 || first["dpo/rejected_reward"] != 0 {
		t.Errorf("step 1: %v (want loss ln 2 = %v and zero rewards)", first, math.Ln2)
	}
	for _, k := range []string{"dpo/reward_accuracy", "dpo/margin", "dpo/policy_chosen_logp", "dpo/reference_chosen_logp", "grad_norm", "lr"} {
		if _, ok := m[6].Values[k]; !ok {
			t.Errorf("step 6 has no %s: %v", k, m[6].Values)
		}
	}
	if m[6].Values["loss"] == first["loss"] {
		t.Error("the loss did not move")
	}
}

// Online DPO: rounds of sampled pairs train full fine-tuning against a frozen copy; the
// held-out reward is measured before and after; a run killed mid-round resumes bit for bit
// (the round's pairs are in the checkpoint).
func TestOnlineDPOResumesBitExact(t *testing.T) {
	dir := t.TempDir()
	base := saveBase(t, filepath.Join(dir, "base"))
	var rows []synth.Row
	for i := range 12 {
		a := strconv.Itoa(i % 10)
		rows = append(rows, synth.Row{Prompt: "Say " + a + ".", Answer: a, Text: "Say " + a + ". " + a,
			Messages: []synth.Message{{Role: "user", Content: "Say " + a}, {Role: "assistant", Content: a}}})
	}
	prompts := filepath.Join(dir, "prompts.parquet")
	if err := synth.WriteParquet(prompts, rows, synth.AllColumns); err != nil {
		t.Fatal(err)
	}
	online := "dpo:\n  online:\n    prompts:\n      path: " + prompts + "\n      column: prompt\n    k: 4\n    temperature: 1.5\n    max_new_tokens: 12\n    prompts_per_round: 6\n    held_out: 2\n    rules: answer\n"
	mk := func(out string) string {
		p := recipe(t, out, online)
		withBase(t, p, base)
		src, _ := os.ReadFile(p)
		src = bytes.Replace(src, []byte("  train:\n    - path: "+filepath.Join(testenv.RepoRoot(), "data", "testdata", "parquet", "math_prompts.parquet")+"\n      format: text\n      column: problem\n"), nil, 1)
		src = bytes.Replace(src, []byte("seq_len: 64"), []byte("seq_len: 96"), 1)
		os.WriteFile(p, src, 0o644)
		return p
	}
	straight := filepath.Join(dir, "straight")
	if _, err := runRecipe(t, mk(straight), false); err != nil {
		t.Fatal(err)
	}
	rs := readMetrics(t, straight)
	if _, ok := rs[1].Values["dpo/sample_reward"]; !ok {
		t.Errorf("step 1 sampled no round: %v", rs[1].Values)
	}
	evals := 0
	all, _ := readAll(t, straight)
	for _, r := range all {
		if _, ok := r.Values["heldout_reward"]; ok && r.Eval {
			evals++
		}
	}
	if evals != 2 {
		t.Errorf("%d held-out reward records, want 2 (before and after)", evals)
	}
	killed := filepath.Join(dir, "killed")
	p := mk(killed)
	killAt(t, p, killed, "step", 5)
	if _, err := runRecipe(t, p, true); err != nil {
		t.Fatal(err)
	}
	sameRun(t, straight, killed)
}

// SFT with LoRA, then online DPO continuing the adapters: the DPO reference is the model as SFT
// left it (base + adapters merged), so at the DPO stage's first step the policy equals the
// reference and the sigmoid loss is ln 2 (up to merged-versus-unmerged rounding); with the
// adapters merely disabled it would be the base's, and the loss would not be ln 2.
func TestDPOAfterSFTUsesTheSFTModelAsReference(t *testing.T) {
	dir := t.TempDir()
	base := saveBase(t, filepath.Join(dir, "base"))
	var rows []synth.Row
	for i := range 12 {
		a := strconv.Itoa(i % 10)
		rows = append(rows, synth.Row{Prompt: "Say " + a + ".", Answer: a, Text: "Say " + a + ". " + a,
			Messages: []synth.Message{{Role: "user", Content: "Say " + a}, {Role: "assistant", Content: "<think>\nIt is " + a + ".\n</think>\n\n" + a}}})
	}
	prompts := filepath.Join(dir, "prompts.parquet")
	if err := synth.WriteParquet(prompts, rows, synth.AllColumns); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	p := recipe(t, out, `lora:
  r: 4
  alpha: 8
stages:
  - name: sft
    data:
      train:
        - {path: `+prompts+`, format: chat, column: messages}
    train: {max_steps: 4}
    optim: {lr: 0.05}
  - name: dpo
    data:
      train: []
    train: {max_steps: 2}
    dpo:
      online:
        prompts: {path: `+prompts+`, column: prompt}
        k: 4
        temperature: 1.5
        max_new_tokens: 12
        prompts_per_round: 6
        rules: answer
`)
	withBase(t, p, base)
	src, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.Replace(src, []byte("seq_len: 64"), []byte("seq_len: 96"), 1), 0o644)
	if _, err := runRecipe(t, p, false); err != nil {
		t.Fatal(err)
	}
	m := readMetrics(t, out)
	if m[4].Stage != "sft" || m[5].Stage != "dpo" {
		t.Fatalf("stages: %v %v", m[4], m[5])
	}
	if l := m[5].Values["loss"]; math.Abs(l-math.Ln2) > 1e-4 {
		t.Errorf("first DPO step: loss %v, want ln 2 = %v (the reference is not the SFT model)", l, math.Ln2)
	}
}
