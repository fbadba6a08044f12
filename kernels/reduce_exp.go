package kernels

import "math"

// exp32 is a float32 e^x accurate to about 2 ulp (Cephes expf: range reduction by ln 2 in two
// parts, degree-5 minimax polynomial, exponent by bit assembly), used instead of math.Exp
// (float64, far slower) by attention and by the portable paths of vexp.go. Underflow goes to
// 0, overflow to +Inf, NaN stays NaN. It costs ~6 ns a call: loops over slices should use
// expSubInPlace / expSubScale / sumExpSub (vexp.go), 16 lanes at a time with AVX-512.
func exp32(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
	)
	if x != x {
		return x
	}
	if x > 88.72283 {
		return float32(math.Inf(1))
	}
	if x < -87.33654 {
		return 0
	}
	fn := float32(math.Floor(float64(x*log2e + 0.5)))
	r := x - fn*c1 - fn*c2
	z := r * r
	p := ((((1.9875691500e-4*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r + 5.0000001201e-1
	p = p*z + r + 1
	n := int32(fn)
	// 2^n may leave the normal range when n == 128 (x near the top); split the scaling then.
	if n > 127 {
		return p * 2 * math.Float32frombits(uint32(n-1+127)<<23)
	}
	return p * math.Float32frombits(uint32(n+127)<<23)
}
