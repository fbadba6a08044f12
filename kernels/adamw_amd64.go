package kernels

//go:noescape
func adamwAVX512(p, g, m, v []float32, c *[8]float32)

// adamwVec runs the AdamW update over the first n = len(p) &^ 15 elements with AVX-512 (n = 0
// without it); g, m and v are at least as long as p.
func adamwVec(p, g, m, v []float32, c *[8]float32) (n int) {
	if !useVexpAVX512 {
		return 0
	}
	n = len(p) &^ 15
	if n > 0 {
		adamwAVX512(p[:n], g[:n], m[:n], v[:n], c)
	}
	return n
}
