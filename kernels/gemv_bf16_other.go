//go:build !amd64

package kernels

// hasAVX512BF16 is false off amd64: gemvBF16Rows is the pure-Go loop.
var hasAVX512BF16 = false

func gemvBF16Rows(y []float32, w []uint16, x []uint16, k int) { gemvBF16Go(y, w, x, k) }

func gemvBF16Rows4(y []float32, ldy int, w, x []uint16, ldx, n, k int) bool { return false }
