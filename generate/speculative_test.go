package generate_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gwen-ml/gwen/generate"
	"github.com/gwen-ml/gwen/internal/golden"
	"github.com/gwen-ml/gwen/layers"
)

// perturbedDraft writes a copy of m with N(0, σ²) noise on every weight to a temporary folder
// and loads it back, as a user would point --draft at a folder.
func perturbedDraft(t *testing.T, m *layers.Model, sigma float64, seed uint64) *layers.Model {
	t.Helper()
	c, err := layers.New(m.Config)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 1))
	src := m.Params()
	for i, p := range c.Params() {
		for j, v := range src[i].Data {
			p.Data[j] = v + float32(r.NormFloat64()*sigma)
		}
	}
	dir := t.TempDir()
	if err := c.Save(dir, "F32", 0); err != nil {
		t.Fatal(err)
	}
	d, err := layers.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Greedy speculative decoding gives plain greedy's tokens, whatever the draft proposes.
func TestSpeculativeGreedyIdentical(t *testing.T) {
	gold, g := loadGolden(t, "tiny-dense")
	random, _ := layers.Load(golden.Dir("tiny-dense"))
	random.InitRandom(11, 0.2) // varied continuations: the golden weights repeat one token
	cases := []struct {
		name          string
		target, draft *layers.Model
		prompt        []int32
		k             int
		minRate       float64
	}{
		{"golden, same model as draft", gold, gold, g.I32("gen.prompt_ids"), 4, 1},
		{"golden, perturbed draft", gold, perturbedDraft(t, gold, 0.01, 1), g.I32("gen.prompt_ids"), 3, 0},
		{"random, same model", random, random, []int32{400, 401, 2, 3}, 5, 1},
		{"random, perturbed 0.005", random, perturbedDraft(t, random, 0.005, 2), []int32{400, 401, 2, 3}, 4, 0},
		{"random, perturbed 0.05", random, perturbedDraft(t, random, 0.05, 3), []int32{7}, 2, 0},
	}
	for _, c := range cases {
		const n = 30
		want, err := generate.Generate(c.target, [][]int32{c.prompt}, generate.Options{MaxNewTokens: n})
		if err != nil {
			t.Fatal(err)
		}
		got, st, err := generate.Speculative(c.target, c.draft, c.prompt, c.k, generate.Options{MaxNewTokens: n})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.IDs, want[0].IDs) {
			t.Errorf("%s: speculative %v, greedy %v", c.name, got.IDs, want[0].IDs)
		}
		if st.AcceptanceRate() < c.minRate {
			t.Errorf("%s: acceptance %.2f, want >= %.2f", c.name, st.AcceptanceRate(), c.minRate)
		}
		t.Logf("%s (k=%d): acceptance %.2f (%d/%d), %d target forwards for %d tokens (plain greedy: %d)",
			c.name, c.k, st.AcceptanceRate(), st.Accepted, st.Proposed, st.TargetForwards, n, n)
	}
	// With a thinking budget and a stop id, greedy speculative still equals plain greedy.
	draft := perturbedDraft(t, random, 0.005, 4)
	prompt := []int32{5, 6, 500, 7}
	free, _ := generate.Generate(random, [][]int32{prompt}, generate.Options{MaxNewTokens: 20})
	o := generate.Options{MaxNewTokens: 20, ThinkingBudget: 3, ThinkStart: 500, ThinkEnd: 501, StopIDs: []int32{free[0].IDs[9]}}
	want, _ := generate.Generate(random, [][]int32{prompt}, o)
	got, _, err := generate.Speculative(random, draft, prompt, 3, o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.IDs, want[0].IDs) || got.Reason != want[0].Reason || want[0].IDs[3] != 501 {
		t.Errorf("budget and stop id: speculative %v (%s), greedy %v (%s)", got.IDs, got.Reason, want[0].IDs, want[0].Reason)
	}
	if _, _, err := generate.Speculative(gold, gold, []int32{1}, 0, generate.Options{MaxNewTokens: 3}); err == nil {
		t.Error("k = 0 accepted")
	}
}

// microConfig has a vocabulary small enough for a chi-square over token pairs.
func microConfig() layers.Config {
	return layers.Config{ModelType: "qwen3", VocabSize: 6, HiddenSize: 16, IntermediateSize: 24,
		NumHiddenLayers: 1, NumAttentionHeads: 2, NumKeyValueHeads: 1, HeadDim: 8,
		TieWordEmbeddings: false, RopeTheta: 10000, MaxPositionEmbeddings: 64, RMSNormEps: 1e-6}
}

// chiSquare compares counts with expected probabilities (cells expecting fewer than 5 pooled).
func chiSquare(counts []int, p []float64, n int) (chi float64, dof int) {
	var poolO, poolE float64
	for i, c := range counts {
		e := p[i] * float64(n)
		if e < 5 {
			poolO += float64(c)
			poolE += e
			continue
		}
		chi += (float64(c) - e) * (float64(c) - e) / e
		dof++
	}
	if poolE > 0 {
		chi += (poolO - poolE) * (poolO - poolE) / poolE
		dof++
	}
	return chi, dof - 1
}

// Speculative sampling keeps the target's distribution: the frequencies of the first two new
// tokens over many seeds match the target's exact joint probabilities (computed from the
// training forward), while sampling the draft alone does not.
func TestSpeculativeSamplingPreservesDistribution(t *testing.T) {
	target, err := layers.New(microConfig())
	if err != nil {
		t.Fatal(err)
	}
	target.InitRandom(5, 0.5)
	draft := perturbedDraft(t, target, 0.4, 6) // a rough copy: some acceptances, many rejections
	prompt := []int32{1, 4, 2}
	V := 6
	for _, s := range []generate.Sampling{{Temperature: 1}, {Temperature: 0.8, TopP: 0.9}} {
		// Exact joint law of (t1, t2) under the target with these processors.
		probs := func(m *layers.Model, seq []int32) generate.Dist {
			l := m.Forward(nil, layers.Input{IDs: seq, B: 1, T: len(seq)}).Logits.Data
			return s.Dist(l[(len(seq)-1)*V:], seq)
		}
		joint := func(m *layers.Model) []float64 {
			p := make([]float64, V*V)
			p1 := probs(m, prompt)
			for i, a := range p1.IDs {
				p2 := probs(m, append(slices.Clone(prompt), a))
				for j, b := range p2.IDs {
					p[int(a)*V+int(b)] += p1.P[i] * p2.P[j]
				}
			}
			return p
		}
		want := joint(target)
		const n = 4000
		spec, plainDraft := make([]int, V*V), make([]int, V*V)
		var st generate.SpecStats
		for seed := uint64(0); seed < n; seed++ {
			o := generate.Options{Sampling: s, MaxNewTokens: 2, Seed: seed}
			res, s1, err := generate.Speculative(target, draft, prompt, 3, o)
			if err != nil {
				t.Fatal(err)
			}
			st.Accepted += s1.Accepted
			st.Proposed += s1.Proposed
			spec[int(res.IDs[0])*V+int(res.IDs[1])]++
			d, _ := generate.Generate(draft, [][]int32{prompt}, o)
			plainDraft[int(d[0].IDs[0])*V+int(d[0].IDs[1])]++
		}
		chi, dof := chiSquare(spec, want, n)
		// dof ≈ 20-35: the 1e-6 quantile lies below 3·dof+20.
		if bound := 3*float64(dof) + 20; chi > bound {
			t.Errorf("%+v: speculative frequencies vs target: chi² %.1f with %d dof (bound %.0f)", s, chi, dof, bound)
		} else {
			t.Logf("%+v: speculative vs target chi² %.1f, %d dof; acceptance %.2f", s, chi, dof, st.AcceptanceRate())
		}
		// The test has power: the draft's own samples fail it.
		if chiD, dofD := chiSquare(plainDraft, want, n); chiD < 10*(3*float64(dofD)+20) {
			t.Errorf("draft-only sampling passes as the target (chi² %.1f, %d dof): the test cannot tell", chiD, dofD)
		} else {
			t.Logf("draft alone vs target: chi² %.1f, %d dof", chiD, dofD)
		}
		if r := st.AcceptanceRate(); r < 0.05 || r > 0.95 {
			t.Errorf("acceptance %.2f: the draft should be accepted sometimes and rejected sometimes", r)
		}
		if math.IsNaN(chi) {
			t.Fatal("chi² is NaN")
		}
	}
}
