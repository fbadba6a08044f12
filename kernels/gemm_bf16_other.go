//go:build !amd64

package kernels

// f32ToBF16Row is F32ToBF16.
func f32ToBF16Row(dst []uint16, src []float32) { f32ToBF16Scalar(dst, src) }

func roundBF16Row(dst, src []float32) {
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = RoundBF16Value(f)
	}
}

func pairBF16Row(dst []uint32, s0, s1 []float32) {
	dst, s1 = dst[:len(s0)], s1[:len(s0)]
	for j, x := range s0 {
		dst[j] = pairBF16(x, s1[j])
	}
}
