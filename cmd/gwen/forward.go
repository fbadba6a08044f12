package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"path/filepath"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/layers/safetensors"
	"github.com/gwen-ml/gwen/lora"
	"github.com/gwen-ml/gwen/moe"
)

// cmdForward runs one forward (and optionally backward) pass of a model on token ids read
// from a safetensors file and writes logits, loss and gradients to another: the way a user
// checks Gwen's numbers against transformers'.
func cmdForward(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	o, err := parseForwardFlags(args, stderr)
	if err != nil {
		return err
	}
	m, err := layers.Load(o.modelDir)
	if err != nil {
		return err
	}
	m.BF16 = o.dtype == "bf16"
	set, err := attachAdapter(m, o.adapter)
	if err != nil {
		return err
	}
	ids, labels, b, t, err := readForwardInput(o.inPath, m.Config.VocabSize)
	if err != nil {
		return err
	}
	if o.grads && labels == nil {
		return fmt.Errorf("%w: --grads needs labels in %s", errUsage, o.inPath)
	}
	out, err := forwardTensors(m, set, ids, labels, b, t, o.grads, o.inPath, stdout)
	if err != nil {
		return err
	}
	if err := safetensors.Write(o.outPath, out, map[string]string{"producer": "gwen forward", "model": filepath.Base(o.modelDir), "dtype": o.dtype}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%d tensors)\n", o.outPath, len(out))
	return nil
}

// forwardOpts are gwen forward's flags, checked.
type forwardOpts struct {
	modelDir, inPath, outPath, dtype, adapter string
	grads                                     bool
}

func parseForwardFlags(args []string, stderr io.Writer) (*forwardOpts, error) {
	fs := flag.NewFlagSet("forward", flag.ContinueOnError)
	fs.SetOutput(stderr)
	modelDir := fs.String("model", "", "Hugging Face model folder (config.json + safetensors)")
	inPath := fs.String("input", "", "safetensors file with input_ids (I64 [B,T]) and optionally labels (I64 [B,T], -100 = ignore)")
	outPath := fs.String("out", "", "safetensors file to write: logits, loss, grad.<param> with --grads")
	grads := fs.Bool("grads", false, "also write the gradient of the loss for every parameter, or every adapter tensor with --adapter (needs labels)")
	dtype := fs.String("dtype", "f32", "f32, or bf16 (mixed precision: bf16 matmul inputs, fp32 accumulation)")
	adapter := fs.String("adapter", "", "PEFT LoRA adapter folder to run unmerged; --grads then writes grad.<PEFT key> for its tensors only")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if *modelDir == "" || *inPath == "" || *outPath == "" || fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: need --model DIR --input IN.safetensors --out OUT.safetensors", errUsage)
	}
	if *dtype != "f32" && *dtype != "bf16" {
		return nil, fmt.Errorf("%w: --dtype %q (f32 or bf16)", errUsage, *dtype)
	}
	return &forwardOpts{modelDir: *modelDir, inPath: *inPath, outPath: *outPath, dtype: *dtype, adapter: *adapter, grads: *grads}, nil
}

// readForwardInput reads input_ids [B,T], each in [0, vocab), and labels (nil when the file
// has none) of the same shape.
func readForwardInput(path string, vocab int) (ids, labels []int32, b, t int, err error) {
	in, err := safetensors.Open(path)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	defer in.Close()
	if ids, b, t, err = readTokens(in, "input_ids"); err != nil {
		return nil, nil, 0, 0, err
	}
	for i, id := range ids {
		if id < 0 || int(id) >= vocab {
			return nil, nil, 0, 0, fmt.Errorf("%s: input_ids[%d][%d] = %d is outside the vocabulary [0, %d)", path, i/t, i%t, id, vocab)
		}
	}
	if _, ok := in.Info("labels"); ok {
		var lb, lt int
		if labels, lb, lt, err = readTokens(in, "labels"); err != nil {
			return nil, nil, 0, 0, err
		}
		if lb != b || lt != t {
			return nil, nil, 0, 0, fmt.Errorf("%s: labels are [%d,%d], input_ids [%d,%d]", path, lb, lt, b, t)
		}
	}
	return ids, labels, b, t, nil
}

// forwardTensors runs the model on ids [b,t] and returns what gwen forward writes: logits, and
// with labels the loss (ce_loss and aux_loss too for MoE), and with grads every parameter's
// gradient (grad.<name>; only the adapter's tensors when set is not nil). It prints the
// losses to stdout.
func forwardTensors(m *layers.Model, set *lora.Set, ids, labels []int32, b, t int, grads bool, inPath string, stdout io.Writer) ([]safetensors.Tensor, error) {
	var tp *autograd.Tape
	if grads {
		tp = autograd.NewTape()
	}
	res := m.Forward(tp, layers.Input{IDs: ids, B: b, T: t})
	out := []safetensors.Tensor{{Name: "logits", DType: "F32", Shape: []int{b, t, m.Config.VocabSize},
		F32: append([]float32(nil), res.Logits.Data...)}} // copied: backward reuses the logits' memory
	if labels == nil {
		return out, nil
	}
	logits := res.Logits.Reshape(b*t, m.Config.VocabSize)
	ce, sum, count := autograd.CrossEntropy(tp, logits, layers.CausalTargets(labels, b, t), 0)
	if count == 0 {
		return nil, fmt.Errorf("%s: every label is -100 after the causal shift; there is no loss to compute", inPath)
	}
	loss := ce
	ceLoss := sum / float64(count)
	total := ceLoss
	if len(res.RouterLogits) > 0 {
		// MoE: aux_loss is always reported; like transformers' Qwen3MoeForCausalLM, the
		// loss (and its gradients) include router_aux_loss_coef·aux only when config.json
		// sets output_router_logits (released Qwen3-MoE configs leave it false).
		withAux, parts := moe.AddRouterLosses(tp, ce, res.RouterLogits, &m.Config, 0)
		if m.Config.OutputRouterLogits {
			loss = withAux
			total = ceLoss + m.Config.RouterAuxLossCoef*parts.Aux
		}
		out = append(out,
			safetensors.Tensor{Name: "ce_loss", DType: "F32", Shape: []int{}, F32: []float32{float32(ceLoss)}},
			safetensors.Tensor{Name: "aux_loss", DType: "F32", Shape: []int{}, F32: []float32{float32(parts.Aux)}})
		fmt.Fprintf(stdout, "ce_loss %.6f, aux_loss %.6f (coefficient %g, in the loss: %v = output_router_logits)\n",
			ceLoss, parts.Aux, m.Config.RouterAuxLossCoef, m.Config.OutputRouterLogits)
	}
	if math.IsNaN(total) || math.IsInf(total, 0) {
		return nil, fmt.Errorf("loss is %v: the model's numbers are not finite", total)
	}
	out = append(out, safetensors.Tensor{Name: "loss", DType: "F32", Shape: []int{}, F32: []float32{float32(total)}})
	if grads {
		tp.Backward(loss)
		out = append(out, gradTensors(m, set)...)
	}
	fmt.Fprintf(stdout, "loss %.6f over %d target tokens\n", total, count)
	return out, nil
}

// readTokens reads a 2-D integer tensor as int32 token ids.
func readTokens(f *safetensors.File, name string) (ids []int32, b, t int, err error) {
	info, ok := f.Info(name)
	if !ok {
		return nil, 0, 0, fmt.Errorf("%s: no tensor %q", f.Path(), name)
	}
	if len(info.Shape) != 2 {
		return nil, 0, 0, fmt.Errorf("%s: %s has shape %v, want [B,T]", f.Path(), name, info.Shape)
	}
	v, err := f.Int64(name)
	if err != nil {
		return nil, 0, 0, err
	}
	ids = make([]int32, len(v))
	for i, x := range v {
		if x != int64(int32(x)) {
			return nil, 0, 0, fmt.Errorf("%s: %s[%d] = %d does not fit a token id", f.Path(), name, i, x)
		}
		ids[i] = int32(x)
	}
	return ids, info.Shape[0], info.Shape[1], nil
}
