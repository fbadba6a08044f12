package kernels

import "math"

// bfloat16 is the top half of an IEEE-754 float32. Conversion rounds to nearest, ties to even,
// as PyTorch and every BF16 instruction do; NaN stays NaN (quiet), ±Inf stays ±Inf.

// F32ToBF16Bits rounds one float32 to bfloat16 and returns its 16 bits.
func F32ToBF16Bits(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 { // NaN: keep it a quiet NaN, never round it into Inf
		return uint16(u>>16) | 0x0040
	}
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}

// BF16BitsToF32 widens bfloat16 bits to float32 exactly.
func BF16BitsToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// RoundBF16Value returns f rounded to the nearest bfloat16, as a float32.
func RoundBF16Value(f float32) float32 { return BF16BitsToF32(F32ToBF16Bits(f)) }

// F32ToBF16 converts src to bfloat16 bits in dst (len(dst) >= len(src)); vectorised where the
// CPU has AVX-512, split over Parallel when large, bit for bit the same as F32ToBF16Bits.
func F32ToBF16(dst []uint16, src []float32) {
	if len(src) < 2*convertGrain {
		f32ToBF16Row(dst, src)
		return
	}
	dst = dst[:len(src)]
	Parallel(len(src), convertGrain, func(lo, hi int) { f32ToBF16Row(dst[lo:hi], src[lo:hi]) })
}

// f32ToBF16Scalar is F32ToBF16 one element at a time (the vector path's tails and fallback).
func f32ToBF16Scalar(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = F32ToBF16Bits(f)
	}
}

// BF16ToF32 widens bfloat16 bits in src to float32 in dst (len(dst) >= len(src)).
func BF16ToF32(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = BF16BitsToF32(h)
	}
}

// RoundBF16 writes src rounded to bfloat16 precision into dst (which may be src itself);
// vectorised where the CPU has AVX-512, bit for bit the same as RoundBF16Value.
func RoundBF16(dst, src []float32) { roundBF16Row(dst, src) }
