package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Two steps of the textbook AdamW (Loshchilov & Hutter with torch's eps placement) written out
// in float64 from the formulas, against the float32 kernel.
func TestAdamWTwoStepsByHand(t *testing.T) {
	lr, b1, b2, eps, wd := 1e-2, 0.9, 0.95, 1e-8, 0.1
	p0 := []float64{0.5, -1.25, 2, 0}
	g1 := []float64{0.1, -3, 1e-9, 0.5}
	g2 := []float64{-0.2, 1, 0, 0.5}
	p := to32(p0)
	m, v := make([]float32, 4), make([]float32, 4)
	AdamW(p, to32(g1), m, v, 1, float32(lr), float32(b1), float32(b2), float32(eps), float32(wd), 1)
	AdamW(p, to32(g2), m, v, 1, float32(lr), float32(b1), float32(b2), float32(eps), float32(wd), 2)
	// The kernel receives float32 hyper-parameters; use the same values here.
	b1, b2 = float64(float32(b1)), float64(float32(b2))
	for i := range p0 {
		pp := p0[i]*(1-lr*wd) - lr*g1[i]/(math.Abs(g1[i])+eps) // step 1: m̂ = g, v̂ = g²
		m1, v1 := (1-b1)*g1[i], (1-b2)*g1[i]*g1[i]
		m2, v2 := b1*m1+(1-b1)*g2[i], b2*v1+(1-b2)*g2[i]*g2[i]
		mh, vh := m2/(1-b1*b1), v2/(1-b2*b2)
		pp = pp*(1-lr*wd) - lr*mh/(math.Sqrt(vh)+eps)
		if math.Abs(float64(p[i])-pp) > 2e-7*max(1, math.Abs(pp)) {
			t.Errorf("p[%d] after 2 steps = %.9g, want %.9g", i, p[i], pp)
		}
		if math.Abs(float64(m[i])-m2) > 1e-7*max(1e-3, math.Abs(m2)) || math.Abs(float64(v[i])-v2) > 1e-6*max(1e-6, v2) {
			t.Errorf("moments[%d] = %g, %g, want %g, %g", i, m[i], v[i], m2, v2)
		}
	}
}

func TestAdamWFastMatchesRef(t *testing.T) {
	rng := newRNG(9)
	for _, n := range []int{1, 16383, 16385, 50000} {
		p, g := randF32(rng, n, 1), randF32(rng, n, 0.1)
		m, v := randF32(rng, n, 0.01), randF32(rng, n, 0.001)
		for i := range v {
			v[i] = float32(math.Abs(float64(v[i])))
		}
		pr, mr, vr := clone(p), clone(m), clone(v)
		AdamW(p, g, m, v, 0.75, 3e-4, 0.9, 0.999, 1e-8, 0.01, 7)
		AdamWRef(pr, g, mr, vr, 0.75, 3e-4, 0.9, 0.999, 1e-8, 0.01, 7)
		closeTo(t, label("p n=%d", n), p, pr, 1e-9, 1e-6)
		closeTo(t, label("m n=%d", n), m, mr, 1e-12, 1e-6)
		closeTo(t, label("v n=%d", n), v, vr, 1e-15, 1e-6)
	}
}

// The AVX-512 update performs the Go loop's float32 operations in the same order: the bits
// must agree for every length (whole vectors, tails, both) and extreme gradients.
func TestAdamWVectorBitIdentical(t *testing.T) {
	if !useVexpAVX512 {
		t.Skip("no AVX-512 here: AdamW runs the Go loop only")
	}
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{1, 15, 16, 17, 33, 1000} {
		p, g, m, v := randSlice(r, n), randSlice(r, n), randSlice(r, n), randSlice(r, n)
		for i := range v {
			v[i] *= v[i] // second moments are non-negative
		}
		g[0] = 1e30 // g² overflows to +Inf: the update must still agree
		if n > 1 {
			g[1] = 0
			v[1] = 0 // denominator eps alone
		}
		cp := func(x []float32) []float32 { return append([]float32(nil), x...) }
		p2, g2, m2, v2 := cp(p), cp(g), cp(m), cp(v)
		AdamW(p, g, m, v, 0.3, 1e-3, 0.9, 0.95, 1e-8, 0.1, 3)
		useVexpAVX512 = false
		AdamW(p2, g2, m2, v2, 0.3, 1e-3, 0.9, 0.95, 1e-8, 0.1, 3)
		useVexpAVX512 = true
		for i := range n {
			for _, pair := range [][2]float32{{p[i], p2[i]}, {m[i], m2[i]}, {v[i], v2[i]}} {
				if math.Float32bits(pair[0]) != math.Float32bits(pair[1]) {
					t.Fatalf("n=%d i=%d: AVX-512 %v, Go %v (p %v/%v m %v/%v v %v/%v)", n, i, pair[0], pair[1], p[i], p2[i], m[i], m2[i], v[i], v2[i])
				}
			}
		}
	}
}

// BenchmarkAdamW updates 8 M parameters (bytes = the 28 per parameter it reads and writes).
func BenchmarkAdamW(b *testing.B) {
	n := 8 << 20
	r := rand.New(rand.NewPCG(1, 1))
	p, g, m, v := randSlice(r, n), randSlice(r, n), make([]float32, n), make([]float32, n)
	b.SetBytes(28 * int64(n))
	step := 0
	for b.Loop() {
		step++
		AdamW(p, g, m, v, 1, 1e-3, 0.9, 0.95, 1e-8, 0.1, step)
	}
}
