package native

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/gwen-ml/gwen/internal/freelist"
	"github.com/gwen-ml/gwen/kernels/bf16"
)

// oneDNN's matmul primitive, the route PyTorch takes for bf16 torch.mm: brgemm kernels, JIT
// compiled for one shape, layout and attribute set, then executed any number of times. Gwen
// builds one per (transA, transB, m, n, k, lda, ldb, ldc, alpha, beta) on first use and keeps it
// (a training step repeats a few dozen shapes; creation costs 0.5-7 ms), so every later call is
// five purego.SyscallN calls on pointers and integers, without allocation, where the legacy
// dnnl_gemm_bf16bf16f32 needs purego.RegisterFunc (floats by value) and about a dozen small
// allocations per call.
//
// Speed, measured on the 2-core Zen 4 (AMD family 25; BenchmarkGemmBF16 -benchtime 20x
// -count 2, load average about 1, GFLOP/s wall, primitive vs legacy): 2048×512×1536 NN
// 342-396 vs 358-404, TN 355-367 vs 385-404, NT 392-429 vs 383-406; 2048³ 380-404 vs 428-430;
// 512³ NT 341-381 vs 369-377; 2048×1536×512 386-398 vs 409-411. Both run at about 200 GFLOP
// per CPU-second, against the 230 GFLOP/s one core gets from back-to-back VDPBF16PS zmm (one
// per cycle on Zen 4's 256-bit datapath): the machine's bf16 peak, so neither route can double.
// PyTorch's 851 GFLOP/s for 2048³ (shared/bench/baseline.json) was measured on a family-26
// CPU (Zen 5, full 512-bit datapath, twice the VDPBF16PS throughput). The primitive is the
// default anyway: it allocates nothing per call and is the route PyTorch takes to that number;
// GWEN_DNNL=gemm selects the legacy API.
//
// The C API bound here is oneDNN 2.x's (checked against the 2.6.3 headers of Debian's
// libdnnl-dev): op descriptors and memory descriptors are plain structs the caller owns.
// oneDNN 3 replaced them with opaque handles and dnnl_matmul_primitive_desc_create; there the
// primitive fails to bind (no dnnl_matmul_desc_init) and the legacy gemm path is used.
//
// Layout: src = op(A) [m,k] bf16, weights = op(B) [k,n] bf16, dst = C [m,n] f32, all described
// by strides, so transposes and padded leading dimensions cost nothing. alpha is a static output
// scale, beta a sum post-op (dst = alpha·src·weights + beta·dst; without it, beta = 0, C is
// only written, so NaNs there do not propagate).
//
// Concurrency: a primitive may run on several threads at once when they pass different memory
// objects, so each cache entry keeps a pool of slots (memory objects, a stream, the argument
// list), one per concurrent caller; the scratchpad is user-managed (dnnl_scratchpad_mode_user)
// and comes from a free list of buffers, so no two executions share one.

// dnnlMemoryDesc is dnnl_memory_desc_t of oneDNN 2.6 (696 bytes, 8-byte aligned on x86-64).
type dnnlMemoryDesc struct{ _ [87]uint64 }

// dnnlMatmulDesc is dnnl_matmul_desc_t of oneDNN 2.6 (2800 bytes).
type dnnlMatmulDesc struct{ _ [350]uint64 }

// dnnlExecArg is dnnl_exec_arg_t: {int arg; dnnl_memory_t memory;}.
type dnnlExecArg struct {
	arg    int32
	_      int32
	memory uintptr
}

// Constants of oneDNN 2.6's dnnl_types.h.
const (
	dnnlSuccess            = 0
	dnnlDataBF16           = 2   // dnnl_bf16
	dnnlDataF32            = 3   // dnnl_f32
	dnnlEngineCPU          = 1   // dnnl_cpu
	dnnlStreamDefaultFlags = 1   // dnnl_stream_default_flags
	dnnlScratchpadModeUser = 1   // dnnl_scratchpad_mode_user
	dnnlQueryImplInfoStr   = 8   // dnnl_query_impl_info_str
	dnnlQueryScratchpadMD  = 136 // dnnl_query_scratchpad_md
	dnnlArgSrc             = 1   // DNNL_ARG_SRC
	dnnlArgWeights         = 33  // DNNL_ARG_WEIGHTS
	dnnlArgDst             = 17  // DNNL_ARG_DST
	dnnlArgScratchpad      = 80  // DNNL_ARG_SCRATCHPAD
	dnnlScratchpadAlign    = 64
)

// dnnlMatmulAPI holds the bound entry points (addresses for purego.SyscallN).
type dnnlMatmulAPI struct {
	engineCreate, streamCreate, streamWait                             uintptr
	memoryDescInitByStrides, memoryDescGetSize                         uintptr
	matmulDescInit, primitiveDescCreate, primitiveDescDestroy          uintptr
	primitiveDescQuery, primitiveDescQueryMD, primitiveCreate          uintptr
	attrCreate, attrDestroy, attrSetScratchpadMode, attrSetOutputScale uintptr
	attrSetPostOps, postOpsCreate, postOpsDestroy                      uintptr
	memoryCreate, memorySetDataHandle, primitiveExecute                uintptr
	// dnnl_post_ops_append_sum takes its float by value: RegisterFunc, creation time only.
	postOpsAppendSum func(postOps uintptr, scale float32) int32

	engine uintptr
}

// bindDNNLMatmul resolves the matmul primitive's entry points in h and creates the CPU engine.
func bindDNNLMatmul(h uintptr) (*dnnlMatmulAPI, error) {
	api := &dnnlMatmulAPI{}
	for _, s := range []struct {
		p    *uintptr
		name string
	}{
		{&api.engineCreate, "dnnl_engine_create"},
		{&api.streamCreate, "dnnl_stream_create"},
		{&api.streamWait, "dnnl_stream_wait"},
		{&api.memoryDescInitByStrides, "dnnl_memory_desc_init_by_strides"},
		{&api.memoryDescGetSize, "dnnl_memory_desc_get_size"},
		{&api.matmulDescInit, "dnnl_matmul_desc_init"},
		{&api.primitiveDescCreate, "dnnl_primitive_desc_create"},
		{&api.primitiveDescDestroy, "dnnl_primitive_desc_destroy"},
		{&api.primitiveDescQuery, "dnnl_primitive_desc_query"},
		{&api.primitiveDescQueryMD, "dnnl_primitive_desc_query_md"},
		{&api.primitiveCreate, "dnnl_primitive_create"},
		{&api.attrCreate, "dnnl_primitive_attr_create"},
		{&api.attrDestroy, "dnnl_primitive_attr_destroy"},
		{&api.attrSetScratchpadMode, "dnnl_primitive_attr_set_scratchpad_mode"},
		{&api.attrSetOutputScale, "dnnl_primitive_attr_set_output_scales"},
		{&api.attrSetPostOps, "dnnl_primitive_attr_set_post_ops"},
		{&api.postOpsCreate, "dnnl_post_ops_create"},
		{&api.postOpsDestroy, "dnnl_post_ops_destroy"},
		{&api.memoryCreate, "dnnl_memory_create"},
		{&api.memorySetDataHandle, "dnnl_memory_set_data_handle"},
		{&api.primitiveExecute, "dnnl_primitive_execute"},
	} {
		addr, err := purego.Dlsym(h, s.name)
		if err != nil {
			return nil, fmt.Errorf("no %s (oneDNN 2.x C API): %v", s.name, err)
		}
		*s.p = addr
	}
	if _, err := purego.Dlsym(h, "dnnl_post_ops_append_sum"); err != nil {
		return nil, fmt.Errorf("no dnnl_post_ops_append_sum: %v", err)
	}
	purego.RegisterLibFunc(&api.postOpsAppendSum, h, "dnnl_post_ops_append_sum")
	eng := new(uintptr)
	if st, _, _ := purego.SyscallN(api.engineCreate, uintptr(unsafe.Pointer(eng)), dnnlEngineCPU, 0); st != dnnlSuccess {
		return nil, fmt.Errorf("dnnl_engine_create(cpu, 0): status %d", st)
	}
	api.engine = *eng
	return api, nil
}

// dnnlMatmulCacheCap bounds the primitive cache (entries are never evicted; a primitive and
// its JIT code take tens of kB): shapes first seen once it is full take the legacy gemm path,
// so a run with ever-changing shapes (decoding with a growing context) cannot grow it without
// bound. A variable so that tests can lower it.
var dnnlMatmulCacheCap = 512

// matmulKey identifies a cached primitive: everything its JIT code depends on.
type matmulKey struct {
	transA, transB      bool
	m, n, k             int
	lda, ldb, ldc       int
	alphaBits, betaBits uint32
}

// matmulEntry is one created primitive and its pool of execution slots.
type matmulEntry struct {
	prim       uintptr // dnnl_primitive_t; 0: creation failed, use the legacy path
	impl       string  // implementation oneDNN chose (dnnl_query_impl_info_str)
	mds        [3]*dnnlMemoryDesc
	scratchMD  *dnnlMemoryDesc // nil when the primitive needs no scratchpad
	scratchLen int

	mu    sync.Mutex
	slots []*matmulSlot // idle slots
}

// matmulSlot is what one execution needs for itself: memory objects for src, weights, dst
// and scratchpad (their data handles set per call), a stream, and the argument list. It lives
// on the heap (the Go GC never moves it) and keep holds the operands during the call.
type matmulSlot struct {
	mem     [4]uintptr
	stream  uintptr
	args    [4]dnnlExecArg
	call    [4]uintptr // SyscallN arguments, so its variadic slice does not escape
	keepA   []uint16
	keepB   []uint16
	keepC   []float32
	scratch *[]byte
}

var dnnlMatmul struct {
	api     *dnnlMatmulAPI // nil when the primitive path is off
	mu      sync.Mutex
	entries map[matmulKey]*matmulEntry
}

// matmulScratch holds user scratchpad buffers between executions.
var matmulScratch = freelist.List[[]byte]{}

// gemmBF16Matmul runs GemmBF16 (validated, non-trivial shapes) on a cached matmul primitive; it
// reports false, having done nothing, where there is none for this shape (the cache is full or
// oneDNN refused the shape), and the caller takes the legacy path.
func gemmBF16Matmul(transA, transB bool, m, n, k int, alpha float32, a []uint16, lda int,
	b []uint16, ldb int, beta float32, c []float32, ldc int) bool {
	e := matmulLookup(matmulKey{transA, transB, m, n, k, lda, ldb, ldc, math.Float32bits(alpha), math.Float32bits(beta)})
	if e == nil {
		return false
	}
	api := dnnlMatmul.api
	s := e.get(api)
	if s == nil {
		return false
	}
	s.keepA, s.keepB, s.keepC = a, b, c
	nargs := 3
	s.setHandle(api, 0, unsafe.Pointer(&a[0]))
	s.setHandle(api, 1, unsafe.Pointer(&b[0]))
	s.setHandle(api, 2, unsafe.Pointer(&c[0]))
	if e.scratchMD != nil {
		s.scratch = matmulScratch.Get()
		if len(*s.scratch) < e.scratchLen+dnnlScratchpadAlign {
			*s.scratch = make([]byte, e.scratchLen+dnnlScratchpadAlign)
		}
		p := unsafe.Pointer(&(*s.scratch)[0])
		p = unsafe.Add(p, (dnnlScratchpadAlign-uintptr(p)%dnnlScratchpadAlign)%dnnlScratchpadAlign)
		s.setHandle(api, 3, p)
		nargs = 4
	}
	s.call[0], s.call[1], s.call[2], s.call[3] = e.prim, s.stream, uintptr(nargs), uintptr(unsafe.Pointer(&s.args[0]))
	st, _, _ := purego.SyscallN(api.primitiveExecute, s.call[:4]...)
	if st == dnnlSuccess {
		s.call[0] = s.stream
		st, _, _ = purego.SyscallN(api.streamWait, s.call[:1]...)
	}
	if st != dnnlSuccess {
		panic(fmt.Sprintf("kernels: oneDNN matmul (%s) returned status %d: transA=%v transB=%v m=%d n=%d k=%d lda=%d ldb=%d ldc=%d",
			e.impl, st, transA, transB, m, n, k, lda, ldb, ldc))
	}
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
	runtime.KeepAlive(c)
	if s.scratch != nil {
		matmulScratch.Put(s.scratch)
		s.scratch = nil
	}
	s.keepA, s.keepB, s.keepC = nil, nil, nil
	e.put(s)
	return true
}

// matmulLookup returns the entry for key, creating its primitive on first use; nil when there
// is none to use (creation failed now or before, or the cache is full).
func matmulLookup(key matmulKey) *matmulEntry {
	dnnlMatmul.mu.Lock()
	e, ok := dnnlMatmul.entries[key]
	if !ok {
		if len(dnnlMatmul.entries) >= dnnlMatmulCacheCap {
			dnnlMatmul.mu.Unlock()
			return nil
		}
		// Created under the lock: concurrent first calls of one shape wait for one creation
		// instead of each compiling the same kernels (a few ms, once per shape).
		var err error
		e, err = newMatmulEntry(dnnlMatmul.api, key)
		if err != nil {
			e = &matmulEntry{}
		}
		if dnnlMatmul.entries == nil {
			dnnlMatmul.entries = map[matmulKey]*matmulEntry{}
		}
		dnnlMatmul.entries[key] = e
	}
	dnnlMatmul.mu.Unlock()
	if e.prim == 0 {
		return nil
	}
	return e
}

// initMD fills md as a 2-D row-major-by-strides matrix.
func (api *dnnlMatmulAPI) initMD(md *dnnlMemoryDesc, rows, cols, rowStride, colStride int, dataType uintptr) error {
	dims := &[12]int64{int64(rows), int64(cols)}
	strides := &[12]int64{int64(rowStride), int64(colStride)}
	st, _, _ := purego.SyscallN(api.memoryDescInitByStrides, uintptr(unsafe.Pointer(md)), 2,
		uintptr(unsafe.Pointer(dims)), dataType, uintptr(unsafe.Pointer(strides)))
	runtime.KeepAlive(dims)
	runtime.KeepAlive(strides)
	if st != dnnlSuccess {
		return fmt.Errorf("dnnl_memory_desc_init_by_strides(%d×%d, strides %d,%d): status %d", rows, cols, rowStride, colStride, st)
	}
	return nil
}

// newMatmulEntry creates the primitive for key (no slots yet).
func newMatmulEntry(api *dnnlMatmulAPI, key matmulKey) (*matmulEntry, error) {
	e := &matmulEntry{}
	for i := range e.mds {
		e.mds[i] = new(dnnlMemoryDesc)
	}
	sa := [2]int{key.lda, 1}
	if key.transA {
		sa = [2]int{1, key.lda}
	}
	sb := [2]int{key.ldb, 1}
	if key.transB {
		sb = [2]int{1, key.ldb}
	}
	if err := api.initMD(e.mds[0], key.m, key.k, sa[0], sa[1], dnnlDataBF16); err != nil {
		return nil, err
	}
	if err := api.initMD(e.mds[1], key.k, key.n, sb[0], sb[1], dnnlDataBF16); err != nil {
		return nil, err
	}
	if err := api.initMD(e.mds[2], key.m, key.n, key.ldc, 1, dnnlDataF32); err != nil {
		return nil, err
	}
	desc := new(dnnlMatmulDesc)
	if st, _, _ := purego.SyscallN(api.matmulDescInit, uintptr(unsafe.Pointer(desc)), uintptr(unsafe.Pointer(e.mds[0])),
		uintptr(unsafe.Pointer(e.mds[1])), 0, uintptr(unsafe.Pointer(e.mds[2]))); st != dnnlSuccess {
		return nil, fmt.Errorf("dnnl_matmul_desc_init: status %d", st)
	}

	attr := new(uintptr)
	if st, _, _ := purego.SyscallN(api.attrCreate, uintptr(unsafe.Pointer(attr))); st != dnnlSuccess {
		return nil, fmt.Errorf("dnnl_primitive_attr_create: status %d", st)
	}
	defer purego.SyscallN(api.attrDestroy, *attr)
	if st, _, _ := purego.SyscallN(api.attrSetScratchpadMode, *attr, dnnlScratchpadModeUser); st != dnnlSuccess {
		return nil, fmt.Errorf("dnnl_primitive_attr_set_scratchpad_mode: status %d", st)
	}
	if alpha := math.Float32frombits(key.alphaBits); alpha != 1 {
		scale := &[1]float32{alpha}
		st, _, _ := purego.SyscallN(api.attrSetOutputScale, *attr, 1, 0, uintptr(unsafe.Pointer(scale)))
		runtime.KeepAlive(scale)
		if st != dnnlSuccess {
			return nil, fmt.Errorf("dnnl_primitive_attr_set_output_scales(%g): status %d", alpha, st)
		}
	}
	if beta := math.Float32frombits(key.betaBits); beta != 0 {
		po := new(uintptr)
		if st, _, _ := purego.SyscallN(api.postOpsCreate, uintptr(unsafe.Pointer(po))); st != dnnlSuccess {
			return nil, fmt.Errorf("dnnl_post_ops_create: status %d", st)
		}
		defer purego.SyscallN(api.postOpsDestroy, *po)
		if st := api.postOpsAppendSum(*po, beta); st != dnnlSuccess {
			return nil, fmt.Errorf("dnnl_post_ops_append_sum(%g): status %d", beta, st)
		}
		if st, _, _ := purego.SyscallN(api.attrSetPostOps, *attr, *po); st != dnnlSuccess {
			return nil, fmt.Errorf("dnnl_primitive_attr_set_post_ops: status %d", st)
		}
	}

	pd := new(uintptr)
	if st, _, _ := purego.SyscallN(api.primitiveDescCreate, uintptr(unsafe.Pointer(pd)), uintptr(unsafe.Pointer(desc)),
		*attr, api.engine, 0); st != dnnlSuccess {
		return nil, fmt.Errorf("dnnl_primitive_desc_create(matmul %+v): status %d", key, st)
	}
	runtime.KeepAlive(desc)
	defer purego.SyscallN(api.primitiveDescDestroy, *pd)
	impl := new(*byte)
	if st, _, _ := purego.SyscallN(api.primitiveDescQuery, *pd, dnnlQueryImplInfoStr, 0, uintptr(unsafe.Pointer(impl))); st == dnnlSuccess && *impl != nil {
		e.impl = cString(*impl)
	}
	if md, _, _ := purego.SyscallN(api.primitiveDescQueryMD, *pd, dnnlQueryScratchpadMD, 0); md != 0 {
		if size, _, _ := purego.SyscallN(api.memoryDescGetSize, md); size > 0 {
			e.scratchMD = new(dnnlMemoryDesc)
			// md points into the primitive descriptor (C memory): copy the struct out. The
			// double conversion keeps go vet's uintptr→unsafe.Pointer rule (C memory never moves).
			*e.scratchMD = **(**dnnlMemoryDesc)(unsafe.Pointer(&md))
			e.scratchLen = int(size)
		}
	}
	prim := new(uintptr)
	if st, _, _ := purego.SyscallN(api.primitiveCreate, uintptr(unsafe.Pointer(prim)), *pd); st != dnnlSuccess {
		return nil, fmt.Errorf("dnnl_primitive_create(matmul %+v): status %d", key, st)
	}
	e.prim = *prim
	return e, nil
}

// cString copies a NUL-terminated C string.
func cString(p *byte) string {
	var s []byte
	for q := unsafe.Pointer(p); *(*byte)(q) != 0; q = unsafe.Add(q, 1) {
		s = append(s, *(*byte)(q))
	}
	return string(s)
}

// get takes an idle slot, creating one (memory objects without data, a stream) when none is
// idle; nil if oneDNN refuses to create one.
func (e *matmulEntry) get(api *dnnlMatmulAPI) *matmulSlot {
	e.mu.Lock()
	if n := len(e.slots); n > 0 {
		s := e.slots[n-1]
		e.slots = e.slots[:n-1]
		e.mu.Unlock()
		return s
	}
	e.mu.Unlock()
	s := &matmulSlot{}
	mds := []*dnnlMemoryDesc{e.mds[0], e.mds[1], e.mds[2], e.scratchMD}
	for i, md := range mds {
		if md == nil {
			continue
		}
		if st, _, _ := purego.SyscallN(api.memoryCreate, uintptr(unsafe.Pointer(&s.mem[i])), uintptr(unsafe.Pointer(md)),
			api.engine, 0); st != dnnlSuccess {
			return nil
		}
	}
	if st, _, _ := purego.SyscallN(api.streamCreate, uintptr(unsafe.Pointer(&s.stream)), api.engine, dnnlStreamDefaultFlags); st != dnnlSuccess {
		return nil
	}
	s.args = [4]dnnlExecArg{{arg: dnnlArgSrc, memory: s.mem[0]}, {arg: dnnlArgWeights, memory: s.mem[1]},
		{arg: dnnlArgDst, memory: s.mem[2]}, {arg: dnnlArgScratchpad, memory: s.mem[3]}}
	return s
}

// setHandle points memory object i of the slot at p (memory the caller keeps alive).
func (s *matmulSlot) setHandle(api *dnnlMatmulAPI, i int, p unsafe.Pointer) {
	s.call[0], s.call[1] = s.mem[i], uintptr(p)
	if st, _, _ := purego.SyscallN(api.memorySetDataHandle, s.call[:2]...); st != dnnlSuccess {
		panic(fmt.Sprintf("kernels: dnnl_memory_set_data_handle returned status %d", st))
	}
}

func (e *matmulEntry) put(s *matmulSlot) {
	e.mu.Lock()
	e.slots = append(e.slots, s)
	e.mu.Unlock()
}

// matmulSelfTest checks the primitive path on products with exact answers (every transpose
// pair the model uses, alpha and beta), before it is chosen; it returns the implementation
// oneDNN picks for a 256³ NN product, for BF16Backend.
func matmulSelfTest() (string, error) {
	bits := func(x ...float32) []uint16 {
		h := make([]uint16, len(x))
		bf16.FromF32s(h, x)
		return h
	}
	a := bits(1, 2, 3, 4)  // [1 2; 3 4]
	b := bits(5, 6, 7, 8)  // [5 6; 7 8]
	at := bits(1, 3, 2, 4) // Aᵀ stored
	bt := bits(5, 7, 6, 8) // Bᵀ stored
	ab := []float32{19, 22, 43, 50}
	for _, tc := range []struct {
		name           string
		transA, transB bool
		a, b           []uint16
	}{{"NN", false, false, a, b}, {"TN", true, false, at, b}, {"NT", false, true, a, bt}, {"TT", true, true, at, bt}} {
		c := []float32{1, 1, 1, 1}
		if !gemmBF16Matmul(tc.transA, tc.transB, 2, 2, 2, 2, tc.a, 2, tc.b, 2, 0.5, c, 2) {
			return "", fmt.Errorf("no matmul primitive for a 2×2 %s product", tc.name)
		}
		for i := range c {
			if want := 2*ab[i] + 0.5; c[i] != want {
				return "", fmt.Errorf("matmul primitive gave %v on a 2×2 %s product (alpha 2, beta 0.5), want 2·%v+0.5", c, tc.name, ab)
			}
		}
	}
	const s = 256
	e := matmulLookup(matmulKey{false, false, s, s, s, s, s, s, math.Float32bits(1), math.Float32bits(0)})
	if e == nil {
		return "", fmt.Errorf("no matmul primitive for %d³", s)
	}
	return e.impl, nil
}
