package layers_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/kernels"
	"github.com/gwen-ml/gwen/layers"
)

func tinyModel(t *testing.T) *layers.Model {
	t.Helper()
	m, err := layers.New(tinyConfig())
	if err != nil {
		t.Fatal(err)
	}
	m.InitRandom(7, 0.3)
	return m
}

// With bfloat16 weights, a prefill then one-token decode steps (GemmBF16, then GemvBF16 on the
// copies) give the logits of a BF16 training forward (a tape: fp32 weights rounded per call) on
// the whole sequence: the same rounded operands, only the fp32 summation order differs.
func TestBF16WeightsDecodeMatchesBF16TrainingForward(t *testing.T) {
	ref := tinyModel(t)
	ref.BF16 = true
	ids := tokens(12, 3)
	want := ref.Forward(autograd.NewTape(), layers.Input{IDs: ids, B: 1, T: len(ids)}).Logits.Data

	m := tinyModel(t)
	m.UseBF16Weights()
	if !m.BF16 {
		t.Fatal("UseBF16Weights left BF16 off")
	}
	V := m.Config.VocabSize
	// A prefill of 5 rows runs on the batched GEMV, one of 10 on the GEMM.
	for _, pre := range []int{5, 10} {
		cache := layers.NewKVCache(&m.Config, 1, len(ids))
		got := m.Forward(nil, layers.Input{IDs: ids[:pre], B: 1, T: pre, Cache: cache}).Logits.Data
		for p := pre; p < len(ids); p++ {
			out := m.Forward(nil, layers.Input{IDs: ids[p : p+1], B: 1, T: 1, Cache: cache}).Logits.Data
			got = append(got, out...)
		}
		for p := range ids {
			if d := maxDiff(got[p*V:(p+1)*V], want[p*V:(p+1)*V]); d > 1e-3 {
				t.Errorf("prefill %d, position %d: max |logit diff| %.3g vs the BF16 training forward", pre, p, d)
			}
		}
	}
	// And the bf16 rule is really in force: the fp32 forward differs by more than that.
	f32 := tinyModel(t).Forward(nil, layers.Input{IDs: ids, B: 1, T: len(ids)}).Logits.Data
	if d := maxDiff(f32, want); d < 1e-3 {
		t.Errorf("fp32 and bf16 logits differ by only %.3g: the test cannot tell them apart", d)
	}
}

// The copies are what a tape-less forward reads (spoiling one changes the logits), while a
// forward with a tape, or with BF16 off, still runs on the fp32 weights, bit for bit.
func TestBF16WeightsOnlyTapelessBF16(t *testing.T) {
	ids := tokens(6, 4)
	in := layers.Input{IDs: ids, B: 1, T: len(ids)}
	plain := tinyModel(t)
	f32 := plain.Forward(nil, in).Logits.Data
	plain.BF16 = true
	bf16Tape := plain.Forward(autograd.NewTape(), in).Logits.Data

	m := tinyModel(t)
	m.UseBF16Weights()
	before := m.Forward(nil, in).Logits.Data
	clear(m.Blocks[0].Attn.Q.WBF16)
	if d := maxDiff(m.Forward(nil, in).Logits.Data, before); d == 0 {
		t.Error("zeroing the bf16 copy of q_proj changed nothing: the copy is not used")
	}
	if d := maxDiff(m.Forward(autograd.NewTape(), in).Logits.Data, bf16Tape); d != 0 {
		t.Errorf("BF16 forward with a tape moved by %.3g: it must use the fp32 weights", d)
	}
	m.BF16 = false
	if d := maxDiff(m.Forward(nil, in).Logits.Data, f32); d != 0 {
		t.Errorf("fp32 forward moved by %.3g with bf16 copies present", d)
	}
}

// freezeProjections makes the dense projection weights frozen (as lora.Attach leaves them)
// and returns the parameters that still train.
func freezeProjections(m *layers.Model) []*autograd.Tensor {
	frozen := map[*autograd.Tensor]bool{}
	for _, b := range m.Blocks {
		for _, l := range []*layers.Linear{&b.Attn.Q, &b.Attn.K, &b.Attn.V, &b.Attn.O, &b.MLP.Gate, &b.MLP.Up, &b.MLP.Down} {
			l.W.RequiresGrad = false
			frozen[l.W] = true
		}
	}
	var train []*autograd.Tensor
	for _, p := range m.Params() {
		if !frozen[p] {
			train = append(train, p)
		}
	}
	return train
}

// A frozen base held in bf16 only (DropFP32Weights) trains what is upstream of it exactly as
// the fp32-held base does in bf16 mode: the same logits and the same gradients of every
// trainable parameter (which reach them through the frozen projections' input gradients).
func TestDropFP32WeightsMatchesBF16Training(t *testing.T) {
	ids := tokens(12, 3)
	run := func(m *layers.Model, train []*autograd.Tensor) ([]float32, [][]float32) {
		tp := autograd.NewTape()
		logits := m.Forward(tp, layers.Input{IDs: ids, B: 1, T: len(ids)}).Logits
		out := append([]float32(nil), logits.Data...)
		loss, _, _ := autograd.CrossEntropy(tp, logits.Reshape(len(ids), m.Config.VocabSize), layers.CausalTargets(ids, 1, len(ids)), 0)
		tp.Backward(loss)
		var gs [][]float32
		for _, p := range train {
			gs = append(gs, append([]float32(nil), p.Grad()...))
		}
		return out, gs
	}
	ref := tinyModel(t)
	ref.BF16 = true
	wantLogits, wantGrads := run(ref, freezeProjections(ref))

	m := tinyModel(t)
	if err := m.DropFP32Weights(); err == nil || !strings.Contains(err.Error(), "UseBF16Weights") {
		t.Errorf("DropFP32Weights before UseBF16Weights: %v", err)
	}
	m.UseBF16Weights()
	if err := m.DropFP32Weights(); err == nil || !strings.Contains(err.Error(), "is trainable") {
		t.Errorf("DropFP32Weights on trainable weights: %v", err)
	}
	train := freezeProjections(m)
	if err := m.DropFP32Weights(); err != nil {
		t.Fatal(err)
	}
	if m.Blocks[0].Attn.Q.W.Data != nil {
		t.Fatal("the fp32 weights are still held")
	}
	// Tape-less (generation, DPO reference) on the bits equals the bf16 inference copies' forward.
	kept := tinyModel(t)
	kept.UseBF16Weights()
	in := layers.Input{IDs: ids, B: 1, T: len(ids)}
	if !slices.Equal(m.Forward(nil, in).Logits.Data, kept.Forward(nil, in).Logits.Data) {
		t.Errorf("tape-less logits differ once the fp32 weights are dropped")
	}
	gotLogits, gotGrads := run(m, train)
	if !slices.Equal(gotLogits, wantLogits) {
		t.Errorf("logits differ from the fp32-held base's in bf16 mode")
	}
	for i, p := range train {
		if len(wantGrads[i]) == 0 || !slices.Equal(gotGrads[i], wantGrads[i]) {
			t.Errorf("%s: gradient differs (or is missing) with the base held in bf16 only", p.Name)
		}
	}
}

// A frozen embedding (and lm_head) is dropped too and looked up in bits: for a model of
// bfloat16 values (a bf16 checkpoint), the tape-less logits, the training logits and the norm
// weights' gradients equal those of the same model held in fp32 in bf16 mode, to the bit; with
// the fused loss as well.
func TestDropFP32WeightsHoldsFrozenEmbeddingInBits(t *testing.T) {
	ids := tokens(12, 5)
	in := layers.Input{IDs: ids, B: 1, T: len(ids)}
	targets := layers.CausalTargets(ids, 1, len(ids))
	build := func(drop bool) (*layers.Model, []*autograd.Tensor) {
		m := tinyModel(t)
		kernels.RoundBF16(m.Embed.Data, m.Embed.Data)
		train := freezeProjections(m)
		m.Embed.RequiresGrad = false
		train = slices.DeleteFunc(train, func(p *autograd.Tensor) bool { return p == m.Embed })
		m.BF16 = true
		if drop {
			m.UseBF16Weights()
			if err := m.DropFP32Weights(); err != nil {
				t.Fatal(err)
			}
			if m.Embed.Data != nil {
				t.Fatal("the frozen embedding is still held in fp32")
			}
		}
		return m, train
	}
	run := func(m *layers.Model, train []*autograd.Tensor, fused bool) (logitsOrLoss []float32, grads [][]float32) {
		tp := autograd.NewTape()
		var loss *autograd.Tensor
		if fused {
			out := m.Forward(tp, layers.Input{IDs: ids, B: 1, T: len(ids), SkipLMHead: true})
			loss, _, _ = m.CrossEntropy(tp, out.Hidden, targets, 0)
			logitsOrLoss = []float32{loss.Data[0]}
		} else {
			logits := m.Forward(tp, in).Logits
			logitsOrLoss = slices.Clone(logits.Data)
			loss, _, _ = autograd.CrossEntropy(tp, logits.Reshape(len(ids), m.Config.VocabSize), targets, 0)
		}
		tp.Backward(loss)
		for _, p := range train {
			grads = append(grads, slices.Clone(p.Grad()))
			p.ZeroGrad()
		}
		return logitsOrLoss, grads
	}
	ref, refTrain := build(false)
	m, train := build(true)
	kept, _ := build(false)
	kept.UseBF16Weights()
	if !slices.Equal(m.Forward(nil, in).Logits.Data, kept.Forward(nil, in).Logits.Data) {
		t.Errorf("tape-less logits differ once the embedding is held in bits")
	}
	for _, fused := range []bool{false, true} {
		want, wantGrads := run(ref, refTrain, fused)
		got, gotGrads := run(m, train, fused)
		if !slices.Equal(got, want) {
			t.Errorf("fused %v: logits or loss differ with the embedding in bits", fused)
		}
		for i := range wantGrads {
			if len(wantGrads[i]) == 0 || !slices.Equal(gotGrads[i], wantGrads[i]) {
				t.Errorf("fused %v: %s's gradient differs with the embedding in bits", fused, train[i].Name)
			}
		}
	}
}
