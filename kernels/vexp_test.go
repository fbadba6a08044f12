package kernels

import (
	"math"
	"os"
	"testing"
)

// The element-wise transcendentals against float64 math.Exp: the dispatched path (AVX-512 on
// a CPU that has it) and the portable Go path, each tested on its own.

type expPath struct {
	name string
	fn   func(dst, src []float32, sub, scale float32) float32
}

var expPaths = []expPath{
	{"dispatched", expSubScale},
	{"go", expSubScaleGo},
}

// expErr returns got's relative error and its error in float32 ulps of e^x (math.Exp in
// float64). ok is false where the result is not the one specified: 0 below −87.33654, +Inf
// above 88.72283, NaN for NaN, else within 3e-7 relative.
func expErr(x, got float32) (rel, ulps float64, ok bool) {
	switch {
	case x != x:
		return 0, 0, got != got
	case x < -87.33654:
		return 0, 0, got == 0
	case x > 88.72283:
		return 0, 0, math.IsInf(float64(got), 1)
	}
	want := math.Exp(float64(x))
	d := math.Abs(float64(got) - want)
	w32 := float32(want)
	ulp := float64(math.Nextafter32(w32, float32(math.Inf(1)))) - float64(w32)
	rel, ulps = d/want, d/ulp
	return rel, ulps, rel <= 3e-7
}

// checkExpValues runs every path over xs and fails on the first few values out of spec; it
// returns the worst relative and ulp errors of the dispatched path.
func checkExpValues(t *testing.T, xs []float32) (worstRel, worstULP float64) {
	t.Helper()
	for _, p := range expPaths {
		got := make([]float32, len(xs))
		p.fn(got, xs, 0, 1)
		bad := 0
		for i, x := range xs {
			rel, ulps, ok := expErr(x, got[i])
			if !ok {
				if bad++; bad <= 5 {
					t.Errorf("%s: e^%v (bits %#08x) = %v, want %v (rel err %.3g)", p.name, x, math.Float32bits(x), got[i], math.Exp(float64(x)), rel)
				}
			}
			if p.name == "dispatched" {
				worstRel, worstULP = max(worstRel, rel), max(worstULP, ulps)
			}
		}
		if bad > 5 {
			t.Errorf("%s: %d of %d values out of spec", p.name, bad, len(xs))
		}
	}
	return worstRel, worstULP
}

// A sweep over float32 bit patterns of both signs (every 1021st: all of −Inf..+Inf, NaNs
// included), every float32 within ±2⁻¹⁰ of 0 (r near 0) and near the underflow and overflow
// bounds, and random values.
func TestVexpAccuracy(t *testing.T) {
	var xs []float32
	for b := uint64(0); b <= 0xffffffff; b += 1021 {
		xs = append(xs, math.Float32frombits(uint32(b)))
	}
	for _, c := range []float32{0, -87.33654, 88.72283, float32(math.Ln2) / 2, -float32(math.Ln2) / 2, 10 * float32(math.Ln2)} {
		x := c
		for range 5000 {
			x = math.Nextafter32(x, float32(math.Inf(-1)))
		}
		for range 10000 {
			xs = append(xs, x)
			x = math.Nextafter32(x, float32(math.Inf(1)))
		}
	}
	rng := newRNG(11)
	for range 200000 {
		xs = append(xs, float32((rng.Float64()*2-1)*90))
	}
	rel, ulps := checkExpValues(t, xs)
	t.Logf("%d values (cpu AVX-512: %v): worst relative error %.3g, %.2f ulp", len(xs), useVexpAVX512, rel, ulps)
}

// Every float32 (2³² values, ~1 minute): GWEN_VEXP_EXHAUSTIVE=1 go test ./kernels/ -run Exhaustive -v
func TestVexpExhaustive(t *testing.T) {
	if os.Getenv("GWEN_VEXP_EXHAUSTIVE") == "" {
		t.Skip("set GWEN_VEXP_EXHAUSTIVE=1 to test e^x on all 2³² float32 values")
	}
	const chunk = 1 << 20
	xs, got := make([]float32, chunk), make([]float32, chunk)
	var worstRel, worstULP float64
	var worstX float32
	bad := 0
	for base := uint64(0); base < 1<<32; base += chunk {
		for i := range xs {
			xs[i] = math.Float32frombits(uint32(base + uint64(i)))
		}
		expSlice(got, xs)
		for i, x := range xs {
			rel, ulps, ok := expErr(x, got[i])
			if !ok {
				if bad++; bad <= 5 {
					t.Errorf("e^%v = %v, want %v", x, got[i], math.Exp(float64(x)))
				}
			}
			if ulps > worstULP {
				worstX = x
			}
			worstRel, worstULP = max(worstRel, rel), max(worstULP, ulps)
		}
	}
	t.Logf("all float32 (AVX-512: %v): worst relative error %.3g, %.3f ulp (at x = %v), %d out of spec", useVexpAVX512, worstRel, worstULP, worstX, bad)
}

// Hand-checked special values, in a slice long enough that each sits in a full vector and
// again in a masked tail.
func TestVexpSpecialValues(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	negNaN := math.Float32frombits(0xffc00001)
	cases := []struct{ x, want float32 }{
		{0, 1}, {float32(math.Copysign(0, -1)), 1}, {1, float32(math.E)},
		{-inf, 0}, {inf, inf}, {-87.34, 0}, {-200, 0}, {-math.MaxFloat32, 0},
		{88.73, inf}, {100, inf}, {math.MaxFloat32, inf},
		{math.SmallestNonzeroFloat32, 1}, {-math.SmallestNonzeroFloat32, 1},
	}
	for _, p := range expPaths {
		for _, tail := range []int{0, 7} {
			xs := make([]float32, 16+tail)
			for _, c := range cases {
				got := make([]float32, len(xs))
				for i := range xs {
					xs[i] = c.x
				}
				p.fn(got, xs, 0, 1)
				for i, g := range got {
					if g != c.want {
						t.Errorf("%s n=%d: e^%v at %d = %v, want %v", p.name, len(xs), c.x, i, g, c.want)
						break
					}
				}
			}
			for _, x := range []float32{nan, negNaN} {
				for i := range xs {
					xs[i] = x
				}
				got := make([]float32, len(xs))
				if s := p.fn(got, xs, 0, 1); s == s {
					t.Errorf("%s: sum of e^NaN = %v, want NaN", p.name, s)
				}
				for i, g := range got {
					if g == g {
						t.Errorf("%s: e^NaN at %d = %v, want NaN", p.name, i, g)
						break
					}
				}
			}
		}
	}
	// Just inside the bounds the result is finite and normal.
	lo, hi := make([]float32, 1), make([]float32, 1)
	expSlice(lo, []float32{-87.33654})
	expSlice(hi, []float32{88.72283})
	if lo[0] < math.Float32frombits(0x00800000) || math.IsInf(float64(hi[0]), 0) {
		t.Errorf("e^-87.33654 = %v (want ≥ smallest normal), e^88.72283 = %v (want finite)", lo[0], hi[0])
	}
}

// Lengths around the 16-lane vectors: every element matches the same element computed in a
// long slice bit for bit (the tail lanes use the same instructions), nothing past len is
// written, and the sum matches float64.
func TestVexpTails(t *testing.T) {
	rng := newRNG(12)
	const big = 200
	src := randF32(rng, big, 20)
	sub, scale := float32(1.5), float32(0.25)
	whole := make([]float32, big)
	expSubScale(whole, src, sub, scale)
	for _, n := range []int{0, 1, 2, 15, 16, 17, 31, 32, 33, 47, 63, 100, 197} {
		for off := range 3 {
			dst := make([]float32, n+1)
			dst[n] = -7 // sentinel
			s := expSubScale(dst[:n], src[off:off+n], sub, scale)
			var want float64
			for i := range n {
				if math.Float32bits(dst[i]) != math.Float32bits(whole[off+i]) {
					t.Fatalf("n=%d off=%d: element %d = %v, the long slice gave %v", n, off, i, dst[i], whole[off+i])
				}
				want += float64(scale) * math.Exp(float64(src[off+i]-sub))
			}
			if dst[n] != -7 {
				t.Fatalf("n=%d: wrote past the end (%v)", n, dst[n])
			}
			if math.Abs(float64(s)-want) > 1e-6*want {
				t.Errorf("n=%d off=%d: sum %v, want %v", n, off, s, want)
			}
			if got := sumExpSub(src[off:off+n], sub); math.Abs(got-want/float64(scale)) > 1e-6*want/float64(scale) {
				t.Errorf("n=%d off=%d: sumExpSub %v, want %v", n, off, got, want/float64(scale))
			}
			if got := sumExpSubGo(src[off:off+n], sub); math.Abs(float64(got)-want/float64(scale)) > 1e-6*want/float64(scale) {
				t.Errorf("n=%d off=%d: sumExpSubGo %v, want %v", n, off, got, want/float64(scale))
			}
		}
	}
	// In place equals out of place.
	x := clone(src)
	if s, w := expSubInPlace(x, sub), expSubScale(make([]float32, big), src, sub, 1); s != w {
		t.Errorf("in place sum %v, out of place %v", s, w)
	}
}

// Long rows: the float32 lane sums go into float64 every 4096 elements.
func TestSumExpSubLong(t *testing.T) {
	rng := newRNG(13)
	for _, n := range []int{4095, 4096, 4097, 70001} {
		src := randF32(rng, n, 4)
		var want float64
		for _, x := range src {
			want += math.Exp(float64(x) - 3)
		}
		if got := sumExpSub(src, 3); math.Abs(got-want) > 2e-7*want {
			t.Errorf("n=%d: sumExpSub %v, want %v (rel %.3g)", n, got, want, math.Abs(got-want)/want)
		}
		dst := make([]float32, n)
		if got := expSubScale(dst, src, 3, 1); math.Abs(float64(got)-want) > 3e-7*want {
			t.Errorf("n=%d: expSubScale sum %v, want %v", n, got, want)
		}
	}
}

func TestSliceMax(t *testing.T) {
	rng := newRNG(14)
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	maxs := []func([]float32) float32{sliceMax, sliceMaxGo}
	for k, mx := range maxs {
		if got := mx(nil); !math.IsInf(float64(got), -1) {
			t.Errorf("max#%d of nothing = %v, want -Inf", k, got)
		}
		if got := mx([]float32{-inf, -inf}); !math.IsInf(float64(got), -1) {
			t.Errorf("max#%d of -Inf = %v", k, got)
		}
		for _, n := range []int{1, 15, 16, 17, 31, 33, 100} {
			x := randF32(rng, n, 10)
			for pos := range n {
				x[pos] = 11 // the max, in every lane and in the tail
				if got := mx(x); got != 11 {
					t.Fatalf("max#%d n=%d with 11 at %d = %v", k, n, pos, got)
				}
				x[pos] = nan
				if got := mx(x); got == got {
					t.Fatalf("max#%d n=%d with NaN at %d = %v, want NaN", k, n, pos, got)
				}
				x[pos] = -inf
				want := float32(math.Inf(-1))
				for _, v := range x {
					want = max(want, v)
				}
				if got := mx(x); got != want {
					t.Fatalf("max#%d n=%d = %v, want %v", k, n, got, want)
				}
			}
			x = append(x, nan)
			if got := mx(x[:n]); got != got {
				t.Fatalf("max#%d n=%d read the NaN past its end", k, n)
			}
		}
	}
}
