package metrics

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Run is one run to plot: its name in the legends and its records.
type Run struct {
	Name    string
	Records []Record
}

// LoadRun reads dir/metrics.jsonl; the run is named after the folder.
func LoadRun(dir string) (Run, error) {
	rs, err := ReadJSONL(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		return Run{}, err
	}
	return Run{Name: filepath.Base(filepath.Clean(dir)), Records: rs}, nil
}

// Picture size: each panel is PanelWidth × PanelHeight, stacked top to bottom; PNGs are
// drawn at PlotDPI, so a picture of n panels is 900 × 300·n pixels.
const (
	PanelWidth  = 9 * vg.Inch
	PanelHeight = 3 * vg.Inch
	PlotDPI     = 100
)

// RunColors are the runs' colours, in order (Tableau 10, as matplotlib's default cycle);
// run i gets RunColors[i % 10].
var RunColors = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xd6, 0x27, 0x28, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
	{0xbc, 0xbd, 0x22, 0xff}, {0x17, 0xbe, 0xcf, 0xff},
}

// Plot draws one panel per metric, top to bottom, and writes it to out (.png or .svg).
// In each panel every run is a line of its colour through its training records' values
// of that metric against the step, with its eval records' values as ring markers of the
// same colour; a dashed vertical line of the run's colour, labelled with the new stage's
// name, marks each step where the run's stage changes. Values that are not finite are
// left out. A metric that no run has is an error.
func Plot(runs []Run, metrics []string, out string) error {
	if len(runs) == 0 || len(metrics) == 0 {
		return errors.New("plot: no runs or no metrics")
	}
	ext := strings.ToLower(filepath.Ext(out))
	if ext != ".png" && ext != ".svg" {
		return fmt.Errorf("plot: %s: want a .png or .svg file", out)
	}
	plots := make([][]*plot.Plot, len(metrics))
	for i, m := range metrics {
		p, err := panel(runs, m)
		if err != nil {
			return err
		}
		plots[i] = []*plot.Plot{p}
	}
	w, h := PanelWidth, PanelHeight*vg.Length(len(metrics))
	var c vg.CanvasWriterTo
	if ext == ".png" {
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(PlotDPI))}
	} else {
		c = vgsvg.New(w, h)
	}
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: len(metrics), Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8), PadY: vg.Points(8)}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	return writeFile(out, c)
}

func writeFile(path string, c io.WriterTo) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %v", path, err)
	}
	return f.Close()
}

// panel is one metric's plot.
func panel(runs []Run, metric string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = metric
	p.X.Label.Text = "step"
	p.X.Tick.Marker = plot.TickerFunc(stepTicks)
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	found := false
	var bounds []plot.Plotter
	for i, run := range runs {
		col := RunColors[i%len(RunColors)]
		rs := append([]Record(nil), run.Records...)
		sort.SliceStable(rs, func(a, b int) bool { return rs[a].Step < rs[b].Step })
		var train, eval plotter.XYs
		for _, r := range rs {
			v, ok := r.Values[metric]
			if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			if r.Eval {
				eval = append(eval, plotter.XY{X: float64(r.Step), Y: v})
			} else {
				train = append(train, plotter.XY{X: float64(r.Step), Y: v})
			}
		}
		if len(train) > 0 {
			l, err := plotter.NewLine(train)
			if err != nil {
				return nil, fmt.Errorf("plot: %s, %s: %v", run.Name, metric, err)
			}
			l.Color, l.Width = col, vg.Points(1.5)
			p.Add(l)
			p.Legend.Add(run.Name, l)
		}
		if len(eval) > 0 {
			s, err := plotter.NewScatter(eval)
			if err != nil {
				return nil, fmt.Errorf("plot: %s, %s: %v", run.Name, metric, err)
			}
			s.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(3.5), Shape: draw.RingGlyph{}}
			p.Add(s)
			p.Legend.Add(run.Name+" eval", s)
		}
		found = found || len(train)+len(eval) > 0
		for k := 1; k < len(rs); k++ {
			if rs[k].Stage != rs[k-1].Stage {
				bounds = append(bounds, stageLine{x: float64(rs[k].Step), stage: rs[k].Stage, color: col})
			}
		}
	}
	if !found {
		return nil, fmt.Errorf("plot: no run has a value %q", metric)
	}
	p.Add(bounds...) // after the data: they take no part in the ranges
	return p, nil
}

// stepTicks are gonum's default ticks labelled as plain numbers (steps: 25, not 25.00).
func stepTicks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', -1, 64)
		}
	}
	return ts
}

// stageLine is a dashed vertical line across the panel at a stage's first step, with the
// stage's name at its top.
type stageLine struct {
	x     float64
	stage string
	color color.Color
}

func (s stageLine) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	x := trX(s.x)
	if x < c.Min.X || x > c.Max.X {
		return
	}
	c.StrokeLine2(draw.LineStyle{Color: s.color, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(4), vg.Points(2)}},
		x, c.Min.Y, x, c.Max.Y)
	if s.stage != "" {
		sty := p.X.Tick.Label // the tick labels' font and handler
		sty.Color, sty.XAlign, sty.YAlign = s.color, draw.XLeft, draw.YTop
		c.FillText(sty, vg.Point{X: x + vg.Points(2), Y: c.Max.Y - vg.Points(2)}, s.stage)
	}
}
