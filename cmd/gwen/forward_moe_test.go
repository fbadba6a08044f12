package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/internal/golden"
	"github.com/gwen-ml/gwen/layers/safetensors"
)

// gwen forward on the tiny MoE model writes ce_loss, aux_loss and the total as loss, and the
// gradients of the total, as the golden files have them.
func TestForwardCommandMoE(t *testing.T) {
	dir := golden.Dir("tiny-moe")
	out := filepath.Join(t.TempDir(), "out.safetensors")
	var stdout, stderr bytes.Buffer
	code := run([]string{"forward", "--model", dir, "--input", filepath.Join(dir, "golden.safetensors"), "--out", out, "--grads"}, nil, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	f, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := golden.Open("tiny-moe")
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) []float32 {
		v, err := f.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if d := golden.Compare(read("logits"), g.F32("logits"), 1e-4); d.Max > 1e-4 {
		t.Errorf("logits: %v", d)
	}
	for _, c := range []struct{ file, golden string }{{"ce_loss", "loss"}, {"aux_loss", "aux_loss"}, {"loss", "total_loss"}} {
		if v := read(c.file); len(v) != 1 || math.Abs(float64(v[0])-g.Scalar(c.golden)) > 1e-5 {
			t.Errorf("%s %v, want %v", c.file, v, g.Scalar(c.golden))
		}
	}
	n := 0
	for _, name := range g.Tensors.Names() {
		if !strings.HasPrefix(name, "grad.") {
			continue
		}
		n++
		want := g.F32(name)
		if d := golden.Compare(read(name), want, golden.GradTol(want)); d.Max > golden.GradTol(want) {
			t.Errorf("%s: %v", name, d)
		}
	}
	if n == 0 || len(f.Names()) != n+4 {
		t.Errorf("wrote %d tensors, want logits, ce_loss, aux_loss, loss and %d gradients", len(f.Names()), n)
	}
}

// With output_router_logits false (as released Qwen3-MoE configs have it) transformers' loss
// is the cross-entropy alone; aux_loss is still reported.
func TestForwardCommandMoEWithoutRouterLoss(t *testing.T) {
	src := golden.Dir("tiny-moe")
	dir := t.TempDir()
	cfg, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(cfg), `"output_router_logits": true`, `"output_router_logits": false`, 1)
	if edited == string(cfg) {
		t.Fatal("tiny-moe config.json has no output_router_logits true to flip")
	}
	weights, err := os.ReadFile(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), weights, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.safetensors")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"forward", "--model", dir, "--input", filepath.Join(src, "golden.safetensors"), "--out", out}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	f, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := golden.Open("tiny-moe")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, golden string }{{"ce_loss", "loss"}, {"aux_loss", "aux_loss"}, {"loss", "loss"}} {
		v, err := f.Float32(c.file)
		if err != nil {
			t.Fatal(err)
		}
		if len(v) != 1 || math.Abs(float64(v[0])-g.Scalar(c.golden)) > 1e-5 {
			t.Errorf("%s %v, want %v", c.file, v, g.Scalar(c.golden))
		}
	}
}
