package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/gwen-ml/gwen/dist"
	"github.com/gwen-ml/gwen/recipes"
	"github.com/gwen-ml/gwen/train"
)

// errInterrupted makes gwen exit with 130, as a shell does for Ctrl-C.
var errInterrupted = errors.New("interrupted")

// cmdTrain is `gwen train RECIPE.yaml [--resume] [key.path=value ...]`, flags before or after
// the recipe.
func cmdTrain(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(stderr)
	resume := fs.Bool("resume", false, "continue from the newest complete checkpoint in out_dir (from the start when there is none)")
	check := fs.Bool("check", false, "validate the recipe (keys, types, files, columns, limits) and print its resolved stages; train nothing")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: gwen train RECIPE.yaml [--resume] [key.path=value ...]\n\noverrides are typed as in the file, e.g. out_dir=/tmp/x train.max_steps=100 optim.lr=1e-4\n(a stage's own keys: stages.NAME.train.max_steps=10)\n\nflags:")
		fs.PrintDefaults()
	}
	positional, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	var file string
	var overrides []string
	for _, a := range positional {
		if strings.Contains(a, "=") {
			overrides = append(overrides, a)
		} else if file == "" {
			file = a
		} else {
			return fmt.Errorf("%w: one recipe file, got %q and %q", errUsage, file, a)
		}
	}
	if file == "" {
		fs.Usage()
		return fmt.Errorf("%w: name a recipe file", errUsage)
	}
	plan, err := recipes.Load(file, overrides)
	if err != nil {
		return err
	}
	if *check {
		for i, s := range plan.Stages {
			r := s.Recipe
			fmt.Fprintf(stdout, "stage %d %q: %d steps × %d rows × %d tokens (grad_accum %d), lr %g %s, model %s%s\n", i+1, s.Name,
				r.Train.MaxSteps, r.Train.BatchSize, r.Data.SeqLen, r.Train.GradAccum, r.Optim.LR, r.Optim.Schedule.Name, r.Model.Dtype, modeOf(r))
		}
		fmt.Fprintf(stdout, "%s: valid; outputs go to %s\n", file, plan.Stages[0].Recipe.OutDir)
		return nil
	}
	comm, err := dist.Open() // one process unless launched by mpirun or srun
	if err != nil {
		return err
	}
	defer comm.Close()
	if comm.Size() > 1 {
		runtime.GOMAXPROCS(dist.Threads(comm)) // before the first GEMM: OpenBLAS and oneDNN follow it
		if comm.Rank() != 0 {
			stdout, stderr = io.Discard, io.Discard
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := train.Run(ctx, plan, train.Options{Resume: *resume, Log: stderr, Terminal: isTerminal(stderr), Comm: comm})
	if err != nil && !errors.Is(err, train.ErrInterrupted) && comm.Size() > 1 {
		// The other ranks may wait in a collective this one will never join: end the job.
		fmt.Fprintf(os.Stderr, "gwen train (rank %d of %d): %v\n", comm.Rank(), comm.Size(), err)
		dist.Abort(comm, 1)
	}
	if errors.Is(err, train.ErrInterrupted) {
		fmt.Fprintf(stderr, "interrupted after step %d; checkpoint %s\ncontinue with: gwen train %s --resume\n", res.State.Step, res.Checkpoint, strings.Join(args, " "))
		return errInterrupted
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "done: %s (step %d, %d tokens)\n  metrics:    %s/metrics.jsonl\n  checkpoint: %s\nnext:\n",
		res.OutDir, res.State.Step, res.State.Tokens, res.OutDir, res.Checkpoint)
	if base := res.State.Base; base != "" { // a LoRA run: the checkpoint is a PEFT adapter
		fmt.Fprintf(stdout, "  gwen generate --model %s --adapter %s --think \"Solve (x+2)^2 = 0\"\n  gwen export merged %s --out %s/merged\n  gwen export lora %s --out %s/adapter\n",
			base, res.Checkpoint, res.OutDir, res.OutDir, res.OutDir, res.OutDir)
	} else {
		fmt.Fprintf(stdout, "  gwen generate --model %s --think \"Solve (x+2)^2 = 0\"\n", res.Checkpoint)
	}
	fmt.Fprintf(stdout, "  gwen plot %s\n", res.OutDir)
	return nil
}

// isTerminal reports whether w is a character device (a terminal), for the live progress bar.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// modeOf says what a stage trains besides next-token prediction.
func modeOf(r recipes.Recipe) string {
	switch {
	case r.DPO != nil && r.DPO.Online != nil:
		return ", online DPO"
	case r.DPO != nil:
		return ", DPO"
	case r.LoRA != nil:
		return fmt.Sprintf(", LoRA r=%d", r.LoRA.R)
	}
	return ""
}
