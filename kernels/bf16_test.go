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
