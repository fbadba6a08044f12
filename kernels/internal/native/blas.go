package native

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
	"golang.org/x/sys/cpu"
)

// OpenBLAS is loaded at run time with purego (no cgo, no headers): the first GEMM, or the first
// BLASBackend call, dlopens it once. GWEN_BLAS chooses the library:
//
//	GWEN_BLAS unset        try blasLibraries in order
//	GWEN_BLAS=off or =go   never load a library: pure-Go GEMM
//	GWEN_BLAS=<name|path>  load exactly that library (a failure falls back to pure Go, and
//	                       BLASBackend says why)
//
// blasLibraries is the search order when GWEN_BLAS is unset. Debian's OpenMP build of OpenBLAS
// 0.3.21 comes first, ahead of the alternatives link (which points to the pthread build unless
// changed), because of how the two idle between calls, measured on a 2-core AMD EPYC with
// BenchmarkBLASInterleaved: after each GEMM a pthread worker spins (sched_yield) for
// 2^OPENBLAS_THREAD_TIMEOUT cycles, 2^28 by default, and burned a whole core (50 ms of CPU in
// 50 ms idle) that Go goroutines, the GC or the data loader needed; the OpenMP workers went to
// sleep (0.1-0.4 ms of CPU in the same 50 ms). GEMM speed and the speed of a Go-parallel pass
// right after a GEMM did not differ beyond the noise of that shared machine. When the pthread
// build is what loads, loadBLAS shortens its spin (OPENBLAS_THREAD_TIMEOUT=20, ≈0.4 ms; a
// user's setting wins), which brought its idle burn down to 0.3-0.8 ms per 50 ms.
var blasLibraries = []string{
	"/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
	"libopenblas.so.0", // Debian/Ubuntu alternatives link, other distributions' library
	"libopenblas.so",
	"/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
	"/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
}

// The GEMM is bound through OpenBLAS's Fortran entry point sgemm_, not cblas_sgemm: every
// argument of sgemm_ is a pointer, so purego.SyscallN calls it directly, whereas cblas_sgemm
// takes floats by value and needs purego.RegisterFunc, whose reflect-based call allocates:
// measured on a 4×4×4 GEMM, 12 allocations and 1.0 µs per call through cblas_sgemm, none and
// 0.43 µs through sgemm_.
// Both entry points reach the same OpenBLAS driver (cblas_sgemm swaps to column-major and calls
// it exactly as sgemmBLAS does).
var blas struct {
	once    sync.Once
	sgemm   uintptr // sgemm_
	sgemv   uintptr // sgemv_ (0 if absent): GEMMs with one row (decoding) run as GEMV
	backend string  // what BLASBackend reports
}

// sgemmArgs holds the scalars sgemm_ reads through pointers and the argument list itself, so
// a call allocates nothing (SyscallN's variadic slice would otherwise escape). It is pooled,
// hence on the heap, which the Go GC never moves. keep holds the three matrices during the
// call: that keeps them alive and makes them escape to the heap at the caller, so no pointer
// handed to C can be into a goroutine stack (which may move).
type sgemmArgs struct {
	transA, transB byte
	m, n, k        int32
	lda, ldb, ldc  int32
	alpha, beta    float32
	args           [15]uintptr
	keep           [3][]float32
}

var sgemmArgsPool = sync.Pool{New: func() any { return new(sgemmArgs) }}

// BLASBackend names the GEMM backend Sgemm uses, loading OpenBLAS if that has not happened yet:
// for example "openblas 0.3.21 (Cooperlake, 2 threads, /usr/lib/.../libopenblas.so.0)", or a
// string starting with "pure-go" followed by the reason in parentheses. The environment
// variable GWEN_BLAS chooses: unset, the usual OpenBLAS locations are tried; "off" or "go"
// forces the pure-Go GEMM; anything else is the one library file to load. The bf16 GEMMs
// (SgemmBF16, GemmBF16) run on oneDNN where it is installed: see BF16Backend.
func BLASBackend() string {
	loadBLAS()
	return blas.backend
}

// blasLoaded reports whether Sgemm goes to OpenBLAS.
func blasLoaded() bool {
	loadBLAS()
	return blas.sgemm != 0
}

func loadBLAS() {
	blas.once.Do(func() {
		env := os.Getenv("GWEN_BLAS")
		candidates := blasLibraries
		switch env {
		case "off", "go":
			blas.backend = "pure-go (GWEN_BLAS=" + env + ")"
			return
		case "":
		default:
			candidates = []string{env}
		}
		if _, set := os.LookupEnv("OPENBLAS_CORETYPE"); !set {
			if core := openBLASCoreType(); core != "" {
				os.Setenv("OPENBLAS_CORETYPE", core)
			}
		}
		setOpenMPDefaults() // OpenBLAS's OpenMP build brings libgomp, which reads these once
		if _, set := os.LookupEnv("OPENBLAS_THREAD_TIMEOUT"); !set {
			os.Setenv("OPENBLAS_THREAD_TIMEOUT", "20") // pthread build only; see blasLibraries
		}
		var errs []string
		for _, name := range candidates {
			err := openBLAS(name)
			if err == nil {
				return
			}
			errs = append(errs, err.Error())
		}
		blas.backend = "pure-go (no OpenBLAS: " + strings.Join(errs, "; ") + ")"
	})
}

// openBLASCoreType is the OPENBLAS_CORETYPE to force on an AVX-512 CPU, "" elsewhere. OpenBLAS
// reads the variable when it initialises, so it must be set before dlopen; a user's setting
// wins. Debian's 0.3.21 has been seen taking AVX-512 AMD EPYCs for Haswell and running its AVX2
// kernels, which the project measured at half speed. On the 2-core Zen 4 EPYC these kernels
// were tuned on, it detected Cooperlake by itself, and Cooperlake, SkylakeX and Haswell all ran
// at ≈100 GFLOP per CPU-second on one thread (Zen 4 executes 512-bit FMAs as two 256-bit
// halves), so forcing the name costs nothing where detection works. Cooperlake is SkylakeX's
// sgemm plus the bf16 (sbgemm) kernels, so it is chosen when the CPU has AVX512_BF16.
func openBLASCoreType() string {
	x := cpu.X86
	switch {
	case !(x.HasAVX512F && x.HasAVX512BW && x.HasAVX512DQ && x.HasAVX512VL):
		return ""
	case x.HasAVX512BF16:
		return "Cooperlake"
	default:
		return "SkylakeX"
	}
}

// openBLAS binds one library; on success blas.sgemm and blas.backend are set.
func openBLAS(name string) error {
	h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	sym, err := purego.Dlsym(h, "sgemm_")
	if err != nil {
		purego.Dlclose(h)
		return fmt.Errorf("%s: no sgemm_: %v", name, err)
	}
	blas.sgemm = sym
	if sym, err := purego.Dlsym(h, "sgemv_"); err == nil {
		blas.sgemv = sym
	}

	threads := runtime.GOMAXPROCS(0)
	version, core := "?", "?"
	if _, err := purego.Dlsym(h, "openblas_set_num_threads"); err == nil {
		var setThreads func(int32)
		purego.RegisterLibFunc(&setThreads, h, "openblas_set_num_threads")
		setThreads(int32(threads))
	}
	if _, err := purego.Dlsym(h, "openblas_get_num_threads"); err == nil {
		var getThreads func() int32
		purego.RegisterLibFunc(&getThreads, h, "openblas_get_num_threads")
		threads = int(getThreads())
	}
	if _, err := purego.Dlsym(h, "openblas_get_config"); err == nil {
		var getConfig func() string
		purego.RegisterLibFunc(&getConfig, h, "openblas_get_config")
		// "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64"
		if f := strings.Fields(getConfig()); len(f) > 1 {
			version = f[1]
		}
	}
	if _, err := purego.Dlsym(h, "openblas_get_corename"); err == nil {
		var getCore func() string
		purego.RegisterLibFunc(&getCore, h, "openblas_get_corename")
		core = getCore()
	}
	blas.backend = fmt.Sprintf("openblas %s (%s, %d threads, %s)", version, core, threads, name)
	return nil
}

// sgemmBLAS calls sgemm_ on validated, non-trivial shapes (m, n, k > 0). Fortran is
// column-major: a row-major matrix is its transpose there, so row-major C = op(A)·op(B) is
// column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, the same buffers with the operands swapped.
func sgemmBLAS(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	p := sgemmArgsPool.Get().(*sgemmArgs)
	*p = sgemmArgs{transA: 'N', transB: 'N', m: int32(n), n: int32(m), k: int32(k),
		lda: int32(ldb), ldb: int32(lda), ldc: int32(ldc), alpha: alpha, beta: beta}
	if transB {
		p.transA = 'T'
	}
	if transA {
		p.transB = 'T'
	}
	p.keep = [3][]float32{a, b, c}
	// The trailing 1, 1 are the hidden lengths of the two character arguments (gfortran ABI).
	p.args = [15]uintptr{uintptr(unsafe.Pointer(&p.transA)), uintptr(unsafe.Pointer(&p.transB)),
		uintptr(unsafe.Pointer(&p.m)), uintptr(unsafe.Pointer(&p.n)), uintptr(unsafe.Pointer(&p.k)),
		uintptr(unsafe.Pointer(&p.alpha)), uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&p.lda)),
		uintptr(unsafe.Pointer(&a[0])), uintptr(unsafe.Pointer(&p.ldb)), uintptr(unsafe.Pointer(&p.beta)),
		uintptr(unsafe.Pointer(&c[0])), uintptr(unsafe.Pointer(&p.ldc)), 1, 1}
	purego.SyscallN(blas.sgemm, p.args[:]...)
	p.keep = [3][]float32{}
	sgemmArgsPool.Put(p)
}
