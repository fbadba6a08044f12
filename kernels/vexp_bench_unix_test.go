//go:build unix

package kernels

import (
	"syscall"
	"testing"
	"time"
)

// Element-wise transcendental benchmarks. Wall time on this shared 2-core machine swings with
// the neighbours' load, so each also reports CPU time per op (user+system of the process):
//
//	go test ./kernels/ -run '^$' -bench 'Exp|SwiGLU|CrossEntropy' -benchtime 20x

// vexpCPUTime is this process's user+system CPU time.
func vexpCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportElems reports elements per wall second and per CPU second, and CPU-ms per op.
func reportElems(b *testing.B, elems int, c0 time.Duration) {
	cpu := (vexpCPUTime() - c0).Seconds()
	b.ReportMetric(float64(elems)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
	if cpu > 0 {
		b.ReportMetric(float64(elems)*float64(b.N)/cpu/1e9, "cpu-Gelem/s")
		b.ReportMetric(cpu*1e3/float64(b.N), "cpu-ms/op")
	}
}

// SwiGLU forward + backward at the small model's MLP size: 2048 tokens × 1536.
func BenchmarkSwiGLUFwdBwd(b *testing.B) {
	n := 2048 * 1536
	rng := newRNG(1)
	gate, up, dh := randF32(rng, n, 6), randF32(rng, n, 2), randF32(rng, n, 1)
	h, dg, du := make([]float32, n), make([]float32, n), make([]float32, n)
	b.ResetTimer()
	c0 := vexpCPUTime()
	for range b.N {
		SwiGLUForward(h, gate, up, n)
		SwiGLUBackward(dg, du, dh, gate, up, n)
	}
	reportElems(b, n, c0)
}

// Cross-entropy forward + backward over 2048 rows of an 8192-word vocabulary.
func BenchmarkCrossEntropyFwdBwd(b *testing.B) {
	n, v := 2048, 8192
	rng := newRNG(2)
	logits := randF32(rng, n*v, 8)
	targets := make([]int32, n)
	for i := range targets {
		targets[i] = int32(rng.IntN(v))
	}
	lse, d := make([]float32, n), make([]float32, n*v)
	b.ResetTimer()
	c0 := vexpCPUTime()
	for range b.N {
		CrossEntropyForward(lse, logits, targets, n, v)
		CrossEntropyBackward(d, logits, lse, targets, n, v, 1.0/float32(n))
	}
	reportElems(b, n*v, c0)
}

// Cross-entropy forward alone (the row log-sum-exp).
func BenchmarkCrossEntropyFwd(b *testing.B) {
	n, v := 2048, 8192
	rng := newRNG(2)
	logits := randF32(rng, n*v, 8)
	targets := make([]int32, n)
	for i := range targets {
		targets[i] = int32(rng.IntN(v))
	}
	lse := make([]float32, n)
	b.ResetTimer()
	c0 := vexpCPUTime()
	for range b.N {
		CrossEntropyForward(lse, logits, targets, n, v)
	}
	reportElems(b, n*v, c0)
}

// e^x throughput over 64 Ki elements (in L2): exp32 per element, the portable slice loop, and
// the dispatched (AVX-512) slice kernel.
func BenchmarkExp(b *testing.B) {
	const n = 1 << 16
	src, dst := randF32(newRNG(3), n, 20), make([]float32, n)
	b.Run("exp32", func(b *testing.B) {
		c0 := vexpCPUTime()
		for range b.N {
			for i, x := range src {
				dst[i] = exp32(x)
			}
		}
		reportElems(b, n, c0)
	})
	b.Run("go-slice", func(b *testing.B) {
		c0 := vexpCPUTime()
		for range b.N {
			expSubScaleGo(dst, src, 0, 1)
		}
		reportElems(b, n, c0)
	})
	b.Run("vector", func(b *testing.B) {
		c0 := vexpCPUTime()
		for range b.N {
			expSlice(dst, src)
		}
		reportElems(b, n, c0)
	})
	b.Run("sumExpSub", func(b *testing.B) {
		c0 := vexpCPUTime()
		for range b.N {
			sumExpSub(src, 1)
		}
		reportElems(b, n, c0)
	})
}
