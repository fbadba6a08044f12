//go:build !amd64

package kernels

// f32ToBF16Row is F32ToBF16.
func f32ToBF16Row(dst []uint16, src []float32) { F32ToBF16(dst, src) }
