package safetensors

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// Hand-worked binary16 patterns: sign | 5-bit exponent (bias 15) | 10-bit mantissa.
var f16Cases = []struct {
	name string
	f    float32
	h    uint16
}{
	{"one", 1, 0x3c00},
	{"minus two", -2, 0xc000},
	{"zero", 0, 0x0000},
	{"minus zero", float32(math.Copysign(0, -1)), 0x8000},
	{"largest finite 65504", 65504, 0x7bff},
	{"just under the overflow tie", 65519.996, 0x7bff},
	{"overflow tie 65520 to even = Inf", 65520, 0x7c00},
	{"70000 overflows", 70000, 0x7c00},
	{"+Inf", float32(math.Inf(1)), 0x7c00},
	{"-Inf", float32(math.Inf(-1)), 0xfc00},
	{"0.1 = 0x3dcccccd: 13 dropped bits 0x0ccd < half", 0.1, 0x2e66},
	{"1/3", 1.0 / 3, 0x3555},
	{"1+2^-11 ties to even 1", 1 + 1.0/2048, 0x3c00},
	{"1+3·2^-11 ties to even 1+2^-9", 1 + 3.0/2048, 0x3c02},
	{"1+2^-11+2^-20 above the tie", 1 + 1.0/2048 + 1.0/(1<<20), 0x3c01},
	{"smallest normal 2^-14", 1.0 / (1 << 14), 0x0400},
	{"smallest subnormal 2^-24", 1.0 / (1 << 24), 0x0001},
	{"largest subnormal 1023·2^-24", 1023.0 / (1 << 24), 0x03ff},
	{"2^-25 ties to even 0", 1.0 / (1 << 25), 0x0000},
	{"-2^-25 ties to even -0", -1.0 / (1 << 25), 0x8000},
	{"2^-25+2^-35 rounds up to 2^-24", 1.0/(1<<25) + 1.0/(1<<35), 0x0001},
	{"3·2^-25 = 1.5 units ties to 2", 3.0 / (1 << 25), 0x0002},
	{"5·2^-25 = 2.5 units ties to 2", 5.0 / (1 << 25), 0x0002},
	{"1023.5·2^-24 ties up to the smallest normal", 1023.5 / (1 << 24), 0x0400},
	{"1e-8 underflows", 1e-8, 0x0000},
	{"f32 subnormal underflows", math.Float32frombits(1), 0x0000},
	{"-2.5", -2.5, 0xc100},
	{"1024+0.5 ties to even 1024", 1024.5, 0x6400},
	{"1025+0.5 ties to even 1026", 1025.5, 0x6402},
}

func TestF32ToF16HandWorked(t *testing.T) {
	for _, c := range f16Cases {
		if got := F32ToF16Bits(c.f); got != c.h {
			t.Errorf("%s: F32ToF16Bits(%g) = %#04x, want %#04x", c.name, c.f, got, c.h)
		}
	}
	// NaN stays NaN, quiet, with its sign.
	for _, bits := range []uint32{0x7fc00000, 0x7f800001, 0xffc00001, 0x7fbfffff} {
		h := F32ToF16Bits(math.Float32frombits(bits))
		if h&0x7c00 != 0x7c00 || h&0x3ff == 0 || h&0x200 == 0 || h>>15 != uint16(bits>>31) {
			t.Errorf("NaN %#08x -> %#04x, want a quiet NaN of the same sign", bits, h)
		}
	}
}

func TestF16ToF32HandWorked(t *testing.T) {
	cases := []struct {
		h uint16
		f float64
	}{
		{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, math.Ldexp(1, -24)},
		{0x03ff, 1023 * math.Ldexp(1, -24)}, {0x0400, math.Ldexp(1, -14)}, {0x3555, 0.333251953125},
		{0x2e66, 0.0999755859375}, {0x7c00, math.Inf(1)}, {0xfc00, math.Inf(-1)}, {0x8001, -math.Ldexp(1, -24)},
	}
	for _, c := range cases {
		if got := F16BitsToF32(c.h); float64(got) != c.f {
			t.Errorf("F16BitsToF32(%#04x) = %g, want %g", c.h, got, c.f)
		}
	}
	if got := F16BitsToF32(0x8000); got != 0 || !math.Signbit(float64(got)) {
		t.Errorf("F16BitsToF32(0x8000) = %g, want -0", got)
	}
	if got := F16BitsToF32(0x7e00); !math.IsNaN(float64(got)) {
		t.Errorf("F16BitsToF32(0x7e00) = %g, want NaN", got)
	}
}

// Every binary16 value widens exactly, so narrowing it again gives the same bits.
func TestF16AllPatternsRoundTrip(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := F16BitsToF32(h)
		back := F32ToF16Bits(f)
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			if back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#04x -> %g -> %#04x", h, f, back)
			}
			continue
		}
		if back != h {
			t.Fatalf("%#04x -> %g -> %#04x", h, f, back)
		}
	}
}

// f16Nearest is a naive reference: the nearest of all non-negative binary16 values (with
// 65536 standing for Inf, as IEEE rounding treats it), ties to the even bit pattern.
type f16Table struct{ vals []float64 } // vals[h] for h in 0..0x7c00

func newF16Table() f16Table {
	vals := make([]float64, 0x7c01)
	for h := 0; h < 0x7c00; h++ {
		e, m := h>>10, h&0x3ff
		if e == 0 {
			vals[h] = math.Ldexp(float64(m), -24)
		} else {
			vals[h] = math.Ldexp(float64(1024+m), e-25)
		}
	}
	vals[0x7c00] = 65536
	return f16Table{vals}
}

func (tb f16Table) nearest(x float32) uint16 {
	a := math.Abs(float64(x))
	var sign uint16
	if math.Signbit(float64(x)) {
		sign = 0x8000
	}
	if a >= 65536 {
		return sign | 0x7c00
	}
	i := sort.SearchFloat64s(tb.vals, a) // first vals[i] >= a
	if tb.vals[i] == a || i == 0 {
		return sign | uint16(i)
	}
	lo, hi := tb.vals[i-1], tb.vals[i]
	switch {
	case a-lo < hi-a:
		return sign | uint16(i-1)
	case a-lo > hi-a:
		return sign | uint16(i)
	case (i-1)%2 == 0:
		return sign | uint16(i-1)
	}
	return sign | uint16(i)
}

func TestF32ToF16AgainstNaiveNearest(t *testing.T) {
	tb := newF16Table()
	check := func(x float32) {
		t.Helper()
		if got, want := F32ToF16Bits(x), tb.nearest(x); got != want {
			t.Fatalf("F32ToF16Bits(%g = %#08x) = %#04x, reference %#04x", x, math.Float32bits(x), got, want)
		}
	}
	// Every midpoint between neighbours, and one float32 ulp either side of it.
	for h := 0; h < 0x7c00; h++ {
		mid := float32((tb.vals[h] + tb.vals[h+1]) / 2) // exact: 12 significant bits
		for _, x := range []float32{mid, math.Nextafter32(mid, 0), math.Nextafter32(mid, 1e9)} {
			check(x)
			check(-x)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		x := math.Float32frombits(r.Uint32())
		if x != x {
			continue
		}
		check(x)
		check(float32(r.NormFloat64()))
	}
}
