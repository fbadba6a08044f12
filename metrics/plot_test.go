package metrics

import (
	"encoding/xml"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// testRuns are two runs of 60 steps in two stages (pretrain, then sft from step 30 or 35), with
// eval records every tenth step, written as metrics.jsonl files by hand.
func testRuns(t *testing.T) []string {
	var dirs []string
	for i, name := range []string{"base", "bigger-lr"} {
		dir := filepath.Join(t.TempDir(), name)
		os.MkdirAll(dir, 0o755)
		var b strings.Builder
		for s := 0; s < 60; s++ {
			stage := "pretrain"
			if s >= 30+5*i {
				stage = "sft"
			}
			loss := 8 - 0.05*float64(s) - float64(i)
			b.WriteString(`{"step":` + itoa(s) + `,"stage":"` + stage + `","loss":` + ftoa(loss) +
				`,"lr":` + ftoa(0.001*float64(i+1)) + `,"tokens_per_s":` + ftoa(1000+10*float64(s)+500*float64(i)) + "}\n")
			if s%10 == 9 {
				b.WriteString(`{"step":` + itoa(s) + `,"stage":"` + stage + `","eval":true,"loss":` + ftoa(loss+0.3) + `,"ppl":` + ftoa(20-0.2*float64(s)+5*float64(i)) + "}\n")
			}
		}
		os.WriteFile(filepath.Join(dir, "metrics.jsonl"), []byte(b.String()), 0o644)
		dirs = append(dirs, dir)
	}
	return dirs
}

func itoa(i int) string     { return strconv.Itoa(i) }
func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func loadRuns(t *testing.T, dirs []string) []Run {
	var runs []Run
	for _, d := range dirs {
		r, err := LoadRun(d)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	return runs
}

// near says whether the pixel is want drawn over white with an opacity of at least one
// half, as antialiasing leaves thin lines: pixel = a·want + (1-a)·white in each channel.
func near(r, g, b uint32, want [3]uint8) bool {
	px := [3]float64{float64(r >> 8), float64(g >> 8), float64(b >> 8)}
	a := -1.0
	for i, w := range want {
		if w > 200 {
			continue // too close to white to say
		}
		ai := (255 - px[i]) / (255 - float64(w))
		if a < 0 {
			a = ai
		} else if d := ai - a; d > 0.12 || d < -0.12 {
			return false // another hue
		}
	}
	for i, w := range want {
		if w > 200 && px[i] < float64(w)-20 {
			return false
		}
	}
	return a >= 0.5 && a <= 1.1
}

// The runs' colours as the documentation of Plot states them (Tableau 10's first two).
var blue, orange = [3]uint8{0x1f, 0x77, 0xb4}, [3]uint8{0xff, 0x7f, 0x0e}

func TestPlotPNG(t *testing.T) {
	runs := loadRuns(t, testRuns(t))
	if runs[0].Name != "base" || len(runs[0].Records) != 66 {
		t.Fatalf("LoadRun: %s with %d records", runs[0].Name, len(runs[0].Records))
	}
	out := filepath.Join(t.TempDir(), "cmp.png")
	if dir := os.Getenv("GWEN_PLOT_KEEP"); dir != "" { // to look at it
		out = filepath.Join(dir, "cmp.png")
	}
	metrics := []string{"loss", "lr", "tokens_per_s", "ppl"} // ppl: eval records only, so markers only
	if err := Plot(runs, metrics, out); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// 9 in × 3 in per panel at 100 dpi.
	if b := img.Bounds(); b.Dx() != 900 || b.Dy() != 4*300 {
		t.Fatalf("image is %v, want 900×1200", b)
	}
	for p, m := range metrics {
		band := image.Rect(0, p*300, 900, (p+1)*300)
		// Per colour: pixels in columns holding few of them (curves, markers) and the most
		// in one column (a dashed stage line spans the panel's height).
		colored := 0
		var data, tall [2]int
		for x := band.Min.X; x < band.Max.X; x++ {
			var col [2]int
			for y := band.Min.Y; y < band.Max.Y; y++ {
				r, g, b, _ := img.At(x, y).RGBA()
				if r>>8 < 250 || g>>8 < 250 || b>>8 < 250 {
					colored++
				}
				for i, c := range [2][3]uint8{blue, orange} {
					if near(r, g, b, c) {
						col[i]++
					}
				}
			}
			for i := range col {
				if col[i] <= 30 {
					data[i] += col[i]
				}
				tall[i] = max(tall[i], col[i])
			}
		}
		t.Logf("panel %s: %d non-white pixels; blue, orange: %v in curves or markers, %v at most in a column", m, colored, data, tall)
		if colored < 2000 || data[0] < 100 || data[1] < 100 {
			t.Errorf("panel %d (%s): %d non-white pixels, %v blue and orange in curves or markers: a run is missing", p, m, colored, data)
		}
		if tall[0] < 100 || tall[1] < 100 {
			t.Errorf("panel %d (%s): columns of at most %v blue and orange pixels: a stage boundary is missing", p, m, tall)
		}
	}
}

func TestPlotSVGAndErrors(t *testing.T) {
	runs := loadRuns(t, testRuns(t))
	out := filepath.Join(t.TempDir(), "cmp.svg")
	if err := Plot(runs, []string{"loss"}, out); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	var doc struct {
		XMLName xml.Name
		Width   string `xml:"width,attr"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil || doc.XMLName.Local != "svg" {
		t.Fatalf("not an SVG document: %v %v", doc.XMLName, err)
	}
	for _, s := range []string{"base", "bigger-lr eval", "sft"} {
		if !strings.Contains(string(b), s) {
			t.Errorf("the SVG has no text %q", s)
		}
	}
	if err := Plot(runs, []string{"loss", "nope"}, out); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("a missing metric: %v", err)
	}
	if err := Plot(runs, []string{"loss"}, "x.jpg"); err == nil {
		t.Error("a .jpg was accepted")
	}
}
