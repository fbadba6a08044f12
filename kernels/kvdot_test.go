package kernels

import (
	"math"
	"testing"
)

// kvDot and kvAxpy (AVX-512 body, scalar tail) against float64 loops at every length from 0 to
// 70: whole vectors, tails, and both together.
func TestKVDotAxpyMatchFloat64(t *testing.T) {
	x := uint32(7)
	next := func() float32 {
		x = x*1664525 + 1013904223
		return float32(int32(x>>8)%2001-1000) / 256
	}
	for n := 0; n <= 70; n++ {
		a, b, y := make([]float32, n), make([]float32, n+3), make([]float32, n)
		for i := range a {
			a[i], y[i] = next(), next()
		}
		for i := range b {
			b[i] = next()
		}
		var want float64
		for i := range a {
			want += float64(a[i]) * float64(b[i])
		}
		if got := kvDot(a, b[:n]); math.Abs(float64(got)-want) > 1e-4*(1+math.Abs(want)) {
			t.Fatalf("n=%d: kvDot = %v, want %v", n, got, want)
		}
		wantY := make([]float64, n)
		for i := range y {
			wantY[i] = float64(y[i]) + 1.5*float64(b[i])
		}
		kvAxpy(y, 1.5, b)
		for i := range y {
			if math.Abs(float64(y[i])-wantY[i]) > 1e-5*(1+math.Abs(wantY[i])) {
				t.Fatalf("n=%d: kvAxpy y[%d] = %v, want %v", n, i, y[i], wantY[i])
			}
		}
	}
}
