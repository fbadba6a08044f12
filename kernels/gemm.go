package kernels

import (
	"fmt"
	"github.com/gwen-ml/gwen/internal/freelist"
	"math"
	"runtime"
)

// Sgemm is the GEMM every op calls, row-major:
//
//	C[m,n] = alpha · op(A)[m,k] · op(B)[k,n] + beta · C
//
// op(X) = Xᵀ when transX (A then stored [k,m] with row stride lda, B stored [n,k]); lda, ldb
// and ldc may exceed the row width. beta == 0 overwrites C without reading it; k == 0 or
// alpha == 0 gives C = beta·C. It runs on OpenBLAS when that was loaded (see BLASBackend),
// else on SgemmGo. Panics, naming every size, when the buffers cannot hold the shapes.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if gemmTrivial(m, n, k, alpha, beta, c, ldc) {
		return
	}
	if m <= GemvBatchMaxRows && transB && !transA && ldb == k && alpha == 1 && beta == 0 {
		// A decoding step's y = x·Wᵀ for a row or a few (batched sequences, or the tokens
		// speculative decoding verifies): W streams from memory once (GemvF32Batch).
		GemvF32Batch(c, ldc, b, a, lda, m, n, k)
		return
	}
	if blasLoaded() && fitsInt32(m, n, k, lda, ldb, ldc) {
		if m == 1 && hasSgemv() { // one row (a decoding step): sgemm_ would pack for nothing
			sgemvBLAS(transA, transB, n, k, alpha, a, lda, b, ldb, beta, c)
			return
		}
		sgemmBLAS(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	sgemmGo(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, true, false)
}

func fitsInt32(v ...int) bool {
	for _, x := range v {
		if x > math.MaxInt32 {
			return false
		}
	}
	return true
}

// gemmBatchedGoFlops is the size (2·m·n·k per item) below which SgemmBatched runs its items on
// the pure-Go GEMM, goroutines over the batch, instead of one OpenBLAS call each. Measured with
// BenchmarkSgemmBatched (64 square items, transB, 2-core AMD EPYC, SkylakeX kernels; a loaded
// machine, so ranges over 3 runs, GFLOP/s):
//
//	side          8        12       16      20      24      32
//	pure Go       0.3-2.9  0.5-4.2  0.8-3.8 4.9-5.4 5.2-5.9 6.6
//	OpenBLAS      0.8-3.3  1.1-9.3  22-24   26-30   38-40   41-50
//
// OpenBLAS is ahead from side 12 and far ahead from 16 (the purego call is cheap once it does
// not allocate); the two are level at 8.
const gemmBatchedGoFlops = 2 * 12 * 12 * 12

// SgemmBatched runs batch independent GEMMs, item i on
//
//	a[i·strideA:], b[i·strideB:], c[i·strideC:]
//
// with Sgemm's meaning for every other argument. A stride of 0 broadcasts that operand (the
// same A or B for every item); strideC must leave the C items disjoint (items may be computed
// concurrently). Large items each go to Sgemm (OpenBLAS 0.3.21 has no batched sgemm);
// small ones run on the pure-Go GEMM, parallel over the batch.
func SgemmBatched(transA, transB bool, m, n, k int, alpha float32, a []float32, lda, strideA int,
	b []float32, ldb, strideB int, beta float32, c []float32, ldc, strideC int, batch int) {
	if batch < 0 || strideA < 0 || strideB < 0 || strideC < 0 {
		panic(fmt.Sprintf("kernels: SgemmBatched: negative batch=%d or stride (strideA=%d strideB=%d strideC=%d)",
			batch, strideA, strideB, strideC))
	}
	if batch == 0 {
		return
	}
	// The last item has the largest offsets: if it fits, every item does.
	last := batch - 1
	checkGemm(transA, transB, m, n, k, len(a)-last*strideA, lda, len(b)-last*strideB, ldb,
		len(c)-last*strideC, ldc)
	if m > 0 && n > 0 && strideC < (m-1)*ldc+n && batch > 1 {
		panic(fmt.Sprintf("kernels: SgemmBatched: strideC=%d overlaps C items of m=%d n=%d ldc=%d",
			strideC, m, n, ldc))
	}
	if 2*m*n*k >= gemmBatchedGoFlops && blasLoaded() {
		for i := 0; i < batch; i++ {
			Sgemm(transA, transB, m, n, k, alpha, a[i*strideA:], lda, b[i*strideB:], ldb, beta, c[i*strideC:], ldc)
		}
		return
	}
	sgemmBatchedGo(transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch)
}

// sgemmBatchedGo runs SgemmBatched's validated items on the pure-Go GEMM: goroutines split the
// batch when it has at least one item per core, else each (large enough) item splits itself.
func sgemmBatchedGo(transA, transB bool, m, n, k int, alpha float32, a []float32, lda, strideA int,
	b []float32, ldb, strideB int, beta float32, c []float32, ldc, strideC int, batch int) {
	flops := 2 * m * n * k
	if batch < runtime.GOMAXPROCS(0) || flops*batch < 2*gemmWorkerFlops {
		for i := 0; i < batch; i++ {
			SgemmGo(transA, transB, m, n, k, alpha, a[i*strideA:], lda, b[i*strideB:], ldb, beta, c[i*strideC:], ldc)
		}
		return
	}
	Parallel(batch, max(1, gemmWorkerFlops/max(1, flops)), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			ci := c[i*strideC:]
			if !gemmTrivial(m, n, k, alpha, beta, ci, ldc) {
				sgemmGo(transA, transB, m, n, k, alpha, a[i*strideA:], lda, b[i*strideB:], ldb, beta, ci, ldc, false, false)
			}
		}
	})
}

// bf16Scratch holds SgemmBF16's rounded copies of A and B between calls.
var bf16Scratch = freelist.List[[]float32]{}

// SgemmBF16 is Sgemm in mixed precision: op(A) and op(B) are rounded to bfloat16
// (round-to-nearest-even, as RoundBF16) before multiplying; products accumulate in fp32 and
// alpha, beta and C stay fp32. Where oneDNN is loaded (BF16Backend) and the product has at
// least gemmBF16DNNLFlops, A and B are converted to bfloat16 bits in reused scratch (split over
// Parallel, before the library call) and multiplied by GemmBF16's oneDNN route, which flushes
// subnormals (see GemmBF16) and allocates nothing per call on a cached matmul primitive (the
// legacy gemm API allocates purego's call arguments, about a dozen small objects per call). Otherwise, on OpenBLAS, rounded fp32 copies live in reused scratch, so
// steady-state calls do not allocate; the pure-Go GEMM rounds while packing, without copies.
func SgemmBF16(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if gemmTrivial(m, n, k, alpha, beta, c, ldc) {
		return
	}
	if 2*m*n*k >= gemmBF16DNNLFlops && dnnlLoaded() {
		sgemmBF16DNNL(gemmBF16OneDNN, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if !blasLoaded() || !fitsInt32(m, n, k, lda, ldb, ldc) {
		sgemmGo(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, true, true)
		return
	}
	ra, ca := storedShape(transA, m, k)
	rb, cb := storedShape(transB, k, n)
	pa, pb := bf16Scratch.Get(), bf16Scratch.Get()
	defer bf16Scratch.Put(pa)
	defer bf16Scratch.Put(pb)
	ar := roundBF16Matrix(pa, a, ra, ca, lda)
	br := roundBF16Matrix(pb, b, rb, cb, ldb)
	sgemmBLAS(transA, transB, m, n, k, alpha, ar, ca, br, cb, beta, c, ldc)
}

// roundBF16Matrix writes the rows×cols matrix src (row stride ld) rounded to bfloat16 into the
// buffer *buf, grown when needed, packed with row stride cols; it returns that matrix.
func roundBF16Matrix(buf *[]float32, src []float32, rows, cols, ld int) []float32 {
	return packConverted(buf, src, rows, cols, ld, RoundBF16)
}

// storedShape is the shape op(X)'s operand is stored in: rows×cols, or cols×rows when trans.
func storedShape(trans bool, rows, cols int) (int, int) {
	if trans {
		return cols, rows
	}
	return rows, cols
}

// packConverted writes the rows×cols matrix src (row stride ld), each row converted by conv,
// into *buf, grown when needed, packed with row stride cols, and returns that matrix. Large
// matrices are split over Parallel (between library calls, never during one).
func packConverted[S, D any](buf *[]D, src []S, rows, cols, ld int, conv func(dst []D, src []S)) []D {
	if cap(*buf) < rows*cols {
		*buf = make([]D, rows*cols)
	}
	dst := (*buf)[:rows*cols]
	if rows*cols < convertGrain { // not worth goroutines (nor the closure's allocation)
		for r := 0; r < rows; r++ {
			conv(dst[r*cols:(r+1)*cols], src[r*ld:r*ld+cols])
		}
		return dst
	}
	Parallel(rows, max(1, convertGrain/max(cols, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			conv(dst[r*cols:(r+1)*cols], src[r*ld:r*ld+cols])
		}
	})
	return dst
}
