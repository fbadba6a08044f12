package layers_test

import (
	"slices"
	"testing"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/internal/golden"
	"github.com/gwen-ml/gwen/layers"
)

// A tape-less forward runs on a pooled inference tape, block by block, but its logits are the
// caller's: equal to a recording forward's, bit for bit, and untouched by the next forward.
func TestTapelessForwardOwnsItsOutputs(t *testing.T) {
	for _, bf16 := range []bool{false, true} {
		m, err := layers.Load(golden.Dir("tiny-dense"))
		if err != nil {
			t.Fatal(err)
		}
		m.BF16 = bf16
		g, err := golden.Open("tiny-dense")
		if err != nil {
			t.Fatal(err)
		}
		ids := g.I32("input_ids")
		shape := g.Shape("input_ids")
		in := layers.Input{IDs: ids, B: shape[0], T: shape[1]}
		want := slices.Clone(m.Forward(autograd.NewTape(), in).Logits.Data)
		first := m.Forward(nil, in).Logits
		if !slices.Equal(first.Data, want) {
			t.Fatalf("bf16=%v: tape-less logits differ from a recording forward's", bf16)
		}
		other := slices.Clone(ids)
		for i := range other {
			other[i] = (other[i] + 7) % int32(m.Config.VocabSize)
		}
		second := m.Forward(nil, layers.Input{IDs: other, B: shape[0], T: shape[1]}).Logits
		if !slices.Equal(first.Data, want) {
			t.Fatalf("bf16=%v: a second tape-less forward changed the first one's logits", bf16)
		}
		if slices.Equal(second.Data, want) {
			t.Fatalf("bf16=%v: other tokens gave the same logits", bf16)
		}
	}
}
