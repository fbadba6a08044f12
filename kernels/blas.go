package kernels

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"

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
// blasLibraries is the search order when GWEN_BLAS is unset.
var blasLibraries = []string{
	"libopenblas.so.0", // Debian/Ubuntu alternatives link (pthread build unless changed)
	"libopenblas.so",
	"/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
	"/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
	"/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
}

// CBLAS enum values (cblas.h).
const (
	cblasRowMajor = 101
	cblasNoTrans  = 111
	cblasTrans    = 112
)

var blas struct {
	once    sync.Once
	sgemm   func(order, transA, transB, m, n, k int32, alpha float32, a *float32, lda int32, b *float32, ldb int32, beta float32, c *float32, ldc int32)
	backend string // what BLASBackend reports
}

// BLASBackend names the GEMM backend Sgemm uses, loading OpenBLAS if that has not happened yet:
// for example "openblas 0.3.21 (SkylakeX, 2 threads, /usr/lib/.../libopenblas.so.0)", or a
// string starting with "pure-go" followed by the reason in parentheses.
func BLASBackend() string {
	loadBLAS()
	return blas.backend
}

// blasLoaded reports whether Sgemm goes to OpenBLAS.
func blasLoaded() bool {
	loadBLAS()
	return blas.sgemm != nil
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
		// Debian's OpenBLAS 0.3.21 takes AMD EPYC CPUs with AVX-512 (Zen 4) for Haswell and runs
		// its AVX2 kernels at half the speed of the SkylakeX ones; the variable is read when the
		// library initialises, so it must be set before dlopen. A user's setting wins.
		if _, set := os.LookupEnv("OPENBLAS_CORETYPE"); !set &&
			cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VL {
			os.Setenv("OPENBLAS_CORETYPE", "SkylakeX")
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

// openBLAS binds one library; on success blas.sgemm and blas.backend are set.
func openBLAS(name string) error {
	h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	sym, err := purego.Dlsym(h, "cblas_sgemm")
	if err != nil {
		purego.Dlclose(h)
		return fmt.Errorf("%s: no cblas_sgemm: %v", name, err)
	}
	purego.RegisterFunc(&blas.sgemm, sym)

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

// sgemmBLAS calls cblas_sgemm on validated, non-trivial shapes (m, n, k > 0).
func sgemmBLAS(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	ta, tb := int32(cblasNoTrans), int32(cblasNoTrans)
	if transA {
		ta = cblasTrans
	}
	if transB {
		tb = cblasTrans
	}
	blas.sgemm(cblasRowMajor, ta, tb, int32(m), int32(n), int32(k), alpha, &a[0], int32(lda),
		&b[0], int32(ldb), beta, &c[0], int32(ldc))
}
