package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/gwen-ml/gwen/data/synth"
)

// dataSynth is `gwen data synth math --n N --seed S --out FILE.parquet [--format all|chat|text]
// [--kinds arithmetic,linear,quadratic,fraction]`: seeded math problems with worked steps in
// <think>…</think> and a \boxed{} answer, as Parquet with prompt, answer, messages and text
// columns (chat leaves out text, text leaves out messages).
func dataSynth(args []string, stdout, stderr io.Writer) error {
	const use = "gwen data synth math --n N --seed S --out FILE.parquet [--format all|chat|text] [--kinds arithmetic,linear,quadratic,fraction]"
	if len(args) == 0 || args[0] != "math" {
		return fmt.Errorf("%w: %s", errUsage, use)
	}
	fs := flag.NewFlagSet("data synth math", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 1000, "number of problems")
	seed := fs.Uint64("seed", 1, "random seed: the same seed gives the same file")
	out := fs.String("out", "", "output Parquet file")
	format := fs.String("format", "all", "columns besides prompt and answer: all (messages and text), chat (messages) or text")
	kinds := fs.String("kinds", "", "comma-separated problem kinds (default all: arithmetic, linear, quadratic, fraction)")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 || *out == "" {
		return fmt.Errorf("%w: %s", errUsage, use)
	}
	if *n <= 0 {
		return fmt.Errorf("%w: --n %d, want at least 1", errUsage, *n)
	}
	cols, err := synth.ParseColumns(*format)
	if err != nil {
		return fmt.Errorf("%w: --format: %v", errUsage, err)
	}
	var opts []synth.Option
	if *kinds != "" {
		var ks []synth.Kind
		for _, s := range strings.Split(*kinds, ",") {
			k, err := synth.ParseKind(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("%w: --kinds: %v", errUsage, err)
			}
			ks = append(ks, k)
		}
		opts = append(opts, synth.WithKinds(ks...))
	}
	rows := synth.Math(*seed, *n, opts...)
	if err := synth.WriteParquet(*out, rows, cols); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %d problems (seed %d) to %s\n", len(rows), *seed, *out)
	return nil
}
