// Command gwen trains, fine-tunes, aligns and runs Qwen3 models. This file owns the
// subcommand table, usage text and exit codes; each subcommand lives in its own file.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gwen-ml/gwen/moe"
)

// command is one subcommand. run gets the arguments after the subcommand's name.
type command struct {
	name, summary string
	run           func(args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// commands is the explicit registry of subcommands, in the order usage lists them.
var commands = []command{
	{"train", "train from a YAML recipe: pretraining stages, SFT; checkpoints, --resume, key=value overrides", cmdTrain},
	{"bench", "measure training, forward or decode speed on bench_torch.py's models (JSON lines)", cmdBench},
	{"init", "write a new model folder with random weights from a config.json (pretraining from scratch)", cmdInit},
	{"forward", "run a model on token ids; write logits, loss and gradients (check against transformers)", cmdForward},
	{"dpo", "eval: DPO log-probs, rewards and loss of preference pairs under a policy and its reference (JSON)", cmdDPO},
	{"export", "write a LoRA run's adapter as a PEFT folder (lora) or folded into its base model (merged)", cmdExport},
	{"data", "print Parquet examples as JSON lines (cat), count rows and lengths (stats), or make math data (synth)", cmdData},
	{"tokenize", "encode JSON lines {\"text\"} to {\"ids\"} with a model's tokenizer, or --decode them", cmdTokenize},
	{"template", "render conversations with the Qwen3 chat template to {\"text\", \"ids\"}", cmdTemplate},
	{"generate", "continue a prompt with a model (chat template, streaming; --prompt-ids for JSON)", cmdGenerate},
	{"chat", "multi-turn chat in the terminal: one user turn per stdin line", cmdChat},
	{"reward", "score {\"completion\", \"answer\"} JSON lines with rule rewards (format, answer), weighted", cmdReward},
	{"plot", "draw runs' metrics.jsonl as PNG or SVG panels, runs overlaid (loss, lr, tokens/s)", cmdPlot},
}

// errUsage marks a mistake in how the command was called (exit code 2, not 1).
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	moe.Register() // qwen3_moe models build their sparse layers with package moe
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(args[1:], stdin, stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, errInterrupted):
			return 130
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "gwen %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(stderr, "gwen %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "gwen: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: gwen <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
}
