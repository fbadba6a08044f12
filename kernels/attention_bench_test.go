package kernels

import (
	"math"
	"syscall"
	"testing"
	"time"
)

// cpuTime is this process's user+system CPU time: on a machine shared with other work, CPU
// time per op is the steadier measure (wall time on idle cores ≈ cpu-ms/op ÷ GOMAXPROCS).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// attnBench is bench_torch.py's small attention shape (b=4 t=512 h=8 kv=4 hd=64) with random
// inputs and output buffers.
type attnBench struct {
	b, t, h, kv, hd                 int
	q, k, v, do, o, lse, dq, dk, dv []float32
}

func newAttnBench() *attnBench {
	a := &attnBench{b: 4, t: 512, h: 8, kv: 4, hd: 64}
	rng := newRNG(16)
	a.q, a.k, a.v = randF32(rng, a.b*a.t*a.h*a.hd, 1), randF32(rng, a.b*a.t*a.kv*a.hd, 1), randF32(rng, a.b*a.t*a.kv*a.hd, 1)
	a.do = randF32(rng, len(a.q), 1)
	a.o, a.lse = make([]float32, len(a.q)), make([]float32, a.b*a.h*a.t)
	a.dq, a.dk, a.dv = make([]float32, len(a.q)), make([]float32, len(a.k)), make([]float32, len(a.v))
	return a
}

// dims is the call's attnDims, with the scale 1/sqrt(hd).
func (a *attnBench) dims(bf16 bool) attnDims {
	return newAttnDims(a.b, a.t, a.h, a.kv, a.hd, AttnOpts{Scale: float32(1 / math.Sqrt(float64(a.hd))), BF16: bf16})
}

// go test ./kernels/ -run '^$' -bench Attention -benchtime 5x
func benchAttention(bn *testing.B, bf16 bool, backward bool) {
	a := newAttnBench()
	opt := AttnOpts{Scale: float32(1 / math.Sqrt(float64(a.hd))), BF16: bf16}
	AttentionForward(a.o, a.lse, a.q, a.k, a.v, a.b, a.t, a.h, a.kv, a.hd, opt)
	bn.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < bn.N; i++ {
		AttentionForward(a.o, a.lse, a.q, a.k, a.v, a.b, a.t, a.h, a.kv, a.hd, opt)
		if backward {
			AttentionBackward(a.dq, a.dk, a.dv, a.do, a.q, a.k, a.v, a.o, a.lse, a.b, a.t, a.h, a.kv, a.hd, opt)
		}
	}
	bn.ReportMetric(float64(cpuTime()-c0)/1e6/float64(bn.N), "cpu-ms/op")
}

func BenchmarkAttentionForward(b *testing.B)         { benchAttention(b, false, false) }
func BenchmarkAttentionForwardBackward(b *testing.B) { benchAttention(b, false, true) }
func BenchmarkAttentionBF16ForwardBackward(b *testing.B) {
	benchAttention(b, true, true)
}

// BenchmarkAttentionPaths runs forward+backward (fp32) on each path directly: with
// GWEN_BLAS=off it compares the flash kernel with the GEMM path on SgemmGo, which decides the
// fallback AttentionForward takes without OpenBLAS.
func BenchmarkAttentionPaths(bn *testing.B) {
	a := newAttnBench()
	d := a.dims(false)
	bn.Logf("backend: %s", BLASBackend())
	for _, im := range attnImpls {
		bn.Run(im.name, func(bn *testing.B) {
			c0 := cpuTime()
			for i := 0; i < bn.N; i++ {
				im.fwd(d, a.o, a.lse, a.q, a.k, a.v)
				im.bwd(d, a.dq, a.dk, a.dv, a.do, a.q, a.k, a.v, a.o, a.lse)
			}
			bn.ReportMetric(float64(cpuTime()-c0)/1e6/float64(bn.N), "cpu-ms/op")
		})
	}
}

// BenchmarkAttentionBF16Groups compares the two groups modes of the BF16 GEMM path, block
// products on OpenBLAS (rounded fp32 copies) against the tiles variant (bf16Tile), forward
// alone and forward+backward, at bench_torch.py's small shape.
//
//	go test ./kernels/ -run '^$' -bench AttentionBF16Groups -benchtime 10x
func BenchmarkAttentionBF16Groups(bn *testing.B) {
	a := newAttnBench()
	d := a.dims(true)
	for _, backward := range []bool{false, true} {
		for _, im := range attnImpls[2:] {
			name := im.name + "/forward"
			if backward {
				name += "+backward"
			}
			bn.Run(name, func(bn *testing.B) {
				c0 := cpuTime()
				for i := 0; i < bn.N; i++ {
					im.fwd(d, a.o, a.lse, a.q, a.k, a.v)
					if backward {
						im.bwd(d, a.dq, a.dk, a.dv, a.do, a.q, a.k, a.v, a.o, a.lse)
					}
				}
				bn.ReportMetric(float64(cpuTime()-c0)/1e6/float64(bn.N), "cpu-ms/op")
			})
		}
	}
}

// BenchmarkAttnNT measures the block micro-kernel alone (MB/s reads as MFLOP/s).
func BenchmarkAttnNT(b *testing.B) {
	rng := newRNG(1)
	a, bb, c := randF32(rng, 64*64, 1), randF32(rng, 64*64, 1), make([]float32, 64*64)
	b.SetBytes(2 * 64 * 64 * 64) // "bytes" = flops
	for i := 0; i < b.N; i++ {
		attnNT(c, 64, a, 64, bb, 64, 64, 64, 64, true, triNone, 0)
	}
}
