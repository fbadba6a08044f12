package moe

import (
	"fmt"
	"math"

	"github.com/gwen-ml/gwen/kernels"
)

// Routing is how one forward sent N tokens to K of E experts, and the grouped order of the
// M = N·K token-slots: sorted by expert (a counting sort), tokens in order within an expert, so
// that each expert's rows are contiguous and take one GEMM.
type Routing struct {
	N, E, K int
	Probs   []float32 // [N, E] softmax of the router logits, fp32
	Experts []int32   // [N, K] chosen experts by decreasing probability (ties: lower index first)
	Weights []float32 // [N, K] mixing weights: the chosen probabilities, renormalised when asked
	Counts  []int     // [E] token-slots per expert
	norm    bool      // Weights were renormalised over the K

	offsets  []int   // [E+1] first grouped row of each expert
	rowToken []int32 // [M] token of each grouped row
	rowSlot  []int32 // [M] slot n·K+j of each grouped row
	slotRow  []int32 // [M] grouped row of slot n·K+j
}

// softmaxRow writes p = softmax(l) with the exponentials and sum in float64, stored fp32.
func softmaxRow(p, l []float32) {
	m := l[0]
	for _, v := range l[1:] {
		m = max(m, v)
	}
	var s float64
	for i, v := range l {
		e := math.Exp(float64(v - m))
		p[i] = float32(e)
		s += e
	}
	inv := 1 / s
	for i := range p {
		p[i] = float32(float64(p[i]) * inv)
	}
}

// chooseTopK writes into idx the k largest entries of p, largest first. Equal values keep the lower
// index first (torch.topk documents no order for ties; this is the deterministic choice).
func chooseTopK(idx []int32, p []float32) {
	k := len(idx)
	n := 0
	for e, v := range p {
		if n == k && v <= p[idx[k-1]] {
			continue
		}
		i := min(n, k-1) // insertion point: after every kept value >= v
		for i > 0 && p[idx[i-1]] < v {
			i--
		}
		if n < k {
			n++
		}
		copy(idx[i+1:n], idx[i:n-1])
		idx[i] = int32(e)
	}
}

// route computes the routing of logits [n, e] to the top k experts.
func route(logits []float32, n, e, k int, norm bool) *Routing {
	if e <= 0 || k <= 0 || k > e || len(logits) != n*e {
		panic(fmt.Sprintf("moe.route: %d logits for N=%d E=%d, K=%d", len(logits), n, e, k))
	}
	r := &Routing{N: n, E: e, K: k, norm: norm,
		Probs: make([]float32, n*e), Experts: make([]int32, n*k), Weights: make([]float32, n*k),
		Counts: make([]int, e), offsets: make([]int, e+1),
		rowToken: make([]int32, n*k), rowSlot: make([]int32, n*k), slotRow: make([]int32, n*k)}
	kernels.Parallel(n, 256, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			p := r.Probs[t*e : (t+1)*e]
			softmaxRow(p, logits[t*e:(t+1)*e])
			idx := r.Experts[t*k : (t+1)*k]
			chooseTopK(idx, p)
			w := r.Weights[t*k : (t+1)*k]
			var s float32
			for j, x := range idx {
				w[j] = p[x]
				s += w[j]
			}
			if norm {
				for j := range w {
					w[j] /= s
				}
			}
		}
	})
	for _, x := range r.Experts {
		r.Counts[x]++
	}
	for i, c := range r.Counts {
		r.offsets[i+1] = r.offsets[i] + c
	}
	next := make([]int, e)
	copy(next, r.offsets[:e])
	for slot, x := range r.Experts {
		row := next[x]
		next[x]++
		r.rowToken[row] = int32(slot / k)
		r.rowSlot[row] = int32(slot)
		r.slotRow[slot] = int32(row)
	}
	return r
}

// balance is the load-balancing loss of this routing alone (see LoadBalancingLoss).
func (r *Routing) balance() float64 {
	if r.N == 0 {
		return 0
	}
	var s float64
	for e := 0; e < r.E; e++ {
		var pe float64
		for t := 0; t < r.N; t++ {
			pe += float64(r.Probs[t*r.E+e])
		}
		s += float64(r.Counts[e]) * pe
	}
	return s * float64(r.E) / (float64(r.N) * float64(r.N))
}
