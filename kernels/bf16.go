package kernels

import (
	"fmt"

	"github.com/gwen-ml/gwen/kernels/bf16"
)

// The bfloat16 conversions live in package kernels/bf16 (so that file formats use them without
// the compute); these are kernels' names for them, and F32ToBF16 splits large slices over
// Parallel.

// F32ToBF16Bits rounds one float32 to bfloat16 and returns its 16 bits (bf16.FromF32).
func F32ToBF16Bits(f float32) uint16 { return bf16.FromF32(f) }

// BF16BitsToF32 widens bfloat16 bits to float32 exactly (bf16.ToF32).
func BF16BitsToF32(h uint16) float32 { return bf16.ToF32(h) }

// RoundBF16Value returns f rounded to the nearest bfloat16, as a float32 (bf16.Round).
func RoundBF16Value(f float32) float32 { return bf16.Round(f) }

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

// BF16ToF32 widens bfloat16 bits in src to float32 in dst (len(dst) >= len(src)).
func BF16ToF32(dst []float32, src []uint16) { bf16.ToF32s(dst, src) }

// RoundBF16 writes src rounded to bfloat16 precision into dst (which may be src);
// vectorised where the CPU has AVX-512, bit for bit the same as RoundBF16Value.
func RoundBF16(dst, src []float32) { bf16.Rounds(dst, src) }

// f32ToBF16Row is F32ToBF16 on the calling goroutine.
func f32ToBF16Row(dst []uint16, src []float32) { bf16.FromF32s(dst, src) }

// roundBF16Row is RoundBF16.
func roundBF16Row(dst, src []float32) { bf16.Rounds(dst, src) }

// pairBF16Row is dst[j] = pairBF16(s0[j], s1[j]) for j < len(s0) (bf16.Pairs).
func pairBF16Row(dst []uint32, s0, s1 []float32) { bf16.Pairs(dst, s0, s1) }

// F32ToBF16Matrix rounds the rows×cols matrix src (row stride lds) to bfloat16 bits into dst
// (row stride ldd), as F32ToBF16 does element by element: a matrix written into columns of a
// wider one (the input of a product whose K axis is grown by other columns).
func F32ToBF16Matrix(dst []uint16, ldd int, src []float32, lds, rows, cols int) {
	if rows == 0 || cols == 0 {
		return
	}
	if ldd < cols || lds < cols || len(dst) < (rows-1)*ldd+cols || len(src) < (rows-1)*lds+cols {
		panic(fmt.Sprintf("kernels.F32ToBF16Matrix: dst %d (ld %d), src %d (ld %d) for %d×%d", len(dst), ldd, len(src), lds, rows, cols))
	}
	Parallel(rows, max(1, convertGrain/cols), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			f32ToBF16Row(dst[r*ldd:r*ldd+cols], src[r*lds:r*lds+cols])
		}
	})
}
