package kernels

import "math"

// Vectorised element-wise transcendentals over float32 slices: e^x and the loops built on it
// (softmax rows, log-sum-exp, SwiGLU). On amd64 with AVX-512F they run 16 lanes at a time in
// vexp_amd64.s (the last len%16 elements under a lane mask, through the same instructions, so
// an element's result does not depend on its position or on how a caller splits the slice);
// elsewhere they loop over exp32. Both paths: max relative error ≤ 3e-7 against math.Exp,
// e^x = 0 for x < −87.33654 (−Inf included), +Inf for x > 88.72283, NaN stays NaN.
//
// For callers in this package (attention's softmax among them):
//
//	m := sliceMax(row)              // NaN if any element is NaN, −Inf for an empty row
//	sum := expSubInPlace(row, m)    // row[j] = e^(row[j] − m); sum = Σ row[j]
//
// and expSubScale(dst, src, sub, scale) when the result goes to another buffer or is scaled.
// A row whose max is −Inf (fully masked) gives (−Inf) − (−Inf) = NaN: test m first.

// vexpChunk is how many elements the float32 lane sums run over before being added into a
// float64 total (256 per lane): the sums of long rows stay accurate.
const vexpChunk = 4096

// expSlice sets dst[i] = e^src[i] for i < len(src); dst may be src.
func expSlice(dst, src []float32) { expSubScale(dst, src, 0, 1) }

// expSubInPlace sets x[i] = e^(x[i] − m) and returns Σ x[i] (the sum of a softmax row before
// normalising).
func expSubInPlace(x []float32, m float32) float32 { return expSubScale(x, x, m, 1) }

// expSubScale sets dst[i] = scale·e^(src[i] − sub) for i < len(src) and returns Σ dst[i]
// (float32 partial sums per 4096 elements, added in float64). dst may be src; len(dst) must
// be at least len(src).
func expSubScale(dst, src []float32, sub, scale float32) float32 {
	dst = dst[:len(src)]
	if len(src) <= vexpChunk {
		return expSubScaleRow(dst, src, sub, scale)
	}
	var s float64
	for lo := 0; lo < len(src); lo += vexpChunk {
		hi := min(lo+vexpChunk, len(src))
		s += float64(expSubScaleRow(dst[lo:hi], src[lo:hi], sub, scale))
	}
	return float32(s)
}

// sumExpSub returns Σ e^(src[i] − sub) without writing anything (float32 partial sums per
// 4096 elements, added in float64).
func sumExpSub(src []float32, sub float32) float64 {
	var s float64
	for lo := 0; lo < len(src); lo += vexpChunk {
		hi := min(lo+vexpChunk, len(src))
		s += float64(sumExpSubRow(src[lo:hi], sub))
	}
	return s
}

// sliceMax returns the largest element of x: −Inf when x is empty, NaN when any is NaN.
func sliceMax(x []float32) float32 { return sliceMaxRow(x) }

// expSubScaleGo is the portable expSubScaleRow: exp32 per element, summed in float64 (free
// next to exp32's cost, and accurate over a whole 4096-element chunk).
func expSubScaleGo(dst, src []float32, sub, scale float32) float32 {
	dst = dst[:len(src)]
	var s float64
	for i, x := range src {
		e := scale * exp32(x-sub)
		dst[i] = e
		s += float64(e)
	}
	return float32(s)
}

// sumExpSubGo is the portable sumExpSubRow.
func sumExpSubGo(src []float32, sub float32) float32 {
	var s float64
	for _, x := range src {
		s += float64(exp32(x - sub))
	}
	return float32(s)
}

// sliceMaxGo is the portable sliceMaxRow.
func sliceMaxGo(x []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		m = max(m, v) // the builtin max propagates NaN
	}
	return m
}

// swigluForwardGo is the portable swigluForwardRow: h = g·σ(g)·u.
func swigluForwardGo(h, gate, up []float32) {
	gate, up = gate[:len(h)], up[:len(h)]
	for i := range h {
		g := gate[i]
		h[i] = g / (1 + exp32(-g)) * up[i]
	}
}

// swigluBackwardGo is the portable swigluBackwardRow: it adds the gradients to dgate and dup
// (acc), or overwrites them.
func swigluBackwardGo(dgate, dup, dh, gate, up []float32, acc bool) {
	n := len(dgate)
	dup, dh, gate, up = dup[:n], dh[:n], gate[:n], up[:n]
	for i := range dgate {
		g := gate[i]
		s := 1 / (1 + exp32(-g))
		d := dh[i]
		du, dg := d*g*s, d*up[i]*s*(1+g*(1-s))
		if acc {
			du += dup[i]
			dg += dgate[i]
		}
		dup[i], dgate[i] = du, dg
	}
}
