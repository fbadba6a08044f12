package kernels

import "golang.org/x/sys/cpu"

// f32ToBF16AVX512 converts the first len(src) &^ 15 elements of src as F32ToBF16 does;
// len(dst) >= len(src). It needs AVX-512F.
//
//go:noescape
func f32ToBF16AVX512(dst []uint16, src []float32)

// roundBF16AVX512 rounds the first len(src) &^ 15 elements of src to bfloat16 precision into
// dst as RoundBF16 does (dst may be src). It needs AVX-512F.
//
//go:noescape
func roundBF16AVX512(dst, src []float32)

// pairBF16AVX512 packs the first len(s0) &^ 15 pairs as pairBF16(s0[j], s1[j]) does;
// len(dst), len(s1) >= len(s0). It needs AVX-512F.
//
//go:noescape
func pairBF16AVX512(dst []uint32, s0, s1 []float32)

var hasAVX512F = cpu.X86.HasAVX512F

// roundBF16Row is RoundBF16 (bit for bit), 16 elements per instruction with AVX-512.
func roundBF16Row(dst, src []float32) {
	dst = dst[:len(src)]
	done := 0
	if hasAVX512F {
		done = len(src) &^ 15
		roundBF16AVX512(dst, src)
	}
	for i := done; i < len(src); i++ {
		dst[i] = RoundBF16Value(src[i])
	}
}

// f32ToBF16Row is F32ToBF16 (bit for bit), 16 elements per instruction with AVX-512.
func f32ToBF16Row(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	done := 0
	if hasAVX512F {
		done = len(src) &^ 15
		f32ToBF16AVX512(dst, src)
	}
	f32ToBF16Scalar(dst[done:], src[done:])
}

// pairBF16Row is dst[j] = pairBF16(s0[j], s1[j]) for j < len(s0), 16 pairs per step with AVX-512.
func pairBF16Row(dst []uint32, s0, s1 []float32) {
	dst, s1 = dst[:len(s0)], s1[:len(s0)]
	done := 0
	if hasAVX512F {
		done = len(s0) &^ 15
		pairBF16AVX512(dst, s0, s1)
	}
	for j := done; j < len(s0); j++ {
		dst[j] = pairBF16(s0[j], s1[j])
	}
}
