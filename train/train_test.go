package train

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwen-ml/gwen/dist"
	"github.com/gwen-ml/gwen/internal/testenv"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/layers/safetensors"
	"github.com/gwen-ml/gwen/metrics"
	"github.com/gwen-ml/gwen/recipes"
)

// A child process of the test binary trains a recipe and blocks for ever at one event, so that
// the parent can kill -9 it at an exact point.
func TestMain(m *testing.M) {
	if recipe := os.Getenv("GWEN_TRAIN_CHILD"); recipe != "" {
		event, at, _ := strings.Cut(os.Getenv("GWEN_TRAIN_BLOCK"), ":")
		step, _ := strconv.Atoi(at)
		testHook = func(e string, s int) {
			if e == event && s == step {
				os.WriteFile(os.Getenv("GWEN_TRAIN_MARK"), nil, 0o644)
				select {}
			}
		}
		plan, err := recipes.Load(recipe, nil)
		comm, cerr := dist.Open() // under mpirun: one rank of several
		if err == nil {
			err = cerr
		}
		if err == nil {
			_, err = Run(context.Background(), plan, Options{Comm: comm, Resume: os.Getenv("GWEN_TRAIN_RESUME") != ""})
			comm.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "child failed:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// byteTokenizer is a Qwen3 tokenizer cut down to its 256 byte tokens and special tokens, so
// that test models can have a vocabulary of 384 and train in milliseconds.
func byteTokenizer() string { return filepath.Join(testenv.RepoRoot(), "testdata", "byte-tokenizer") }

// tinyConfig is the test model's config.json: 2 layers, hidden 32, vocabulary 384.
func tinyConfig() string { return filepath.Join(testenv.RepoRoot(), "train", "testdata", "tiny.json") }

// tinyModel is the test model with seeded random weights (2-D ~ N(0, std²)).
func tinyModel(t *testing.T, seed uint64, std float64) *layers.Model {
	t.Helper()
	cfg, err := layers.LoadConfig(tinyConfig())
	if err != nil {
		t.Fatal(err)
	}
	m, err := layers.New(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.InitRandom(seed, std)
	return m
}

// recipe writes a small pretraining recipe over bundled files and returns its path.
func recipe(t *testing.T, out string, extra string) string {
	t.Helper()
	root := testenv.RepoRoot()
	src := `name: t
model:
  init:
    config: ` + tinyConfig() + `
tokenizer: ` + byteTokenizer() + `
data:
  train:
    - path: ` + filepath.Join(root, "data", "testdata", "parquet", "math_prompts.parquet") + `
      format: text
      column: problem
  seq_len: 64
optim:
  lr: 0.003
  schedule:
    warmup_steps: 2
train:
  batch_size: 2
  max_steps: 6
  seed: 7
  checkpoint_every: 3
  keep_checkpoints: 2
out_dir: ` + out + "\n" + extra
	p := filepath.Join(t.TempDir(), "r.yaml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runRecipe(t *testing.T, path string, resume bool, overrides ...string) (Result, error) {
	t.Helper()
	plan, err := recipes.Load(path, overrides)
	if err != nil {
		t.Fatal(err)
	}
	return Run(context.Background(), plan, Options{Resume: resume})
}

func readMetrics(t *testing.T, out string) map[int]metrics.Record {
	t.Helper()
	rs, err := metrics.ReadJSONL(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[int]metrics.Record{}
	for _, r := range rs {
		if !r.Eval {
			if _, dup := m[r.Step]; dup {
				t.Errorf("%s: step %d logged twice", out, r.Step)
			}
			m[r.Step] = r
		}
	}
	return m
}

// sameRun asserts that two runs logged the same steps with bit-identical losses and gradient
// norms, and that their final checkpoints hold byte-identical weights.
func sameRun(t *testing.T, a, b string) {
	t.Helper()
	ma, mb := readMetrics(t, a), readMetrics(t, b)
	if len(ma) == 0 || len(ma) != len(mb) {
		t.Fatalf("%d steps vs %d", len(ma), len(mb))
	}
	for s, ra := range ma {
		rb := mb[s]
		for _, k := range []string{"loss", "grad_norm", "lr", "tokens"} {
			if ra.Values[k] != rb.Values[k] {
				t.Errorf("step %d %s: %v vs %v", s, k, ra.Values[k], rb.Values[k])
			}
		}
	}
	ca, _ := checkpoints(filepath.Join(a, "checkpoints"))
	cb, _ := checkpoints(filepath.Join(b, "checkpoints"))
	wa, _ := os.ReadFile(filepath.Join(ca[len(ca)-1].Dir, "model.safetensors"))
	wb, _ := os.ReadFile(filepath.Join(cb[len(cb)-1].Dir, "model.safetensors"))
	if len(wa) == 0 || !bytes.Equal(wa, wb) {
		t.Errorf("final weights differ (%d and %d bytes)", len(wa), len(wb))
	}
}

// killAt runs the recipe in a child process, kills it with SIGKILL when it reaches the event,
// and returns once it is dead.
func killAt(t *testing.T, path, out, event string, step int) {
	t.Helper()
	mark := filepath.Join(t.TempDir(), "blocked")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GWEN_TRAIN_CHILD="+path, fmt.Sprintf("GWEN_TRAIN_BLOCK=%s:%d", event, step), "GWEN_TRAIN_MARK="+mark)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(mark); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the child never reached %s %d: %s", event, step, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v %s", err, stderr.String())
	}
}

func TestResumeAfterKillIsBitExact(t *testing.T) {
	dir := t.TempDir()
	straight := filepath.Join(dir, "straight")
	if _, err := runRecipe(t, recipe(t, straight, ""), false); err != nil {
		t.Fatal(err)
	}

	// Killed between steps (after the checkpoint at 3), then resumed.
	killed := filepath.Join(dir, "killed")
	p := recipe(t, killed, "")
	killAt(t, p, killed, "step", 4)
	if cks, _ := checkpoints(filepath.Join(killed, "checkpoints")); len(cks) != 1 || cks[0].State.Step != 3 {
		t.Fatalf("after the kill: %+v", cks)
	}
	if got := readMetrics(t, killed); len(got) != 4 {
		t.Fatalf("the killed run logged %d steps, want 4", len(got))
	}
	if _, err := runRecipe(t, p, true); err != nil {
		t.Fatal(err)
	}
	sameRun(t, straight, killed)

	// Killed in the middle of writing the checkpoint of step 6: the half folder is a
	// temporary, step 3 stays the newest complete checkpoint, and the resumed run redoes 4–6.
	torn := filepath.Join(dir, "torn")
	p = recipe(t, torn, "")
	killAt(t, p, torn, "checkpoint", 6)
	cks, _ := checkpoints(filepath.Join(torn, "checkpoints"))
	if len(cks) != 1 || cks[0].State.Step != 3 {
		t.Fatalf("after a kill during a checkpoint write: %+v", cks)
	}
	ents, _ := os.ReadDir(filepath.Join(torn, "checkpoints"))
	if len(ents) != 2 {
		t.Errorf("expected step-3 and one temporary folder, found %d entries", len(ents))
	}
	if _, err := runRecipe(t, p, true); err != nil {
		t.Fatal(err)
	}
	ents, _ = os.ReadDir(filepath.Join(torn, "checkpoints"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary %s left after resume", e.Name())
		}
	}
	sameRun(t, straight, torn)

	// --resume on a finished run changes nothing.
	before, _ := os.ReadFile(filepath.Join(torn, "metrics.jsonl"))
	if _, err := runRecipe(t, p, true); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(torn, "metrics.jsonl"))
	if !bytes.Equal(before, after) {
		t.Error("--resume of a finished run rewrote metrics.jsonl")
	}

	// A fresh run into a folder with checkpoints is refused: it would lose them.
	if _, err := runRecipe(t, p, false); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Errorf("a second run into the same out_dir: %v", err)
	}
}

func TestInterruptCheckpointsAndResumes(t *testing.T) {
	dir := t.TempDir()
	straight := filepath.Join(dir, "straight")
	if _, err := runRecipe(t, recipe(t, straight, ""), false); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "ctrl-c")
	p := recipe(t, out, "")
	plan, err := recipes.Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	testHook = func(e string, s int) {
		if e == "step" && s == 2 {
			cancel()
		}
	}
	res, err := Run(ctx, plan, Options{})
	testHook = nil
	if !errors.Is(err, ErrInterrupted) || res.State.Step != 2 || filepath.Base(res.Checkpoint) != "step-2" {
		t.Fatalf("interrupt: %v, %+v", err, res)
	}
	if _, err := runRecipe(t, p, true); err != nil {
		t.Fatal(err)
	}
	sameRun(t, straight, out)
}

func TestKeepLastCheckpoints(t *testing.T) {
	out := filepath.Join(t.TempDir(), "k")
	if _, err := runRecipe(t, recipe(t, out, ""), false, "train.checkpoint_every=1", "train.keep_checkpoints=2", "train.max_steps=5"); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(out, "checkpoints"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "step-4,step-5" {
		t.Errorf("checkpoints left: %v", names)
	}
	st, err := os.ReadFile(filepath.Join(out, "checkpoints", "step-5", stateFile))
	if err != nil || !strings.Contains(string(st), `"step": 5`) {
		t.Errorf("trainer_state.json: %s %v", st, err)
	}
}

// Gradient accumulation: 4 micro-batches of 2 rows take the same step as one batch of 8 rows
// (the loss is normalised over all counted targets of the accumulated batch).
func TestGradAccumEqualsOneBigBatch(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "accum"), filepath.Join(dir, "big")
	if _, err := runRecipe(t, recipe(t, a, ""), false, "train.batch_size=2", "train.grad_accum=4", "train.max_steps=3"); err != nil {
		t.Fatal(err)
	}
	if _, err := runRecipe(t, recipe(t, b, ""), false, "train.batch_size=8", "train.grad_accum=1", "train.max_steps=3"); err != nil {
		t.Fatal(err)
	}
	ma, mb := readMetrics(t, a), readMetrics(t, b)
	for s := 1; s <= 3; s++ {
		for _, k := range []string{"loss", "grad_norm"} {
			x, y := ma[s].Values[k], mb[s].Values[k]
			if math.Abs(x-y) > 1e-5*math.Abs(y) {
				t.Errorf("step %d %s: accumulated %v, one batch %v", s, k, x, y)
			}
		}
		if ma[s].Values["tokens"] != mb[s].Values["tokens"] {
			t.Errorf("step %d: tokens %v vs %v", s, ma[s].Values["tokens"], mb[s].Values["tokens"])
		}
	}
	wa := loadWeights(t, filepath.Join(a, "checkpoints", "step-3"))
	wb := loadWeights(t, filepath.Join(b, "checkpoints", "step-3"))
	for name, x := range wa {
		y := wb[name]
		for i := range x {
			if math.Abs(float64(x[i]-y[i])) > 1e-5 {
				t.Fatalf("%s[%d]: %v vs %v", name, i, x[i], y[i])
			}
		}
	}
}

func loadWeights(t *testing.T, dir string) map[string][]float32 {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]float32{}
	for _, n := range f.Names() {
		if out[n], err = f.Float32(n); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// Stages: the second starts from the first's weights with its own config and data shape, and
// the metrics name each step's stage.
func TestStagesChain(t *testing.T) {
	out := filepath.Join(t.TempDir(), "s")
	p := recipe(t, out, `stages:
  - name: short
    train:
      max_steps: 2
  - name: long
    data:
      seq_len: 128
    model:
      rope_theta: 1000000
    train:
      max_steps: 2
`)
	res, err := runRecipe(t, p, false)
	if err != nil {
		t.Fatal(err)
	}
	m := readMetrics(t, out)
	if m[1].Stage != "short" || m[2].Stage != "short" || m[3].Stage != "long" || m[4].Stage != "long" || len(m) != 4 {
		t.Errorf("stages in metrics: %+v", m)
	}
	if m[3].Values["tokens"]-m[2].Values["tokens"] != 2*128 {
		t.Errorf("the long stage's first step saw %v tokens", m[3].Values["tokens"]-m[2].Values["tokens"])
	}
	cfg, err := layers.LoadConfig(filepath.Join(res.Checkpoint, "config.json"))
	if err != nil || cfg.RopeTheta != 1e6 || res.State.StageName != "long" || res.State.Step != 4 {
		t.Errorf("final checkpoint: %+v %v %+v", cfg, err, res.State)
	}
	// The first stage ended with a checkpoint, the one the second stage starts from.
	cks, _ := checkpoints(filepath.Join(out, "checkpoints"))
	if len(cks) != 2 || cks[0].State.Step != 2 || !cks[0].State.StageDone {
		t.Errorf("checkpoints: %+v", cks)
	}
}

// A NaN loss stops the run before it updates anything, naming the step.
func TestNaNLossStops(t *testing.T) {
	dir := t.TempDir()
	m := tinyModel(t, 1, 0.02)
	m.Norm.Data[0] = float32(math.NaN())
	model := filepath.Join(dir, "model")
	if err := m.Save(model, "F32", 0); err != nil {
		t.Fatal(err)
	}
	p := recipe(t, filepath.Join(dir, "out"), "")
	withBase(t, p, model)
	_, err := runRecipe(t, p, false)
	if err == nil || !strings.Contains(err.Error(), "step 1:") || !strings.Contains(err.Error(), "NaN") {
		t.Fatalf("got %v", err)
	}
}

// LoRA: only the adapters train (the base's weights stay as they were), a checkpoint is a PEFT
// adapter folder naming its base, and a run killed mid-way resumes bit for bit: with dropout
// (fp32), and with a bf16 base whose adapters fold into its products (FrozenLinears).
func TestLoRAResumeIsBitExact(t *testing.T) {
	for _, c := range []struct {
		name, dtype string
		dropout     float64
	}{{"f32-dropout", "f32", 0.1}, {"bf16-folded", "bf16", 0}} {
		t.Run(c.name, func(t *testing.T) { testLoRAResume(t, c.dtype, c.dropout) })
	}
}

func testLoRAResume(t *testing.T, dtype string, dropout float64) {
	dir := t.TempDir()
	base := saveBase(t, filepath.Join(dir, "base"))
	loraRecipe := func(out string) string {
		p := recipe(t, out, fmt.Sprintf("lora:\n  r: 4\n  alpha: 8\n  dropout: %g\n  target_modules: [q_proj, v_proj, down_proj]\n", dropout))
		withBase(t, p, base)
		src, _ := os.ReadFile(p)
		src = bytes.Replace(src, []byte("  path: "+base+"\n"), []byte("  path: "+base+"\n  dtype: "+dtype+"\n"), 1)
		src = bytes.Replace(src, []byte("math_prompts.parquet\n      format: text\n      column: problem"), []byte("sft_messages.parquet\n      format: chat"), 1)
		src = bytes.Replace(src, []byte("seq_len: 64"), []byte("seq_len: 256"), 1)
		os.WriteFile(p, src, 0o644)
		return p
	}
	straight := filepath.Join(dir, "straight")
	res, err := runRecipe(t, loraRecipe(straight), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"adapter_model.safetensors", "adapter_config.json", optimizerFile, stateFile} {
		if _, err := os.Stat(filepath.Join(res.Checkpoint, f)); err != nil {
			t.Errorf("LoRA checkpoint: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(res.Checkpoint, "model.safetensors")); err == nil {
		t.Error("a LoRA checkpoint holds the whole model")
	}
	if res.State.Base != base {
		t.Errorf("trainer_state base %q, want %q", res.State.Base, base)
	}
	killed := filepath.Join(dir, "killed")
	p := loraRecipe(killed)
	killAt(t, p, killed, "step", 5)
	if _, err := runRecipe(t, p, true); err != nil {
		t.Fatal(err)
	}
	ma, mb := readMetrics(t, straight), readMetrics(t, killed)
	for s := 1; s <= 6; s++ {
		if ma[s].Values["loss"] != mb[s].Values["loss"] || ma[s].Values["grad_norm"] != mb[s].Values["grad_norm"] {
			t.Errorf("step %d: %v vs %v", s, ma[s].Values, mb[s].Values)
		}
	}
	if ma[6].Values["loss"] == ma[1].Values["loss"] {
		t.Error("the adapters did not change the loss")
	}
	ca, _ := checkpoints(filepath.Join(straight, "checkpoints"))
	cb, _ := checkpoints(filepath.Join(killed, "checkpoints"))
	wa, _ := os.ReadFile(filepath.Join(ca[len(ca)-1].Dir, "adapter_model.safetensors"))
	wb, _ := os.ReadFile(filepath.Join(cb[len(cb)-1].Dir, "adapter_model.safetensors"))
	if len(wa) == 0 || !bytes.Equal(wa, wb) {
		t.Error("final adapters differ")
	}
}

func readAll(t *testing.T, out string) ([]metrics.Record, error) {
	t.Helper()
	return metrics.ReadJSONL(filepath.Join(out, "metrics.jsonl"))
}

// A mixture-of-experts model trains through the same loop: the load-balancing loss joins the
// loss, and each sparse layer's load goes to the metrics.
func TestMoETrainsWithRouterStats(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "moe.json")
	src, _ := os.ReadFile(tinyConfig())
	src = bytes.Replace(src, []byte(`"model_type": "qwen3"`), []byte(`"model_type": "qwen3_moe", "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32, "norm_topk_prob": true, "decoder_sparse_step": 1, "mlp_only_layers": [], "router_aux_loss_coef": 0.01, "output_router_logits": true`), 1)
	os.WriteFile(cfg, src, 0o644)
	out := filepath.Join(dir, "out")
	p := recipe(t, out, "")
	r, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.Replace(r, []byte(tinyConfig()), []byte(cfg), 1), 0o644)
	if _, err := runRecipe(t, p, false, "train.max_steps=3", "train.checkpoint_every=0"); err != nil {
		t.Fatal(err)
	}
	m := readMetrics(t, out)
	v := m[3].Values
	if v["moe/aux_loss"] <= 0 || v["moe/layer0/max_load"] < v["moe/layer0/min_load"] || v["moe/layer1/max_load"]+v["moe/layer1/min_load"] <= 0 {
		t.Errorf("MoE metrics: %v", v)
	}
}
