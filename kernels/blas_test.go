package kernels

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/cpu"
)

// ExampleBLASBackend prints which GEMM backend Sgemm runs on. The output depends on the
// machine, for example
//
//	openblas 0.3.21 (Cooperlake, 2 threads, /usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0)
//
// or, with GWEN_BLAS=off or no OpenBLAS installed, "pure-go (...)" with the reason.
func ExampleBLASBackend() {
	fmt.Println(BLASBackend())
}

// TestBLASBackendChoice runs this test binary again under different environments (the library
// is loaded once per process) and checks what BLASBackend reports there.
func TestBLASBackendChoice(t *testing.T) {
	if name := os.Getenv("GWEN_TEST_PRINT_BACKEND"); name != "" {
		fmt.Printf("backend=%s\n", BLASBackend())
		c := []float32{0}
		Sgemm(false, false, 1, 1, 2, 1, []float32{2, 3}, 2, []float32{5, 7}, 1, 0, c, 1)
		fmt.Printf("gemm=%g\n", c[0])
		return
	}
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	run := func(env ...string) string {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestBLASBackendChoice$")
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "GWEN_BLAS=") && !strings.HasPrefix(kv, "OPENBLAS_CORETYPE=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, append(env, "GWEN_TEST_PRINT_BACKEND=1")...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", env, err, out)
		}
		if !strings.Contains(string(out), "gemm=31\n") { // 2·5 + 3·7
			t.Errorf("%v: Sgemm gave the wrong product:\n%s", env, out)
		}
		return string(out)
	}
	for _, off := range []string{"off", "go"} {
		if out := run("GWEN_BLAS=" + off); !strings.Contains(out, "backend=pure-go (GWEN_BLAS="+off+")") {
			t.Errorf("GWEN_BLAS=%s: %s", off, out)
		}
	}
	if out := run("GWEN_BLAS=/nonexistent/libopenblas.so"); !strings.Contains(out, "backend=pure-go (no OpenBLAS: /nonexistent/libopenblas.so") {
		t.Errorf("GWEN_BLAS=/nonexistent: %s", out)
	}

	for _, lib := range []string{ // Debian's two builds of OpenBLAS
		"/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
		"/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
	} {
		if _, err := os.Stat(lib); err != nil {
			t.Logf("skipping %s: %v", lib, err)
			continue
		}
		out := run("GWEN_BLAS=" + lib)
		if !strings.Contains(out, "backend=openblas ") || !strings.Contains(out, lib) {
			t.Errorf("GWEN_BLAS=%s: %s", lib, out)
		}
		// A user's OPENBLAS_CORETYPE wins; unset, AVX-512 machines get SkylakeX's kernels
		// (Cooperlake's where the CPU has bf16 instructions).
		if out := run("GWEN_BLAS="+lib, "OPENBLAS_CORETYPE=Sandybridge"); !strings.Contains(out, "(Sandybridge,") {
			t.Errorf("GWEN_BLAS=%s OPENBLAS_CORETYPE=Sandybridge: %s", lib, out)
		}
		want := "(SkylakeX,"
		if cpu.X86.HasAVX512BF16 {
			want = "(Cooperlake,"
		}
		if cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VL &&
			!strings.Contains(out, want) {
			t.Errorf("GWEN_BLAS=%s on an AVX-512 CPU: want %s kernels, got %s", lib, want, out)
		}
	}
}
