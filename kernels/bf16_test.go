package kernels

import (
	"math"
	"testing"
)

// Expected bit patterns worked out by hand from the IEEE layouts (not by this code).
func TestBF16RoundToNearestEven(t *testing.T) {
	cases := []struct {
		in   uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1.0 exact
		{0x3f808000, 0x3f80}, // halfway, even below: stays
		{0x3f818000, 0x3f82}, // halfway, odd below: rounds up to even
		{0x3f808001, 0x3f81}, // just above halfway: up
		{0x3f807fff, 0x3f80}, // just below halfway: down
		{0x7f7fffff, 0x7f80}, // max float rounds to +Inf
		{0xff800000, 0xff80}, // -Inf
		{0x00000001, 0x0000}, // smallest subnormal rounds to zero
		{0x80000000, 0x8000}, // -0
	}
	for _, c := range cases {
		if got := F32ToBF16Bits(math.Float32frombits(c.in)); got != c.want {
			t.Errorf("F32ToBF16Bits(%#08x) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	nan := F32ToBF16Bits(math.Float32frombits(0x7fffffff))
	if !math.IsNaN(float64(BF16BitsToF32(nan))) {
		t.Errorf("NaN converted to %#04x, not a NaN", nan)
	}
	if got := RoundBF16Value(3.14159265); got != 3.140625 {
		t.Errorf("RoundBF16Value(pi) = %v, want 3.140625", got)
	}
}

// The vectorised RoundBF16 equals RoundBF16Value bit for bit: ties both ways, NaN, ±Inf, the
// largest finite values (which round to Inf), subnormals, and tails of every length.
func TestRoundBF16SliceMatchesScalar(t *testing.T) {
	special := []uint32{0x3f808000, 0x3f818000, 0x3f807fff, 0x7f7fffff, 0xff7fffff, 0x7f800000,
		0xff800000, 0x7fc00001, 0xffffffff, 0x7f800001, 0x00000001, 0x807fffff, 0, 0x80000000}
	var src []float32
	for _, u := range special {
		src = append(src, math.Float32frombits(u))
	}
	x := uint32(12345)
	for len(src) < 16*9+7 {
		x = x*1664525 + 1013904223
		src = append(src, math.Float32frombits(x))
	}
	for n := 0; n <= len(src); n++ {
		got := make([]float32, n)
		RoundBF16(got, src[:n])
		for i := range got {
			want := RoundBF16Value(src[i])
			if math.Float32bits(got[i]) != math.Float32bits(want) {
				t.Fatalf("n=%d: RoundBF16(%#08x) = %#08x, want %#08x", n, math.Float32bits(src[i]), math.Float32bits(got[i]), math.Float32bits(want))
			}
		}
	}
}

// F32ToBF16 on a slice large enough to be split over Parallel, and pairBF16Row (the tiles'
// two-row packing, with its vector body and scalar tail), bit for bit against F32ToBF16Bits.
func TestF32ToBF16LargeAndPairsMatchScalar(t *testing.T) {
	x := uint32(777)
	src := make([]float32, 3*convertGrain+13)
	for i := range src {
		x = x*1664525 + 1013904223
		src[i] = math.Float32frombits(x)
	}
	src[5], src[70001] = float32(math.NaN()), float32(math.Inf(-1))
	got := make([]uint16, len(src))
	F32ToBF16(got, src)
	for i, f := range src {
		if got[i] != F32ToBF16Bits(f) {
			t.Fatalf("F32ToBF16: element %d (%#08x) = %#04x, want %#04x", i, math.Float32bits(f), got[i], F32ToBF16Bits(f))
		}
	}
	for _, n := range []int{0, 1, 15, 16, 17, 64, 77} {
		s0, s1 := src[:n], src[1000:1000+n]
		p := make([]uint32, n)
		pairBF16Row(p, s0, s1)
		for j := range p {
			if want := uint32(F32ToBF16Bits(s0[j])) | uint32(F32ToBF16Bits(s1[j]))<<16; p[j] != want {
				t.Fatalf("pairBF16Row n=%d: pair %d = %#08x, want %#08x", n, j, p[j], want)
			}
		}
	}
}
