package kernels

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/gwen-ml/gwen/kernels/internal/native"
)

func skipWithoutMatmul(t *testing.T) {
	t.Helper()
	if !matmulLoaded() {
		t.Skipf("oneDNN's matmul primitive is off: %s", BF16Backend())
	}
}

// TestMatmulConcurrentSameShape runs one cached primitive from several goroutines at once
// (each with its own operands and C), as MoE experts and attention groups do: every result must
// match the reference, so no memory object or scratchpad is shared between executions (run it
// under -race too).
func TestMatmulConcurrentSameShape(t *testing.T) {
	skipWithoutMatmul(t)
	rng := rand.New(rand.NewPCG(31, 7))
	const workers = 6
	type job struct {
		g        gemmCase
		a16, b16 []uint16
		want     []float32
	}
	jobs := make([]job, workers)
	for i := range jobs {
		// Two shapes, three goroutines each: same key within a shape, different data.
		g := newGemmCase(rng, i%2 == 1, i%2 == 0, 70, 90, 110, 0.5, 1)
		r, a16, b16 := bf16Case(g)
		jobs[i] = job{g, a16, b16, r.run(SgemmRef)}
	}
	got := make([][]float32, workers)
	var wg sync.WaitGroup
	for i := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				got[i] = jobs[i].g.runBF16(matmulOnly, jobs[i].a16, jobs[i].b16)
			}
		}()
	}
	wg.Wait()
	for i, j := range jobs {
		r, _, _ := bf16Case(j.g)
		gemmCompare(t, "matmul (concurrent, shared shape)", r, got[i], j.want, 1e-5)
	}
}

// TestMatmulNoAllocs checks that a call on a cached primitive allocates nothing (the point of
// binding it with purego.SyscallN only), through GemmBF16 and SgemmBF16.
func TestMatmulNoAllocs(t *testing.T) {
	skipWithoutMatmul(t)
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	const m, n, k = 48, 40, 72
	a16, b16, c := make([]uint16, m*k), make([]uint16, k*n), make([]float32, m*n)
	a, b := make([]float32, m*k), make([]float32, k*n)
	GemmBF16(false, true, m, n, k, 1, a16, k, b16, k, 0, c, n)
	SgemmBF16(true, false, m, n, k, 1, a, m, b, n, 1, c, n)
	if allocs := testing.AllocsPerRun(20, func() { GemmBF16(false, true, m, n, k, 1, a16, k, b16, k, 0, c, n) }); allocs != 0 {
		t.Errorf("GemmBF16 on a cached matmul primitive: %g allocations per call, want 0", allocs)
	}
	if allocs := testing.AllocsPerRun(20, func() { SgemmBF16(true, false, m, n, k, 1, a, m, b, n, 1, c, n) }); allocs != 0 {
		t.Errorf("SgemmBF16 on a cached matmul primitive: %g allocations per call, want 0", allocs)
	}
}

// TestMatmulCacheFull checks that once the cache is full a new shape gets no primitive and
// GemmBF16 still computes it (on the legacy route), while cached shapes keep theirs.
func TestMatmulCacheFull(t *testing.T) {
	skipWithoutMatmul(t)
	rng := rand.New(rand.NewPCG(32, 7))
	cached := newGemmCase(rng, false, false, 9, 10, 11, 1, 0)
	rc, ca16, cb16 := bf16Case(cached)
	cached.runBF16(matmulOnly, ca16, cb16)

	full := native.MatmulCacheLen()
	saved := native.SetMatmulCacheCap(full)
	defer native.SetMatmulCacheCap(saved)

	g := newGemmCase(rng, true, false, 13, 17, 1001, -1, 0.5) // k = 1001: a shape no other test uses
	r, a16, b16 := bf16Case(g)
	c := append([]float32(nil), g.c0...)
	if gemmBF16Matmul(g.transA, g.transB, g.m, g.n, g.k, g.alpha, a16, g.lda, b16, g.ldb, g.beta, c, g.ldc) {
		t.Fatalf("a new shape got a primitive with the cache full (cap %d)", full)
	}
	gemmCompare(t, "GemmBF16 (cache full)", r, g.runBF16(GemmBF16, a16, b16), r.run(SgemmRef), 1e-5)
	gemmCompare(t, "matmul (cached shape, cache full)", rc, cached.runBF16(matmulOnly, ca16, cb16), rc.run(SgemmRef), 1e-5)
}
