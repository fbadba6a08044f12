package kernels

import (
	"fmt"
	"math"
)

// IgnoreIndex marks a target that contributes no loss (as PyTorch's cross_entropy default).
const IgnoreIndex = -100

// Fused log-softmax cross-entropy over rows of logits [n, v]. Only the per-row log-sum-exp is
// kept; the backward recomputes softmax from it and may overwrite the logits in place.

// CrossEntropyForward writes lse [n] (0 for ignored rows) and returns Σ −log p[target] over
// counted rows (float64) and how many rows were counted (targets ≠ IgnoreIndex). A target
// outside [0, v) that is not IgnoreIndex panics, naming the row.
func CrossEntropyForward(lse []float32, logits []float32, targets []int32, n, v int) (lossSum float64, count int) {
	checkCE("CrossEntropyForward", len(lse), len(logits), targets, n, v)
	parts := rowParts(n, max(1, (1<<16)/v))
	sums := make([]float64, len(parts))
	counts := make([]int, len(parts))
	Parallel(len(parts), 1, func(plo, phi int) {
		for p := plo; p < phi; p++ {
			for i := parts[p][0]; i < parts[p][1]; i++ {
				tg := targets[i]
				if tg == IgnoreIndex {
					lse[i] = 0
					continue
				}
				row := logits[i*v : i*v+v]
				l := logSumExp(row)
				lse[i] = l
				sums[p] += float64(l) - float64(row[tg])
				counts[p]++
			}
		}
	})
	for p := range parts {
		lossSum += sums[p]
		count += counts[p]
	}
	return lossSum, count
}

// logSumExp returns log Σ exp(row) with the max subtracted (vexp.go: 16 lanes at a time with
// AVX-512, the lane sums added in float64 every 4096 values). NaN anywhere gives NaN; a row
// whose max is ±Inf gives that max.
func logSumExp(row []float32) float32 {
	m := sliceMax(row)
	if m != m || math.IsInf(float64(m), 0) {
		return m
	}
	return m + float32(math.Log(sumExpSub(row, m)))
}

// CrossEntropyBackward WRITES dlogits = scale·(softmax − onehot(target)) for counted rows and 0
// for ignored rows. dlogits may be logits itself (in place).
func CrossEntropyBackward(dlogits, logits, lse []float32, targets []int32, n, v int, scale float32) {
	checkCE("CrossEntropyBackward", len(lse), len(logits), targets, n, v)
	if len(dlogits) != n*v {
		panic(fmt.Sprintf("kernels: CrossEntropyBackward: len(dlogits)=%d want n·v=%d", len(dlogits), n*v))
	}
	Parallel(n, max(1, (1<<16)/v), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row, drow := logits[i*v:i*v+v], dlogits[i*v:i*v+v]
			tg := targets[i]
			if tg == IgnoreIndex {
				clear(drow)
				continue
			}
			expSubScale(drow, row, lse[i], scale)
			drow[tg] -= scale
		}
	})
}

// CrossEntropyForwardRef is the naive reference of CrossEntropyForward.
func CrossEntropyForwardRef[F float32 | float64](lse []F, logits []F, targets []int32, n, v int) (lossSum float64, count int) {
	checkCE("CrossEntropyForwardRef", len(lse), len(logits), targets, n, v)
	for i := 0; i < n; i++ {
		if targets[i] == IgnoreIndex {
			lse[i] = 0
			continue
		}
		m := math.Inf(-1)
		for j := 0; j < v; j++ {
			m = max(m, float64(logits[i*v+j]))
		}
		var s float64
		for j := 0; j < v; j++ {
			s += math.Exp(float64(logits[i*v+j]) - m)
		}
		l := m + math.Log(s)
		lse[i] = F(l)
		lossSum += l - float64(logits[i*v+int(targets[i])])
		count++
	}
	return lossSum, count
}

// CrossEntropyBackwardRef is the naive reference of CrossEntropyBackward (writes).
func CrossEntropyBackwardRef[F float32 | float64](dlogits, logits, lse []F, targets []int32, n, v int, scale F) {
	checkCE("CrossEntropyBackwardRef", len(lse), len(logits), targets, n, v)
	for i := 0; i < n; i++ {
		for j := 0; j < v; j++ {
			if targets[i] == IgnoreIndex {
				dlogits[i*v+j] = 0
				continue
			}
			p := math.Exp(float64(logits[i*v+j]) - float64(lse[i]))
			if j == int(targets[i]) {
				p--
			}
			dlogits[i*v+j] = scale * F(p)
		}
	}
}

func checkCE(name string, llse, llogits int, targets []int32, n, v int) {
	if n < 0 || v <= 0 || llse != n || llogits != n*v || len(targets) != n {
		panic(fmt.Sprintf("kernels: %s: n=%d v=%d need len(lse)=%d len(logits)=%d len(targets)=%d; got %d, %d, %d",
			name, n, v, n, n*v, n, llse, llogits, len(targets)))
	}
	for i, t := range targets {
		if t != IgnoreIndex && (t < 0 || int(t) >= v) {
			panic(fmt.Sprintf("kernels: %s: target %d at row %d is outside [0, %d) and is not %d", name, t, i, v, IgnoreIndex))
		}
	}
}
