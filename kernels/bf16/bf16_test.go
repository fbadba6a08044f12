package bf16

import (
	"math"
	"testing"
)

// Bit patterns worked out by hand from the IEEE layouts; the vector paths (and, with
// hasAVX512F off, the scalar fallbacks) against them and against FromF32 on every tail length.
func TestSlicesMatchScalar(t *testing.T) {
	cases := []struct {
		in   uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, {0x3f808000, 0x3f80}, {0x3f818000, 0x3f82}, {0x3f808001, 0x3f81},
		{0x3f807fff, 0x3f80}, {0x7f7fffff, 0x7f80}, {0xff800000, 0xff80}, {0x00000001, 0x0000},
		{0x80000000, 0x8000}, {0x7fc00001, 0x7fc0}, {0x7f800001, 0x7fc0}, // NaNs stay quiet NaNs
	}
	var src []float32
	var want []uint16
	for len(src) < 16*3+5 {
		for _, c := range cases {
			src, want = append(src, math.Float32frombits(c.in)), append(want, c.want)
		}
	}
	for _, vector := range []bool{true, false} {
		saved := hasAVX512F
		hasAVX512F = hasAVX512F && vector
		for n := 0; n <= len(src); n++ {
			got := make([]uint16, n)
			FromF32s(got, src[:n])
			rounded := make([]float32, n)
			Rounds(rounded, src[:n])
			pairs := make([]uint32, n)
			Pairs(pairs, src[:n], src[len(src)-n:])
			for i := range n {
				if got[i] != want[i] || FromF32(src[i]) != want[i] {
					t.Fatalf("vector %v, n=%d: %#08x → %#04x (scalar %#04x), want %#04x", vector, n, math.Float32bits(src[i]), got[i], FromF32(src[i]), want[i])
				}
				if r := math.Float32bits(rounded[i]); r != uint32(want[i])<<16 {
					t.Fatalf("vector %v, n=%d: Rounds(%#08x) = %#08x, want %#08x", vector, n, math.Float32bits(src[i]), r, uint32(want[i])<<16)
				}
				if p := pairs[i]; p != uint32(want[i])|uint32(want[len(src)-n+i])<<16 {
					t.Fatalf("vector %v, n=%d: Pairs[%d] = %#08x", vector, n, i, p)
				}
			}
		}
		hasAVX512F = saved
	}
	back := make([]float32, 2)
	ToF32s(back, []uint16{0x3f80, 0xc049})
	if back[0] != 1 || back[1] != -3.140625 {
		t.Errorf("ToF32s = %v, want [1 -3.140625]", back)
	}
}
