package native

import (
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// sgemvArgs is sgemmArgs' counterpart for sgemv_: pointer arguments kept on the heap so a call
// allocates nothing and hands C no pointer into a goroutine stack.
type sgemvArgs struct {
	trans       byte
	m, n, ld    int32
	incx, incy  int32
	alpha, beta float32
	args        [12]uintptr
	keep        [3][]float32
}

var sgemvArgsPool = sync.Pool{New: func() any { return new(sgemvArgs) }}

// sgemvBLAS computes the one-row GEMM c[1,n] = alpha·op(A)[1,k]·op(B)[k,n] + beta·c with
// OpenBLAS's sgemv_ (shapes validated and non-trivial). In column-major terms a row-major
// B [n,k] (transB) is a k×n matrix and c = Bᵀ·x; a row-major B [k,n] is an n×k matrix and
// c = B·x. The row x of op(A) has stride lda when A is stored transposed ([k,1]).
func sgemvBLAS(transA, transB bool, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32) {
	if beta == 0 {
		clear(c[:n]) // BLAS scales y by beta; make beta == 0 overwrite even NaN
	}
	p := sgemvArgsPool.Get().(*sgemvArgs)
	*p = sgemvArgs{trans: 'N', m: int32(n), n: int32(k), ld: int32(ldb), incx: 1, incy: 1, alpha: alpha, beta: beta}
	if transB {
		p.trans, p.m, p.n = 'T', int32(k), int32(n)
	}
	if transA {
		p.incx = int32(lda)
	}
	p.keep = [3][]float32{a, b, c}
	p.args = [12]uintptr{uintptr(unsafe.Pointer(&p.trans)), uintptr(unsafe.Pointer(&p.m)),
		uintptr(unsafe.Pointer(&p.n)), uintptr(unsafe.Pointer(&p.alpha)), uintptr(unsafe.Pointer(&b[0])),
		uintptr(unsafe.Pointer(&p.ld)), uintptr(unsafe.Pointer(&a[0])), uintptr(unsafe.Pointer(&p.incx)),
		uintptr(unsafe.Pointer(&p.beta)), uintptr(unsafe.Pointer(&c[0])), uintptr(unsafe.Pointer(&p.incy)),
		1} // the hidden length of the character argument (gfortran ABI)
	purego.SyscallN(blas.sgemv, p.args[:]...)
	p.keep = [3][]float32{}
	sgemvArgsPool.Put(p)
}
