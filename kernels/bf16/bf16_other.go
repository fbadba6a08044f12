//go:build !amd64

package bf16

// FromF32s converts src to bfloat16 bits in dst (len(dst) >= len(src)), as FromF32 does.
func FromF32s(dst []uint16, src []float32) { fromF32sScalar(dst, src) }

// Rounds writes src rounded to bfloat16 precision into dst (which may be src), as Round does.
func Rounds(dst, src []float32) {
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = Round(f)
	}
}

// Pairs is dst[j] = Pair(s0[j], s1[j]) for j < len(s0).
func Pairs(dst []uint32, s0, s1 []float32) {
	dst, s1 = dst[:len(s0)], s1[:len(s0)]
	for j, x := range s0 {
		dst[j] = Pair(x, s1[j])
	}
}

var hasAVX512F = false // no vector path here; tests toggle it on amd64
