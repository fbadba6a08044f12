package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/kernels"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/lora"
	"github.com/gwen-ml/gwen/moe"
	"github.com/gwen-ml/gwen/optim"
)

// benchConfigs are the models of ../shared/bench/bench_torch.py, so that Gwen and PyTorch can
// be measured side by side on the same shapes.
func benchConfig(name string) (*layers.Config, error) {
	small := layers.Config{ModelType: "qwen3", VocabSize: 8192, HiddenSize: 512, IntermediateSize: 1536,
		NumHiddenLayers: 8, NumAttentionHeads: 8, NumKeyValueHeads: 4, HeadDim: 64,
		TieWordEmbeddings: true, RopeTheta: 1e6, MaxPositionEmbeddings: 4096, RMSNormEps: 1e-6}
	switch name {
	case "small":
		return &small, nil
	case "small-moe":
		c := small
		c.ModelType, c.NumExperts, c.NumExpertsPerTok, c.MoEIntermediateSize = "qwen3_moe", 16, 4, 384
		c.DecoderSparseStep, c.NormTopKProb, c.RouterAuxLossCoef, c.OutputRouterLogits = 1, true, 0.001, true
		return &c, nil
	}
	return layers.LoadConfig(name)
}

// benchResult is one JSON line of gwen bench; field names follow bench_torch.py's.
type benchResult struct {
	Name            string    `json:"name"`
	Model           string    `json:"model"`
	Batch           int       `json:"batch"`
	Seq             int       `json:"seq"`
	TokensPerS      float64   `json:"tokens_per_s"`
	TokensPerSBest  float64   `json:"tokens_per_s_best"`
	StepSMedian     float64   `json:"step_s_median"`
	StepS           []float64 `json:"step_s"`
	FlopsPerStep    float64   `json:"flops_per_step"`
	AchievedGFLOPs  float64   `json:"achieved_gflops"`
	GemmPeakGFLOPs  float64   `json:"gemm_peak_gflops,omitempty"`
	MFU             float64   `json:"mfu,omitempty"`
	PeakRSSMB       float64   `json:"peak_rss_mb"`
	Threads         int       `json:"threads"`
	Backend         string    `json:"blas"`
	Losses          []float64 `json:"losses,omitempty"`
	MatmulParamsTok int       `json:"n_matmul_params_per_token"`
}

func cmdBench(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	o, err := parseBenchFlags(args, stderr)
	if err != nil {
		return err
	}
	cfg, err := benchConfig(o.config)
	if err != nil {
		return err
	}
	m, err := layers.New(*cfg)
	if err != nil {
		return err
	}
	m.InitRandom(0, 0.02)
	m.BF16 = o.dtype == "bf16"
	m.Checkpointing = o.checkpointing
	if o.mode == "decode" {
		if o.cpuProfile != "" { // decode profiles every run, warm-up included
			stop, err := startCPUProfile(o.cpuProfile)
			if err != nil {
				return err
			}
			defer stop()
		}
		return benchDecode(m, o.config, o.dtype, o.prompt, o.newTokens, o.warmup, o.steps, stdout)
	}
	params := m.Params()
	if o.lora > 0 { // rank-r adapters on every projection; the base frozen (bf16 only with --dtype bf16)
		cfg := lora.DefaultConfig()
		cfg.R, cfg.Alpha = o.lora, float64(2*o.lora)
		set, err := lora.Attach(m, cfg, 0)
		if err != nil {
			return err
		}
		if m.BF16 {
			m.UseBF16Weights()
			if err := m.DropFP32Weights(); err != nil {
				return err
			}
		}
		params = set.Params()
	}
	times, losses, err := benchSteps(m, params, o)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(stepResult(m, o, times, losses))
}

// benchOpts are gwen bench's flags, checked.
type benchOpts struct {
	config, mode, dtype, cpuProfile              string
	prompt, newTokens, batch, seq, warmup, steps int
	lora                                         int
	checkpointing, peak                          bool
}

func parseBenchFlags(args []string, stderr io.Writer) (*benchOpts, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgName := fs.String("config", "small", "small, small-moe (bench_torch.py's models) or a config.json path")
	mode := fs.String("mode", "train", "train (forward+backward+AdamW), forward (no tape), or decode (batch 1, --prompt then --new greedy tokens with the KV cache)")
	promptLen := fs.Int("prompt", 128, "decode: prompt tokens")
	newTokens := fs.Int("new", 128, "decode: generated tokens")
	dtype := fs.String("dtype", "f32", "f32 or bf16")
	batch := fs.Int("batch", 4, "rows per step")
	seq := fs.Int("seq", 512, "tokens per row")
	warmup := fs.Int("warmup", 2, "untimed steps first")
	steps := fs.Int("steps", 5, "timed steps")
	checkpointing := fs.Bool("checkpointing", false, "recompute each block in backward")
	loraRank := fs.Int("lora", 0, "train: rank of LoRA adapters on every projection of a frozen base (0: full training)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the timed steps to this file (go tool pprof)")
	measurePeak := fs.Bool("peak", true, "measure the machine's GEMM peak for MFU (2048³ GEMMs, a few seconds)")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if (*mode != "train" && *mode != "forward" && *mode != "decode") || (*dtype != "f32" && *dtype != "bf16") || *steps < 1 || *batch < 1 || *seq < 1 {
		return nil, fmt.Errorf("%w: --mode train|forward|decode, --dtype f32|bf16, positive --steps/--batch/--seq", errUsage)
	}
	return &benchOpts{config: *cfgName, mode: *mode, dtype: *dtype, cpuProfile: *cpuProfile,
		prompt: *promptLen, newTokens: *newTokens, batch: *batch, seq: *seq, warmup: *warmup, steps: *steps,
		checkpointing: *checkpointing, peak: *measurePeak, lora: *loraRank}, nil
}

// benchSteps runs o.warmup untimed then o.steps timed steps on random tokens: a forward with
// no tape (--mode forward), or forward, cross-entropy (+ MoE router losses), backward,
// clipping and AdamW (--mode train). It returns each timed step's seconds and the losses.
func benchSteps(m *layers.Model, params []*autograd.Tensor, o *benchOpts) (times, losses []float64, err error) {
	B, T, V := o.batch, o.seq, m.Config.VocabSize
	r := rand.New(rand.NewPCG(0, 0))
	ids := make([]int32, B*T)
	for i := range ids {
		ids[i] = int32(r.IntN(V))
	}
	targets := layers.CausalTargets(ids, B, T)
	opt := optim.NewAdamW(0.9, 0.95, 1e-8, 0.1)
	in := layers.Input{IDs: ids, B: B, T: T}
	tin := in
	tin.SkipLMHead = true // the training loss never holds the logits

	// The training step below is the trainer's inner loop in miniature; when package train
	// lands, it owns this loop (batching, accumulation, clipping, the optimizer step) and
	// gwen bench --mode train times train's step instead of its own copy.
	tp := autograd.NewTape() // reused by every step: it recycles the activations' memory
	step := func() {
		if o.mode == "forward" {
			m.Forward(nil, in)
			return
		}
		out := m.Forward(tp, tin)
		ce, _, _ := m.CrossEntropy(tp, out.Hidden, targets, 0)
		loss, _ := moe.AddRouterLosses(tp, ce, out.RouterLogits, &m.Config, 0)
		losses = append(losses, float64(loss.Data[0]))
		tp.Backward(loss)
		_, coef := optim.ClipCoef(params, 1.0) // clipping fused into the update
		opt.UpdateScaled(params, 1e-4, coef)
		optim.ZeroGrad(params)
	}
	for i := 0; i < o.warmup+o.steps; i++ {
		if i == o.warmup && o.cpuProfile != "" {
			stop, err := startCPUProfile(o.cpuProfile)
			if err != nil {
				return nil, nil, err
			}
			defer stop()
		}
		t0 := time.Now()
		step()
		if i >= o.warmup {
			times = append(times, time.Since(t0).Seconds())
		}
	}
	return times, losses, nil
}

// stepResult is the JSON line of a train or forward benchmark: throughput from the median
// step, FLOPs by bench_torch.py's model, and MFU against the measured GEMM peak.
func stepResult(m *layers.Model, o *benchOpts, times, losses []float64) benchResult {
	sorted := slices.Sorted(slices.Values(times))
	med := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		med = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	T := o.seq
	nTok, attnCoef := flopModel(&m.Config)
	tokens := float64(o.batch * T)
	flops := tokens * (2*float64(nTok) + float64(attnCoef*T))
	if o.mode == "train" {
		flops = tokens * (6*float64(nTok) + 3*float64(attnCoef*T))
	}
	peak := math.NaN()
	if o.peak {
		peak = gemmPeak(o.dtype == "bf16")
	}
	res := benchResult{
		Name: o.mode + loraSuffix(o.lora) + "_" + o.dtype, Model: o.config, Batch: o.batch, Seq: T,
		TokensPerS: tokens / med, TokensPerSBest: tokens / sorted[0], StepSMedian: med, StepS: times,
		FlopsPerStep: flops, AchievedGFLOPs: flops / med / 1e9, PeakRSSMB: peakRSSMB(), Threads: runtime.GOMAXPROCS(0),
		Backend: kernels.BLASBackend(), Losses: losses, MatmulParamsTok: nTok,
	}
	if !math.IsNaN(peak) {
		res.GemmPeakGFLOPs, res.MFU = peak, res.AchievedGFLOPs/peak
	}
	return res
}

// flopModel is bench_torch.py's: matmul parameters touched per token (lm_head, attention
// projections, the dense or active-expert MLPs and routers) and the attention coefficient.
func flopModel(c *layers.Config) (nMatmul, attnCoef int) {
	D, H, KV, hd := c.HiddenSize, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim
	n := c.VocabSize * D
	for i := 0; i < c.NumHiddenLayers; i++ {
		n += 2*D*H*hd + 2*D*KV*hd
		if c.IsSparseLayer(i) {
			n += c.NumExperts*D + c.NumExpertsPerTok*3*D*c.MoEIntermediateSize
		} else {
			n += 3 * D * c.IntermediateSize
		}
	}
	return n, 4 * c.NumHiddenLayers * H * hd
}

// gemmPeak measures this machine's GEMM rate (2048³, median of 5) in the dtype's path.
func gemmPeak(bf16 bool) float64 {
	const n = 2048
	a, b, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
	r := rand.New(rand.NewPCG(1, 1))
	for i := range a {
		a[i], b[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
	}
	gemm := kernels.Sgemm
	if bf16 {
		gemm = kernels.SgemmBF16
	}
	var ts []float64
	for i := 0; i < 6; i++ {
		t0 := time.Now()
		gemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n)
		if i > 0 {
			ts = append(ts, time.Since(t0).Seconds())
		}
	}
	slices.Sort(ts)
	return 2 * n * n * n / ts[len(ts)/2] / 1e9
}

func peakRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024 // kilobytes on Linux
}

// startCPUProfile writes a CPU profile to path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// decodeResult is one JSON line of gwen bench --mode decode; names follow bench_torch.py's.
type decodeResult struct {
	Name           string  `json:"name"`
	Model          string  `json:"model"`
	Batch          int     `json:"batch"`
	Prompt         int     `json:"prompt"`
	NewTokens      int     `json:"new_tokens"`
	DecodeTokPerS  float64 `json:"decode_tokens_per_s"`
	DecodeBest     float64 `json:"decode_tokens_per_s_best"`
	MsPerToken     float64 `json:"ms_per_token"`
	PrefillTokPerS float64 `json:"prefill_tokens_per_s"`
	PrefillLogits  int     `json:"prefill_logits_rows"` // rows of prompt logits the prefill computes
	AchievedGFLOPs float64 `json:"achieved_gflops"`
	// WeightGBPerS is the matmul weights' bytes per token (4 per parameter in fp32, 2 in bf16)
	// times decode tokens/s: the memory bandwidth decoding draws, its bound at batch 1.
	WeightGBPerS    float64 `json:"weights_gb_per_s"`
	PeakRSSMB       float64 `json:"peak_rss_mb"`
	Backend         string  `json:"blas"`
	MatmulParamsTok int     `json:"n_matmul_params_per_token"`
}

// benchDecode is bench_torch.py's decode job: batch 1, the prompt prefilled in one forward,
// then greedy tokens one forward each with the KV cache; median over the timed runs.
func benchDecode(m *layers.Model, name, dtype string, P, N, warmup, runs int, stdout io.Writer) error {
	if P < 1 || N < 1 || P+N > m.Config.MaxPositionEmbeddings {
		return fmt.Errorf("%w: --prompt %d + --new %d must be positive and fit max_position_embeddings %d", errUsage, P, N, m.Config.MaxPositionEmbeddings)
	}
	if dtype == "bf16" {
		m.UseBF16Weights() // bfloat16 weight copies: half the bytes read per token
	}
	V := m.Config.VocabSize
	r := rand.New(rand.NewPCG(0, 0))
	prompt := make([]int32, P)
	for i := range prompt {
		prompt[i] = int32(r.IntN(V))
	}
	argmax := func(row []float32) int32 {
		best := 0
		for i, v := range row {
			if v > row[best] {
				best = i
			}
		}
		return int32(best)
	}
	var prefills, decodes []float64
	for i := 0; i < warmup+runs; i++ {
		cache := layers.NewKVCache(&m.Config, 1, P+N)
		t0 := time.Now()
		// As generate does: the prefill computes the prompt's last logits only (the PyTorch
		// reference computes all P rows; see prefill_logits_rows).
		logits := m.Forward(nil, layers.Input{IDs: prompt, B: 1, T: P, Cache: cache, KeepLogits: 1}).Logits.Data
		next := argmax(logits)
		t1 := time.Now()
		for j := 0; j < N; j++ {
			next = argmax(m.Forward(nil, layers.Input{IDs: []int32{next}, B: 1, T: 1, Cache: cache}).Logits.Data)
		}
		if i >= warmup {
			prefills = append(prefills, t1.Sub(t0).Seconds())
			decodes = append(decodes, time.Since(t1).Seconds())
		}
	}
	slices.Sort(prefills)
	slices.Sort(decodes)
	dec, pre := decodes[len(decodes)/2], prefills[len(prefills)/2]
	nTok, attnCoef := flopModel(&m.Config)
	meanCtx := float64(P) + float64(N+1)/2
	flopsTok := 2*float64(nTok) + float64(attnCoef)*meanCtx
	weightBytes := 4
	if dtype == "bf16" {
		weightBytes = 2
	}
	return json.NewEncoder(stdout).Encode(decodeResult{
		Name: "decode_" + dtype, Model: name, Batch: 1, Prompt: P, NewTokens: N,
		DecodeTokPerS: float64(N) / dec, DecodeBest: float64(N) / decodes[0], MsPerToken: 1000 * dec / float64(N),
		PrefillTokPerS: float64(P) / pre, PrefillLogits: 1, AchievedGFLOPs: flopsTok * float64(N) / dec / 1e9,
		WeightGBPerS: float64(weightBytes*nTok) * float64(N) / dec / 1e9,
		PeakRSSMB:    peakRSSMB(), Backend: kernels.BLASBackend(), MatmulParamsTok: nTok,
	})
}

// loraSuffix names a LoRA benchmark (train_lora16_bf16) apart from full training.
func loraSuffix(r int) string {
	if r == 0 {
		return ""
	}
	return fmt.Sprintf("_lora%d", r)
}
