package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Shared test helpers: random data, float64 finite differences, tolerant comparisons.

func newRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

func randF64(rng *rand.Rand, n int, scale float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = (rng.Float64()*2 - 1) * scale
	}
	return x
}

func randF32(rng *rand.Rand, n int, scale float64) []float32 { return to32(randF64(rng, n, scale)) }

func to32(x []float64) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(v)
	}
	return y
}

func clone[F any](x []F) []F { return append([]F(nil), x...) }

func dot64(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// checkGrad compares analytic (the gradient of loss with respect to x) against central finite
// differences of loss, perturbing x in place (restored afterwards). Up to maxProbe entries are
// probed, spread over x. Tolerance: |num − ana| ≤ rtol·(|num|+|ana|) + atol.
func checkGrad(t *testing.T, name string, x, analytic []float64, loss func() float64, maxProbe int, rtol, atol float64) {
	t.Helper()
	if len(x) != len(analytic) {
		t.Fatalf("%s: len(x)=%d len(grad)=%d", name, len(x), len(analytic))
	}
	step := max(1, len(x)/maxProbe)
	bad := 0
	for i := 0; i < len(x); i += step {
		orig := x[i]
		hh := 1e-5 * max(1, math.Abs(orig))
		x[i] = orig + hh
		lp := loss()
		x[i] = orig - hh
		lm := loss()
		x[i] = orig
		num := (lp - lm) / (2 * hh)
		if d := math.Abs(num - analytic[i]); d > rtol*(math.Abs(num)+math.Abs(analytic[i]))+atol {
			if bad++; bad <= 5 {
				t.Errorf("%s: d/dx[%d]: analytic %.12g, finite difference %.12g (diff %.3g)", name, i, analytic[i], num, d)
			}
		}
	}
}

// sub returns a − b (to strip a pre-filled accumulator from a backward's output).
func sub(a, b []float64) []float64 {
	c := make([]float64, len(a))
	for i := range a {
		c[i] = a[i] - b[i]
	}
	return c
}

// closeTo reports the first few entries where got and want differ by more than
// atol + rtol·|want|.
func closeTo[F float32 | float64](t *testing.T, name string, got, want []F, atol, rtol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: len %d, want %d", name, len(got), len(want))
	}
	bad, worst := 0, 0.0
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		d := math.Abs(g - w)
		if !(d <= atol+rtol*math.Abs(w)) { // also catches NaN
			worst = max(worst, d)
			if bad++; bad <= 5 {
				t.Errorf("%s[%d] = %.9g, want %.9g (diff %.3g)", name, i, g, w, d)
			}
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d of %d entries off, worst diff %.3g", name, bad, len(got), worst)
	}
}

// label formats a subtest or comparison name.
func label(format string, a ...any) string { return fmt.Sprintf(format, a...) }
