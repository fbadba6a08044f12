// Package native binds the CPU math libraries Gwen loads at run time through purego (no cgo):
// OpenBLAS's sgemm_ and sgemv_, oneDNN's bf16 GEMM and its cached matmul primitives.
//
// It is package kernels' one seam to native code: kernels decides when a GEMM goes here (and
// falls back to its pure-Go GEMM when nothing loaded); a CUDA backend would stand beside this
// package behind the same calls. Every function takes validated, non-trivial shapes (m, n,
// k > 0, sizes that fit int32): kernels checks them. GWEN_BLAS and GWEN_DNNL choose the
// libraries; BLASBackend and BF16Backend say what runs.
package native

// BLAS reports whether OpenBLAS is loaded (loading it on first use): Sgemm can run.
func BLAS() bool { return blasLoaded() }

// HasSgemv reports whether the loaded OpenBLAS has sgemv_ (for one-row products).
func HasSgemv() bool { return blasLoaded() && blas.sgemv != 0 }

// Sgemm is kernels.Sgemm on OpenBLAS's sgemm_ (row-major, the same arguments).
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemmBLAS(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Sgemv is the one-row Sgemm c[1,n] = alpha·op(A)[1,k]·op(B)[k,n] + beta·c on sgemv_.
func Sgemv(transA, transB bool, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32) {
	sgemvBLAS(transA, transB, n, k, alpha, a, lda, b, ldb, beta, c)
}

// DNNL reports whether oneDNN's bf16 GEMM is loaded (loading it on first use).
func DNNL() bool { return dnnlLoaded() }

// Matmul reports whether oneDNN's matmul primitive route is on (loaded and self-tested).
func Matmul() bool { return dnnlLoaded() && dnnlMatmul.api != nil }

// GemmBF16 is kernels.GemmBF16 on oneDNN: a cached matmul primitive where one can be had for
// the shape, else dnnl_gemm_bf16bf16f32. Needs DNNL().
func GemmBF16(transA, transB bool, m, n, k int, alpha float32, a []uint16, lda int,
	b []uint16, ldb int, beta float32, c []float32, ldc int) {
	gemmBF16OneDNN(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// GemmBF16Legacy is GemmBF16 on dnnl_gemm_bf16bf16f32 alone. Needs DNNL().
func GemmBF16Legacy(transA, transB bool, m, n, k int, alpha float32, a []uint16, lda int,
	b []uint16, ldb int, beta float32, c []float32, ldc int) {
	gemmBF16DNNL(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// GemmBF16Matmul is GemmBF16 on a cached matmul primitive alone; it reports false, having
// done nothing, where there is none for this shape. Needs Matmul().
func GemmBF16Matmul(transA, transB bool, m, n, k int, alpha float32, a []uint16, lda int,
	b []uint16, ldb int, beta float32, c []float32, ldc int) bool {
	return gemmBF16Matmul(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// SetMatmulCacheCap sets how many shapes may hold a matmul primitive and returns the previous
// cap; with n <= MatmulCacheLen(), new shapes get none (tests of the full cache use it).
func SetMatmulCacheCap(n int) (old int) {
	dnnlMatmul.mu.Lock()
	defer dnnlMatmul.mu.Unlock()
	old, dnnlMatmulCacheCap = dnnlMatmulCacheCap, n
	return old
}

// MatmulCacheLen is the number of shapes cached (with a primitive or a failed attempt).
func MatmulCacheLen() int {
	dnnlMatmul.mu.Lock()
	defer dnnlMatmul.mu.Unlock()
	return len(dnnlMatmul.entries)
}
