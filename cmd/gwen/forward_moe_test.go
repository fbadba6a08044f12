package main

import (
	"bytes"
	"math"
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
