package kernels

import (
	"math"
	"strings"
	"testing"
)

// Hand values: silu(0) = 0, silu(2)·3 = 2/(1+e^-2)·3.
func TestSwiGLUHandValues(t *testing.T) {
	h := make([]float32, 2)
	SwiGLUForward(h, []float32{0, 2}, []float32{5, 3}, 2)
	closeTo(t, "h", h, []float32{0, float32(6 / (1 + math.Exp(-2)))}, 1e-7, 1e-6)
}

func TestSwiGLURefGradients(t *testing.T) {
	rng := newRNG(3)
	n := 17
	gate, up, r := randF64(rng, n, 6), randF64(rng, n, 2), randF64(rng, n, 1)
	loss := func() float64 {
		h := make([]float64, n)
		SwiGLUForwardRef(h, gate, up, n)
		return dot64(r, h)
	}
	dg0, du0 := randF64(rng, n, 1), randF64(rng, n, 1)
	dg, du := clone(dg0), clone(du0)
	SwiGLUBackwardRef(dg, du, r, gate, up, n)
	checkGrad(t, "SwiGLU dgate", gate, sub(dg, dg0), loss, 100, 1e-6, 1e-10)
	checkGrad(t, "SwiGLU dup", up, sub(du, du0), loss, 100, 1e-6, 1e-10)
}

func TestSwiGLUFastMatchesRef(t *testing.T) {
	rng := newRNG(4)
	type path struct {
		name     string
		fwd      func(h, gate, up []float32, n int)
		bwd      func(dgate, dup, dh, gate, up []float32, n int)
		parallel bool
	}
	// The Write paths start from NaN and must equal the reference accumulated onto zeros.
	paths := []path{
		{"SwiGLU", SwiGLUForward, SwiGLUBackward, true},
		{"SwiGLUWrite", SwiGLUForward, SwiGLUBackwardWrite, true},
		{"go", func(h, gate, up []float32, n int) { swigluForwardGo(h, gate, up) },
			func(dgate, dup, dh, gate, up []float32, n int) { swigluBackwardGo(dgate, dup, dh, gate, up, true) }, false},
		{"goWrite", func(h, gate, up []float32, n int) { swigluForwardGo(h, gate, up) },
			func(dgate, dup, dh, gate, up []float32, n int) { swigluBackwardGo(dgate, dup, dh, gate, up, false) }, false},
	}
	for _, p := range paths {
		for _, n := range []int{0, 1, 3, 15, 16, 17, 31, 33, 47, 16383, 16384, 16385, 40000} {
			if !p.parallel && n > 20000 {
				continue
			}
			gate, up, dh := randF32(rng, n, 12), randF32(rng, n, 2), randF32(rng, n, 1)
			for i, g := range []float32{-100, 100, -1000, 95, -95} { // saturated: silu → 0 or g, no NaN
				if i < n {
					gate[n-1-i] = g
				}
			}
			h, hr := make([]float32, n), make([]float32, n)
			p.fwd(h, gate, up, n)
			SwiGLUForwardRef(hr, gate, up, n)
			closeTo(t, label("%s h n=%d", p.name, n), h, hr, 1e-6, 1e-5)
			dg0, du0 := randF32(rng, n, 1), randF32(rng, n, 1)
			dg, du, dgr, dur := clone(dg0), clone(du0), clone(dg0), clone(du0)
			if strings.HasSuffix(p.name, "Write") {
				for i := range dg {
					dg[i], du[i] = float32(math.NaN()), float32(math.NaN())
					dgr[i], dur[i] = 0, 0
				}
			}
			p.bwd(dg, du, dh, gate, up, n)
			SwiGLUBackwardRef(dgr, dur, dh, gate, up, n)
			closeTo(t, label("%s dgate n=%d", p.name, n), dg, dgr, 1e-6, 1e-5)
			closeTo(t, label("%s dup n=%d", p.name, n), du, dur, 1e-6, 1e-5)
		}
	}
}

// The vector kernels write only [0, n): sentinels past the end of every output survive.
func TestSwiGLUWritesOnlyN(t *testing.T) {
	rng := newRNG(5)
	for _, n := range []int{1, 15, 16, 17, 33} {
		buf := func() []float32 { b := randF32(rng, n+16, 1); b[n] = 42; return b }
		h, dg, du := buf(), buf(), buf()
		gate, up, dh := randF32(rng, n+16, 6), randF32(rng, n+16, 2), randF32(rng, n+16, 1)
		SwiGLUForward(h[:n], gate[:n], up[:n], n)
		SwiGLUBackward(dg[:n], du[:n], dh[:n], gate[:n], up[:n], n)
		SwiGLUBackwardWrite(dg[:n], du[:n], dh[:n], gate[:n], up[:n], n)
		if h[n] != 42 || dg[n] != 42 || du[n] != 42 {
			t.Errorf("n=%d: wrote past the end: h %v dgate %v dup %v", n, h[n], dg[n], du[n])
		}
	}
}

// exp32 against math.Exp over the whole useful range, within 2 ulp-ish (3e-7 relative).
func TestExp32(t *testing.T) {
	for x := float32(-87); x < 88.7; x += 0.0137 {
		want := math.Exp(float64(x))
		got := float64(exp32(x))
		if math.Abs(got-want) > 3e-7*want {
			t.Fatalf("exp32(%v) = %v, want %v (rel %.3g)", x, got, want, math.Abs(got-want)/want)
		}
	}
	if exp32(float32(math.Inf(-1))) != 0 || exp32(-200) != 0 || !math.IsInf(float64(exp32(100)), 1) || exp32(0) != 1 {
		t.Fatal("exp32 edge cases: want exp(-Inf)=0, exp(-200)=0, exp(100)=+Inf, exp(0)=1")
	}
	if nan := exp32(float32(math.NaN())); nan == nan {
		t.Fatal("exp32(NaN) is not NaN")
	}
}
