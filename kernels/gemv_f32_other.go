//go:build !amd64

package kernels

// hasAVX512GEMV is false off amd64: gemvF32Rows is one dot product per row.
var hasAVX512GEMV = false

func gemvF32Rows(y, w, x []float32, k int) { gemvF32Go(y, w, x, k) }

func gemvF32Rows4(y []float32, ldy int, w, x []float32, ldx, n, k int) bool { return false }
