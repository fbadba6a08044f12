//go:build unix

package kernels

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// benchLoad reports the 1-minute load average (the machine these numbers come from is shared).
func benchLoad(b *testing.B) {
	if s, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average: %s", s[:len(s)-1])
	}
}

// reportGEMM reports GFLOP/s by wall clock and by the CPU time the whole process used
// (cpu-GFLOP/s: GFLOP per CPU-second, which other processes on a shared machine disturb less;
// times the thread count it bounds what an idle machine would give).
func reportGEMM(b *testing.B, flops float64, cpu time.Duration) {
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	b.ReportMetric(flops*float64(b.N)/cpu.Seconds()/1e9, "cpu-GFLOP/s")
}

// BenchmarkGemmBF16 puts the bf16 GEMMs beside fp32 Sgemm on the projection shapes of
// BenchmarkSgemm (m=2048 token rows, k=1536 in, n=512 out; NN forward, TN weight gradient, NT
// input gradient), 2048³, 512³ and an up-projection (k=512 in, n=1536 out):
//
//	fp32              Sgemm (OpenBLAS)
//	bf16              SgemmBF16: fp32 in, conversion to bf16 bits included (oneDNN where loaded)
//	bf16-bits         GemmBF16 on operands already in bf16 (oneDNN where loaded)
//	bf16-bits-matmul  oneDNN's matmul primitive alone (cached; skipped where it is off)
//	bf16-bits-gemmapi oneDNN's legacy dnnl_gemm_bf16bf16f32 alone
//	bf16-round        the path without oneDNN: RoundBF16 copies, then OpenBLAS's fp32 GEMM
//
//	go test ./kernels/ -run XXX -bench 'GemmBF16$' -benchtime 20x
func BenchmarkGemmBF16(b *testing.B) {
	b.Logf("fp32: %s; bf16: %s", BLASBackend(), BF16Backend())
	benchLoad(b)
	for _, s := range []struct {
		name           string
		m, n, k        int
		transA, transB bool
	}{
		{"2048x512x1536/NN", 2048, 512, 1536, false, false},
		{"2048x512x1536/TN", 2048, 512, 1536, true, false},
		{"2048x512x1536/NT", 2048, 512, 1536, false, true},
		{"2048x2048x2048/NN", 2048, 2048, 2048, false, false},
		{"512x512x512/NT", 512, 512, 512, false, true},
		{"2048x1536x512/NN", 2048, 1536, 512, false, false},
	} {
		rng := rand.New(rand.NewPCG(24, 7))
		x, w, y := gemmRand(rng, s.m*s.k), gemmRand(rng, s.k*s.n), make([]float32, s.m*s.n)
		x16, w16 := make([]uint16, len(x)), make([]uint16, len(w))
		F32ToBF16(x16, x)
		F32ToBF16(w16, w)
		lda, ldb := s.k, s.n
		if s.transA {
			lda = s.m
		}
		if s.transB {
			ldb = s.k
		}
		flops := 2 * float64(s.m) * float64(s.n) * float64(s.k)
		var xr, wr []float32
		for _, v := range []struct {
			name string
			run  func()
		}{
			{"fp32", func() { Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, x, lda, w, ldb, 0, y, s.n) }},
			{"bf16", func() { SgemmBF16(s.transA, s.transB, s.m, s.n, s.k, 1, x, lda, w, ldb, 0, y, s.n) }},
			{"bf16-bits", func() { GemmBF16(s.transA, s.transB, s.m, s.n, s.k, 1, x16, lda, w16, ldb, 0, y, s.n) }},
			{"bf16-bits-matmul", func() { matmulOnly(s.transA, s.transB, s.m, s.n, s.k, 1, x16, lda, w16, ldb, 0, y, s.n) }},
			{"bf16-bits-gemmapi", func() { gemmBF16DNNL(s.transA, s.transB, s.m, s.n, s.k, 1, x16, lda, w16, ldb, 0, y, s.n) }},
			{"bf16-round", func() {
				xr, wr = append(xr[:0], x...), append(wr[:0], w...)
				RoundBF16(xr, xr)
				RoundBF16(wr, wr)
				Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, xr, lda, wr, ldb, 0, y, s.n)
			}},
		} {
			b.Run(s.name+"/"+v.name, func(b *testing.B) {
				switch {
				case v.name == "bf16-bits-matmul" && !matmulLoaded():
					b.Skipf("matmul primitive off: %s", BF16Backend())
				case v.name == "bf16-bits-gemmapi" && !dnnlLoaded():
					b.Skipf("no oneDNN: %s", BF16Backend())
				}
				v.run() // scratch, JIT kernels, threads
				b.ResetTimer()
				c0 := processCPUTime()
				for range b.N {
					v.run()
				}
				reportGEMM(b, flops, processCPUTime()-c0)
			})
		}
	}
}

// BenchmarkSgemmBF16Crossover compares, on square products, SgemmBF16's two routes: oneDNN
// (conversion to bits included) and bfloat16-rounded fp32 copies multiplied by OpenBLAS. The
// crossing sets gemmBF16DNNLFlops.
func BenchmarkSgemmBF16Crossover(b *testing.B) {
	if !dnnlLoaded() || !blasLoaded() {
		b.Skipf("needs both oneDNN (%s) and OpenBLAS (%s)", BF16Backend(), BLASBackend())
	}
	benchLoad(b)
	for _, s := range []int{16, 24, 32, 48, 56, 64, 72, 80, 96, 128, 192} {
		rng := rand.New(rand.NewPCG(25, 7))
		x, w, y := gemmRand(rng, s*s), gemmRand(rng, s*s), make([]float32, s*s)
		flops := 2 * float64(s*s*s)
		var xr, wr []float32
		for _, v := range []struct {
			name string
			run  func()
		}{
			{"onednn", func() { sgemmBF16DNNL(gemmBF16OneDNN, false, true, s, s, s, 1, x, s, w, s, 0, y, s) }},
			{"round+openblas", func() {
				xr, wr = append(xr[:0], x...), append(wr[:0], w...)
				RoundBF16(xr, xr)
				RoundBF16(wr, wr)
				sgemmBLAS(false, true, s, s, s, 1, xr, s, wr, s, 0, y, s)
			}},
		} {
			b.Run(fmt.Sprintf("%d/%s", s, v.name), func(b *testing.B) {
				v.run()
				b.ResetTimer()
				c0 := processCPUTime()
				for range b.N {
					v.run()
				}
				reportGEMM(b, flops, processCPUTime()-c0)
			})
		}
	}
}

// BenchmarkBF16Interleaved alternates GEMMs with a Go-parallel element-wise pass, as a training
// step does, and reports the CPU the process burns in the 20 ms after a GEMM while Go sleeps
// (idle-cpu-%: OpenMP workers spinning instead of sleeping): after a oneDNN GEMM, and after an
// fp32 OpenBLAS GEMM that follows one (both libraries share one libgomp when OpenBLAS is
// Debian's OpenMP build, so whether one's idle workers hold cores while the other runs shows
// here and in the mixed loop's time against its parts).
//
//	go test ./kernels/ -run XXX -bench BF16Interleaved -benchtime 50x
func BenchmarkBF16Interleaved(b *testing.B) {
	if !dnnlLoaded() {
		b.Skipf("no oneDNN: %s", BF16Backend())
	}
	b.Logf("fp32: %s; bf16: %s", BLASBackend(), BF16Backend())
	for _, kv := range []string{"OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS"} {
		b.Logf("%s=%q", kv, os.Getenv(kv))
	}
	benchLoad(b)
	const m, n, k = 512, 512, 512
	rng := rand.New(rand.NewPCG(26, 7))
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
	bf16 := func() { SgemmBF16(false, false, m, n, k, 1, x, k, w, n, 0, y, n) }
	fp32 := func() { Sgemm(false, false, m, n, k, 1, x, k, w, n, 0, y, n) }
	idle := func(b *testing.B, last func()) {
		b.StopTimer()
		last()
		const idle = 20 * time.Millisecond
		c0 := processCPUTime()
		time.Sleep(idle)
		b.ReportMetric(100*float64(processCPUTime()-c0)/float64(idle), "idle-cpu-%")
	}
	for _, c := range []struct {
		name string
		step func()
		last func()
	}{
		{"bf16", bf16, bf16},
		{"fp32", fp32, fp32},
		{"go", elementwise, elementwise},
		{"bf16+go", func() { bf16(); elementwise() }, bf16},
		{"bf16+fp32", func() { bf16(); fp32() }, func() { bf16(); fp32() }},
		{"bf16+fp32+go", func() { bf16(); fp32(); elementwise() }, func() { fp32(); bf16() }},
	} {
		b.Run(c.name, func(b *testing.B) {
			c.step()
			b.ResetTimer()
			c0 := processCPUTime()
			for range b.N {
				c.step()
			}
			b.ReportMetric(float64((processCPUTime()-c0).Microseconds())/float64(b.N), "cpu-µs/op")
			idle(b, c.last)
		})
	}
}
