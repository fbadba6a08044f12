package generate

import (
	"fmt"

	"github.com/gwen-ml/gwen/layers"
)

// SpecStats counts what speculative decoding did.
type SpecStats struct {
	Rounds         int // draft-then-verify rounds
	Proposed       int // draft tokens proposed
	Accepted       int // draft tokens the target accepted
	TargetForwards int
	DraftForwards  int
}

// AcceptanceRate is Accepted / Proposed.
func (s SpecStats) AcceptanceRate() float64 {
	if s.Proposed == 0 {
		return 0
	}
	return float64(s.Accepted) / float64(s.Proposed)
}

// Speculative generates from target with draft proposing k tokens per round (Leviathan et al.
// 2023, Chen et al. 2023): the draft samples d₁…d_k from its distributions q, the target
// scores them all in one forward giving p, and d_i is accepted with probability
// min(1, p(d_i)/q(d_i)); at the first rejection a token is drawn from norm(max(0, p − q)),
// and after k acceptances one more from p. The output has exactly the target's distribution
// (the same processors apply to p and q), so greedy decoding gives plain greedy's tokens.
// One prompt; the draft must share the target's vocabulary.
func Speculative(target, draft *layers.Model, prompt []int32, k int, o Options) (Result, SpecStats, error) {
	var st SpecStats
	V := target.Config.VocabSize
	if draft.Config.VocabSize != V {
		return Result{}, st, fmt.Errorf("generate: draft vocabulary %d differs from the target's %d", draft.Config.VocabSize, V)
	}
	if k < 1 {
		return Result{}, st, fmt.Errorf("generate: draft tokens per round %d must be >= 1", k)
	}
	if err := o.validate(V); err != nil {
		return Result{}, st, err
	}
	if err := checkPrompt(prompt, 0, V); err != nil {
		return Result{}, st, err
	}
	var res Result
	if o.MaxNewTokens == 0 {
		res.Reason = "length"
		return res, st, nil
	}
	capacity := len(prompt) + o.MaxNewTokens + k + 1
	tc := layers.NewKVCache(&target.Config, 1, capacity)
	dc := layers.NewKVCache(&draft.Config, 1, capacity)
	rng := newRNG(o.Seed, 0)
	seq := append(make([]int32, 0, capacity), prompt...)
	// Invariant: each cache holds a prefix of seq that lacks at least seq's last token.
	if n := len(prompt) - 1; n > 0 {
		target.Forward(nil, layers.Input{IDs: prompt[:n], B: 1, T: n, Cache: tc, KeepLogits: 1})
		draft.Forward(nil, layers.Input{IDs: prompt[:n], B: 1, T: n, Cache: dc, KeepLogits: 1})
		st.TargetForwards++
		st.DraftForwards++
	}
	last := func(logits []float32, row int) []float32 { return logits[row*V : (row+1)*V] }
	for {
		st.Rounds++
		// Draft k tokens, remembering each q.
		base := len(seq)
		drafts := make([]int32, 0, k)
		qs := make([]Dist, 0, k)
		feed := seq[dc.Len:]
		for i := 0; i < k; i++ {
			out := draft.Forward(nil, layers.Input{IDs: feed, B: 1, T: len(feed), Cache: dc, KeepLogits: 1})
			st.DraftForwards++
			q := o.dist(last(out.Logits.Data, 0), seq, len(prompt))
			d := q.IDs[0]
			if len(q.IDs) > 1 {
				d = q.Sample(rng.Float64())
			}
			qs = append(qs, q)
			drafts = append(drafts, d)
			seq = append(seq, d)
			feed = seq[len(seq)-1:]
		}
		st.Proposed += k
		// Verify: the target scores its pending token and the k drafts in one forward.
		feed = seq[tc.Len:]
		// Only the last k+1 rows are scored: the pending token's and the k drafts'.
		out := target.Forward(nil, layers.Input{IDs: feed, B: 1, T: len(feed), Cache: tc, KeepLogits: k + 1})
		st.TargetForwards++
		off := out.Logits.Shape[1] - k - 1 // row of the logits that predict seq[base]
		seq = seq[:base]
		accepted := 0
		var extra int32
		for i := 0; i <= k; i++ {
			row := last(out.Logits.Data, off+i)
			if o.OnLogits != nil {
				o.OnLogits(0, row)
			}
			p := o.dist(row, seq, len(prompt))
			if i == k {
				extra = sample(p, rng.Float64())
				break
			}
			d, q := drafts[i], qs[i]
			pd, qd := p.Prob(d), q.Prob(d)
			if pd >= qd || rng.Float64()*qd < pd {
				accepted++
				seq = append(seq, d)
				continue
			}
			extra = residual(p, q).Sample(rng.Float64())
			break
		}
		st.Accepted += accepted
		seq = append(seq, extra)
		// Emit in order, applying the stop rules token by token.
		for _, tok := range seq[base:] {
			res.IDs = append(res.IDs, tok)
			if o.OnToken != nil {
				o.OnToken(0, tok)
			}
			if why := o.stopped(res.IDs); why != "" {
				res.Reason = why
				return res, st, nil
			}
		}
		// Forget the rejected tail: keep cached slots that hold seq's tokens, minus the last.
		tc.Truncate(len(seq) - 1)
		dc.Truncate(min(dc.Len, len(seq)-1))
	}
}

// sample draws from d, skipping the generator for a one-token distribution.
func sample(d Dist, u float64) int32 {
	if len(d.IDs) == 1 {
		return d.IDs[0]
	}
	return d.Sample(u)
}

// residual is norm(max(0, p − q)); if p ≤ q everywhere (only by rounding, since rejection
// then has probability 0) it is p.
func residual(p, q Dist) Dist {
	var r Dist
	sum := 0.0
	for i, id := range p.IDs {
		if v := p.P[i] - q.Prob(id); v > 0 {
			r.IDs = append(r.IDs, id)
			r.P = append(r.P, v)
			sum += v
		}
	}
	if sum == 0 {
		return p
	}
	for i := range r.P {
		r.P[i] /= sum
	}
	return r
}
