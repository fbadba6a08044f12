package kernels

import (
	"math"
	"testing"
)

// Hand-derived: x = [3, 4], w = [1, 2], eps = 0 → mean(x²) = 12.5, rstd = 1/sqrt(12.5).
func TestRMSNormHandValues(t *testing.T) {
	y, rstd := make([]float32, 2), make([]float32, 1)
	RMSNormForward(y, rstd, []float32{3, 4}, []float32{1, 2}, 1, 2, 0)
	r := 1 / math.Sqrt(12.5)
	closeTo(t, "rstd", rstd, []float32{float32(r)}, 0, 1e-6)
	closeTo(t, "y", y, []float32{float32(3 * r), float32(8 * r)}, 0, 1e-6)
}

func TestRMSNormRefGradients(t *testing.T) {
	rng := newRNG(1)
	n, d := 3, 7
	x, w, r := randF64(rng, n*d, 2), randF64(rng, d, 1.5), randF64(rng, n*d, 1)
	eps := 1e-5
	loss := func() float64 {
		y, rstd := make([]float64, n*d), make([]float64, n)
		RMSNormForwardRef(y, rstd, x, w, n, d, eps)
		return dot64(r, y)
	}
	y, rstd := make([]float64, n*d), make([]float64, n)
	RMSNormForwardRef(y, rstd, x, w, n, d, eps)
	dx0, dw0 := randF64(rng, n*d, 1), randF64(rng, d, 1) // pre-filled: backward must add
	dx, dw := clone(dx0), clone(dw0)
	RMSNormBackwardRef(dx, dw, r, x, w, rstd, n, d)
	checkGrad(t, "RMSNorm dx", x, sub(dx, dx0), loss, 100, 1e-6, 1e-9)
	checkGrad(t, "RMSNorm dw", w, sub(dw, dw0), loss, 100, 1e-6, 1e-9)
}

func TestRMSNormFastMatchesRef(t *testing.T) {
	rng := newRNG(2)
	for _, sz := range [][2]int{{1, 1}, {1, 7}, {5, 64}, {255, 64}, {256, 64}, {257, 64}, {600, 40}, {3, 1025}} {
		n, d := sz[0], sz[1]
		x, w, dy := randF32(rng, n*d, 3), randF32(rng, d, 1), randF32(rng, n*d, 1)
		y, rstd := make([]float32, n*d), make([]float32, n)
		yr, rstdr := make([]float32, n*d), make([]float32, n)
		RMSNormForward(y, rstd, x, w, n, d, 1e-6)
		RMSNormForwardRef(yr, rstdr, x, w, n, d, 1e-6)
		closeTo(t, label("y n=%d d=%d", n, d), y, yr, 1e-6, 1e-5)
		closeTo(t, label("rstd n=%d d=%d", n, d), rstd, rstdr, 0, 1e-5)
		dx0, dw0 := randF32(rng, n*d, 1), randF32(rng, d, 1)
		dx, dw, dxr, dwr := clone(dx0), clone(dw0), clone(dx0), clone(dw0)
		RMSNormBackward(dx, dw, dy, x, w, rstd, n, d)
		RMSNormBackwardRef(dxr, dwr, dy, x, w, rstdr, n, d)
		closeTo(t, label("dx n=%d d=%d", n, d), dx, dxr, 1e-5, 1e-4)
		closeTo(t, label("dw n=%d d=%d", n, d), dw, dwr, 1e-4*math.Sqrt(float64(n)), 1e-4)
		// Deterministic: a second run gives the same bits.
		dx2, dw2 := clone(dx0), clone(dw0)
		RMSNormBackward(dx2, dw2, dy, x, w, rstd, n, d)
		closeTo(t, "dw rerun", dw2, dw, 0, 0)
	}
}

func TestRMSNormPanicsOnShape(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for len(w) != d")
		}
	}()
	RMSNormForward(make([]float32, 6), make([]float32, 2), make([]float32, 6), make([]float32, 2), 2, 3, 1e-6)
}

// BenchmarkRMSNorm is forward+backward over a training step's [2048, 512] activations.
func BenchmarkRMSNorm(b *testing.B) {
	n, d := 2048, 512
	rng := newRNG(3)
	x, w, dy := randF32(rng, n*d, 1), randF32(rng, d, 1), randF32(rng, n*d, 1)
	y, rstd, dx, dw := make([]float32, n*d), make([]float32, n), make([]float32, n*d), make([]float32, d)
	for b.Loop() {
		RMSNormForward(y, rstd, x, w, n, d, 1e-6)
		RMSNormBackward(dx, dw, dy, x, w, rstd, n, d)
	}
}
