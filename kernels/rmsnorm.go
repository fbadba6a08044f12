package kernels

import (
	"fmt"
	"math"
	"runtime"
)

// RMSNorm over the last dimension, as Hugging Face's Qwen3RMSNorm computes it in fp32:
//
//	rstd = 1 / sqrt(mean(x²) + eps),  y = w · (x · rstd)

// RMSNormForward writes y [n,d] and the per-row rstd [n] (kept for the backward) from x [n,d]
// and the weight w [d]. Rows run in parallel.
func RMSNormForward(y, rstd, x, w []float32, n, d int, eps float32) {
	checkRMSNorm("RMSNormForward", len(y), len(rstd), len(x), len(w), n, d)
	Parallel(n, rowGrain(d), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			rstd[i] = rmsRowForward(y[i*d:i*d+d], x[i*d:i*d+d], w, eps)
		}
	})
}

// rmsRowForward normalises one row: yr = w·(xr·rstd), returning rstd.
func rmsRowForward(yr, xr, w []float32, eps float32) float32 {
	d := len(xr)
	ss := kvDot(xr, xr) // AVX-512 where the CPU has it
	r := float32(1 / math.Sqrt(float64(ss/float32(d)+eps)))
	for j := rmsScaleVec(yr, xr, w, r); j < d; j++ {
		yr[j] = w[j] * (xr[j] * r)
	}
	return r
}

// rmsRowBackward is one row of RMSNormBackward: dxr += the row's input gradient, acc += its
// contribution to dw.
func rmsRowBackward(dxr, acc, dyr, xr, w []float32, r float32) {
	d := len(xr)
	dot, j0 := rmsBackwardDotVec(acc, dyr, xr, w, r) // Σ (dy·w)·xhat
	for j := j0; j < d; j++ {
		xh := xr[j] * r
		g := dyr[j]
		acc[j] += g * xh
		dot += g * w[j] * xh
	}
	c := dot / float32(d)
	for j := rmsBackwardDxVec(dxr, dyr, xr, w, r, c); j < d; j++ {
		dxr[j] += r * (dyr[j]*w[j] - xr[j]*r*c)
	}
}

// RMSNormBackward accumulates dx [n,d] and dw [d] from dy [n,d], given the forward's x, w and
// rstd. The dw reduction over rows uses one partial per worker (scratch GOMAXPROCS·d floats),
// summed in worker order, so it is deterministic for a fixed GOMAXPROCS.
func RMSNormBackward(dx, dw, dy, x, w, rstd []float32, n, d int) {
	checkRMSNorm("RMSNormBackward", len(dx), len(rstd), len(x), len(w), n, d)
	if len(dy) != n*d || len(dw) != d {
		panic(fmt.Sprintf("kernels: RMSNormBackward: len(dy)=%d want %d, len(dw)=%d want %d", len(dy), n*d, len(dw), d))
	}
	parts := rowParts(n, rowGrain(d))
	partial := make([]float32, len(parts)*d)
	Parallel(len(parts), 1, func(plo, phi int) {
		for p := plo; p < phi; p++ {
			acc := partial[p*d : p*d+d]
			for i := parts[p][0]; i < parts[p][1]; i++ {
				rmsRowBackward(dx[i*d:i*d+d], acc, dy[i*d:i*d+d], x[i*d:i*d+d], w, rstd[i])
			}
		}
	})
	for p := range parts {
		for j, v := range partial[p*d : p*d+d] {
			dw[j] += v
		}
	}
}

// RMSNormForwardRef is the naive reference of RMSNormForward.
func RMSNormForwardRef[F float32 | float64](y, rstd, x, w []F, n, d int, eps F) {
	checkRMSNorm("RMSNormForwardRef", len(y), len(rstd), len(x), len(w), n, d)
	for i := 0; i < n; i++ {
		var ss float64
		for j := 0; j < d; j++ {
			ss += float64(x[i*d+j]) * float64(x[i*d+j])
		}
		r := F(1 / math.Sqrt(ss/float64(d)+float64(eps)))
		rstd[i] = r
		for j := 0; j < d; j++ {
			y[i*d+j] = w[j] * (x[i*d+j] * r)
		}
	}
}

// RMSNormBackwardRef is the naive reference of RMSNormBackward (accumulates into dx and dw).
func RMSNormBackwardRef[F float32 | float64](dx, dw, dy, x, w, rstd []F, n, d int) {
	checkRMSNorm("RMSNormBackwardRef", len(dx), len(rstd), len(x), len(w), n, d)
	for i := 0; i < n; i++ {
		r := float64(rstd[i])
		var dot float64
		for j := 0; j < d; j++ {
			xh := float64(x[i*d+j]) * r
			dot += float64(dy[i*d+j]) * float64(w[j]) * xh
			dw[j] += F(float64(dy[i*d+j]) * xh)
		}
		for j := 0; j < d; j++ {
			xh := float64(x[i*d+j]) * r
			dx[i*d+j] += F(r * (float64(dy[i*d+j])*float64(w[j]) - xh*dot/float64(d)))
		}
	}
}

func checkRMSNorm(name string, ly, lrstd, lx, lw, n, d int) {
	if n < 0 || d <= 0 || ly != n*d || lx != n*d || lrstd != n || lw != d {
		panic(fmt.Sprintf("kernels: %s: n=%d d=%d need len(y)=len(x)=%d, len(rstd)=%d, len(w)=%d; got len(y)=%d len(x)=%d len(rstd)=%d len(w)=%d",
			name, n, d, n*d, n, d, ly, lx, lrstd, lw))
	}
}

// rowGrain is the number of rows of width d that make a chunk worth a goroutine (~16K floats).
func rowGrain(d int) int { return max(1, (16<<10)/max(d, 1)) }

// rowParts splits [0,n) into at most GOMAXPROCS contiguous parts of at least grain rows; the
// split depends only on n, grain and GOMAXPROCS, so reductions over parts are deterministic.
func rowParts(n, grain int) [][2]int {
	if n <= 0 {
		return nil
	}
	workers := min(runtime.GOMAXPROCS(0), (n+grain-1)/grain)
	workers = max(workers, 1)
	chunk := (n + workers - 1) / workers
	parts := make([][2]int, 0, workers)
	for lo := 0; lo < n; lo += chunk {
		parts = append(parts, [2]int{lo, min(lo+chunk, n)})
	}
	return parts
}
