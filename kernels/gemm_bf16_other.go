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
