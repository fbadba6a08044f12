package dpo

import (
	"fmt"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/kernels"
)

// Shapes: R rows (B of a batch), T tokens per row, V the vocabulary.

// LogProbs are the per-row log-probabilities of the response tokens of a batch.
type LogProbs struct {
	// Tensor [R] is on the tape when the logits were: its gradient flows back into the logits.
	Tensor *autograd.Tensor
	// Values are the same numbers kept in float64 (Tensor rounds them to float32): the losses
	// and statistics are computed from these.
	Values []float64
	// Tokens counts each row's response tokens.
	Tokens []int
}

// SequenceLogProbs is the op logits [R, T, V], ids [R·T], response [R·T] → [R]: for each row,
// the sum over the tokens t ≥ 1 with response[t] of log_softmax(logits[t−1])[ids[t]]; with
// normalize, that sum divided by the row's count of such tokens (0 for a row that has none).
// Prompt and padding tokens (response false) count for nothing, and a row's first token never
// counts (nothing predicts it).
//
// Forward keeps the log-sum-exp of each scored position (R·T floats); backward writes
// dlogits = −g_r/n_r·(softmax − onehot(target)) on scored positions and 0 elsewhere, over the
// logits' own memory when nothing else has given them a gradient, as autograd.CrossEntropy
// does: read the logits before Backward, and let no other op read them in backward.
func SequenceLogProbs(tp *autograd.Tape, logits *autograd.Tensor, ids []int32, response []bool, rows, t int, normalize bool) LogProbs {
	n, v := logits.Rows()
	if n != rows*t || len(ids) != n || len(response) != n {
		panic(fmt.Sprintf("dpo.SequenceLogProbs: logits %v, %d ids, %d response flags for %d rows of %d", logits.Shape, len(ids), len(response), rows, t))
	}
	targets := make([]int32, n)
	for r := 0; r < rows; r++ {
		for j := 0; j < t; j++ {
			i := r*t + j
			targets[i] = kernels.IgnoreIndex
			if j+1 < t && response[i+1] {
				targets[i] = ids[i+1]
			}
		}
	}
	lse := tp.Alloc(n)
	lp := LogProbs{Values: make([]float64, rows), Tokens: make([]int, rows)}
	out := tp.NewTensor(rows)
	for r := 0; r < rows; r++ {
		lo, hi := r*t, (r+1)*t
		sum, count := kernels.CrossEntropyForward(lse[lo:hi], logits.Data[lo*v:hi*v], targets[lo:hi], t, v)
		lp.Tokens[r] = count
		if count > 0 {
			lp.Values[r] = -sum
			if normalize {
				lp.Values[r] /= float64(count)
			}
		}
		out.Data[r] = float32(lp.Values[r])
	}
	lp.Tensor = out
	if !tp.Recording(logits) {
		return lp
	}
	out.RequiresGrad = true
	tp.Record(func() {
		g := out.Grad()
		if g == nil {
			return
		}
		dst := logits.Data // common case: take over the logits' memory
		inPlace := logits.Grad() == nil
		if !inPlace {
			dst = tp.Alloc(len(logits.Data))
		}
		for r := 0; r < rows; r++ {
			lo, hi := r*t, (r+1)*t
			scale := -float64(g[r])
			if normalize && lp.Tokens[r] > 0 {
				scale /= float64(lp.Tokens[r])
			}
			kernels.CrossEntropyBackward(dst[lo*v:hi*v], logits.Data[lo*v:hi*v], lse[lo:hi], targets[lo:hi], t, v, float32(scale))
		}
		if inPlace {
			logits.SetGrad(dst)
			return
		}
		gl := logits.GradBuf()
		kernels.Add(gl, gl, dst)
	})
	return lp
}
