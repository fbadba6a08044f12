package kernels

// SumSquares returns Σ x² accumulated in float64 (for global gradient-norm clipping). Each
// worker sums a contiguous part and the parts are added in order: deterministic for a fixed
// GOMAXPROCS.
func SumSquares(x []float32) float64 {
	parts := rowParts(len(x), 1<<15)
	sums := make([]float64, len(parts))
	Parallel(len(parts), 1, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			sums[p] = sumSquares(x[parts[p][0]:parts[p][1]])
		}
	})
	var s float64
	for _, v := range sums {
		s += v
	}
	return s
}

// sumSquares sums x² in float64 with four independent accumulators.
func sumSquares(x []float32) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		a, b, c, d := float64(x[i]), float64(x[i+1]), float64(x[i+2]), float64(x[i+3])
		s0 += a * a
		s1 += b * b
		s2 += c * c
		s3 += d * d
	}
	for ; i < len(x); i++ {
		s0 += float64(x[i]) * float64(x[i])
	}
	return (s0 + s1) + (s2 + s3)
}

// Scale multiplies x by s in place.
func Scale(x []float32, s float32) {
	Parallel(len(x), 1<<15, func(lo, hi int) {
		for i := range x[lo:hi] {
			x[lo+i] *= s
		}
	})
}

// Add writes dst = a + b element-wise (equal lengths; dst may be a or b), split over Parallel.
func Add(dst, a, b []float32) {
	if len(a) != len(dst) || len(b) != len(dst) {
		panic("kernels.Add: lengths differ")
	}
	Parallel(len(dst), 1<<15, func(lo, hi int) {
		d, x, y := dst[lo:hi], a[lo:hi], b[lo:hi]
		for i := range d {
			d[i] = x[i] + y[i]
		}
	})
}

// Copy is copy(dst, src) for equal lengths, split over Parallel.
func Copy(dst, src []float32) {
	if len(src) != len(dst) {
		panic("kernels.Copy: lengths differ")
	}
	Parallel(len(dst), 1<<16, func(lo, hi int) { copy(dst[lo:hi], src[lo:hi]) })
}

// SumSquaresRef is the naive reference of SumSquares.
func SumSquaresRef[F float32 | float64](x []F) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return s
}

// ScaleRef is the naive reference of Scale.
func ScaleRef[F float32 | float64](x []F, s F) {
	for i := range x {
		x[i] *= s
	}
}
