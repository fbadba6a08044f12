package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

type sgemmFunc func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int)

// gemmShapes straddle every blocking decision of SgemmGo (MR=2, NR=4, KC=256, MC=128,
// NC=1024, the parallel split of rows or columns) and include the empty cases.
var gemmShapes = []struct{ m, n, k int }{
	{1, 1, 1}, {7, 13, 5}, {33, 65, 17}, {2, 4, 8}, {3, 5, 9},
	{0, 5, 3}, {5, 0, 3}, {4, 6, 0},
	{127, 9, 255}, {128, 4, 256}, {129, 5, 257}, // mc ±1, kc ±1
	{5, 7, 513},                  // two full kc slices and one more
	{2, 1023, 3}, {3, 1025, 257}, // nc ±1; columns split across goroutines
	{129, 33, 65}, {131, 17, 40}, // rows split across goroutines with an odd remainder
}

// gemmCase is one GEMM problem with padded strides; c0 is C before the call (NaN where beta is
// 0, so reading it would show), with a sentinel in the padding between rows.
type gemmCase struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	a, b, c0       []float32
	lda, ldb, ldc  int
}

const gemmPad = -12345 // sentinel in C's row padding: no GEMM may write it

func newGemmCase(rng *rand.Rand, transA, transB bool, m, n, k int, alpha, beta float32) gemmCase {
	g := gemmCase{transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta}
	ra, ca := m, k
	if transA {
		ra, ca = k, m
	}
	rb, cb := k, n
	if transB {
		rb, cb = n, k
	}
	g.lda, g.ldb, g.ldc = ca+3, cb+2, n+5
	g.a = gemmRand(rng, max(0, (ra-1)*g.lda+ca))
	g.b = gemmRand(rng, max(0, (rb-1)*g.ldb+cb))
	g.c0 = gemmRand(rng, max(0, (m-1)*g.ldc+n))
	for i := range g.c0 {
		switch {
		case i%g.ldc >= n:
			g.c0[i] = gemmPad
		case beta == 0:
			g.c0[i] = float32(math.NaN())
		}
	}
	return g
}

func gemmRand(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

func (g gemmCase) String() string {
	return fmt.Sprintf("transA=%v transB=%v m=%d n=%d k=%d alpha=%g beta=%g", g.transA, g.transB,
		g.m, g.n, g.k, g.alpha, g.beta)
}

func (g gemmCase) run(f sgemmFunc) []float32 {
	c := append([]float32(nil), g.c0...)
	f(g.transA, g.transB, g.m, g.n, g.k, g.alpha, g.a, g.lda, g.b, g.ldb, g.beta, c, g.ldc)
	return c
}

// scale returns, per element of C, |alpha|·Σ|a||b| + |beta·c0|: the size the rounding error of
// any summation order is proportional to.
func (g gemmCase) scale() []float64 {
	s := make([]float64, len(g.c0))
	for i := 0; i < g.m; i++ {
		for j := 0; j < g.n; j++ {
			var sum float64
			for p := 0; p < g.k; p++ {
				ia, ib := i*g.lda+p, p*g.ldb+j
				if g.transA {
					ia = p*g.lda + i
				}
				if g.transB {
					ib = j*g.ldb + p
				}
				av, bv := g.a[ia], g.b[ib]
				sum += math.Abs(float64(av) * float64(bv))
			}
			s[i*g.ldc+j] = math.Abs(float64(g.alpha))*sum + math.Abs(float64(g.beta)*float64(g.c0[i*g.ldc+j]))
		}
	}
	return s
}

// gemmCompare fails when got and want differ by more than rel·sqrt(k+1)·scale anywhere, or when
// the padding of C changed; it prints the largest difference and the first mismatches.
func gemmCompare(t *testing.T, name string, g gemmCase, got, want []float32, rel float64) {
	t.Helper()
	scale := g.scale()
	tolK := rel * math.Sqrt(float64(g.k+1))
	var bad []string
	worst, worstAt := 0.0, -1
	for i := range got {
		if i%g.ldc >= g.n {
			if got[i] != gemmPad {
				bad = append(bad, fmt.Sprintf("padding [%d] = %g", i, got[i]))
			}
			continue
		}
		d := math.Abs(float64(got[i]) - float64(want[i]))
		tol := tolK*scale[i] + 1e-30
		if math.IsNaN(d) || d > tol {
			bad = append(bad, fmt.Sprintf("C[%d,%d] = %g, want %g", i/g.ldc, i%g.ldc, got[i], want[i]))
		}
		if r := d / tol; r > worst || math.IsNaN(d) {
			worst, worstAt = r, i
		}
	}
	if len(bad) > 0 {
		t.Errorf("%s %v: %d mismatches, worst |diff|/tol = %.3g at %d; first: %s", name, g, len(bad),
			worst, worstAt, strings.Join(bad[:min(4, len(bad))], "; "))
	}
}

func forEachGemmCase(t *testing.T, seed uint64, fn func(g gemmCase)) {
	rng := rand.New(rand.NewPCG(seed, 7))
	for _, s := range gemmShapes {
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			for _, beta := range []float32{0, 1, 0.5} {
				fn(newGemmCase(rng, tr[0], tr[1], s.m, s.n, s.k, 1.5, beta))
			}
		}
	}
}

func TestSgemmGoMatchesRef(t *testing.T) {
	forEachGemmCase(t, 1, func(g gemmCase) {
		gemmCompare(t, "SgemmGo", g, g.run(SgemmGo), g.run(SgemmRef), 1e-5)
	})
}

// TestSgemmGoUnevenWorkers runs the parallel splits with more goroutines than cores, so that
// chunks end inside micro-tiles and blocks.
func TestSgemmGoUnevenWorkers(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(7))
	rng := rand.New(rand.NewPCG(2, 7))
	for _, s := range []struct{ m, n, k int }{{129, 33, 65}, {3, 1025, 257}, {61, 61, 70}, {300, 9, 100}} {
		g := newGemmCase(rng, false, true, s.m, s.n, s.k, -0.75, 0.5)
		gemmCompare(t, "SgemmGo", g, g.run(SgemmGo), g.run(SgemmRef), 1e-5)
	}
}

func TestSgemmMatchesRef(t *testing.T) {
	t.Logf("backend: %s", BLASBackend())
	forEachGemmCase(t, 3, func(g gemmCase) {
		gemmCompare(t, "Sgemm", g, g.run(Sgemm), g.run(SgemmRef), 1e-5)
	})
}

// TestSgemmOpenBLASMatchesGo puts the two fast backends side by side on the same problems.
func TestSgemmOpenBLASMatchesGo(t *testing.T) {
	if !blasLoaded() {
		t.Skipf("OpenBLAS is not loaded, nothing to compare SgemmGo with: %s", BLASBackend())
	}
	openblas := func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
		b []float32, ldb int, beta float32, c []float32, ldc int) {
		if !gemmTrivial(m, n, k, alpha, beta, c, ldc) {
			sgemmBLAS(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		}
	}
	forEachGemmCase(t, 4, func(g gemmCase) {
		gemmCompare(t, "OpenBLAS vs SgemmGo", g, g.run(openblas), g.run(SgemmGo), 1e-5)
	})
	// OpenBLAS itself must not read C when beta == 0 (no NaN from the pre-filled C).
	g := newGemmCase(rand.New(rand.NewPCG(5, 7)), false, false, 9, 11, 13, 1, 0)
	gemmCompare(t, "OpenBLAS beta=0", g, g.run(openblas), g.run(SgemmRef), 1e-5)
}

func TestSgemmAlphaZeroAndKZero(t *testing.T) {
	for _, f := range []struct {
		name string
		f    sgemmFunc
	}{{"Sgemm", Sgemm}, {"SgemmGo", SgemmGo}, {"SgemmBF16", SgemmBF16}} {
		for _, k := range []int{0, 3} {
			a, b := []float32{1, 2, 3, 4, 5, 6}, []float32{1, 2, 3, 4, 5, 6}
			c := []float32{1, 2, 99, -4, 8, 99} // 2×2 with ldc 3
			alpha := float32(0)
			if k == 0 {
				alpha = 2
			}
			f.f(false, false, 2, 2, k, alpha, a, 3, b, 2, 0.5, c, 3)
			want := []float32{0.5, 1, 99, -2, 4, 99}
			if fmt.Sprint(c) != fmt.Sprint(want) {
				t.Errorf("%s k=%d alpha=%g beta=0.5: C = %v, want %v", f.name, k, alpha, c, want)
			}
			c = []float32{float32(math.NaN()), 2, 99, 3, float32(math.Inf(1)), 99}
			f.f(false, false, 2, 2, k, alpha, a, 3, b, 2, 0, c, 3)
			if want := []float32{0, 0, 99, 0, 0, 99}; fmt.Sprint(c) != fmt.Sprint(want) {
				t.Errorf("%s k=%d alpha=%g beta=0: C = %v, want %v", f.name, k, alpha, c, want)
			}
		}
	}
}

// TestSgemmHandValues pins one small product worked out by hand, so the reference itself is
// checked: [1 2 3; 4 5 6]·[1 0; 0 1; 1 1] = [4 5; 10 11].
func TestSgemmHandValues(t *testing.T) {
	a := []float32{1, 2, 3, 4, 5, 6}
	b := []float32{1, 0, 0, 1, 1, 1}
	for _, f := range []sgemmFunc{SgemmRef, SgemmGo, Sgemm} {
		c := []float32{1, 1, 1, 1}
		f(false, false, 2, 2, 3, 2, a, 3, b, 2, -1, c, 2)
		if want := []float32{7, 9, 19, 21}; fmt.Sprint(c) != fmt.Sprint(want) {
			t.Errorf("C = %v, want %v", c, want)
		}
		bt := []float32{1, 0, 1, 0, 1, 1} // Bᵀ stored [n,k]
		c = []float32{0, 0, 0, 0}
		f(false, true, 2, 2, 3, 1, a, 3, bt, 3, 0, c, 2)
		if want := []float32{4, 5, 10, 11}; fmt.Sprint(c) != fmt.Sprint(want) {
			t.Errorf("transB: C = %v, want %v", c, want)
		}
	}
}

func TestSgemmBatchedMatchesLoop(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 7))
	for _, tc := range []struct {
		m, n, k, batch int
		bcastA, bcastB bool
	}{
		{3, 5, 7, 4, false, false},
		{16, 16, 16, 80, false, false}, // sgemmBatchedGo: parallel over the batch
		{10, 9, 11, 300, false, false}, // SgemmBatched too: items below gemmBatchedGoFlops
		{16, 16, 16, 80, true, false},
		{9, 8, 17, 40, false, true},
		{40, 40, 40, 3, false, false}, // large enough items for one Sgemm each
		{40, 33, 41, 3, true, false},
		{40, 33, 41, 3, false, true},
		{4, 5, 0, 3, false, false},
		{1, 1, 1, 1, false, false},
	} {
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			for _, beta := range []float32{0, 0.5} {
				g := newGemmCase(rng, tr[0], tr[1], tc.m, tc.n, tc.k, 0.5, beta)
				// Lay out batch items with a gap of 3 between them; broadcast operands once.
				strideA, strideB, strideC := len(g.a)+3, len(g.b)+3, len(g.c0)+3
				if tc.bcastA {
					strideA = 0
				}
				if tc.bcastB {
					strideB = 0
				}
				items := make([]gemmCase, tc.batch)
				a := make([]float32, (tc.batch-1)*strideA+len(g.a))
				b := make([]float32, (tc.batch-1)*strideB+len(g.b))
				c := make([]float32, (tc.batch-1)*strideC+len(g.c0))
				want := make([]float32, len(c))
				for i := range items {
					it := newGemmCase(rng, tr[0], tr[1], tc.m, tc.n, tc.k, 0.5, beta)
					if tc.bcastA {
						it.a = g.a
					}
					if tc.bcastB {
						it.b = g.b
					}
					copy(a[i*strideA:], it.a)
					copy(b[i*strideB:], it.b)
					copy(c[i*strideC:], it.c0)
					copy(want[i*strideC:], it.run(SgemmRef))
					items[i] = it
				}
				for i := range c { // the gaps between items must stay untouched too
					if i%max(strideC, 1) >= len(g.c0) {
						c[i], want[i] = gemmPad, gemmPad
					}
				}
				c0 := append([]float32(nil), c...)
				for _, f := range []struct {
					name string
					f    func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda, strideA int,
						b []float32, ldb, strideB int, beta float32, c []float32, ldc, strideC int, batch int)
				}{{"SgemmBatched", SgemmBatched}, {"sgemmBatchedGo", sgemmBatchedGo}} {
					copy(c, c0)
					f.f(tr[0], tr[1], tc.m, tc.n, tc.k, 0.5, a, g.lda, strideA, b, g.ldb, strideB,
						beta, c, g.ldc, strideC, tc.batch)
					gemmCompareBatch(t, f.name, items, c, want, strideA, strideB, strideC)
				}
			}
		}
	}
}

func gemmCompareBatch(t *testing.T, name string, items []gemmCase, c, want []float32, strideA, strideB, strideC int) {
	t.Helper()
	g := items[0]
	for i, it := range items {
		got := c[i*strideC : i*strideC+len(g.c0)]
		gemmCompare(t, fmt.Sprintf("%s item %d/%d (strideA=%d strideB=%d)", name, i, len(items),
			strideA, strideB), it, got, want[i*strideC:i*strideC+len(g.c0)], 1e-5)
		if gap := c[i*strideC+len(g.c0) : min(len(c), (i+1)*strideC)]; i < len(items)-1 {
			for _, v := range gap {
				if v != gemmPad {
					t.Fatalf("%s wrote between C items %d and %d: %v", name, i, i+1, gap)
				}
			}
		}
	}
}

// TestSgemmBF16 checks the mixed-precision GEMM against the fp32 reference run on inputs
// rounded to bfloat16 beforehand (same products, so only the summation order differs), and
// that on inputs which are not bf16-exact it really differs from the fp32 GEMM.
func TestSgemmBF16(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 7))
	for _, s := range []struct{ m, n, k int }{{7, 13, 5}, {33, 65, 17}, {129, 5, 257}} {
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			g := newGemmCase(rng, tr[0], tr[1], s.m, s.n, s.k, 1.5, 0.5)
			aIn, bIn := append([]float32(nil), g.a...), append([]float32(nil), g.b...)
			got := g.run(SgemmBF16)
			goBF16 := g.run(func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
				b []float32, ldb int, beta float32, c []float32, ldc int) {
				sgemmGo(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, true, true)
			})
			if fmt.Sprint(aIn) != fmt.Sprint(g.a) || fmt.Sprint(bIn) != fmt.Sprint(g.b) {
				t.Fatalf("SgemmBF16 %v modified its inputs", g)
			}
			fp32 := g.run(SgemmRef)

			r := g
			r.a, r.b = make([]float32, len(g.a)), make([]float32, len(g.b))
			RoundBF16(r.a, g.a)
			RoundBF16(r.b, g.b)
			want := r.run(SgemmRef)
			gemmCompare(t, "SgemmBF16 vs SgemmRef on rounded inputs", r, got, want, 1e-6)
			gemmCompare(t, "pure-Go bf16 GEMM vs SgemmRef on rounded inputs", r, goBF16, want, 1e-6)

			// bf16 keeps 8 significant bits: relative input error up to 2⁻⁹, far above fp32's.
			worst := 0.0
			scale := g.scale()
			for i := range got {
				if i%g.ldc < g.n {
					worst = max(worst, math.Abs(float64(got[i]-fp32[i]))/scale[i])
				}
			}
			if worst < 1e-4 {
				t.Errorf("SgemmBF16 %v: largest relative difference from fp32 is %.3g; inputs were not rounded?", g, worst)
			}
		}
	}
}

func TestSgemmPanicsOnShapes(t *testing.T) {
	a, b, c := make([]float32, 6), make([]float32, 6), make([]float32, 4)
	for _, tc := range []struct {
		name string
		call func()
		want string
	}{
		{"short A", func() { Sgemm(false, false, 2, 2, 4, 1, a, 4, b, 2, 0, c, 2) }, "len(a)=6 lda=4"},
		{"lda below row", func() { SgemmGo(false, false, 2, 2, 3, 1, a, 2, b, 2, 0, c, 2) }, "k=3"},
		{"transposed A too short", func() { Sgemm(true, false, 3, 2, 3, 1, a, 3, b, 2, 0, c, 2) }, "transA=true"},
		{"short B", func() { SgemmGo(false, true, 2, 3, 3, 1, a, 3, b, 3, 0, c, 2) }, "len(b)=6"},
		{"short C", func() { SgemmBF16(false, false, 2, 2, 3, 1, a, 3, b, 2, 0, c, 3) }, "len(c)=4 ldc=3"},
		{"negative m", func() { Sgemm(false, false, -1, 2, 3, 1, a, 3, b, 2, 0, c, 2) }, "m=-1"},
		{"batched last item out of range", func() {
			SgemmBatched(false, false, 2, 2, 3, 1, a, 3, 1, b, 2, 0, 0, make([]float32, 8), 2, 4, 2)
		}, "len(a)=5"},
		{"batched C items overlap", func() {
			SgemmBatched(false, false, 2, 2, 3, 1, a, 3, 0, b, 2, 0, 0, make([]float32, 8), 2, 3, 2)
		}, "strideC=3"},
	} {
		func() {
			defer func() {
				r := recover()
				msg, _ := r.(string)
				if r == nil || !strings.Contains(msg, tc.want) {
					t.Errorf("%s: panic %v, want one mentioning %q", tc.name, r, tc.want)
				}
			}()
			tc.call()
		}()
	}
}

// Benchmarks: the shapes of a large projection (m=2048 token rows, k=1536 in, n=512 out) in the
// three layouts training uses: NN forward, TN weight gradient, NT input gradient.

func benchSgemm(b *testing.B, f sgemmFunc) {
	const m, n, k = 2048, 512, 1536
	for _, tc := range []struct {
		name           string
		transA, transB bool
	}{{"NN", false, false}, {"TN", true, false}, {"NT", false, true}} {
		b.Run(tc.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(9, 7))
			x, w, y := gemmRand(rng, m*k), gemmRand(rng, k*n), make([]float32, m*n)
			lda, ldb := k, n
			if tc.transA {
				lda = m
			}
			if tc.transB {
				ldb = k
			}
			b.ResetTimer()
			for range b.N {
				f(tc.transA, tc.transB, m, n, k, 1, x, lda, w, ldb, 0, y, n)
			}
			b.ReportMetric(2*m*n*k*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

func BenchmarkSgemm(b *testing.B) {
	b.Logf("backend: %s, GOMAXPROCS=%d", BLASBackend(), runtime.GOMAXPROCS(0))
	b.Run("live", func(b *testing.B) { benchSgemm(b, Sgemm) })
	b.Run("go", func(b *testing.B) { benchSgemm(b, SgemmGo) })
	b.Run("bf16", func(b *testing.B) { benchSgemm(b, SgemmBF16) })
}

// BenchmarkSgemmBatched compares, per item size, one OpenBLAS call per item with the pure-Go
// GEMM parallel over the batch: the crossing sets gemmBatchedGoFlops.
func BenchmarkSgemmBatched(b *testing.B) {
	const batch = 64
	for _, s := range []int{8, 12, 16, 20, 24, 32, 64} {
		rng := rand.New(rand.NewPCG(10, 7))
		x, w, y := gemmRand(rng, batch*s*s), gemmRand(rng, batch*s*s), make([]float32, batch*s*s)
		flops := 2 * float64(s*s*s*batch)
		b.Run(fmt.Sprintf("go/%d", s), func(b *testing.B) {
			for range b.N {
				sgemmBatchedGo(false, true, s, s, s, 1, x, s, s*s, w, s, s*s, 0, y, s, s*s, batch)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		if !blasLoaded() {
			continue
		}
		b.Run(fmt.Sprintf("openblas/%d", s), func(b *testing.B) {
			for range b.N {
				for i := range batch {
					sgemmBLAS(false, true, s, s, s, 1, x[i*s*s:], s, w[i*s*s:], s, 0, y[i*s*s:], s)
				}
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// TestSgemmDoesNotAllocate holds the steady-state promise: once scratch exists, a GEMM on one
// goroutine (OpenBLAS, or SgemmGo below its parallel threshold) allocates nothing.
func TestSgemmDoesNotAllocate(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 7))
	const s = 24 // 2·s³ = 27648 flops: one goroutine
	a, b, c := gemmRand(rng, s*s), gemmRand(rng, s*s), make([]float32, s*s)
	for _, f := range []struct {
		name string
		f    sgemmFunc
	}{{"Sgemm (" + BLASBackend() + ")", Sgemm}, {"SgemmGo", SgemmGo}, {"SgemmBF16", SgemmBF16}} {
		if n := testing.AllocsPerRun(10, func() { f.f(false, true, s, s, s, 1, a, s, b, s, 0.5, c, s) }); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", f.name, n)
		}
	}
}

// TestSgemmConcurrentCalls calls Sgemm from several goroutines at once, as ops running on
// Parallel may: each result must still match the reference (OpenBLAS must be thread-safe
// under purego, the pure-Go scratch must not be shared).
func TestSgemmConcurrentCalls(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 7))
	cases := make([]gemmCase, 8)
	want := make([][]float32, len(cases))
	for i := range cases {
		cases[i] = newGemmCase(rng, i%2 == 1, i%3 == 1, 60+i, 80-i, 90+3*i, 1, 0.5) // above OpenBLAS's threading threshold
		want[i] = cases[i].run(SgemmRef)
	}
	for _, f := range []struct {
		name string
		f    sgemmFunc
	}{{"Sgemm", Sgemm}, {"SgemmGo", SgemmGo}} {
		got := make([][]float32, len(cases))
		done := make(chan int)
		for i := range cases {
			go func() {
				for range 5 {
					got[i] = cases[i].run(f.f)
				}
				done <- i
			}()
		}
		for range cases {
			<-done
		}
		for i := range cases {
			gemmCompare(t, f.name+" (concurrent)", cases[i], got[i], want[i], 1e-5)
		}
	}
}
