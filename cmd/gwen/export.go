package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/gwen-ml/gwen/lora"
)

// cmdExport writes what a LoRA run trained in the formats other tools load:
//
//	gwen export lora SRC --out DIR      PEFT folder (adapter_model.safetensors + adapter_config.json)
//	gwen export merged SRC --out DIR    HF model folder with W + scale·B·A folded in
//
// SRC is a PEFT adapter folder, a checkpoint (which holds the adapter files at its root), or a
// run folder, whose newest complete checkpoints/<name>/ is taken (lora.FindAdapter).
func cmdExport(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "lora" && args[0] != "merged") {
		return fmt.Errorf("%w: gwen export lora|merged SRC --out DIR (SRC: run folder, checkpoint or PEFT adapter folder)", errUsage)
	}
	kind := args[0]
	fs := flag.NewFlagSet("export "+kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "folder to write")
	var dtype, model *string
	if kind == "merged" {
		dtype = fs.String("dtype", "", "bf16 or f32 (default: the base model's dtype on disk)")
		model = fs.String("model", "", "base model folder (default: the adapter's base_model_name_or_path)")
	}
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if len(pos) != 1 || *out == "" {
		return fmt.Errorf("%w: need gwen export %s SRC --out DIR", errUsage, kind)
	}
	src := pos[0]
	if kind == "lora" {
		from, err := lora.ExportLoRA(src, *out)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote PEFT adapter %s (from %s)\n", *out, from)
		return nil
	}
	dt := ""
	switch strings.ToLower(*dtype) {
	case "":
	case "bf16":
		dt = "BF16"
	case "f32":
		dt = "F32"
	default:
		return fmt.Errorf("%w: --dtype %q (bf16 or f32)", errUsage, *dtype)
	}
	from, base, err := lora.Merged(src, *model, *out, dt)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote merged model %s (adapter %s folded into %s)\n", *out, from, base)
	return nil
}
