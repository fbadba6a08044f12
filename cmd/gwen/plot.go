package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/gwen-ml/gwen/metrics"
)

// defaultPlotMetrics are drawn when --metrics is not given, those that some run has.
var defaultPlotMetrics = []string{"loss", "lr", "tokens_per_s"}

// cmdPlot is `gwen plot RUN_DIR… [--metrics loss,lr,tokens_per_s] [--out FILE.png|.svg]`:
// each run's metrics.jsonl, one panel per metric, runs overlaid (metrics.Plot).
func cmdPlot(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	list := fs.String("metrics", "", "comma-separated metric names (default: those of loss,lr,tokens_per_s the runs have)")
	out := fs.String("out", "", "picture to write, .png or .svg (default RUN_DIR/metrics.png for one run)")
	var dirs []string
	rest := args
	for { // run folders and flags in any order
		if err := fs.Parse(rest); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			break
		}
		dirs = append(dirs, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(dirs) == 0 {
		return fmt.Errorf("%w: gwen plot RUN_DIR… [--metrics loss,lr,tokens_per_s] [--out FILE.png|.svg]", errUsage)
	}
	if *out == "" {
		if len(dirs) > 1 {
			return fmt.Errorf("%w: --out is needed to compare several runs", errUsage)
		}
		*out = filepath.Join(dirs[0], "metrics.png")
	}
	runs := make([]metrics.Run, len(dirs))
	for i, d := range dirs {
		r, err := metrics.LoadRun(d)
		if err != nil {
			return err
		}
		runs[i] = r
	}
	names := map[string]int{}
	for _, r := range runs {
		names[r.Name]++
	}
	for i := range runs {
		if names[runs[i].Name] > 1 { // runs/a/x and runs/b/x: tell them apart
			runs[i].Name = filepath.Clean(dirs[i])
		}
	}
	var want []string
	if *list != "" {
		for _, m := range strings.Split(*list, ",") {
			if m = strings.TrimSpace(m); m != "" {
				want = append(want, m)
			}
		}
	} else {
		for _, m := range defaultPlotMetrics {
			if hasMetric(runs, m) {
				want = append(want, m)
			}
		}
		if len(want) == 0 {
			return fmt.Errorf("the runs have none of %s; name some with --metrics", strings.Join(defaultPlotMetrics, ", "))
		}
	}
	if err := metrics.Plot(runs, want, *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", *out)
	return nil
}

func hasMetric(runs []metrics.Run, m string) bool {
	for _, r := range runs {
		for _, rec := range r.Records {
			if _, ok := rec.Values[m]; ok {
				return true
			}
		}
	}
	return false
}
