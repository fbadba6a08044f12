package native

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/gwen-ml/gwen/kernels/bf16"
)

// oneDNN (Debian package libdnnl2) gives the bf16 GEMM: dnnl_gemm_bf16bf16f32 multiplies
// bfloat16 matrices with VDPBF16PS where the CPU has AVX512_BF16, accumulating in fp32. Like
// OpenBLAS it is loaded at run time with purego (no cgo), once, by the first bf16 GEMM or
// BF16Backend call. GWEN_DNNL chooses the library:
//
//	GWEN_DNNL unset        try dnnlLibraries in order
//	GWEN_DNNL=off          never load it: the bf16 GEMMs round into fp32 and use Sgemm
//	GWEN_DNNL=gemm         load it, but call only the legacy dnnl_gemm_bf16bf16f32 (for
//	                       comparison), never the matmul primitive
//	GWEN_DNNL=<name|path>  load exactly that library (a failure falls back, and BF16Backend
//	                       says why)
//
// Where the library also offers oneDNN 2.x's matmul primitive and it passes a known-answer
// self-test, the bf16 GEMMs run on cached primitives (dnnl_matmul.go) and fall back to
// dnnl_gemm_bf16bf16f32 per shape only where no primitive can be had.
//
// oneDNN 3 keeps the function and its signature; only 2.6 (Debian 12) has been tested.
var dnnlLibraries = []string{
	"libdnnl.so.2",
	"/usr/lib/x86_64-linux-gnu/libdnnl.so.2",
}

// dnnlGemmFunc is dnnl_gemm_bf16bf16f32, row-major (documented with dnnl_sgemm):
//
//	dnnl_status_t dnnl_gemm_bf16bf16f32(char transa, char transb, dnnl_dim_t M, dnnl_dim_t N,
//	    dnnl_dim_t K, float alpha, const bfloat16_t *A, dnnl_dim_t lda,
//	    const bfloat16_t *B, dnnl_dim_t ldb, float beta, float *C, dnnl_dim_t ldc);
//
// alpha and beta travel by value in XMM registers, which purego.SyscallN cannot set apart from
// the integer arguments (it loads X0..X7 with copies of the first eight integer arguments, and
// transa and alpha would both come from the first), so the call goes through
// purego.RegisterFunc: see dnnlCallCost for what that costs.
type dnnlGemmFunc func(transA, transB byte, m, n, k int64, alpha float32, a unsafe.Pointer, lda int64,
	b unsafe.Pointer, ldb int64, beta float32, c unsafe.Pointer, ldc int64) int32

var dnnl struct {
	once    sync.Once
	gemm    dnnlGemmFunc // nil when oneDNN is not used
	backend string       // what BF16Backend reports
}

// dnnlVersion mirrors dnnl_version_t.
type dnnlVersion struct {
	major, minor, patch int32
	hash                *byte
	cpuRuntime          uint32
	gpuRuntime          uint32
}

// dnnlISANames names oneDNN 2.x's dnnl_cpu_isa_t values.
var dnnlISANames = map[int32]string{
	0x0: "all", 0x1: "sse41", 0x3: "avx", 0x7: "avx2", 0xf: "avx512_mic", 0x1f: "avx512_mic_4ops",
	0x27: "avx512_core", 0x67: "avx512_core_vnni", 0xe7: "avx512_core_bf16", 0x3e7: "avx512_core_amx",
	0x407: "avx2_vnni",
}

// dnnlISABF16 is the bit dnnl_cpu_isa_t sets for AVX512_BF16 in oneDNN 2.x
// (avx512_core_bf16 = avx512_core_vnni | 0x80).
const dnnlISABF16 = 0x80

// BF16Backend says what the bf16 GEMMs (SgemmBF16, GemmBF16) run on, loading oneDNN if that has
// not happened yet: for example
//
//	onednn 2.6.3 (dnnl_gemm_bf16bf16f32, isa avx512_core_bf16, 2 OpenMP threads, libdnnl.so.2)
//
// or a string starting with "fp32 gemm" (inputs rounded to bfloat16, then the fp32 Sgemm of
// BLASBackend) followed by the reason in parentheses. GWEN_DNNL=off forces the fallback;
// another value names the one library file to load.
func BF16Backend() string {
	loadDNNL()
	return dnnl.backend
}

// dnnlLoaded reports whether the bf16 GEMMs go to oneDNN.
func dnnlLoaded() bool {
	loadDNNL()
	return dnnl.gemm != nil
}

func loadDNNL() {
	dnnl.once.Do(func() {
		env := os.Getenv("GWEN_DNNL")
		candidates := dnnlLibraries
		switch env {
		case "off":
			dnnl.backend = "fp32 gemm (GWEN_DNNL=off)"
			return
		case "", "gemm":
		default:
			candidates = []string{env}
		}
		var errs []string
		for _, name := range candidates {
			err := openDNNL(name, env != "gemm")
			if err == nil {
				return
			}
			errs = append(errs, err.Error())
		}
		dnnl.backend = "fp32 gemm (no oneDNN bf16 GEMM: " + strings.Join(errs, "; ") + ")"
	})
}

// openDNNL binds one library and checks it on a small product; on success dnnl.gemm and
// dnnl.backend are set, and, when matmul is true and the primitive binds and passes
// matmulSelfTest, dnnlMatmul.api too.
func openDNNL(name string, matmul bool) error {
	setOpenMPDefaults()
	h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	if _, err := purego.Dlsym(h, "dnnl_gemm_bf16bf16f32"); err != nil {
		purego.Dlclose(h)
		return fmt.Errorf("%s: no dnnl_gemm_bf16bf16f32: %v", name, err)
	}
	var gemm dnnlGemmFunc
	purego.RegisterLibFunc(&gemm, h, "dnnl_gemm_bf16bf16f32")

	version, isaName := "?", "?"
	if _, err := purego.Dlsym(h, "dnnl_version"); err == nil {
		var getVersion func() *dnnlVersion
		purego.RegisterLibFunc(&getVersion, h, "dnnl_version")
		if v := getVersion(); v != nil {
			version = fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.patch)
		}
	}
	isa := int32(-1)
	if _, err := purego.Dlsym(h, "dnnl_get_effective_cpu_isa"); err == nil {
		var getISA func() int32
		purego.RegisterLibFunc(&getISA, h, "dnnl_get_effective_cpu_isa")
		isa = getISA()
		isaName = dnnlISANames[isa]
		if isaName == "" {
			isaName = fmt.Sprintf("%#x", isa)
		}
	}
	// Without AVX512_BF16, oneDNN 2.6 emulates bf16 on avx512_core and refuses older CPUs
	// (dnnl_unimplemented, caught by the test product below). The emulation is slower than
	// OpenBLAS's fp32 GEMM: on the 2-core Zen 4 with DNNL_MAX_CPU_ISA=AVX512_CORE_VNNI,
	// 2048×512×1536 ran at 36 GFLOP per CPU-second against 94 for fp32 Sgemm, so then the bf16
	// GEMMs keep the fp32 route.
	if strings.HasPrefix(version, "2.") && isa >= 0 && isa&dnnlISABF16 == 0 {
		purego.Dlclose(h)
		return fmt.Errorf("%s: oneDNN %s runs isa %s, without AVX512_BF16", name, version, isaName)
	}
	threads := -1
	if _, err := purego.Dlsym(h, "omp_get_max_threads"); err == nil {
		var getThreads func() int32
		purego.RegisterLibFunc(&getThreads, h, "omp_get_max_threads")
		threads = int(getThreads())
	}

	// A 2×2 product with an exact answer, through the very call path GemmBF16 uses.
	a := []uint16{bf16.FromF32(1), bf16.FromF32(2), bf16.FromF32(3), bf16.FromF32(4)}
	b := []uint16{bf16.FromF32(5), bf16.FromF32(6), bf16.FromF32(7), bf16.FromF32(8)}
	c := []float32{1, 1, 1, 1}
	if st := gemm('N', 'T', 2, 2, 2, 2, unsafe.Pointer(&a[0]), 2, unsafe.Pointer(&b[0]), 2, 0.5, unsafe.Pointer(&c[0]), 2); st != 0 {
		purego.Dlclose(h)
		return fmt.Errorf("%s: dnnl_gemm_bf16bf16f32 returned status %d on a 2×2 test", name, st)
	}
	// 2·[1 2; 3 4]·[5 6; 7 8]ᵀ + 0.5 = 2·[17 23; 39 53] + 0.5
	if want := []float32{34.5, 46.5, 78.5, 106.5}; fmt.Sprint(c) != fmt.Sprint(want) {
		purego.Dlclose(h)
		return fmt.Errorf("%s: dnnl_gemm_bf16bf16f32 gave %v on a 2×2 test, want %v", name, c, want)
	}
	dnnl.gemm = gemm
	route := "dnnl_gemm_bf16bf16f32"
	if !matmul {
		route += ", GWEN_DNNL=gemm"
	} else if api, err := bindDNNLMatmul(h); err != nil {
		route += ", no matmul primitive: " + err.Error()
	} else {
		dnnlMatmul.api = api
		impl, err := matmulSelfTest()
		if err != nil {
			dnnlMatmul.api = nil
			route += ", matmul primitive failed its self-test: " + err.Error()
		} else {
			route = "matmul primitive " + impl + ", else dnnl_gemm_bf16bf16f32"
		}
	}
	dnnl.backend = fmt.Sprintf("onednn %s (%s, isa %s, %d OpenMP threads, %s)",
		version, route, isaName, threads, name)
	return nil
}

// setOpenMPDefaults sets OMP_NUM_THREADS to GOMAXPROCS when the user has not set it, so that
// oneDNN's OpenMP team matches the cores Go uses (and Sgemm's OpenBLAS threads). libgomp reads
// its environment once, when it is first loaded: if OpenBLAS's OpenMP build loaded it
// already, this changes nothing (its default is the CPU count, GOMAXPROCS's default too).
//
// Threads, measured on the 2-core Zen 4 (BenchmarkBF16Interleaved, per-thread CPU times in
// /proc/self/task): Debian's oneDNN and OpenBLAS's OpenMP build link the same libgomp.so.1, so
// they share one runtime and its worker threads (a oneDNN GEMM and an OpenBLAS GEMM issued
// from the same OS thread used the same worker), and one library's idle workers cannot hold
// cores while the other runs: bf16+fp32 GEMMs in turn took the sum of their times. libgomp
// keeps one pool per calling thread, and Go calls from several, so a process holds a few
// sleeping workers; with more managed threads than CPUs libgomp throttles its spin-wait, and
// after a oneDNN GEMM the process burned 0.8-1.2% of a core over the next 20 ms (0.2 ms), as
// after an OpenBLAS one, with OMP_WAIT_POLICY unset, passive, or even active. So
// OMP_WAIT_POLICY is left alone — except when Go runs on fewer cores than the machine has
// (GOMAXPROCS=1 on 2 cores, say): attention's sequential mode then measured 1.25 s of spinning
// per forward+backward without OMP_WAIT_POLICY=passive, so it is set (unless the user set it).
// Both libraries' loaders call this before their dlopen.
func setOpenMPDefaults() {
	if _, set := os.LookupEnv("OMP_NUM_THREADS"); !set {
		os.Setenv("OMP_NUM_THREADS", fmt.Sprint(runtime.GOMAXPROCS(0)))
	}
	if _, set := os.LookupEnv("OMP_WAIT_POLICY"); !set && runtime.GOMAXPROCS(0) < runtime.NumCPU() {
		os.Setenv("OMP_WAIT_POLICY", "passive")
	}
}

// gemmBF16OneDNN is GemmBF16 on oneDNN (validated, non-trivial shapes): the matmul primitive
// where it is on and can be had for this shape, else dnnl_gemm_bf16bf16f32.
func gemmBF16OneDNN(transA, transB bool, m, n, k int, alpha float32, a []uint16, lda int,
	b []uint16, ldb int, beta float32, c []float32, ldc int) {
	if dnnlMatmul.api != nil && gemmBF16Matmul(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) {
		return
	}
	gemmBF16DNNL(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmBF16DNNL calls the legacy dnnl_gemm_bf16bf16f32 on validated, non-trivial shapes.
func gemmBF16DNNL(transA, transB bool, m, n, k int, alpha float32, a []uint16, lda int,
	b []uint16, ldb int, beta float32, c []float32, ldc int) {
	ta, tb := byte('N'), byte('N')
	if transA {
		ta = 'T'
	}
	if transB {
		tb = 'T'
	}
	st := dnnl.gemm(ta, tb, int64(m), int64(n), int64(k), alpha, unsafe.Pointer(&a[0]), int64(lda),
		unsafe.Pointer(&b[0]), int64(ldb), beta, unsafe.Pointer(&c[0]), int64(ldc))
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
	runtime.KeepAlive(c)
	if st != 0 {
		panic(fmt.Sprintf("kernels: dnnl_gemm_bf16bf16f32 returned status %d: transA=%v transB=%v m=%d n=%d k=%d lda=%d ldb=%d ldc=%d",
			st, transA, transB, m, n, k, lda, ldb, ldc))
	}
}
