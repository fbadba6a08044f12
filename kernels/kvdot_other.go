//go:build !amd64

package kernels

func dotVec(a, b []float32) (float32, int)                { return 0, 0 }
func axpyVec(y []float32, alpha float32, x []float32) int { return 0 }

func kvRowsVec(hd int) bool { return false }
func kvScores(s, q, k []float32, stride int, scale float32) {
	panic("kernels: kvScores without AVX-512")
}
func kvAccum(out, p, v []float32, stride int) { panic("kernels: kvAccum without AVX-512") }
