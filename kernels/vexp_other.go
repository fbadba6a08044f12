//go:build !amd64

package kernels

// Without amd64 assembly the element-wise transcendentals loop over exp32.

const useVexpAVX512 = false

func expSubScaleRow(dst, src []float32, sub, scale float32) float32 {
	return expSubScaleGo(dst, src, sub, scale)
}

func sumExpSubRow(src []float32, sub float32) float32 { return sumExpSubGo(src, sub) }

func sliceMaxRow(x []float32) float32 { return sliceMaxGo(x) }

func swigluForwardRow(h, gate, up []float32) { swigluForwardGo(h, gate, up) }

func swigluBackwardRow(dgate, dup, dh, gate, up []float32, acc bool) {
	swigluBackwardGo(dgate, dup, dh, gate, up, acc)
}
