package kernels

import (
	"math"
	"testing"
)

// bf16Tile (the VDPBF16PS kernels where the CPU has them, and bf16TileGo) against a float64
// sum of the same bfloat16 products, on row-major and transposed A, every row and vector count
// of the kernels (and of the two-pair-row kernels of one vector), ragged column counts, strides
// wider than the data, both accumulate modes.
func TestBF16Tile(t *testing.T) {
	rng := newRNG(31)
	impls := []struct {
		name string
		run  func(c []float32, ldc int, a []uint32, ars, aps int, b []uint32, ldb int, m, n, kp int, alpha float32, acc bool)
	}{{"bf16Tile", bf16Tile}, {"bf16TileGo", bf16TileGo}}
	t.Logf("VDPBF16PS kernels: %v", hasAVX512BF16)
	randPairs := func(n int) []uint32 {
		x := randF32(rng, 2*n, 1)
		p := make([]uint32, n)
		for i := range p {
			p[i] = pairBF16(x[2*i], x[2*i+1])
		}
		return p
	}
	for _, sz := range [][3]int{{1, 1, 1}, {6, 64, 32}, {7, 65, 3}, {13, 130, 9}, {5, 17, 1}, {12, 24, 12}, {64, 64, 32}, {3, 48, 40},
		{6, 16, 32}, {11, 16, 8}, {4, 3, 2}, {2, 16, 7}, {4, 16, 5}, {9, 16, 3}, {5, 7, 11}, {3, 16, 6}, {1, 16, 4}, {8, 10, 4}} { // from {6, 16, 32}: one vector, the K2 kernels, every row count with odd and even kp
		m, n, kp := sz[0], sz[1], sz[2]
		for _, trans := range []bool{false, true} {
			// A: m rows of kp pairs, stored row-major (row stride kp+3) or transposed (pair p's
			// row holds all m rows, stride m+1).
			ars, aps, alen := kp+3, 1, m*(kp+3)
			if trans {
				ars, aps, alen = 1, m+1, kp*(m+1)
			}
			a := randPairs(alen)
			ldb := n + 5
			b := randPairs(kp * ldb)
			ldc := n + 2
			c0 := randF32(rng, m*ldc, 1)
			for _, acc := range []bool{false, true} {
				alpha := float32(0.37)
				want := make([]float64, len(c0))
				for i := range c0 {
					want[i] = float64(c0[i])
				}
				for i := range m {
					for j := range n {
						var s float64
						for p := range kp {
							x, y := a[i*ars+p*aps], b[p*ldb+j]
							s += float64(pairLo(x))*float64(pairLo(y)) + float64(pairHi(x))*float64(pairHi(y))
						}
						if acc {
							want[i*ldc+j] += float64(alpha) * s
						} else {
							want[i*ldc+j] = float64(alpha) * s
						}
					}
				}
				for _, im := range impls {
					c := clone(c0)
					im.run(c, ldc, a, ars, aps, b, ldb, m, n, kp, alpha, acc)
					for i := range c {
						tol := 1e-5 * (1 + math.Abs(want[i])) * math.Sqrt(float64(kp))
						if math.Abs(float64(c[i])-want[i]) > tol {
							t.Fatalf("%s m=%d n=%d kp=%d trans=%v acc=%v: C[%d] (row %d col %d) = %v, want %v",
								im.name, m, n, kp, trans, acc, i, i/ldc, i%ldc, c[i], want[i])
						}
					}
				}
			}
		}
	}
}

// pairBF16 rounds each half as F32ToBF16Bits does and keeps x0 in the lower half.
func TestPairBF16(t *testing.T) {
	for _, x := range [][2]float32{{1, -2}, {1.00390625, 3.1415927}, {float32(math.Inf(1)), 0}} {
		p := pairBF16(x[0], x[1])
		if pairLo(p) != RoundBF16Value(x[0]) || pairHi(p) != RoundBF16Value(x[1]) {
			t.Errorf("pairBF16(%v, %v) = %#x: halves %v, %v", x[0], x[1], p, pairLo(p), pairHi(p))
		}
	}
}

// BenchmarkBF16Tile: the attention's tile products (64 stacked rows, 64 keys, head size 64) on
// the VDPBF16PS kernels, beside OpenBLAS's fp32 Sgemm on the same shape.
//
//	go test ./kernels/ -run '^$' -bench BF16Tile
func BenchmarkBF16Tile(b *testing.B) {
	rng := newRNG(5)
	const m, n, k = 64, 64, 64
	a32, b32 := randF32(rng, m*k, 1), randF32(rng, k*n, 1)
	c := make([]float32, m*n)
	ap, bp := make([]uint32, m*k/2), make([]uint32, k/2*n)
	for i := range ap {
		ap[i] = pairBF16(a32[2*i], a32[2*i+1])
	}
	for i := range bp {
		bp[i] = pairBF16(b32[2*i], b32[2*i+1])
	}
	flops := 2.0 * m * n * k
	b.Run("bf16Tile", func(b *testing.B) {
		for range b.N {
			bf16Tile(c, n, ap, k/2, 1, bp, n, m, n, k/2, 1, true)
		}
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	b.Run("Sgemm", func(b *testing.B) {
		for range b.N {
			Sgemm(false, false, m, n, k, 1, a32, k, b32, n, 1, c, n)
		}
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}
