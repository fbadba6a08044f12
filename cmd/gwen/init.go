package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
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
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *cfgPath == "" || *outDir == "" || fs.NArg() > 0 {
		return fmt.Errorf("%w: need --config CONFIG.json --out DIR", errUsage)
	}
	diskType := map[string]safetensors.DType{"f32": safetensors.F32, "bf16": safetensors.BF16}[*dtype]
	if diskType == "" {
		return fmt.Errorf("%w: --dtype %q (f32 or bf16)", errUsage, *dtype)
	}
	maxShard, err := parseByteSize(*shardSize)
	if err != nil {
		return fmt.Errorf("%w: --shard-size: %v", errUsage, err)
	}
	stdSet := false
	fs.Visit(func(f *flag.Flag) { stdSet = stdSet || f.Name == "std" })
	if stdSet && (!(*std > 0) || math.IsInf(*std, 0)) {
		return fmt.Errorf("%w: --std %g must be positive", errUsage, *std)
	}

	cfg, err := layers.LoadConfig(*cfgPath)
	if err != nil {
		return err
	}
	sigma := *std
	if !stdSet {
		if sigma, err = initializerRange(cfg); err != nil {
			return fmt.Errorf("%s: %w", *cfgPath, err)
		}
	}
	pad, err := paddingRow(cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", *cfgPath, err)
	}
	if err := checkOutDir(*outDir); err != nil {
		return err
	}
	var tokFiles []string
	if *tokDir != "" {
		if tokFiles, err = checkTokenizer(*tokDir, cfg.VocabSize); err != nil {
			return err
		}
	}

	start := time.Now()
	tensors, err := paramLayout(cfg, diskType)
	if err != nil {
		return fmt.Errorf("%s: %w", *cfgPath, err)
	}
	// Everything is written into a temporary folder beside the target, renamed at the end:
	// an interrupted init leaves no half model behind.
	var shards int
	err = durable.WriteDir(*outDir, func(tmp string) error {
		if shards, err = writeRandomWeights(tmp, tensors, diskType, maxShard, *seed, sigma, pad); err != nil {
			return err
		}
		cfgOut := *cfg
		cfgOut.TorchDType = map[safetensors.DType]string{safetensors.F32: "float32", safetensors.BF16: "bfloat16"}[diskType]
		js, err := json.MarshalIndent(cfgOut, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(tmp, "config.json"), append(js, '\n'), 0o644); err != nil {
			return err
		}
		for _, name := range tokFiles {
			b, err := os.ReadFile(filepath.Join(*tokDir, name))
			if err != nil {
				return fmt.Errorf("tokenizer: %w", err)
			}
			if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}

	var n int64
	for _, t := range tensors {
		n += int64(t.n)
	}
	fmt.Fprintf(stdout, "wrote %s: %d parameters (%.1fM) as %s in %d file(s), std %g, seed %d, %.1fs\n",
		*outDir, n, float64(n)/1e6, diskType, shards, sigma, *seed, time.Since(start).Seconds())
	return nil
}

// initializerRange is the standard deviation transformers initialises weights with:
// config.json's initializer_range, 0.02 (Qwen3Config's default) when absent.
func initializerRange(cfg *layers.Config) (float64, error) {
	v, ok := cfg.Extra["initializer_range"]
	if !ok || v == nil {
		return 0.02, nil
	}
	f, ok := v.(float64)
	if !ok || !(f > 0) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("initializer_range = %v, must be a positive number", v)
	}
	return f, nil
}

// paddingRow is the embedding row transformers zeroes (nn.Embedding's padding_idx =
// config.pad_token_id), or -1 when config.json sets none.
func paddingRow(cfg *layers.Config) (int, error) {
	v, ok := cfg.Extra["pad_token_id"]
	if !ok || v == nil {
		return -1, nil
	}
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || f < 0 || f >= float64(cfg.VocabSize) {
		return 0, fmt.Errorf("pad_token_id = %v, must be a token id in [0, vocab_size %d)", v, cfg.VocabSize)
	}
	return int(f), nil
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

// paramSpec is one parameter to create: its HF name, shape and size.
type paramSpec struct {
	name  string
	shape []int
	n     int
	bytes int64
}

// paramLayout lists the model's parameters in layers' order (Model.Params) without keeping
// their memory: New allocates them, but the pages are never touched and become garbage here.
func paramLayout(cfg *layers.Config, dt safetensors.DType) ([]paramSpec, error) {
	m, err := layers.New(*cfg)
	if err != nil {
		return nil, err
	}
	var out []paramSpec
	for _, p := range m.Params() {
		out = append(out, paramSpec{name: p.Name, shape: p.Shape, n: len(p.Data), bytes: int64(len(p.Data)) * int64(dt.Bits()/8)})
	}
	runtime.GC() // m is dead here: let its never-touched memory go before the weights are made
	return out, nil
}

// writeRandomWeights generates the parameters shard by shard and writes them into dir: one
// model.safetensors, or model-0000i-of-0000K.safetensors and model.safetensors.index.json when
// the data is larger than maxShard > 0: parameters in order fill a shard until the next would
// pass maxShard, and one larger than maxShard is a shard alone (huggingface_hub puts such a
// tensor before the shard being filled; here the shards keep the parameters' order, which the
// single random stream needs). Only one shard is resident as fp32 at a time. The values are one stream of a PCG generator over
// the parameters in order, as Model.InitRandom draws them, so the shard size and dtype never
// change them: 2-D and larger parameters ~ N(0, std²), 1-D (the RMSNorm weights) = 1; then the
// embedding's row pad (if pad >= 0) is zeroed. It returns the number of files.
func writeRandomWeights(dir string, params []paramSpec, dt safetensors.DType, maxShard int64, seed uint64, std float64, pad int) (int, error) {
	var total int64
	for _, p := range params {
		total += p.bytes
	}
	var shards [][]paramSpec
	if maxShard <= 0 || total <= maxShard {
		shards = [][]paramSpec{params}
	} else {
		var cur []paramSpec
		var size int64
		for _, p := range params {
			if size+p.bytes > maxShard && len(cur) > 0 {
				shards = append(shards, cur)
				cur, size = nil, 0
			}
			cur = append(cur, p)
			size += p.bytes
		}
		if len(cur) > 0 {
			shards = append(shards, cur)
		}
	}
	largest := 0
	for _, s := range shards {
		n := 0
		for _, p := range s {
			n += p.n
		}
		largest = max(largest, n)
	}
	slab := make([]float32, largest) // reused by every shard

	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	weightMap := map[string]string{}
	meta := map[string]string{"format": "pt"}
	for i, s := range shards {
		name := safetensors.SingleFileName
		if len(shards) > 1 {
			name = fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(shards))
		}
		ts := make([]safetensors.Tensor, len(s))
		off := 0
		for j, p := range s {
			data := slab[off : off+p.n : off+p.n]
			off += p.n
			if len(p.shape) == 1 {
				for k := range data {
					data[k] = 1
				}
			} else {
				for k := range data {
					data[k] = float32(r.NormFloat64() * std)
				}
			}
			if p.name == "model.embed_tokens.weight" && pad >= 0 {
				d := p.shape[1]
				clear(data[pad*d : (pad+1)*d])
			}
			ts[j] = safetensors.Tensor{Name: p.name, DType: dt, Shape: p.shape, F32: data}
			weightMap[p.name] = name
		}
		if err := safetensors.Write(filepath.Join(dir, name), ts, meta); err != nil {
			return 0, err
		}
	}
	if len(shards) > 1 {
		index := struct {
			Metadata  map[string]int64  `json:"metadata"`
			WeightMap map[string]string `json:"weight_map"`
		}{map[string]int64{"total_size": total}, weightMap}
		js, err := json.MarshalIndent(index, "", "  ")
		if err != nil {
			return 0, err
		}
		if err := os.WriteFile(filepath.Join(dir, safetensors.IndexFileName), append(js, '\n'), 0o644); err != nil {
			return 0, err
		}
	}
	return len(shards), nil
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
