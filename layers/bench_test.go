package layers_test

import (
	"testing"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/optim"
)

// smallConfig is the `small` model of ../shared/bench/bench_torch.py.
func smallConfig() layers.Config {
	return layers.Config{ModelType: "qwen3", VocabSize: 8192, HiddenSize: 512, IntermediateSize: 1536,
		NumHiddenLayers: 8, NumAttentionHeads: 8, NumKeyValueHeads: 4, HeadDim: 64,
		TieWordEmbeddings: true, RopeTheta: 1e6, MaxPositionEmbeddings: 4096, RMSNormEps: 1e-6}
}

// BenchmarkTrainStepSmall is one training step as bench_torch.py times it: batch 4×512,
// forward, causal-LM loss, backward, clip to 1.0, AdamW (lr 1e-4, betas 0.9/0.95, wd 0.1).
func BenchmarkTrainStepSmall(b *testing.B) {
	for _, mode := range []string{"f32", "bf16"} {
		b.Run(mode, func(b *testing.B) {
			m, err := layers.New(smallConfig())
			if err != nil {
				b.Fatal(err)
			}
			m.InitRandom(1, 0.02)
			m.BF16 = mode == "bf16"
			const B, T = 4, 512
			ids := make([]int32, B*T)
			for i := range ids {
				ids[i] = int32((i*7919 + 13) % 8192)
			}
			targets := layers.CausalTargets(ids, B, T)
			params := m.Params()
			opt := optim.NewAdamW(0.9, 0.95, 1e-8, 0.1)
			tp := autograd.NewTape() // one tape for every step: it recycles the activations' memory
			step := func() {
				out := m.Forward(tp, layers.Input{IDs: ids, B: B, T: T, SkipLMHead: true})
				loss, _, _ := m.CrossEntropy(tp, out.Hidden, targets, 0) // the trainer's loss: no logits held
				tp.Backward(loss)
				_, coef := optim.ClipCoef(params, 1.0) // clipping fused into the update
				opt.UpdateScaled(params, 1e-4, coef)
				optim.ZeroGrad(params)
			}
			step() // warm-up: allocate optimizer state and gradient buffers
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				step()
			}
			b.ReportMetric(float64(B*T*b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
