package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/gwen-ml/gwen/internal/durable"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/layers/safetensors"
)

// cmdInit writes a Hugging Face model folder with random weights, initialised as
// transformers' PreTrainedModel._init_weights does for Qwen3 (Linear and Embedding weights
// ~ N(0, initializer_range²), the padding row of the embedding zero, RMSNorm weights 1): the
// starting point of pretraining from scratch.
func cmdInit(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	o, err := parseInitFlags(args, stderr)
	if err != nil {
		return err
	}
	cfg, std, pad, err := loadInitConfig(o.cfgPath, o.std)
	if err != nil {
		return err
	}
	if err := checkOutDir(o.outDir); err != nil {
		return err
	}
	var tokFiles []string
	if o.tokDir != "" {
		if tokFiles, err = checkTokenizer(o.tokDir, cfg.VocabSize); err != nil {
			return err
		}
	}
	start := time.Now()
	tensors, err := paramLayout(cfg, o.dtype)
	if err != nil {
		return fmt.Errorf("%s: %w", o.cfgPath, err)
	}
	var files int
	err = durable.WriteDir(o.outDir, func(tmp string) error { // no half model after a crash
		ri := layers.NewRandomInit(o.seed, std, pad)
		fill := func(t *safetensors.Tensor) error { ri.Fill(t.Name, t.Shape, t.F32); return nil }
		if files, err = safetensors.WriteShards(tmp, tensors, nil, o.maxShard, fill); err != nil {
			return err
		}
		if err := writeConfig(filepath.Join(tmp, "config.json"), *cfg, o.dtype); err != nil {
			return err
		}
		return copyFiles(tmp, o.tokDir, tokFiles)
	})
	if err != nil {
		return err
	}
	n := numParams(tensors)
	fmt.Fprintf(stdout, "wrote %s: %d parameters (%.1fM) as %s in %d file(s), std %g, seed %d, %.1fs\n",
		o.outDir, n, float64(n)/1e6, o.dtype, files, std, o.seed, time.Since(start).Seconds())
	return nil
}

// initOpts are gwen init's flags, checked; std is 0 when --std is not given.
type initOpts struct {
	cfgPath, outDir, tokDir string
	dtype                   safetensors.DType
	maxShard                int64
	seed                    uint64
	std                     float64
}

func parseInitFlags(args []string, stderr io.Writer) (*initOpts, error) {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config.json of the model to create (model_type qwen3 or qwen3_moe)")
	outDir := fs.String("out", "", "model folder to create; it must not exist or be empty")
	dtype := fs.String("dtype", "bf16", "f32 or bf16: the dtype of the weights on disk")
	shardSize := fs.String("shard-size", "2GB", "largest shard (e.g. 500MB, 2GB, 1GiB; 0 = one file); larger models get model.safetensors.index.json")
	seed := fs.Uint64("seed", 0, "seed of the random weights (the same seed gives the same files)")
	std := fs.Float64("std", 0, "standard deviation of the weights (default: config.json's initializer_range, else 0.02)")
	tokDir := fs.String("tokenizer", "", "folder whose tokenizer.json and tokenizer_config.json are copied into the model folder")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if *cfgPath == "" || *outDir == "" || fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: need --config CONFIG.json --out DIR", errUsage)
	}
	o := &initOpts{cfgPath: *cfgPath, outDir: *outDir, tokDir: *tokDir, seed: *seed}
	o.dtype = map[string]safetensors.DType{"f32": safetensors.F32, "bf16": safetensors.BF16}[*dtype]
	if o.dtype == "" {
		return nil, fmt.Errorf("%w: --dtype %q (f32 or bf16)", errUsage, *dtype)
	}
	var err error
	if o.maxShard, err = parseByteSize(*shardSize); err != nil {
		return nil, fmt.Errorf("%w: --shard-size: %v", errUsage, err)
	}
	stdSet := false
	fs.Visit(func(f *flag.Flag) { stdSet = stdSet || f.Name == "std" })
	if stdSet && (!(*std > 0) || math.IsInf(*std, 0)) {
		return nil, fmt.Errorf("%w: --std %g must be positive", errUsage, *std)
	}
	if stdSet {
		o.std = *std
	}
	return o, nil
}

// loadInitConfig reads config.json and the initialisation it implies: std (the flag's when
// not 0, else initializer_range) and the padding row (-1 for none).
func loadInitConfig(path string, flagStd float64) (cfg *layers.Config, std float64, pad int, err error) {
	if cfg, err = layers.LoadConfig(path); err != nil {
		return nil, 0, 0, err
	}
	std = flagStd
	if std == 0 {
		if std, err = cfg.InitializerRange(); err != nil {
			return nil, 0, 0, fmt.Errorf("%s: %w", path, err)
		}
	}
	if pad, err = cfg.PaddingIdx(); err != nil {
		return nil, 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, std, pad, nil
}

// numParams is the number of values of the tensors.
func numParams(ts []safetensors.Tensor) int64 {
	var n int64
	for _, t := range ts {
		size := int64(1)
		for _, d := range t.Shape {
			size *= int64(d)
		}
		n += size
	}
	return n
}

// writeConfig writes cfg as config.json with torch_dtype saying the weights' dtype.
func writeConfig(path string, cfg layers.Config, dt safetensors.DType) error {
	cfg.TorchDType = map[safetensors.DType]string{safetensors.F32: "float32", safetensors.BF16: "bfloat16"}[dt]
	js, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(js, '\n'), 0o644)
}

// copyFiles copies the named files of folder src into folder dst.
func copyFiles(dst, src string, names []string) error {
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return fmt.Errorf("tokenizer: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// checkOutDir refuses to write over anything: the folder must not exist or be empty.
func checkOutDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("--out %s: %w", dir, err)
	case len(entries) > 0:
		return fmt.Errorf("--out %s already holds %s; gwen init writes only into a new or empty folder", dir, entries[0].Name())
	}
	return nil
}

// checkTokenizer checks that a tokenizer folder has tokenizer.json and that all its token ids
// (vocabulary and added tokens) fit the model's embedding; it returns the files to copy.
func checkTokenizer(dir string, vocabSize int) ([]string, error) {
	path := filepath.Join(dir, "tokenizer.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--tokenizer: %w", err)
	}
	var tj struct {
		Model struct {
			Vocab map[string]int `json:"vocab"`
		} `json:"model"`
		AddedTokens []struct {
			ID      int    `json:"id"`
			Content string `json:"content"`
		} `json:"added_tokens"`
	}
	if err := json.Unmarshal(b, &tj); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	maxID, maxTok := -1, ""
	for tok, id := range tj.Model.Vocab {
		if id > maxID {
			maxID, maxTok = id, tok
		}
	}
	for _, t := range tj.AddedTokens {
		if t.ID > maxID {
			maxID, maxTok = t.ID, t.Content
		}
	}
	if maxID < 0 {
		return nil, fmt.Errorf("%s: no tokens in model.vocab or added_tokens", path)
	}
	if maxID >= vocabSize {
		return nil, fmt.Errorf("%s: token %q has id %d, but config.json's vocab_size is %d", path, maxTok, maxID, vocabSize)
	}
	files := []string{"tokenizer.json"}
	if _, err := os.Stat(filepath.Join(dir, "tokenizer_config.json")); err == nil {
		files = append(files, "tokenizer_config.json")
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("--tokenizer: %w", err)
	}
	return files, nil
}

// paramLayout lists the model's parameters in layers' order (Model.Params), without data and
// without keeping their memory: New allocates them, but the pages are never touched and become
// garbage here.
func paramLayout(cfg *layers.Config, dt safetensors.DType) ([]safetensors.Tensor, error) {
	m, err := layers.New(*cfg)
	if err != nil {
		return nil, err
	}
	var out []safetensors.Tensor
	for _, p := range m.Params() {
		out = append(out, safetensors.Tensor{Name: p.Name, DType: dt, Shape: p.Shape})
	}
	runtime.GC() // m is dead here: let its never-touched memory go before the weights are made
	return out, nil
}

// parseByteSize reads sizes as huggingface_hub writes them: a number with an optional unit,
// decimal (KB, MB, GB = 10³, 10⁶, 10⁹ bytes) or binary (KiB, MiB, GiB); "0" means no limit.
func parseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   float64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12}, {"b", 1}}
	mult := 1.0
	lower := strings.ToLower(t)
	for _, u := range units {
		if strings.HasSuffix(lower, u.suffix) {
			mult, t = u.mult, strings.TrimSpace(t[:len(t)-len(u.suffix)])
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) || v*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is not a size (e.g. 500MB, 2GB, 1GiB, 0)", s)
	}
	return int64(v * mult), nil
}
