package moe_test

import (
	"math"
	"os"
	"slices"
	"testing"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/internal/golden"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/moe"
)

// tiny-moe (testdata/golden, from the independent float64 PyTorch implementation): 3 layers,
// layer 0 dense (mlp_only_layers), layers 1 and 2 sparse with 8 experts, top-2, renormalised.
func TestGoldenTinyMoE(t *testing.T) {
	dir := golden.Dir("tiny-moe")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("golden folder %s is absent: %v", dir, err)
	}
	m, err := layers.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	g, err := golden.Open("tiny-moe")
	if err != nil {
		t.Fatal(err)
	}
	ids, labels := g.I32("input_ids"), g.I32("labels")
	shape := g.Shape("input_ids")
	b, tt := shape[0], shape[1]
	tp := autograd.NewTape()
	out := m.Forward(tp, layers.Input{IDs: ids, B: b, T: tt})

	if d := golden.Compare(out.Logits.Data, g.F32("logits"), 1e-4); d.Max > 1e-4 {
		t.Errorf("logits: %v", d)
	}
	// sparse_layers [1, 2]: the router logits come out in layer order.
	var sparse []int
	for i, blk := range m.Blocks {
		if blk.Sparse != nil {
			sparse = append(sparse, i)
		}
	}
	if len(sparse) != 2 || sparse[0] != 1 || sparse[1] != 2 || len(out.RouterLogits) != 2 {
		t.Fatalf("sparse layers %v with %d router logits, want [1 2] and 2", sparse, len(out.RouterLogits))
	}
	for i, layer := range sparse {
		name := "router_logits.layer" + string(rune('0'+layer))
		if d := golden.Compare(out.RouterLogits[i].Data, g.F32(name), 1e-5); d.Max > 1e-5 {
			t.Errorf("%s: %v", name, d)
		}
		want := g.I32("router_topk_experts.layer" + string(rune('0'+layer)))
		r := m.Blocks[layer].Sparse.(*moe.Sparse).Routing()
		for j := range want {
			if r.Experts[j] != want[j] {
				t.Errorf("layer %d token %d slot %d: expert %d, want %d", layer, j/2, j%2, r.Experts[j], want[j])
				break
			}
		}
		// the load statistics count the golden choices
		load := make([]int, m.Config.NumExperts)
		for _, e := range want {
			load[e]++
		}
		if st := moe.ModelStats(m)[layer]; !slices.Equal(st.TokensPerExpert, load) || st.MaxLoad != slices.Max(load) || st.MinLoad != slices.Min(load) {
			t.Errorf("layer %d stats %+v, golden loads %v", layer, st, load)
		}
	}

	logits := out.Logits.Reshape(b*tt, m.Config.VocabSize)
	ce, sum, count := autograd.CrossEntropy(tp, logits, layers.CausalTargets(labels, b, tt), 0)
	total, parts := moe.AddRouterLosses(tp, ce, out.RouterLogits, &m.Config, 0)
	ceF64 := sum / float64(count)
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"loss (CE)", ceF64, g.Scalar("loss")},
		{"aux_loss", parts.Aux, g.Scalar("aux_loss")},
		{"total_loss", ceF64 + m.Config.RouterAuxLossCoef*parts.Aux, g.Scalar("total_loss")},
		{"total tensor", float64(total.Data[0]), g.Scalar("total_loss")},
	} {
		if math.Abs(c.got-c.want) > 1e-5 {
			t.Errorf("%s %.9f, want %.9f (diff %.3g)", c.name, c.got, c.want, c.got-c.want)
		}
	}
	if math.Abs(parts.Aux-g.Scalar("aux_loss_if_double_softmax_hf_bug")) < 1e-3 {
		t.Errorf("aux %.6f matches the double-softmax variant", parts.Aux)
	}

	tp.Backward(total)
	for _, p := range m.Params() {
		want := g.F32("grad." + p.Name)
		tol := golden.GradTol(want)
		got := p.Grad()
		if got == nil {
			got = make([]float32, len(p.Data))
		}
		if d := golden.Compare(got, want, tol); d.Max > tol {
			t.Errorf("grad.%s: %v (tolerance %.3g)", p.Name, d, tol)
		}
	}
}
