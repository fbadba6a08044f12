package lora_test

import (
	"slices"
	"testing"
	"time"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/lora"
	"github.com/gwen-ml/gwen/optim"
)

// BenchmarkTrainStepSmall times one training step of bench_torch.py's `small` model
// (recipes/models/small.json) at batch 4×512, as layers' BenchmarkTrainStepSmall does, with
// full training and with rank-16 adapters (alpha 32, every projection, dropout 0 or 0.05) on
// the frozen base; in bf16 the base is held in bf16 only, as `gwen train` holds it. The
// issue's target is full / LoRA ≥ 1.3 in step time (BenchmarkTrainStepSmallRatio measures
// that ratio directly):
//
//	go test ./lora -run '^$' -bench TrainStepSmall -count 5
func BenchmarkTrainStepSmall(b *testing.B) {
	for _, mode := range []string{"f32", "bf16"} {
		for _, c := range []struct {
			name    string
			r       int
			dropout float64
		}{{"full", 0, 0}, {"lora16", 16, 0}, {"lora16-dropout", 16, 0.05}} {
			b.Run(mode+"/"+c.name, func(b *testing.B) {
				step := smallTrainStep(b, mode == "bf16", c.r, c.dropout)
				step(0) // warm-up: optimizer state, gradient and tape buffers
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					step(i + 1)
				}
				b.ReportMetric(float64(4*512*b.N)/b.Elapsed().Seconds(), "tokens/s")
			})
		}
	}
}

// BenchmarkTrainStepSmallRatio measures the ratio itself, full step time / LoRA step
// time, on the machine's noise rather than across it: a full model and a rank-16 LoRA model
// (no dropout) take their steps in turn, the order alternating from pair to pair, and the
// reported full/lora is the median of the pairs' ratios (with each mode's median step time).
// Run separately, the two modes' step times drift apart by more than the margin being
// measured on a shared machine; a pair's two steps are a second apart.
//
//	go test ./lora -run '^$' -bench 'TrainStepSmallRatio/bf16' -benchtime 20x
func BenchmarkTrainStepSmallRatio(b *testing.B) {
	for _, mode := range []string{"f32", "bf16"} {
		b.Run(mode, func(b *testing.B) {
			full := smallTrainStep(b, mode == "bf16", 0, 0)
			adapted := smallTrainStep(b, mode == "bf16", 16, 0)
			full(0)
			adapted(0)
			timed := func(step func(int), i int) float64 {
				t0 := time.Now()
				step(i)
				return time.Since(t0).Seconds()
			}
			var ratios, tf, tl []float64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var f, l float64
				if i%2 == 0 {
					f = timed(full, i+1)
					l = timed(adapted, i+1)
				} else {
					l = timed(adapted, i+1)
					f = timed(full, i+1)
				}
				ratios, tf, tl = append(ratios, f/l), append(tf, f), append(tl, l)
			}
			b.ReportMetric(median(ratios), "full/lora")
			b.ReportMetric(median(tf)*1e3, "full-ms")
			b.ReportMetric(median(tl)*1e3, "lora-ms")
		})
	}
}

func median(x []float64) float64 {
	s := slices.Sorted(slices.Values(x))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// smallTrainStep builds the `small` model, full (r = 0) or with rank-r adapters, and returns
// its training step i at batch 4×512 (forward, loss, backward, clipping, AdamW).
func smallTrainStep(b *testing.B, bf16 bool, r int, dropout float64) func(i int) {
	cfg, err := layers.LoadConfig("../recipes/models/small.json")
	if err != nil {
		b.Fatal(err)
	}
	m, err := layers.New(*cfg)
	if err != nil {
		b.Fatal(err)
	}
	m.InitRandom(1, 0.02)
	m.BF16 = bf16
	params := m.Params()
	var set *lora.Set
	if r > 0 {
		lc := lora.DefaultConfig()
		lc.R, lc.Alpha, lc.Dropout = r, float64(2*r), dropout
		if set, err = lora.Attach(m, lc, 1); err != nil {
			b.Fatal(err)
		}
		if m.BF16 {
			m.UseBF16Weights()
			if err := m.DropFP32Weights(); err != nil {
				b.Fatal(err)
			}
		}
		params = set.Params()
	}
	const B, T = 4, 512
	ids := make([]int32, B*T)
	for i := range ids {
		ids[i] = int32((i*7919 + 13) % cfg.VocabSize)
	}
	targets := layers.CausalTargets(ids, B, T)
	opt := optim.NewAdamW(0.9, 0.95, 1e-8, 0.1)
	tp := autograd.NewTape()
	return func(i int) {
		if set != nil {
			set.Train(i, 0) // the step's dropout masks
		}
		out := m.Forward(tp, layers.Input{IDs: ids, B: B, T: T, SkipLMHead: true})
		loss, _, _ := m.CrossEntropy(tp, out.Hidden, targets, 0)
		tp.Backward(loss)
		_, coef := optim.ClipCoef(params, 1.0)
		opt.UpdateScaled(params, 1e-4, coef)
		optim.ZeroGrad(params)
	}
}
