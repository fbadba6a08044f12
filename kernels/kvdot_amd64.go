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

//go:noescape
func kvScoresAVX512(s, q, k []float32, stride int, scale float32)

//go:noescape
func kvAccumAVX512(out, p, v []float32, stride int)

// kvRowsVec says whether kvScores and kvAccum run for head size hd (AVX-512, hd a multiple of
// 16); otherwise AttentionForwardKV calls kvDot and kvAxpy per cached position.
func kvRowsVec(hd int) bool { return kvRowsOn && useVexpAVX512 && hd > 0 && hd%16 == 0 }

// kvRowsOn lets tests compare the row kernels with the per-position path.
var kvRowsOn = true

// kvScores sets s[j] = scale·(q·k[j·stride:][:len(q)]) for j < len(s), equal to kvDot's
// products; only where kvRowsVec(len(q)).
func kvScores(s, q, k []float32, stride int, scale float32) {
	if len(s) == 0 {
		return
	}
	_ = k[(len(s)-1)*stride+len(q)-1]
	kvScoresAVX512(s, q, k, stride, scale)
}

// kvAccum sets out[c] = Σ_j p[j]·v[j·stride+c], equal to clearing out and calling kvAxpy per
// j; only where kvRowsVec(len(out)).
func kvAccum(out, p, v []float32, stride int) {
	if len(p) > 0 {
		_ = v[(len(p)-1)*stride+len(out)-1]
	}
	kvAccumAVX512(out, p, v, stride)
}
