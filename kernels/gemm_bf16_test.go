package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/kernels/internal/native"
)

// bf16Case returns g with A and B rounded to bfloat16 (the inputs the mixed-precision rule
// multiplies exactly), and those A and B as bits.
func bf16Case(g gemmCase) (r gemmCase, a16, b16 []uint16) {
	r = g
	r.a, r.b = make([]float32, len(g.a)), make([]float32, len(g.b))
	RoundBF16(r.a, g.a)
	RoundBF16(r.b, g.b)
	a16, b16 = make([]uint16, len(g.a)), make([]uint16, len(g.b))
	F32ToBF16(a16, g.a)
	F32ToBF16(b16, g.b)
	return r, a16, b16
}

// runBF16 runs a bits-in GEMM on g's problem with A and B given as bits.
func (g gemmCase) runBF16(f func(transA, transB bool, m, n, k int, alpha float32, a []uint16, lda int,
	b []uint16, ldb int, beta float32, c []float32, ldc int), a16, b16 []uint16) []float32 {
	c := append([]float32(nil), g.c0...)
	f(g.transA, g.transB, g.m, g.n, g.k, g.alpha, a16, g.lda, b16, g.ldb, g.beta, c, g.ldc)
	return c
}

// skipWithoutDNNL skips a test of the oneDNN path where it is not loaded, saying why.
func skipWithoutDNNL(t *testing.T) {
	t.Helper()
	if !dnnlLoaded() {
		t.Skipf("oneDNN's bf16 GEMM is not loaded (install Debian's libdnnl2 on an AVX512_BF16 CPU): %s", BF16Backend())
	}
}

// bf16GemmFunc is the signature of the bits-in bf16 GEMMs.
type bf16GemmFunc = func(transA, transB bool, m, n, k int, alpha float32, a []uint16, lda int, b []uint16, ldb int, beta float32, c []float32, ldc int)

// bf16Variant is one route of the bf16 GEMMs, with the condition under which it runs here.
type bf16Variant struct {
	name  string
	avail func() bool // nil: always
	gemm  bf16GemmFunc
	sgemm sgemmFunc
}

// matmulLoaded reports whether the oneDNN matmul primitive route is on.
func matmulLoaded() bool { return native.Matmul() }

// matmulOnly is the matmul primitive route alone: it panics where no primitive can be had, so
// a test of it cannot silently pass through the legacy route.
func matmulOnly(transA, transB bool, m, n, k int, alpha float32, a []uint16, lda int, b []uint16, ldb int, beta float32, c []float32, ldc int) {
	if !gemmBF16Matmul(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) {
		panic(fmt.Sprintf("no matmul primitive for transA=%v transB=%v m=%d n=%d k=%d lda=%d ldb=%d ldc=%d alpha=%g beta=%g",
			transA, transB, m, n, k, lda, ldb, ldc, alpha, beta))
	}
}

// nonTrivial wraps a bits-in route in GemmBF16's early return for trivial shapes.
func nonTrivial(f bf16GemmFunc) bf16GemmFunc {
	return func(transA, transB bool, m, n, k int, alpha float32, a []uint16, lda int, b []uint16, ldb int, beta float32, c []float32, ldc int) {
		if !gemmTrivial(m, n, k, alpha, beta, c, ldc) {
			f(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		}
	}
}

// nonTrivialS is SgemmBF16's oneDNN route over the bits-in route f.
func nonTrivialS(f bf16GemmFunc) sgemmFunc {
	return func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		if !gemmTrivial(m, n, k, alpha, beta, c, ldc) {
			sgemmBF16DNNL(f, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		}
	}
}

// gemmBF16Variants are the ways a bits-in bf16 GEMM runs: oneDNN's matmul primitive, its
// legacy dnnl_gemm_bf16bf16f32, and the fallback forced (it runs wherever the oneDNN routes
// run, so all are always checked).
var gemmBF16Variants = []bf16Variant{
	{"matmul", matmulLoaded, nonTrivial(matmulOnly), nonTrivialS(matmulOnly)},
	{"oneDNN-gemm", dnnlLoaded, nonTrivial(gemmBF16DNNL), nonTrivialS(gemmBF16DNNL)},
	{"widen+Sgemm", nil, nonTrivial(gemmBF16Widen), nil},
}

// TestGemmBF16MatchesRef checks every path of the bf16 GEMMs against SgemmRef run on the
// inputs rounded to bfloat16 beforehand: the products are then the same exact numbers and
// only the fp32 summation order differs, so the tolerance is fp32 GEMM's (1e-5·√(k+1) of
// Σ|a·b|). Every shape of gemmShapes (odd sizes, blocking edges, empty), all four transposes,
// padded strides, beta 0 (C pre-filled with NaN), 1 and 0.5.
func TestGemmBF16MatchesRef(t *testing.T) {
	t.Logf("bf16 backend: %s", BF16Backend())
	for _, v := range gemmBF16Variants {
		t.Run(v.name, func(t *testing.T) {
			if v.avail != nil && !v.avail() {
				skipWithoutDNNL(t)
				t.Skipf("route %s is off: %s", v.name, BF16Backend())
			}
			forEachGemmCase(t, 21, func(g gemmCase) {
				r, a16, b16 := bf16Case(g)
				want := r.run(SgemmRef)
				gemmCompare(t, v.name+" GemmBF16", r, g.runBF16(v.gemm, a16, b16), want, 1e-5)
				if v.sgemm != nil {
					aIn, bIn := append([]float32(nil), g.a...), append([]float32(nil), g.b...)
					gemmCompare(t, v.name+" SgemmBF16", r, g.run(v.sgemm), want, 1e-5)
					if !slices.Equal(aIn, g.a) || !slices.Equal(bIn, g.b) {
						t.Fatalf("%s SgemmBF16 %v modified its inputs", v.name, g)
					}
				}
			})
		})
	}
}

// TestSgemmBF16Large runs the public SgemmBF16 and GemmBF16 on shapes above
// gemmBF16DNNLFlops, where the conversion to bits is split over goroutines (A and B above
// convertGrain elements), against the reference on rounded inputs; and checks that the result
// differs from the fp32 product as bfloat16 rounding must (inputs not bf16-exact).
func TestSgemmBF16Large(t *testing.T) {
	t.Logf("bf16 backend: %s", BF16Backend())
	rng := rand.New(rand.NewPCG(22, 7))
	for _, s := range []struct{ m, n, k int }{{260, 33, 257}, {65, 64, 129}} {
		if 2*s.m*s.n*s.k < gemmBF16DNNLFlops {
			t.Fatalf("shape %v is below gemmBF16DNNLFlops", s)
		}
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			for _, beta := range []float32{0, 0.5} {
				g := newGemmCase(rng, tr[0], tr[1], s.m, s.n, s.k, -0.75, beta)
				r, a16, b16 := bf16Case(g)
				want := r.run(SgemmRef)
				got := g.run(SgemmBF16)
				gemmCompare(t, "SgemmBF16", r, got, want, 1e-5)
				gemmCompare(t, "GemmBF16", r, g.runBF16(GemmBF16, a16, b16), want, 1e-5)
				f32b := func(transA, transB bool, m, n, k int, alpha float32, a []uint16, lda int, _ []uint16, ldb int, beta float32, c []float32, ldc int) {
					GemmBF16F32B(transA, transB, m, n, k, alpha, a, lda, g.b, ldb, beta, c, ldc)
				}
				gemmCompare(t, "GemmBF16F32B", r, g.runBF16(f32b, a16, nil), want, 1e-5)
				fp32 := g.run(SgemmRef)
				worst, scale := 0.0, g.scale()
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
}

// TestGemmBF16HandValues pins small products worked out by hand (all values bf16-exact):
// [1 2 3; 4 5 6]·[1 0; 0 1; 1 1] = [4 5; 10 11], through every path.
func TestGemmBF16HandValues(t *testing.T) {
	bits := func(x ...float32) []uint16 {
		h := make([]uint16, len(x))
		F32ToBF16(h, x)
		return h
	}
	a := bits(1, 2, 3, 4, 5, 6)
	b := bits(1, 0, 0, 1, 1, 1)
	bt := bits(1, 0, 1, 0, 1, 1) // Bᵀ stored [n,k]
	for _, v := range append(gemmBF16Variants, bf16Variant{"GemmBF16", nil, GemmBF16, nil}) {
		if v.avail != nil && !v.avail() {
			continue
		}
		c := []float32{1, 1, 1, 1}
		v.gemm(false, false, 2, 2, 3, 2, a, 3, b, 2, -1, c, 2)
		if want := []float32{7, 9, 19, 21}; fmt.Sprint(c) != fmt.Sprint(want) {
			t.Errorf("%s: C = %v, want %v", v.name, c, want)
		}
		c = []float32{float32(math.NaN()), 0, 0, float32(math.Inf(1))}
		v.gemm(false, true, 2, 2, 3, 1, a, 3, bt, 3, 0, c, 2)
		if want := []float32{4, 5, 10, 11}; fmt.Sprint(c) != fmt.Sprint(want) {
			t.Errorf("%s transB, beta=0 over NaN/Inf: C = %v, want %v", v.name, c, want)
		}
	}
	// k = 0 and alpha = 0 scale C by beta without touching A or B (which may be empty).
	c := []float32{2, 4}
	GemmBF16(false, false, 1, 2, 0, 1, nil, 1, nil, 2, 0.5, c, 2)
	if fmt.Sprint(c) != fmt.Sprint([]float32{1, 2}) {
		t.Errorf("GemmBF16 k=0 beta=0.5: C = %v, want [1 2]", c)
	}
}

func TestGemmBF16PanicsOnShapes(t *testing.T) {
	defer func() {
		msg, _ := recover().(string)
		if !strings.Contains(msg, "len(b)=5") {
			t.Errorf("GemmBF16 with a short B: panic %q, want one naming len(b)=5", msg)
		}
	}()
	GemmBF16(false, false, 2, 2, 3, 1, make([]uint16, 6), 3, make([]uint16, 5), 2, 0, make([]float32, 4), 2)
}

// TestBF16BackendChoice runs this test binary again under different environments (oneDNN is
// loaded once per process) and checks what BF16Backend reports and that SgemmBF16 and
// GemmBF16 still compute there.
func TestBF16BackendChoice(t *testing.T) {
	if os.Getenv("GWEN_TEST_PRINT_BF16_BACKEND") != "" {
		fmt.Printf("backend=%s\n", BF16Backend())
		// 80×80×80 is above gemmBF16DNNLFlops: all-ones inputs, so every entry is 80·alpha.
		const s = 80
		a, b, c := make([]float32, s*s), make([]float32, s*s), make([]float32, s*s)
		a16 := make([]uint16, s*s)
		for i := range a {
			a[i], b[i], a16[i] = 1, 1, F32ToBF16Bits(1)
		}
		SgemmBF16(false, false, s, s, s, 1, a, s, b, s, 0, c, s)
		fmt.Printf("sgemm=%g\n", c[s*s-1])
		GemmBF16(false, true, s, s, s, 0.5, a16, s, a16, s, 0, c, s)
		fmt.Printf("gemm=%g\n", c[s*s-1])
		return
	}
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	run := func(env ...string) string {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestBF16BackendChoice$")
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "GWEN_DNNL=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, append(env, "GWEN_TEST_PRINT_BF16_BACKEND=1")...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", env, err, out)
		}
		if !strings.Contains(string(out), "sgemm=80\n") || !strings.Contains(string(out), "gemm=40\n") {
			t.Errorf("%v: wrong products:\n%s", env, out)
		}
		return string(out)
	}
	if out := run("GWEN_DNNL=off"); !strings.Contains(out, "backend=fp32 gemm (GWEN_DNNL=off)") {
		t.Errorf("GWEN_DNNL=off: %s", out)
	}
	if out := run("GWEN_DNNL=/nonexistent/libdnnl.so.2"); !strings.Contains(out, "backend=fp32 gemm (no oneDNN bf16 GEMM: /nonexistent/libdnnl.so.2") {
		t.Errorf("GWEN_DNNL=/nonexistent: %s", out)
	}
	if !dnnlLoaded() {
		t.Skipf("oneDNN not loaded here, its own choice not checked: %s", BF16Backend())
	}
	if out := run(); !strings.Contains(out, "backend=onednn ") {
		t.Errorf("GWEN_DNNL unset: %s", out)
	}
	if out := run("GWEN_DNNL=gemm"); !strings.Contains(out, "backend=onednn ") || !strings.Contains(out, "(dnnl_gemm_bf16bf16f32, GWEN_DNNL=gemm,") {
		t.Errorf("GWEN_DNNL=gemm: %s", out)
	}
	if !matmulLoaded() {
		t.Skipf("matmul primitive off here, its choice not checked: %s", BF16Backend())
	}
	if out := run(); !strings.Contains(out, "(matmul primitive ") {
		t.Errorf("GWEN_DNNL unset, matmul primitive on in this process: %s", out)
	}
}

// TestToBF16MatrixBits checks SgemmBF16's conversion (AVX-512 where present) bit for bit
// against F32ToBF16Bits, itself pinned by hand cases in bf16_test.go: ties to even and to odd,
// NaNs of both signs (signalling ones must come out quiet), infinities, the largest finite
// values (which round to infinity), zeros and subnormals; rows of lengths that are and are not
// multiples of 16, with a padded source stride, below and above the parallel threshold.
func TestToBF16MatrixBits(t *testing.T) {
	special := []uint32{
		0x3f808000, 0x3f818000, 0x3f808001, 0x3f807fff, // ties to even (down, up), just above, just below
		0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7fbfffff, // quiet and signalling NaNs
		0x7f800000, 0xff800000, 0x7f7fffff, 0xff7fffff, // infinities, largest finite
		0x00000000, 0x80000000, 0x00000001, 0x00008000, 0x00018000, 0x807fffff, // zeros, subnormals
	}
	rng := rand.New(rand.NewPCG(23, 7))
	for _, s := range []struct{ rows, cols, ld int }{{3, 16, 16}, {5, 37, 40}, {2, 5, 5}, {300, 259, 263}} {
		src := make([]float32, (s.rows-1)*s.ld+s.cols)
		for i := range src {
			if rng.IntN(4) == 0 {
				src[i] = math.Float32frombits(special[rng.IntN(len(special))])
			} else {
				src[i] = math.Float32frombits(rng.Uint32())
			}
		}
		var buf []uint16
		got := toBF16Matrix(&buf, src, s.rows, s.cols, s.ld)
		if len(got) != s.rows*s.cols {
			t.Fatalf("%v: %d elements, want %d", s, len(got), s.rows*s.cols)
		}
		bad := 0
		for r := 0; r < s.rows; r++ {
			for c := 0; c < s.cols; c++ {
				x := src[r*s.ld+c]
				if want := F32ToBF16Bits(x); got[r*s.cols+c] != want {
					if bad++; bad <= 5 {
						t.Errorf("%v: [%d,%d] %#08x → %#04x, want %#04x", s, r, c, math.Float32bits(x), got[r*s.cols+c], want)
					}
				}
			}
		}
	}
}

// TestSgemmBF16ConcurrentCalls calls SgemmBF16 and GemmBF16 from several goroutines at once,
// as ops running on Parallel may, above gemmBF16DNNLFlops: each result must still match the
// reference (oneDNN under purego from several OS threads, the bit scratch not shared).
func TestSgemmBF16ConcurrentCalls(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 7))
	cases := make([]gemmCase, 6)
	want := make([][]float32, len(cases))
	bits := make([][2][]uint16, len(cases))
	for i := range cases {
		g := newGemmCase(rng, i%2 == 1, i%3 == 1, 40+i, 50-i, 45+3*i, 1, 0.5)
		r, a16, b16 := bf16Case(g)
		cases[i], want[i], bits[i] = g, r.run(SgemmRef), [2][]uint16{a16, b16}
	}
	got := make([][2][]float32, len(cases))
	done := make(chan int)
	for i := range cases {
		go func() {
			for range 5 {
				got[i][0] = cases[i].run(SgemmBF16)
				got[i][1] = cases[i].runBF16(GemmBF16, bits[i][0], bits[i][1])
			}
			done <- i
		}()
	}
	for range cases {
		<-done
	}
	for i := range cases {
		r, _, _ := bf16Case(cases[i])
		gemmCompare(t, "SgemmBF16 (concurrent)", r, got[i][0], want[i], 1e-5)
		gemmCompare(t, "GemmBF16 (concurrent)", r, got[i][1], want[i], 1e-5)
	}
}

// BenchmarkGemmBF16Call measures one small call's cost (the purego call and oneDNN's own
// overhead dominate at 8³) and its allocations.
func BenchmarkGemmBF16Call(b *testing.B) {
	b.Logf("bf16: %s", BF16Backend())
	const s = 8
	a, c := make([]uint16, s*s), make([]float32, s*s)
	b.ReportAllocs()
	for range b.N {
		GemmBF16(false, false, s, s, s, 1, a, s, a, s, 0, c, s)
	}
}
