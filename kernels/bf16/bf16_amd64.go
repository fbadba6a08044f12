package bf16

import "golang.org/x/sys/cpu"

// f32ToBF16AVX512 converts the first len(src) &^ 15 elements of src as FromF32s does;
// len(dst) >= len(src). It needs AVX-512F.
//
//go:noescape
func f32ToBF16AVX512(dst []uint16, src []float32)

// roundBF16AVX512 rounds the first len(src) &^ 15 elements of src to bfloat16 precision into
// dst as Rounds does (dst may be src). It needs AVX-512F.
//
//go:noescape
func roundBF16AVX512(dst, src []float32)

// pairBF16AVX512 packs the first len(s0) &^ 15 pairs as Pair(s0[j], s1[j]) does;
// len(dst), len(s1) >= len(s0). It needs AVX-512F.
//
//go:noescape
func pairBF16AVX512(dst []uint32, s0, s1 []float32)

var hasAVX512F = cpu.X86.HasAVX512F // a variable so tests reach the fallback

// Rounds writes src rounded to bfloat16 precision into dst (which may be src), as Round does
// bit for bit, 16 elements per instruction with AVX-512.
func Rounds(dst, src []float32) {
	dst = dst[:len(src)]
	done := 0
	if hasAVX512F {
		done = len(src) &^ 15
		roundBF16AVX512(dst, src)
	}
	for i := done; i < len(src); i++ {
		dst[i] = Round(src[i])
	}
}

// FromF32s converts src to bfloat16 bits in dst (len(dst) >= len(src)), as FromF32 does bit
// for bit, 16 elements per instruction with AVX-512.
func FromF32s(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	done := 0
	if hasAVX512F {
		done = len(src) &^ 15
		f32ToBF16AVX512(dst, src)
	}
	fromF32sScalar(dst[done:], src[done:])
}

// Pairs is dst[j] = Pair(s0[j], s1[j]) for j < len(s0), 16 pairs per step with AVX-512.
func Pairs(dst []uint32, s0, s1 []float32) {
	dst, s1 = dst[:len(s0)], s1[:len(s0)]
	done := 0
	if hasAVX512F {
		done = len(s0) &^ 15
		pairBF16AVX512(dst, s0, s1)
	}
	for j := done; j < len(s0); j++ {
		dst[j] = Pair(s0[j], s1[j])
	}
}
