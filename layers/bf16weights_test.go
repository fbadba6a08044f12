package layers_test

import (
	"testing"

	"github.com/gwen-ml/gwen/autograd"
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
