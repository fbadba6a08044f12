package kernels

import (
	"math"
	"testing"
)

// The fused QK-norm + RoPE equals RMSNorm followed by RoPE to the bit, forward and backward
// (head sizes with and without AVX-512 tails, positions out of order, several heads).
func TestNormRoPEBitIdenticalToUnfused(t *testing.T) {
	for _, c := range []struct{ n, heads, hd int }{{1, 1, 2}, {5, 3, 24}, {37, 8, 64}, {300, 4, 128}, {9, 2, 40}} {
		rng := newRNG(uint64(c.n*1000 + c.hd))
		rows := c.n * c.heads
		x, w, dy := randF32(rng, rows*c.hd, 1), randF32(rng, c.hd, 1), randF32(rng, rows*c.hd, 1)
		pos := make([]int32, c.n)
		for i := range pos {
			pos[i] = int32((i * 7) % 50)
		}
		cos, sin := make([]float32, 50*c.hd), make([]float32, 50*c.hd)
		inv := make([]float32, c.hd/2)
		for j := range inv {
			inv[j] = float32(math.Pow(10000, -2*float64(j)/float64(c.hd)))
		}
		RoPETables(cos, sin, inv, 1, 50, c.hd)

		y1, r1 := make([]float32, rows*c.hd), make([]float32, rows)
		NormRoPEForward(y1, r1, x, w, pos, cos, sin, c.n, c.heads, c.hd, 1e-6)
		mid, y2, r2 := make([]float32, rows*c.hd), make([]float32, rows*c.hd), make([]float32, rows)
		RMSNormForward(mid, r2, x, w, rows, c.hd, 1e-6)
		RoPEForward(y2, mid, pos, cos, sin, c.n, c.heads, c.hd)
		same(t, "y", y1, y2)
		same(t, "rstd", r1, r2)

		dx1, dw1 := make([]float32, rows*c.hd), make([]float32, c.hd)
		NormRoPEBackward(dx1, dw1, dy, x, w, r1, pos, cos, sin, c.n, c.heads, c.hd)
		dmid, dx2, dw2 := make([]float32, rows*c.hd), make([]float32, rows*c.hd), make([]float32, c.hd)
		RoPEBackward(dmid, dy, pos, cos, sin, c.n, c.heads, c.hd)
		RMSNormBackward(dx2, dw2, dmid, x, w, r2, rows, c.hd)
		same(t, "dx", dx1, dx2)
		same(t, "dw", dw1, dw2)
	}
}

func same(t *testing.T, what string, a, b []float32) {
	t.Helper()
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("%s[%d]: fused %v, unfused %v", what, i, a[i], b[i])
		}
	}
}
