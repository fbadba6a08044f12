package main

import (
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// writeRun writes a synthetic run folder: 40 steps in two stages, eval every tenth step.
func writeRun(t *testing.T, dir string, shift float64) {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	var b strings.Builder
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	for s := 0; s < 40; s++ {
		stage := "pretrain"
		if s >= 20 {
			stage = "sft"
		}
		b.WriteString(`{"step":` + strconv.Itoa(s) + `,"stage":"` + stage + `","loss":` + f(5-0.05*float64(s)+shift) +
			`,"lr":` + f(1e-3*(1+shift)) + `,"tokens_per_s":` + f(1000*(1+shift)+float64(s)) + "}\n")
		if s%10 == 9 {
			b.WriteString(`{"step":` + strconv.Itoa(s) + `,"stage":"` + stage + `","eval":true,"loss":` + f(5.5-0.05*float64(s)+shift) + "}\n")
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "metrics.jsonl"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPlotCLI(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	writeRun(t, a, 0)
	writeRun(t, b, 0.5)

	// Two runs compared: three default panels, 900×300 pixels each.
	out := filepath.Join(root, "cmp.png")
	var stdout, stderr strings.Builder
	if code := run([]string{"plot", a, "--out", out, b}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if stdout.String() != "wrote "+out+"\n" {
		t.Errorf("stdout %q", stdout.String())
	}
	checkPNG(t, out, 900, 900)

	// One run: the picture goes beside its metrics.jsonl; --metrics picks the panels.
	stdout.Reset()
	if code := run([]string{"plot", a, "--metrics", "loss, lr"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	checkPNG(t, filepath.Join(a, "metrics.png"), 900, 600)

	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"plot"}, 2, "RUN_DIR"},
		{[]string{"plot", a, b}, 2, "--out"},
		{[]string{"plot", a, "--metrics", "nope"}, 1, `"nope"`},
		{[]string{"plot", filepath.Join(root, "missing")}, 1, "metrics.jsonl"},
		{[]string{"plot", a, "--out", filepath.Join(root, "x.gif")}, 1, ".gif"},
	} {
		stderr.Reset()
		if code := run(c.args, nil, &stdout, &stderr); code != c.code || !strings.Contains(stderr.String(), c.msg) {
			t.Errorf("%v: exit %d, %q; want exit %d naming %s", c.args, code, stderr.String(), c.code, c.msg)
		}
	}
}

// checkPNG decodes path and asserts its size and that every 300-pixel panel has drawing.
func checkPNG(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("%s is %dx%d, want %dx%d", path, b.Dx(), b.Dy(), w, h)
	}
	for top := 0; top < h; top += 300 {
		n := 0
		for y := top + 30; y < top+270; y++ { // inside the panel, away from its edges
			for x := 80; x < w-20; x++ {
				if r, g, b, _ := img.At(x, y).RGBA(); r>>8 < 200 || g>>8 < 200 || b>>8 < 200 {
					n++
				}
			}
		}
		if n < 1000 {
			t.Errorf("%s: the panel at y=%d has %d drawn pixels", path, top, n)
		}
	}
}
