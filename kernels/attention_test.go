package kernels

import (
	"math"
	"runtime"
	"sync"
	"testing"
)

// docStarts builds DocStart [b·t] from document lengths per sequence (each list sums to t).
func docStarts(t int, docs [][]int) []int32 {
	var out []int32
	for _, lens := range docs {
		pos := 0
		for _, n := range lens {
			for i := 0; i < n; i++ {
				out = append(out, int32(pos))
			}
			pos += n
		}
		if pos != t {
			panic("document lengths do not sum to t")
		}
	}
	return out
}

// Hand cases: t=1 gives o = v and lse = scale·q·k; a document of length 1 attends to itself only.
func TestAttentionHand(t *testing.T) {
	q, k, v := []float32{1, 2}, []float32{3, -1}, []float32{0.5, 7}
	o, lse := make([]float32, 2), make([]float32, 1)
	AttentionForward(o, lse, q, k, v, 1, 1, 1, 1, 2, AttnOpts{Scale: 0.5})
	closeTo(t, "o", o, v, 0, 0)
	closeTo(t, "lse", lse, []float32{0.5}, 1e-7, 0)

	// t=3, docs [2,1]: token 2 sees only itself; token 1 sees 0 and 1 with scores 0 (q=0).
	q3 := []float32{0, 0, 0}
	k3 := []float32{1, 2, 3}
	v3 := []float32{10, 20, 40}
	o3, lse3 := make([]float32, 3), make([]float32, 3)
	AttentionForward(o3, lse3, q3, k3, v3, 1, 3, 1, 1, 1, AttnOpts{Scale: 1, DocStart: []int32{0, 0, 2}})
	closeTo(t, "o docs", o3, []float32{10, 15, 40}, 1e-6, 0)
	closeTo(t, "lse docs", lse3, []float32{0, float32(math.Log(2)), 0}, 1e-6, 0)
}

func TestAttentionRefGradients(t *testing.T) {
	rng := newRNG(12)
	for _, c := range []struct {
		b, t, h, kv, hd int
		docs            [][]int
	}{
		{1, 4, 2, 2, 3, nil},
		{2, 5, 4, 2, 3, [][]int{{2, 1, 2}, {1, 4}}},
		{1, 6, 4, 1, 2, [][]int{{3, 3}}},
	} {
		b, tt, h, kv, hd := c.b, c.t, c.h, c.kv, c.hd
		opt := AttnOpts{Scale: float32(1 / math.Sqrt(float64(hd)))}
		if c.docs != nil {
			opt.DocStart = docStarts(tt, c.docs)
		}
		q, k, v := randF64(rng, b*tt*h*hd, 1.5), randF64(rng, b*tt*kv*hd, 1.5), randF64(rng, b*tt*kv*hd, 1)
		r := randF64(rng, b*tt*h*hd, 1)
		loss := func() float64 {
			o, lse := make([]float64, len(q)), make([]float64, b*h*tt)
			AttentionForwardRef(o, lse, q, k, v, b, tt, h, kv, hd, opt)
			return dot64(r, o)
		}
		o, lse := make([]float64, len(q)), make([]float64, b*h*tt)
		AttentionForwardRef(o, lse, q, k, v, b, tt, h, kv, hd, opt)
		dq0, dk0, dv0 := randF64(rng, len(q), 1), randF64(rng, len(k), 1), randF64(rng, len(v), 1)
		dq, dk, dv := clone(dq0), clone(dk0), clone(dv0)
		AttentionBackwardRef(dq, dk, dv, r, q, k, v, o, lse, b, tt, h, kv, hd, opt)
		name := label("attention b=%d t=%d h=%d kv=%d hd=%d docs=%v", b, tt, h, kv, hd, c.docs)
		checkGrad(t, name+" dq", q, sub(dq, dq0), loss, 200, 1e-6, 1e-10)
		checkGrad(t, name+" dk", k, sub(dk, dk0), loss, 200, 1e-6, 1e-10)
		checkGrad(t, name+" dv", v, sub(dv, dv0), loss, 200, 1e-6, 1e-10)
	}
}

// The float64 reference's lse is the log-sum-exp of the scaled scores, checked directly.
func TestAttentionRefLSE(t *testing.T) {
	rng := newRNG(13)
	tt, hd := 5, 4
	q, k, v := randF64(rng, tt*hd, 1), randF64(rng, tt*hd, 1), randF64(rng, tt*hd, 1)
	o, lse := make([]float64, tt*hd), make([]float64, tt)
	AttentionForwardRef(o, lse, q, k, v, 1, tt, 1, 1, hd, AttnOpts{Scale: 0.5})
	for i := 0; i < tt; i++ {
		var s float64
		for j := 0; j <= i; j++ {
			s += math.Exp(0.5 * dot64(q[i*hd:i*hd+hd], k[j*hd:j*hd+hd]))
		}
		if math.Abs(lse[i]-math.Log(s)) > 1e-12 {
			t.Errorf("lse[%d] = %v, want %v", i, lse[i], math.Log(s))
		}
	}
}

// attnImpl is one implementation of AttentionForward / AttentionBackward on checked arguments.
type attnImpl struct {
	name string
	fwd  func(d attnDims, o, lse, q, k, v []float32)
	bwd  func(d attnDims, dq, dk, dv, do, q, k, v, o, lse []float32)
}

// attnImpls are every path and mode, whichever AttentionForward picks on this machine: the
// GEMM path runs on OpenBLAS when it loaded, else on SgemmGo (the same code either way).
var attnImpls = []attnImpl{
	{"flash", attentionForwardFlash, attentionBackwardFlash},
	attnGemmImpl("gemm-sequential", attnSequential),
	attnGemmImpl("gemm-groups", attnGroups),
	attnGemmImpl("gemm-groups-tiles", attnGroupsTiles), // = gemm-groups unless BF16 and an even head size
}

// attnGemmImpl is the GEMM path forced into one mode.
func attnGemmImpl(name string, mode attnMode) attnImpl {
	return attnImpl{name,
		func(d attnDims, o, lse, q, k, v []float32) {
			attentionGEMM(&d, mode, false, o, lse, q, k, v, nil, nil, nil, nil)
		},
		func(d attnDims, dq, dk, dv, do, q, k, v, o, lse []float32) {
			attentionGEMM(&d, mode, true, o, lse, q, k, v, do, dq, dk, dv)
		}}
}

// Every path against the float64-accumulating reference, at the sizes where their blocking
// switches: the flash kernel's 64×64 tiles; the GEMM path's sequential mode, blocks of 256
// stacked rows (256/rep queries: 256, 128, 64, 32 for rep 1, 2, 4, 8) against 256-key tiles
// cut into 64-row chunks on the causal edge; its groups mode, 262144/(hd·64) rows against
// 64-key tiles. t below, at and above those edges, documents that cross them, GQA groups of
// 1, 2, 4 and 8.
func TestAttentionFastMatchesRef(t *testing.T) {
	rng := newRNG(14)
	type tc struct {
		b, t, h, kv, hd int
		docs            [][]int
	}
	cases := []tc{
		{1, 1, 1, 1, 1, nil},
		{2, 1, 4, 2, 5, nil},
		{1, 63, 2, 2, 7, nil},
		{1, 64, 2, 1, 8, nil},
		{2, 65, 4, 2, 16, nil},
		{1, 129, 4, 1, 3, nil},
		{1, 130, 8, 2, 64, nil},
		{2, 70, 4, 4, 9, [][]int{{1, 63, 1, 5}, {70}}},
		{1, 200, 2, 1, 16, [][]int{{1, 1, 64, 65, 1, 60, 8}}},
		{1, 150, 4, 2, 12, [][]int{{130, 20}}},
		{1, 127, 2, 1, 8, nil},                             // GEMM: rep 2, one block of 127 of 128 queries
		{1, 129, 2, 1, 5, nil},                             // rep 2: a second block of one query
		{1, 255, 1, 1, 6, nil},                             // rep 1: one block of 255 of 256
		{1, 256, 4, 4, 3, nil},                             // rep 1: exactly one block and one key tile
		{1, 257, 4, 1, 4, nil},                             // rep 4: blocks of 64, a key tile of one
		{1, 300, 8, 1, 4, nil},                             // rep 8: blocks of 32 queries
		{1, 513, 2, 1, 3, nil},                             // rep 2: key tiles 256+256+1
		{2, 300, 2, 2, 6, [][]int{{200, 100}, {1, 299}}},   // a document across the 256 edge
		{1, 520, 8, 2, 4, [][]int{{250, 10, 259, 1}}},      // key tiles start mid-sequence
		{1, 400, 4, 2, 5, [][]int{{128, 128, 1, 127, 16}}}, // documents on block edges
		{1, 200, 4, 2, 32, [][]int{{60, 10, 130}}},         // groups mode: 64-query blocks
		{2, 77, 4, 2, 128, [][]int{{3, 74}, {77}}},         // Qwen3's head size: two column blocks of the tiles
	}
	for _, c := range cases {
		for _, bf16 := range []bool{false, true} {
			b, tt, h, kv, hd := c.b, c.t, c.h, c.kv, c.hd
			opt := AttnOpts{Scale: float32(1 / math.Sqrt(float64(hd))), BF16: bf16}
			if c.docs != nil {
				opt.DocStart = docStarts(tt, c.docs)
			}
			name := label("b=%d t=%d h=%d kv=%d hd=%d docs=%v bf16=%v", b, tt, h, kv, hd, c.docs, bf16)
			q, k, v := randF32(rng, b*tt*h*hd, 2), randF32(rng, b*tt*kv*hd, 2), randF32(rng, b*tt*kv*hd, 1)
			or, lser := make([]float32, len(q)), make([]float32, b*h*tt)
			AttentionForwardRef(or, lser, q, k, v, b, tt, h, kv, hd, opt)
			do := randF32(rng, len(q), 1)
			dq0, dk0, dv0 := randF32(rng, len(q), 1), randF32(rng, len(k), 1), randF32(rng, len(v), 1)
			dqr, dkr, dvr := clone(dq0), clone(dk0), clone(dv0)
			AttentionBackwardRef(dqr, dkr, dvr, do, q, k, v, or, lser, b, tt, h, kv, hd, opt)
			tol, gtol := 2e-6, 1e-5
			if bf16 {
				tol, gtol = 2e-3, 3e-3 // a bf16 rounding of P may flip on a last-bit difference in S
			}
			for _, im := range attnImpls {
				d := newAttnDims(b, tt, h, kv, hd, opt)
				o, lse := make([]float32, len(q)), make([]float32, b*h*tt)
				im.fwd(d, o, lse, q, k, v)
				closeTo(t, im.name+" "+name+" o", o, or, tol, tol)
				closeTo(t, im.name+" "+name+" lse", lse, lser, 2e-6, 2e-6)
				dq, dk, dv := clone(dq0), clone(dk0), clone(dv0)
				im.bwd(d, dq, dk, dv, do, q, k, v, or, lser)
				closeTo(t, im.name+" "+name+" dq", dq, dqr, gtol, gtol)
				closeTo(t, im.name+" "+name+" dk", dk, dkr, gtol, gtol)
				closeTo(t, im.name+" "+name+" dv", dv, dvr, gtol, gtol)
			}
		}
	}
}

// Same bits for any GOMAXPROCS: every sum runs in a fixed order.
func TestAttentionDeterministicAcrossProcs(t *testing.T) {
	rng := newRNG(15)
	b, tt, h, kv, hd := 2, 100, 4, 2, 8
	opt := AttnOpts{Scale: 0.3}
	q, k, v := randF32(rng, b*tt*h*hd, 2), randF32(rng, b*tt*kv*hd, 2), randF32(rng, b*tt*kv*hd, 1)
	do := randF32(rng, len(q), 1)
	d := newAttnDims(b, tt, h, kv, hd, opt)
	for _, im := range attnImpls {
		run := func() []float32 {
			o, lse := make([]float32, len(q)), make([]float32, b*h*tt)
			im.fwd(d, o, lse, q, k, v)
			dq, dk, dv := make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))
			im.bwd(d, dq, dk, dv, do, q, k, v, o, lse)
			return append(append(append(o, dq...), dk...), dv...)
		}
		prev := runtime.GOMAXPROCS(1)
		one := run()
		runtime.GOMAXPROCS(3)
		three := run()
		runtime.GOMAXPROCS(prev)
		closeTo(t, im.name+" GOMAXPROCS 1 vs 3", three, one, 0, 0)
	}
}

// attnNT against plain loops in every causal mode, for odd and even sizes and offsets.
func TestAttnNTModes(t *testing.T) {
	rng := newRNG(17)
	for _, sz := range [][3]int{{1, 1, 1}, {5, 7, 3}, {64, 64, 64}, {63, 65, 9}, {2, 3, 4}} {
		m, n, k := sz[0], sz[1], sz[2]
		for _, off := range []int{-3, 0, 1, 2, 64} {
			for _, mode := range []int{triNone, triCols, triKTo, triKFrom} {
				a, b := randF32(rng, m*k, 1), randF32(rng, n*k, 1)
				if mode == triKTo || mode == triKFrom { // the kernel may assume these zeros
					for i := 0; i < m; i++ {
						for p := 0; p < k; p++ {
							if (mode == triKTo && p > i+off) || (mode == triKFrom && p < i-off) {
								a[i*k+p] = 0
							}
						}
					}
				}
				c0 := randF32(rng, m*n, 1)
				for _, acc := range []bool{false, true} {
					c := clone(c0)
					attnNT(c, n, a, k, b, k, m, n, k, acc, mode, off)
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							if mode == triCols && j > i+off {
								continue // not computed by contract
							}
							var s float64
							for p := 0; p < k; p++ {
								s += float64(a[i*k+p]) * float64(b[j*k+p])
							}
							if acc {
								s += float64(c0[i*n+j])
							}
							if math.Abs(float64(c[i*n+j])-s) > 1e-5*(1+math.Abs(s)) {
								t.Fatalf("m=%d n=%d k=%d mode=%d off=%d acc=%v: C[%d][%d] = %v, want %v", m, n, k, mode, off, acc, i, j, c[i*n+j], s)
							}
						}
					}
				}
			}
		}
	}
}

// Fewer (sequence, kv head) groups than GOMAXPROCS: the flash backward splits key ranges and sums
// the dq partials; still equal to the reference, and repeatable.
func TestAttentionBackwardSplitKeys(t *testing.T) {
	prev := runtime.GOMAXPROCS(8)
	defer runtime.GOMAXPROCS(prev)
	rng := newRNG(18)
	for _, c := range []struct {
		b, t, h, kv, hd int
		docs            [][]int
	}{
		{1, 200, 2, 1, 8, nil},
		{1, 65, 4, 2, 5, nil},
		{2, 300, 2, 1, 4, [][]int{{100, 1, 199}, {300}}},
		{1, 64, 2, 1, 4, nil}, // a single key block: nothing to split
	} {
		b, tt, h, kv, hd := c.b, c.t, c.h, c.kv, c.hd
		opt := AttnOpts{Scale: 0.4}
		if c.docs != nil {
			opt.DocStart = docStarts(tt, c.docs)
		}
		q, k, v := randF32(rng, b*tt*h*hd, 2), randF32(rng, b*tt*kv*hd, 2), randF32(rng, b*tt*kv*hd, 1)
		do := randF32(rng, len(q), 1)
		o, lse := make([]float32, len(q)), make([]float32, b*h*tt)
		AttentionForwardRef(o, lse, q, k, v, b, tt, h, kv, hd, opt)
		dq0 := randF32(rng, len(q), 1)
		dq, dk, dv := clone(dq0), make([]float32, len(k)), make([]float32, len(v))
		dqr, dkr, dvr := clone(dq0), make([]float32, len(k)), make([]float32, len(v))
		d := newAttnDims(b, tt, h, kv, hd, opt)
		attentionBackwardFlash(d, dq, dk, dv, do, q, k, v, o, lse)
		AttentionBackwardRef(dqr, dkr, dvr, do, q, k, v, o, lse, b, tt, h, kv, hd, opt)
		name := label("split b=%d t=%d kv=%d", b, tt, kv)
		closeTo(t, name+" dq", dq, dqr, 1e-5, 1e-5)
		closeTo(t, name+" dk", dk, dkr, 1e-5, 1e-5)
		closeTo(t, name+" dv", dv, dvr, 1e-5, 1e-5)
		dq2, dk2, dv2 := clone(dq0), make([]float32, len(k)), make([]float32, len(v))
		attentionBackwardFlash(d, dq2, dk2, dv2, do, q, k, v, o, lse)
		closeTo(t, name+" dq rerun", dq2, dq, 0, 0)
	}
}

func TestAttnKeyCuts(t *testing.T) {
	// 8 key blocks carry 8+7+…+1 = 36 units; two parts cut after 3 blocks (21 | 15).
	got := attnKeyCuts(8, 2)
	if len(got) != 3 || got[0] != 0 || got[1] != 3 || got[2] != 8 {
		t.Fatalf("attnKeyCuts(8, 2) = %v, want [0 3 8]", got)
	}
	for _, c := range [][2]int{{1, 1}, {5, 5}, {3, 2}, {100, 7}} {
		cuts := attnKeyCuts(c[0], c[1])
		for p := 0; p < c[1]; p++ {
			if cuts[p] > cuts[p+1] {
				t.Fatalf("attnKeyCuts(%d, %d) = %v not increasing", c[0], c[1], cuts)
			}
		}
		if cuts[0] != 0 || cuts[c[1]] != c[0] {
			t.Fatalf("attnKeyCuts(%d, %d) = %v does not cover [0, %d)", c[0], c[1], cuts, c[0])
		}
	}
}

// The GEMM path on OpenBLAS allocates nothing once its scratch and worker goroutines exist.
// (On SgemmGo the GEMM's own goroutines allocate; AttentionForward takes the flash path there.)
func TestAttentionGEMMDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes escape analysis and drops sync.Pool items: allocation counts do not hold")
	}
	if !blasLoaded() {
		t.Skipf("OpenBLAS not loaded (%s): the GEMM path runs only in tests", BLASBackend())
	}
	rng := newRNG(19)
	b, tt, h, kv, hd := 1, 300, 4, 2, 8
	for _, bf16 := range []bool{false, true} {
		opt := AttnOpts{Scale: 0.3, BF16: bf16, DocStart: docStarts(tt, [][]int{{100, 200}})}
		q, k, v := randF32(rng, b*tt*h*hd, 2), randF32(rng, b*tt*kv*hd, 2), randF32(rng, b*tt*kv*hd, 1)
		do := randF32(rng, len(q), 1)
		o, lse := make([]float32, len(q)), make([]float32, b*h*tt)
		dq, dk, dv := make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))
		d := newAttnDims(b, tt, h, kv, hd, opt)
		for _, im := range attnImpls[1:] {
			step := func() {
				im.fwd(d, o, lse, q, k, v)
				im.bwd(d, dq, dk, dv, do, q, k, v, o, lse)
			}
			step()
			// Below one per call: an occasional GC may empty a sync.Pool inside Sgemm.
			if n := testing.AllocsPerRun(20, step); n >= 1 {
				t.Errorf("%s bf16=%v: %v allocations per forward+backward, want 0", im.name, bf16, n)
			}
		}
	}
}

// Several goroutines in the GEMM path at once (they share the worker team, each has its own
// pooled scratch): every one gets the result of a call made alone.
func TestAttentionGEMMConcurrentCallers(t *testing.T) {
	rng := newRNG(20)
	b, tt, h, kv, hd := 1, 140, 4, 2, 6
	d := newAttnDims(b, tt, h, kv, hd, AttnOpts{Scale: 0.4})
	q, k, v := randF32(rng, b*tt*h*hd, 2), randF32(rng, b*tt*kv*hd, 2), randF32(rng, b*tt*kv*hd, 1)
	do := randF32(rng, len(q), 1)
	for _, im := range attnImpls[1:] {
		run := func() []float32 {
			o, lse := make([]float32, len(q)), make([]float32, b*h*tt)
			im.fwd(d, o, lse, q, k, v)
			dq, dk, dv := make([]float32, len(q)), make([]float32, len(k)), make([]float32, len(v))
			im.bwd(d, dq, dk, dv, do, q, k, v, o, lse)
			return append(append(append(o, dq...), dk...), dv...)
		}
		want := run()
		const n = 4
		got := make([][]float32, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i] = run()
			}()
		}
		wg.Wait()
		for i := range n {
			closeTo(t, label("%s caller %d", im.name, i), got[i], want, 0, 0)
		}
	}
}

// BF16's forward keeps a block's score tiles for its second pass when they fit
// (attnKeepScores), else recomputes them: both give the same bits, in both modes, with
// document starts.
func TestAttentionBF16KeptScoresEqualRecomputed(t *testing.T) {
	rng := newRNG(23)
	b, tt, h, kv, hd := 2, 600, 4, 2, 16
	opt := AttnOpts{Scale: 0.25, BF16: true, DocStart: docStarts(tt, [][]int{{150, 450}, {600}})}
	q, k, v := randF32(rng, b*tt*h*hd, 2), randF32(rng, b*tt*kv*hd, 2), randF32(rng, b*tt*kv*hd, 1)
	d := newAttnDims(b, tt, h, kv, hd, opt)
	saved := attnKeepScores
	defer func() { attnKeepScores = saved }()
	for _, im := range attnImpls[1:] {
		o1, l1 := make([]float32, len(q)), make([]float32, b*h*tt)
		o2, l2 := make([]float32, len(q)), make([]float32, b*h*tt)
		attnKeepScores = saved
		im.fwd(d, o1, l1, q, k, v)
		attnKeepScores = 0
		im.fwd(d, o2, l2, q, k, v)
		for i := range o1 {
			if math.Float32bits(o1[i]) != math.Float32bits(o2[i]) {
				t.Fatalf("%s: o[%d] = %v with kept scores, %v recomputed", im.name, i, o1[i], o2[i])
			}
		}
	}
}
