package kernels

import "github.com/gwen-ml/gwen/kernels/internal/native"

// The native libraries (OpenBLAS for fp32 GEMM, oneDNN for bf16 GEMM) are bound in package
// kernels/internal/native, loaded at run time through purego. This file is the one seam: the
// kernels reach native code only through the names below, and fall back to the pure-Go GEMM
// where nothing loaded. A CUDA backend would plug in here, beside native.

// BLASBackend names the GEMM backend Sgemm uses, loading OpenBLAS if that has not happened yet:
// for example "openblas 0.3.21 (Cooperlake, 2 threads, /usr/lib/.../libopenblas.so.0)", or a
// string starting with "pure-go" followed by the reason in parentheses. The environment
// variable GWEN_BLAS chooses: unset, the usual OpenBLAS locations are tried; "off" or "go"
// forces the pure-Go GEMM; anything else is the one library file to load. The bf16 GEMMs
// (SgemmBF16, GemmBF16) run on oneDNN where it is installed: see BF16Backend.
func BLASBackend() string { return native.BLASBackend() }

// BF16Backend says what the bf16 GEMMs (SgemmBF16, GemmBF16) run on, loading oneDNN if that has
// not happened yet: for example
//
//	onednn 2.6.3 (dnnl_gemm_bf16bf16f32, isa avx512_core_bf16, 2 OpenMP threads, libdnnl.so.2)
//
// or a string starting with "fp32 gemm" (inputs rounded to bfloat16, then the fp32 Sgemm of
// BLASBackend) followed by the reason in parentheses. GWEN_DNNL=off forces the fallback;
// another value names the one library file to load.
func BF16Backend() string { return native.BF16Backend() }

// blasLoaded reports whether Sgemm goes to OpenBLAS.
func blasLoaded() bool { return native.BLAS() }

// sgemmBLAS is Sgemm on OpenBLAS (validated, non-trivial shapes that fit int32).
func sgemmBLAS(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	native.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// hasSgemv reports whether the loaded OpenBLAS has sgemv_ for one-row products.
func hasSgemv() bool { return native.HasSgemv() }

// sgemvBLAS is the one-row Sgemm on OpenBLAS's sgemv_ (where native.HasSgemv).
func sgemvBLAS(transA, transB bool, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32) {
	native.Sgemv(transA, transB, n, k, alpha, a, lda, b, ldb, beta, c)
}

// dnnlLoaded reports whether the bf16 GEMMs go to oneDNN.
func dnnlLoaded() bool { return native.DNNL() }

// gemmBF16OneDNN is GemmBF16 on oneDNN (validated, non-trivial shapes): the matmul primitive
// where it is on and can be had for this shape, else dnnl_gemm_bf16bf16f32.
func gemmBF16OneDNN(transA, transB bool, m, n, k int, alpha float32, a []uint16, lda int,
	b []uint16, ldb int, beta float32, c []float32, ldc int) {
	native.GemmBF16(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmBF16DNNL is GemmBF16 on the legacy dnnl_gemm_bf16bf16f32 alone.
func gemmBF16DNNL(transA, transB bool, m, n, k int, alpha float32, a []uint16, lda int,
	b []uint16, ldb int, beta float32, c []float32, ldc int) {
	native.GemmBF16Legacy(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmBF16Matmul is GemmBF16 on a cached matmul primitive alone; false where there is none.
func gemmBF16Matmul(transA, transB bool, m, n, k int, alpha float32, a []uint16, lda int,
	b []uint16, ldb int, beta float32, c []float32, ldc int) bool {
	return native.GemmBF16Matmul(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
