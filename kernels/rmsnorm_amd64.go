package kernels

//go:noescape
func rmsScaleAVX512(y, x, w []float32, r float32)

//go:noescape
func rmsBackwardDotAVX512(acc, dy, x, w []float32, r float32) float32

//go:noescape
func rmsBackwardDxAVX512(dx, dy, x, w []float32, r, c float32)

// rmsScaleVec does y[j] = w[j]·(x[j]·r) over the first n = len(y) &^ 15 elements.
func rmsScaleVec(y, x, w []float32, r float32) (n int) {
	if !useVexpAVX512 {
		return 0
	}
	if n = len(y) &^ 15; n > 0 {
		rmsScaleAVX512(y[:n], x[:n], w[:n], r)
	}
	return n
}

// rmsBackwardDotVec does RMSNormBackward's first pass over the first n = len(acc) &^ 15
// elements: acc += dy·xh, returning Σ (dy·w)·xh.
func rmsBackwardDotVec(acc, dy, x, w []float32, r float32) (dot float32, n int) {
	if !useVexpAVX512 {
		return 0, 0
	}
	if n = len(acc) &^ 15; n > 0 {
		dot = rmsBackwardDotAVX512(acc[:n], dy[:n], x[:n], w[:n], r)
	}
	return dot, n
}

// rmsBackwardDxVec does RMSNormBackward's second pass over the first n = len(dx) &^ 15 elements.
func rmsBackwardDxVec(dx, dy, x, w []float32, r, c float32) (n int) {
	if !useVexpAVX512 {
		return 0
	}
	if n = len(dx) &^ 15; n > 0 {
		rmsBackwardDxAVX512(dx[:n], dy[:n], x[:n], w[:n], r, c)
	}
	return n
}
