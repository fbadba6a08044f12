package main

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/internal/golden"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/layers/safetensors"
	"github.com/gwen-ml/gwen/lora"
)

// gwen forward --adapter --grads on the golden PEFT adapter writes the reference's logits, loss
// and every lora_grad, and no gradient of the frozen base.
func TestForwardAdapterMatchesGolden(t *testing.T) {
	f, _ := forwardGolden(t, golden.Dir("tiny-dense"), "tiny-dense", "--adapter", golden.Dir("tiny-dense/lora"), "--grads")
	g, err := golden.Open("tiny-dense/lora")
	if err != nil {
		t.Fatal(err)
	}
	if d := golden.Compare(readF32(t, f, "logits"), g.F32("lora.logits"), 1e-4); d.Max > 1e-4 {
		t.Errorf("logits: %v", d)
	}
	if loss := readF32(t, f, "loss"); len(loss) != 1 || math.Abs(float64(loss[0])-g.Scalar("lora_loss")) > 1e-5 {
		t.Errorf("loss %v, want %v", loss, g.Scalar("lora_loss"))
	}
	n := 0
	for _, name := range g.Tensors.Names() {
		key, ok := strings.CutPrefix(name, "lora_grad.")
		if !ok {
			continue
		}
		n++
		want := g.F32(name)
		if d := golden.Compare(readF32(t, f, "grad."+key), want, golden.GradTol(want)); d.Max > golden.GradTol(want) {
			t.Errorf("%s: %v", key, d)
		}
	}
	if n != 28 || len(f.Names()) != n+2 {
		t.Errorf("wrote %v; want logits, loss and the %d adapter gradients only", f.Names(), n)
	}
}

// runGwen runs the command and fails the test unless it exits 0.
func runGwen(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(args, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("gwen %v: exit %d: %s", args, code, stderr.String())
	}
	return stdout.String()
}

// savedSet attaches a rank-4 adapter to tiny-dense with random B (a trained adapter's stand-in),
// saves it into dir (with trainer_state.json's step when step ≥ 0) and returns the model with
// the set attached, in eval mode.
func savedSet(t *testing.T, dir string, seed uint64, step int) *layers.Model {
	t.Helper()
	base := golden.Dir("tiny-dense")
	m, err := layers.Load(base)
	if err != nil {
		t.Fatal(err)
	}
	cfg := lora.Config{R: 4, Alpha: 16, TargetModules: lora.Targets{Names: lora.DefaultTargets}}
	s, err := lora.Attach(m, cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 5))
	for _, a := range s.Adapters {
		for i := range a.B.Data {
			a.B.Data[i] = float32(r.NormFloat64() * 0.05)
		}
	}
	if err := s.Save(dir, base); err != nil {
		t.Fatal(err)
	}
	if step >= 0 {
		if err := os.WriteFile(filepath.Join(dir, "trainer_state.json"), []byte(`{"step": `+strconv.Itoa(step)+`, "tokens": 1}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// goldenLogits runs m tape-less on the golden inputs.
func goldenLogits(t *testing.T, m *layers.Model) []float32 {
	t.Helper()
	g, err := golden.Open("tiny-dense")
	if err != nil {
		t.Fatal(err)
	}
	sh := g.Shape("input_ids")
	return m.Forward(nil, layers.Input{IDs: g.I32("input_ids"), B: sh[0], T: sh[1]}).Logits.Data
}

// A run folder's newest complete checkpoint exports as a PEFT folder; gwen forward --adapter on
// the export gives the set's own logits; gwen export merged gives them too (within 1e-4), as
// an HF folder in the base's dtype or the one asked for.
func TestExportRoundTrips(t *testing.T) {
	run := t.TempDir()
	ck := filepath.Join(run, "checkpoints")
	savedSet(t, filepath.Join(ck, "step-9"), 1, 9)
	newest := savedSet(t, filepath.Join(ck, "step-10"), 2, 10) // newer by step, older by name
	savedSet(t, filepath.Join(ck, ".step-11.tmp"), 3, 11)      // being written
	savedSet(t, filepath.Join(ck, "step-12"), 4, 12)
	os.Remove(filepath.Join(ck, "step-12", "adapter_model.safetensors")) // incomplete
	want := goldenLogits(t, newest)

	exp := filepath.Join(t.TempDir(), "adapter")
	if out := runGwen(t, "export", "lora", run, "--out", exp); !strings.Contains(out, "step-10") {
		t.Errorf("export lora took %q; want checkpoints/step-10", out)
	}
	f, _ := forwardGolden(t, golden.Dir("tiny-dense"), "tiny-dense", "--adapter", exp)
	if d := golden.Compare(readF32(t, f, "logits"), want, 1e-6); d.Max > 1e-6 {
		t.Errorf("forward --adapter on the export: %v", d)
	}

	merged := filepath.Join(t.TempDir(), "merged")
	runGwen(t, "export", "merged", filepath.Join(ck, "step-10"), "--out", merged) // base from base_model_name_or_path
	fm, _ := forwardGolden(t, merged, "tiny-dense")
	if d := golden.Compare(readF32(t, fm, "logits"), want, 1e-4); d.Max > 1e-4 {
		t.Errorf("merged export: %v", d)
	}
	mb := filepath.Join(t.TempDir(), "merged-bf16")
	runGwen(t, "export", "merged", run, "--out", mb, "--dtype", "bf16", "--model", golden.Dir("tiny-dense"))
	for dir, dt := range map[string]safetensors.DType{merged: "F32", mb: "BF16"} {
		set, err := safetensors.OpenDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		info, _, _ := set.Info("model.layers.0.self_attn.q_proj.weight")
		set.Close()
		if info.DType != dt {
			t.Errorf("%s: weights in %s, want %s", dir, info.DType, dt)
		}
	}
}

// The golden adapter (base_model_name_or_path "../", relative to the adapter) merges to the
// reference's merged weights.
func TestExportMergedGolden(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m")
	runGwen(t, "export", "merged", golden.Dir("tiny-dense/lora"), "--out", out)
	g, err := golden.Open("tiny-dense/lora")
	if err != nil {
		t.Fatal(err)
	}
	m, err := layers.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range m.Params() {
		if _, ok := g.Tensors.Info("merged." + p.Name); ok {
			n++
			if d := golden.Compare(p.Data, g.F32("merged."+p.Name), 1e-6); d.Max > 1e-6 {
				t.Errorf("%s: %v", p.Name, d)
			}
		}
	}
	if n != 14 {
		t.Errorf("compared %d merged weights, want 14", n)
	}
}

func TestExportErrors(t *testing.T) {
	tmp := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"export"}, 2, "lora|merged"},
		{[]string{"export", "lora", tmp}, 2, "--out"},
		{[]string{"export", "merged", tmp, "--out", filepath.Join(tmp, "o"), "--dtype", "f16"}, 2, "--dtype"},
		{[]string{"export", "lora", tmp, "--out", filepath.Join(tmp, "o")}, 1, "neither a PEFT adapter folder"},
		{[]string{"export", "lora", filepath.Join(tmp, "nope"), "--out", filepath.Join(tmp, "o")}, 1, "nope"},
		{[]string{"forward", "--model", golden.Dir("tiny-dense"), "--input", "x", "--out", "y", "--adapter", tmp}, 1, "adapter_config.json"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, nil, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr.String(), tc.code, tc.msg)
		}
	}
}
