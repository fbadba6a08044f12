package kernels

import (
	"fmt"
	"math"
)

// AdamW updates parameters p in place from gradients gradScale·g (g itself unchanged) with
// moments m and v, as torch.optim.AdamW's single-tensor path does for step ≥ 1:
//
//	g ← fl(gradScale·g)                           (clipping's coefficient; 1 is exact)
//	p -= lr·wd·p                                  (decoupled decay, first)
//	m += (1−β1)·(g − m);  v = β2·v + (1−β2)·g²
//	p -= lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + eps)
//
// Element-wise in float32 (AVX-512 where the CPU has it, the same operations in the same
// order, so the same bits); the bias corrections and step size are computed in float64.
func AdamW(p, g, m, v []float32, gradScale, lr, beta1, beta2, eps, weightDecay float32, step int) {
	n := checkAdamW(len(p), len(g), len(m), len(v), step)
	decay, omb1, omb2, stepSize, bc2 := adamwScalars(float64(lr), float64(beta1), float64(beta2), float64(weightDecay), step)
	c := [8]float32{decay, omb1, beta2, omb2, bc2, eps, stepSize, gradScale}
	Parallel(n, 1<<14, func(lo, hi int) {
		lo += adamwVec(p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], &c)
		for i := lo; i < hi; i++ {
			pi := p[i] * decay
			gi := g[i] * gradScale
			mi := m[i] + omb1*(gi-m[i])
			vi := v[i]*beta2 + omb2*gi*gi
			m[i], v[i] = mi, vi
			denom := float32(math.Sqrt(float64(vi)))/bc2 + eps
			p[i] = pi - stepSize*(mi/denom)
		}
	})
}

// adamwScalars returns the per-step constants in float32, each computed in float64 first.
func adamwScalars(lr, beta1, beta2, wd float64, step int) (decay, omb1, omb2, stepSize, bc2sqrt float32) {
	bc1 := 1 - math.Pow(beta1, float64(step))
	bc2 := 1 - math.Pow(beta2, float64(step))
	return float32(1 - lr*wd), float32(1 - beta1), float32(1 - beta2), float32(lr / bc1), float32(math.Sqrt(bc2))
}

// AdamWRef is the naive reference of AdamW.
func AdamWRef[F float32 | float64](p, g, m, v []F, gradScale, lr, beta1, beta2, eps, weightDecay F, step int) {
	checkAdamW(len(p), len(g), len(m), len(v), step)
	bc1 := 1 - math.Pow(float64(beta1), float64(step))
	bc2 := 1 - math.Pow(float64(beta2), float64(step))
	for i := range p {
		gi := g[i] * gradScale
		p[i] *= F(1 - float64(lr)*float64(weightDecay))
		m[i] = m[i] + F(1-float64(beta1))*(gi-m[i])
		v[i] = v[i]*beta2 + F(1-float64(beta2))*gi*gi
		denom := F(math.Sqrt(float64(v[i])))/F(math.Sqrt(bc2)) + eps
		p[i] -= F(float64(lr)/bc1) * (m[i] / denom)
	}
}

func checkAdamW(lp, lg, lm, lv, step int) int {
	if lg != lp || lm != lp || lv != lp || step < 1 {
		panic(fmt.Sprintf("kernels: AdamW: len(p)=%d len(g)=%d len(m)=%d len(v)=%d must match and step=%d must be ≥ 1", lp, lg, lm, lv, step))
	}
	return lp
}
