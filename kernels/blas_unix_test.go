//go:build unix

package kernels

import (
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

func processCPUTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBLASInterleaved alternates an OpenBLAS GEMM with a Go-parallel element-wise pass,
// the pattern of a training step (matmul, then norm or activation on goroutines), and reports
// how much CPU the process burns while idle for 20 ms right after a GEMM (idle-cpu-%: OpenBLAS
// workers spinning instead of sleeping). Run it once per library to compare builds:
//
//	GWEN_BLAS=/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0 go test ./kernels/ -run XXX -bench BLASInterleaved
//	GWEN_BLAS=/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0 go test ./kernels/ -run XXX -bench BLASInterleaved
func BenchmarkBLASInterleaved(b *testing.B) {
	if !blasLoaded() {
		b.Skipf("no OpenBLAS: %s", BLASBackend())
	}
	b.Logf("backend: %s", BLASBackend())
	const m, n, k = 512, 512, 512
	rng := rand.New(rand.NewPCG(11, 7))
	x, w, y := gemmRand(rng, m*k), gemmRand(rng, k*n), make([]float32, m*n)
	v := gemmRand(rng, 1<<18)
	elementwise := func() {
		Parallel(len(v), 1<<14, func(lo, hi int) {
			for r := 0; r < 8; r++ {
				for i := lo; i < hi; i++ {
					v[i] = v[i]*0.999 + 0.001
				}
			}
		})
	}
	gemm := func() { Sgemm(false, false, m, n, k, 1, x, k, w, n, 0, y, n) }
	b.Run("gemm", func(b *testing.B) {
		for range b.N {
			gemm()
		}
	})
	b.Run("go", func(b *testing.B) {
		for range b.N {
			elementwise()
		}
	})
	b.Run("gemm+go", func(b *testing.B) {
		for range b.N {
			gemm()
			elementwise()
		}
		b.StopTimer()
		gemm()
		const idle = 20 * time.Millisecond
		c0 := processCPUTime()
		time.Sleep(idle)
		b.ReportMetric(100*float64(processCPUTime()-c0)/float64(idle), "idle-cpu-%")
	})
}
