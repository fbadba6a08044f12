package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/internal/golden"
)

// gwen forward on the tiny MoE model writes ce_loss, aux_loss and the total as loss, and the
// gradients of the total, as the golden files have them.
func TestForwardCommandMoE(t *testing.T) {
	f, g := forwardGolden(t, golden.Dir("tiny-moe"), "tiny-moe", "--grads")
	if d := golden.Compare(readF32(t, f, "logits"), g.F32("logits"), 1e-4); d.Max > 1e-4 {
		t.Errorf("logits: %v", d)
	}
	for _, c := range []struct{ file, golden string }{{"ce_loss", "loss"}, {"aux_loss", "aux_loss"}, {"loss", "total_loss"}} {
		if v := readF32(t, f, c.file); len(v) != 1 || math.Abs(float64(v[0])-g.Scalar(c.golden)) > 1e-5 {
			t.Errorf("%s %v, want %v", c.file, v, g.Scalar(c.golden))
		}
	}
	if n := checkGoldenGrads(t, f, g); n == 0 || len(f.Names()) != n+4 {
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
	f, g := forwardGolden(t, dir, "tiny-moe")
	for _, c := range []struct{ file, golden string }{{"ce_loss", "loss"}, {"aux_loss", "aux_loss"}, {"loss", "loss"}} {
		if v := readF32(t, f, c.file); len(v) != 1 || math.Abs(float64(v[0])-g.Scalar(c.golden)) > 1e-5 {
			t.Errorf("%s %v, want %v", c.file, v, g.Scalar(c.golden))
		}
	}
}
