// Package bf16 owns the bfloat16 format: one float32 to its top 16 bits, rounded to nearest
// even, and back, one value or a slice at a time (16 per instruction with AVX-512).
//
// bfloat16 is the top half of an IEEE-754 float32. Conversion rounds to nearest, ties to even,
// as PyTorch and every BF16 instruction do; NaN stays NaN (quiet), ±Inf stays ±Inf. The slice
// conversions equal the scalar ones bit for bit. Package kernels builds its mixed-precision
// GEMMs on these; layers/safetensors writes BF16 files with them without importing kernels.
package bf16

import "math"

// FromF32 rounds one float32 to bfloat16 and returns its 16 bits.
func FromF32(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 { // NaN: keep it a quiet NaN, never round it into Inf
		return uint16(u>>16) | 0x0040
	}
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}

// ToF32 widens bfloat16 bits to float32 exactly.
func ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Round returns f rounded to the nearest bfloat16, as a float32.
func Round(f float32) float32 { return ToF32(FromF32(f)) }

// Pair packs two floats rounded to bfloat16 into one uint32, x0 in the low half: the operand
// layout of VDPBF16PS.
func Pair(x0, x1 float32) uint32 { return uint32(FromF32(x0)) | uint32(FromF32(x1))<<16 }

// ToF32s widens bfloat16 bits in src to float32 in dst (len(dst) >= len(src)). (safetensors'
// F16 widening has the same loop over another format.)
func ToF32s(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = ToF32(h)
	}
}

// fromF32sScalar is FromF32s one element at a time (the vector path's tails and fallback).
func fromF32sScalar(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = FromF32(f)
	}
}
