package generate_test

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gwen-ml/gwen/generate"
)

func near(t *testing.T, name string, d generate.Dist, ids []int32, p []float64) {
	t.Helper()
	if !slices.Equal(d.IDs, ids) {
		t.Errorf("%s: ids %v, want %v", name, d.IDs, ids)
		return
	}
	for i := range p {
		if math.Abs(d.P[i]-p[i]) > 1e-6 {
			t.Errorf("%s: p %v, want %v", name, d.P, p)
			return
		}
	}
}

// Hand-computed: softmax([1,2,3,0]) = [0.087144, 0.236883, 0.643914, 0.032059].
func TestSamplingProcessors(t *testing.T) {
	l := []float32{1, 2, 3, 0}
	near(t, "T=1", generate.Sampling{Temperature: 1}.Dist(l, nil),
		[]int32{2, 1, 0, 3}, []float64{0.643914, 0.236883, 0.087144, 0.032059})
	// top_p 0.8: the tail {0, 3} holds 0.119 <= 0.2 and goes; adding 1 makes 0.356 > 0.2.
	// The survivors renormalise to sigmoid(±1).
	near(t, "top_p", generate.Sampling{Temperature: 1, TopP: 0.8}.Dist(l, nil),
		[]int32{2, 1}, []float64{0.731059, 0.268941})
	// top_p 0.6: 0.644 alone is enough (the tail without it, 0.356, is <= 0.4).
	near(t, "top_p small", generate.Sampling{Temperature: 1, TopP: 0.6}.Dist(l, nil), []int32{2}, []float64{1})
	// min_p 0.2: the cut is 0.2·0.644 = 0.129; 0.087 and 0.032 fall.
	near(t, "min_p", generate.Sampling{Temperature: 1, MinP: 0.2}.Dist(l, nil),
		[]int32{2, 1}, []float64{0.731059, 0.268941})
	// temperature 2 on [0, ln 4]: [1, 2]/3.
	near(t, "T=2", generate.Sampling{Temperature: 2}.Dist([]float32{0, float32(math.Log(4))}, nil),
		[]int32{1, 0}, []float64{2.0 / 3, 1.0 / 3})
	// top_k 2 with a three-way tie at the top: all three kept, as transformers' `<` threshold.
	near(t, "top_k ties", generate.Sampling{Temperature: 1, TopK: 2}.Dist([]float32{5, 1, 5, 5, 0}, nil),
		[]int32{0, 2, 3}, []float64{1.0 / 3, 1.0 / 3, 1.0 / 3})
	near(t, "top_k", generate.Sampling{Temperature: 1, TopK: 2}.Dist(l, nil),
		[]int32{2, 1}, []float64{0.731059, 0.268941})
	// Greedy: first index on ties.
	near(t, "greedy", generate.Sampling{}.Dist([]float32{1, 4, 4, 2}, nil), []int32{1}, []float64{1})
	// Repetition penalty 2: a seen positive logit halves (2 → 1 < 1.5), a seen negative one
	// doubles (−1 → −2 < −1.5); a token seen twice is penalised once.
	near(t, "rep +", generate.Sampling{RepetitionPenalty: 2}.Dist([]float32{2, 1.5, -1}, []int32{0, 0}), []int32{1}, []float64{1})
	near(t, "rep -", generate.Sampling{RepetitionPenalty: 2}.Dist([]float32{-1, -1.5}, []int32{0}), []int32{1}, []float64{1})
	near(t, "rep sampled", generate.Sampling{Temperature: 1, RepetitionPenalty: 2}.Dist([]float32{2, 1}, []int32{0, 0, 0}),
		[]int32{0, 1}, []float64{0.5, 0.5})

	for _, bad := range []generate.Sampling{{Temperature: -1}, {TopP: 1.5}, {MinP: -0.1}, {TopK: -2}, {RepetitionPenalty: -1}} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestDistSample(t *testing.T) {
	d := generate.Dist{IDs: []int32{7, 3, 9}, P: []float64{0.5, 0.3, 0.2}}
	for _, c := range []struct {
		u    float64
		want int32
	}{{0, 7}, {0.49, 7}, {0.5, 3}, {0.79, 3}, {0.8, 9}, {0.999999, 9}} {
		if got := d.Sample(c.u); got != c.want {
			t.Errorf("Sample(%g) = %d, want %d", c.u, got, c.want)
		}
	}
	if d.Prob(3) != 0.3 || d.Prob(4) != 0 {
		t.Errorf("Prob: %g, %g", d.Prob(3), d.Prob(4))
	}
}

// The radix sort of a whole vocabulary orders ids exactly as the stable comparison sort does,
// ties (many, as at a masked or a repeated score) in id order.
func TestSortByScoreMatchesStableSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	scores := make([]float32, 151936)
	for i := range scores {
		switch r.IntN(4) {
		case 0:
			scores[i] = float32(r.IntN(5)) - 2 // ties, and ±0
		case 1:
			scores[i] = float32(math.Inf(-1))
		default:
			scores[i] = float32(r.NormFloat64() * 10)
		}
	}
	scores[7] = float32(math.Copysign(0, -1))
	scores[9] = float32(math.NaN())
	d := generate.Sampling{Temperature: 1}.Dist(scores, nil)
	want := make([]int32, len(scores))
	for i := range want {
		want[i] = int32(i)
	}
	slices.SortStableFunc(want, func(a, b int32) int { return cmp.Compare(scores[b], scores[a]) })
	if !slices.Equal(d.IDs, want) {
		for i := range want {
			if d.IDs[i] != want[i] {
				t.Fatalf("position %d: id %d (score %v), want %d (score %v)", i, d.IDs[i], scores[d.IDs[i]], want[i], scores[want[i]])
			}
		}
	}
}
