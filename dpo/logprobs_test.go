package dpo_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/dpo"
)

// refLogProbs is the definition in float64: for each row, Σ over t ≥ 1 with response[t] of
// log_softmax(logits[t−1])[ids[t]], divided by the count when normalize.
func refLogProbs(logits []float64, ids []int32, response []bool, rows, t, v int, normalize bool) []float64 {
	out := make([]float64, rows)
	for r := 0; r < rows; r++ {
		n := 0
		for j := 1; j < t; j++ {
			if !response[r*t+j] {
				continue
			}
			row := logits[(r*t+j-1)*v : (r*t+j)*v]
			m := slices.Max(row)
			s := 0.0
			for _, x := range row {
				s += math.Exp(x - m)
			}
			out[r] += row[ids[r*t+j]] - m - math.Log(s)
			n++
		}
		if normalize && n > 0 {
			out[r] /= float64(n)
		}
	}
	return out
}

// A batch of 3 rows of 7 tokens over 11 symbols: row 0 a prompt of 3 then a response of 4;
// row 1 a prompt of 2, a response of 3, then padding; row 2 no response at all.
func logprobCase() (logits []float32, ids []int32, response []bool, rows, t, v int) {
	rows, t, v = 3, 7, 11
	rng := rand.New(rand.NewPCG(1, 2))
	logits = make([]float32, rows*t*v)
	for i := range logits {
		logits[i] = float32(rng.NormFloat64() * 2)
	}
	ids = make([]int32, rows*t)
	for i := range ids {
		ids[i] = int32(rng.IntN(v))
	}
	response = make([]bool, rows*t)
	for j := 3; j < 7; j++ {
		response[j] = true
	}
	for j := 2; j < 5; j++ {
		response[t+j] = true
	}
	return
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func TestSequenceLogProbsForward(t *testing.T) {
	logits, ids, resp, rows, T, v := logprobCase()
	for _, norm := range []bool{false, true} {
		want := refLogProbs(f64(logits), ids, resp, rows, T, v, norm)
		lp := dpo.SequenceLogProbs(nil, autograd.New(slices.Clone(logits), rows, T, v), ids, resp, rows, T, norm)
		if !slices.Equal(lp.Tokens, []int{4, 3, 0}) {
			t.Errorf("tokens %v, want [4 3 0]", lp.Tokens)
		}
		for r := range want {
			if math.Abs(lp.Values[r]-want[r]) > 1e-5 || math.Abs(float64(lp.Tensor.Data[r])-want[r]) > 1e-5 {
				t.Errorf("normalize %v, row %d: %v (tensor %v), want %v", norm, r, lp.Values[r], lp.Tensor.Data[r], want[r])
			}
		}
		if lp.Values[2] != 0 {
			t.Errorf("a row without response tokens has log-prob %v", lp.Values[2])
		}
	}
	// Changing a prompt or padding token's id, or any logit that no response token reads,
	// changes nothing; the last position's logits are never read.
	lp0 := dpo.SequenceLogProbs(nil, autograd.New(slices.Clone(logits), rows, T, v), ids, resp, rows, T, false).Values
	ids2, logits2 := slices.Clone(ids), slices.Clone(logits)
	ids2[1], ids2[T+6] = (ids2[1]+1)%int32(v), (ids2[T+6]+1)%int32(v)
	for k := 0; k < v; k++ {
		logits2[(T-1)*v+k] += 3     // row 0, last position
		logits2[(T+5)*v+k] -= 1     // row 1, predicts the padding token 6
		logits2[(2*T+2)*v+k] *= 0.5 // row 2: no response
	}
	lp1 := dpo.SequenceLogProbs(nil, autograd.New(logits2, rows, T, v), ids2, resp, rows, T, false).Values
	if !slices.Equal(lp0, lp1) {
		t.Errorf("prompt or padding changed the log-probs: %v, then %v", lp0, lp1)
	}
}

// The backward against central finite differences of the float64 definition, for
// L = Σ_r w_r·logp_r, with and without normalising, and added to a gradient the logits
// already hold.
func TestSequenceLogProbsBackward(t *testing.T) {
	logits, ids, resp, rows, T, v := logprobCase()
	w := []float32{0.7, -1.3, 2}
	for _, c := range []struct {
		norm, prior bool
	}{{false, false}, {true, false}, {false, true}} {
		x := autograd.Param("logits", slices.Clone(logits), rows, T, v)
		var prior []float32
		if c.prior {
			prior = make([]float32, len(logits))
			for i := range prior {
				prior[i] = float32(i%5) * 0.1
			}
			x.SetGrad(slices.Clone(prior))
		}
		tp := autograd.NewTape()
		lp := dpo.SequenceLogProbs(tp, x, ids, resp, rows, T, c.norm)
		tp.BackwardFrom(lp.Tensor, w)
		g := x.Grad()
		base := f64(logits)
		const eps = 1e-4
		worst := 0.0
		for i := range base {
			keep := base[i]
			base[i] = keep + eps
			up := refLogProbs(base, ids, resp, rows, T, v, c.norm)
			base[i] = keep - eps
			dn := refLogProbs(base, ids, resp, rows, T, v, c.norm)
			base[i] = keep
			fd := 0.0
			for r := range up {
				fd += float64(w[r]) * (up[r] - dn[r]) / (2 * eps)
			}
			if c.prior {
				fd += float64(prior[i])
			}
			worst = max(worst, math.Abs(float64(g[i])-fd))
		}
		if worst > 1e-5 {
			t.Errorf("normalize %v, prior gradient %v: max |grad − finite difference| %.3g", c.norm, c.prior, worst)
		}
	}
}
