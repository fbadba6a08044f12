package kernels

//go:noescape
func dotAVX512(a, b []float32) float32

//go:noescape
func axpyAVX512(y []float32, alpha float32, x []float32)

// dotVec is Σ a·b over the first n = len(a) &^ 15 elements with AVX-512 (n = 0 without it).
func dotVec(a, b []float32) (sum float32, n int) {
	if !useVexpAVX512 {
		return 0, 0
	}
	n = len(a) &^ 15
	return dotAVX512(a[:n], b[:n]), n
}

// axpyVec does y += alpha·x over the first n = len(y) &^ 15 elements with AVX-512.
func axpyVec(y []float32, alpha float32, x []float32) (n int) {
	if !useVexpAVX512 {
		return 0
	}
	n = len(y) &^ 15
	axpyAVX512(y[:n], alpha, x[:n])
	return n
}
