package safetensors

import "math"

// IEEE-754 binary16: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits. Narrowing rounds
// to nearest, ties to even, into subnormals and to ±Inf past 65504 (from 65520 up, the tie
// with the first value past the largest finite half rounds to even, that is to Inf). NaN stays
// a quiet NaN with the sign and the top payload bits kept.

// F32ToF16Bits rounds f to the nearest binary16 (ties to even) and returns its bits.
func F32ToF16Bits(f float32) uint16 {
	u := math.Float32bits(f)
	sign := uint16(u>>16) & 0x8000
	a := u & 0x7fffffff
	switch {
	case a > 0x7f800000: // NaN: quiet, keep the top 9 payload bits
		return sign | 0x7e00 | uint16(a>>13)&0x01ff
	case a >= 0x477ff000: // ≥ 65520 (and Inf) rounds to Inf
		return sign | 0x7c00
	case a >= 0x38800000: // ≥ 2^-14: a normal half; rebias the exponent 127 → 15, round 13 bits away
		a -= (127 - 15) << 23
		a += 0x0fff + (a>>13)&1 // a carry into the exponent is the correct rounding up
		return sign | uint16(a>>13)
	case a < 0x33000000: // < 2^-25: at most half of the smallest subnormal, rounds to ±0
		return sign
	}
	// Subnormal half: value = m·2^(e-150), in units of 2^-24 that is m·2^(e-126), e in [102, 112].
	e := a >> 23
	m := a&0x7fffff | 0x800000
	shift := 126 - e // 14..24
	q := m >> shift
	rem := m & (1<<shift - 1)
	half := uint32(1) << (shift - 1)
	if rem > half || rem == half && q&1 == 1 {
		q++ // may carry into 0x400, the smallest normal: correct
	}
	return sign | uint16(q)
}

// F16BitsToF32 widens binary16 bits to float32 exactly.
func F16BitsToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch exp {
	case 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: man·2^-24, exact in float32.
		v := float32(man) * (1.0 / (1 << 24))
		return math.Float32frombits(sign | math.Float32bits(v))
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13) // Inf (man = 0) or NaN
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
}

// F32ToF16 converts src to binary16 bits in dst (len(dst) >= len(src)), rounding to nearest even.
func F32ToF16(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = F32ToF16Bits(f)
	}
}

// F16ToF32 widens binary16 bits in src to float32 in dst (len(dst) >= len(src)).
func F16ToF32(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = F16BitsToF32(h)
	}
}
