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

// forwardGolden runs gwen forward (plus extra flags) on model folder dir with the golden case's
// inputs and returns the written file (closed at the end of the test) and the golden case.
func forwardGolden(t *testing.T, dir, name string, extra ...string) (*safetensors.File, *golden.Case) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.safetensors")
	args := append([]string{"forward", "--model", dir, "--input", filepath.Join(golden.Dir(name), "golden.safetensors"), "--out", out}, extra...)
	var stdout, stderr bytes.Buffer
	if code := run(args, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	f, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	g, err := golden.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	return f, g
}

// readF32 reads a float tensor of a written file, failing the test if it is absent.
func readF32(t *testing.T, f *safetensors.File, name string) []float32 {
	t.Helper()
	v, err := f.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// checkGoldenGrads compares every grad.* of the golden case with the file and returns how many.
func checkGoldenGrads(t *testing.T, f *safetensors.File, g *golden.Case) int {
	t.Helper()
	n := 0
	for _, name := range g.Tensors.Names() {
		if !strings.HasPrefix(name, "grad.") {
			continue
		}
		n++
		want := g.F32(name)
		if d := golden.Compare(readF32(t, f, name), want, golden.GradTol(want)); d.Max > golden.GradTol(want) {
			t.Errorf("%s: %v", name, d)
		}
	}
	return n
}

// gwen forward on the golden model and inputs writes the golden logits, loss and gradients.
func TestForwardCommandMatchesGolden(t *testing.T) {
	f, g := forwardGolden(t, golden.Dir("tiny-dense"), "tiny-dense", "--grads")
	if d := golden.Compare(readF32(t, f, "logits"), g.F32("logits"), 1e-4); d.Max > 1e-4 {
		t.Errorf("logits: %v", d)
	}
	if loss := readF32(t, f, "loss"); len(loss) != 1 || math.Abs(float64(loss[0])-g.Scalar("loss")) > 1e-5 {
		t.Errorf("loss %v, want %v", loss, g.Scalar("loss"))
	}
	if n := checkGoldenGrads(t, f, g); n == 0 || len(f.Names()) != n+2 {
		t.Errorf("wrote %d tensors, want logits, loss and %d gradients", len(f.Names()), n)
	}
}

func TestForwardCommandErrors(t *testing.T) {
	dir := golden.Dir("tiny-dense")
	tmp := t.TempDir()
	bad := filepath.Join(tmp, "ids.safetensors")
	if err := safetensors.Write(bad, []safetensors.Tensor{{Name: "input_ids", DType: "I64", Shape: []int{1, 3}, I64: []int64{1, 2, 9999}}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"forward", "--model", dir}, 2, "need --model"},
		{[]string{"forward", "--model", dir, "--input", bad, "--out", filepath.Join(tmp, "o"), "--dtype", "f16"}, 2, "--dtype"},
		{[]string{"forward", "--model", dir, "--input", bad, "--out", filepath.Join(tmp, "o")}, 1, "input_ids[0][2] = 9999"},
		{[]string{"forward", "--model", dir, "--input", bad, "--out", filepath.Join(tmp, "o"), "--grads"}, 1, "outside the vocabulary"},
		{[]string{"forward", "--model", tmp, "--input", bad, "--out", filepath.Join(tmp, "o")}, 1, "config.json"},
		{[]string{"nosuch"}, 2, "unknown command"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, nil, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr.String(), tc.code, tc.msg)
		}
	}
}
