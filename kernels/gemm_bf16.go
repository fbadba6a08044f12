package kernels

import "github.com/gwen-ml/gwen/internal/freelist"

// GemmBF16 is Sgemm on bfloat16 operands (raw bits, as F32ToBF16 writes them), row-major:
//
//	C[m,n] = alpha · op(A)[m,k] · op(B)[k,n] + beta · C
//
// with fp32 alpha, beta and C and the products accumulated in fp32; strides, transposes, beta
// == 0 (C not read) and the panics on shapes are Sgemm's. It runs on oneDNN when that is
// loaded (see BF16Backend): a matmul primitive cached per shape (dnnl_matmul.go), else the
// legacy dnnl_gemm_bf16bf16f32; otherwise op(A) and op(B) are
// widened to fp32 in reused scratch (exactly: every bfloat16 is a float32) and multiplied by
// Sgemm, so the numbers follow the same rule either way. oneDNN, like every VDPBF16PS, treats
// subnormal bfloat16 inputs (below 2⁻¹²⁶ ≈ 1.2e-38) as zero and flushes subnormal results.
// A call on a cached primitive makes five purego.SyscallN calls and allocates nothing (the
// first call of a shape creates it: 0.5-7 ms); a legacy call passes through
// purego.RegisterFunc (alpha and beta by value): about 1.6 µs and 12 small allocations.
func GemmBF16(transA, transB bool, m, n, k int, alpha float32, a []uint16, lda int,
	b []uint16, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if gemmTrivial(m, n, k, alpha, beta, c, ldc) {
		return
	}
	if dnnlLoaded() {
		gemmBF16OneDNN(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	gemmBF16Widen(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// GemmBF16F32B is GemmBF16 with B given in fp32: op(B) is rounded to bfloat16 bits in reused
// scratch (as SgemmBF16 rounds it), then multiplied. For products whose A is already in bits and
// whose B (a weight) is not worth keeping in bits.
func GemmBF16F32B(transA, transB bool, m, n, k int, alpha float32, a []uint16, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if gemmTrivial(m, n, k, alpha, beta, c, ldc) {
		return
	}
	rb, cb := storedShape(transB, k, n)
	pb := bf16Bits.Get()
	defer bf16Bits.Put(pb)
	b16 := toBF16Matrix(pb, b, rb, cb, ldb)
	GemmBF16(transA, transB, m, n, k, alpha, a, lda, b16, cb, beta, c, ldc)
}

// gemmBF16Widen is GemmBF16 without oneDNN, on validated, non-trivial shapes: op(A) and op(B)
// widened to fp32 scratch, then Sgemm.
func gemmBF16Widen(transA, transB bool, m, n, k int, alpha float32, a []uint16, lda int,
	b []uint16, ldb int, beta float32, c []float32, ldc int) {
	ra, ca := storedShape(transA, m, k)
	rb, cb := storedShape(transB, k, n)
	pa, pb := bf16Scratch.Get(), bf16Scratch.Get()
	defer bf16Scratch.Put(pa)
	defer bf16Scratch.Put(pb)
	aw := widenBF16Matrix(pa, a, ra, ca, lda)
	bw := widenBF16Matrix(pb, b, rb, cb, ldb)
	Sgemm(transA, transB, m, n, k, alpha, aw, ca, bw, cb, beta, c, ldc)
}

// bf16Bits holds SgemmBF16's bfloat16 copies of A and B between calls (oneDNN path).
var bf16Bits = freelist.List[[]uint16]{}

// sgemmBF16DNNL is SgemmBF16 on oneDNN, on validated, non-trivial shapes: A and B (the stored
// ra×ca and rb×cb matrices) are rounded to bfloat16 bits in scratch, packed, then multiplied
// by gemm (gemmBF16OneDNN, or one route of it in tests). Its steps are gemmBF16Widen's and
// SgemmBF16's OpenBLAS route with another scratch type and conversion each.
func sgemmBF16DNNL(gemm func(transA, transB bool, m, n, k int, alpha float32, a []uint16, lda int,
	b []uint16, ldb int, beta float32, c []float32, ldc int), transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	ra, ca := storedShape(transA, m, k)
	rb, cb := storedShape(transB, k, n)
	pa, pb := bf16Bits.Get(), bf16Bits.Get()
	defer bf16Bits.Put(pa)
	defer bf16Bits.Put(pb)
	a16 := toBF16Matrix(pa, a, ra, ca, lda)
	b16 := toBF16Matrix(pb, b, rb, cb, ldb)
	gemm(transA, transB, m, n, k, alpha, a16, ca, b16, cb, beta, c, ldc)
}

// convertGrain is the number of elements below which a conversion runs on the calling goroutine.
const convertGrain = 1 << 16

// widenBF16Matrix writes the rows×cols bfloat16 matrix src (row stride ld) widened to float32
// into *buf, grown when needed, packed with row stride cols; it returns that matrix.
func widenBF16Matrix(buf *[]float32, src []uint16, rows, cols, ld int) []float32 {
	return packConverted(buf, src, rows, cols, ld, BF16ToF32)
}

// toBF16Matrix writes the rows×cols matrix src (row stride ld) rounded to bfloat16 bits
// (F32ToBF16Bits) into *buf, grown when needed, packed with row stride cols; it returns that
// matrix.
func toBF16Matrix(buf *[]uint16, src []float32, rows, cols, ld int) []uint16 {
	return packConverted(buf, src, rows, cols, ld, f32ToBF16Row)
}

// gemmBF16DNNLFlops is the size (2·m·n·k) from which SgemmBF16 goes to oneDNN rather than
// rounding into fp32 scratch for OpenBLAS. Measured with BenchmarkSgemmBF16Crossover (square,
// transB, 2-core Zen 4 shared with other work, so rough; µs per call):
//
//	side                16    24    32    48    56    64    72    80    96
//	oneDNN              3.2   2.7   2.5   3.7   5.6   20-26 30    29-35 28-30
//	round + OpenBLAS    1.3   2.2   3.6   9.0   20    17-21 45-48 80-85 68-78
//
// oneDNN leads from side 32 but at 64 (where it starts its second thread); below 32 the
// purego call (about 1-2 µs with its allocations) dominates. Staying on OpenBLAS there also
// keeps small SgemmBF16 calls free of allocations.
const gemmBF16DNNLFlops = 2 * 32 * 32 * 32
