package kernels

import "golang.org/x/sys/cpu"

// The AVX-512F kernels of vexp_amd64.s. Each processes every element of its first slice (the
// others are at least as long), the last len%16 under a lane mask.

//go:noescape
func vexpSubAVX512(dst, src []float32, sub, scale float32) float32

//go:noescape
func vexpSumAVX512(src []float32, sub float32) float32

//go:noescape
func vmaxAVX512(x []float32) float32

//go:noescape
func swigluFwdAVX512(h, gate, up []float32)

//go:noescape
func swigluBwdAVX512(dgate, dup, dh, gate, up []float32, acc bool)

// useVexpAVX512 selects the AVX-512 kernels (x/sys/cpu checks that the OS saves ZMM state).
var useVexpAVX512 = cpu.X86.HasAVX512F

func expSubScaleRow(dst, src []float32, sub, scale float32) float32 {
	dst = dst[:len(src)]
	if useVexpAVX512 {
		return vexpSubAVX512(dst, src, sub, scale)
	}
	return expSubScaleGo(dst, src, sub, scale)
}

func sumExpSubRow(src []float32, sub float32) float32 {
	if useVexpAVX512 {
		return vexpSumAVX512(src, sub)
	}
	return sumExpSubGo(src, sub)
}

func sliceMaxRow(x []float32) float32 {
	if useVexpAVX512 {
		return vmaxAVX512(x)
	}
	return sliceMaxGo(x)
}

func swigluForwardRow(h, gate, up []float32) {
	gate, up = gate[:len(h)], up[:len(h)]
	if useVexpAVX512 {
		swigluFwdAVX512(h, gate, up)
		return
	}
	swigluForwardGo(h, gate, up)
}

func swigluBackwardRow(dgate, dup, dh, gate, up []float32, acc bool) {
	n := len(dgate)
	dup, dh, gate, up = dup[:n], dh[:n], gate[:n], up[:n]
	if useVexpAVX512 {
		swigluBwdAVX512(dgate, dup, dh, gate, up, acc)
		return
	}
	swigluBackwardGo(dgate, dup, dh, gate, up, acc)
}
