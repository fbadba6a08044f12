package kernels

import "fmt"

// SgemmRef is the naive reference GEMM, kept forever to cross-check the fast ones:
//
//	C[m,n] = alpha · op(A)[m,k] · op(B)[k,n] + beta · C
//
// row-major; op(A) = Aᵀ when transA (A stored [k,m] with row stride lda), likewise B.
// beta == 0 overwrites C without reading it (NaNs in C do not propagate).
func SgemmRef(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += av * bv
			}
			if beta == 0 {
				c[i*ldc+j] = alpha * s
			} else {
				c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
			}
		}
	}
}

// checkGemm panics, naming every size, when a GEMM's buffers cannot hold its operands.
func checkGemm(transA, transB bool, m, n, k, la, lda, lb, ldb, lc, ldc int) {
	ra, ca := m, k
	if transA {
		ra, ca = k, m
	}
	rb, cb := k, n
	if transB {
		rb, cb = n, k
	}
	bad := m < 0 || n < 0 || k < 0 || lda < max(ca, 1) || ldb < max(cb, 1) || ldc < max(n, 1) ||
		(ra > 0 && la < (ra-1)*lda+ca) || (rb > 0 && lb < (rb-1)*ldb+cb) || (m > 0 && lc < (m-1)*ldc+n)
	if bad {
		panic(fmt.Sprintf("kernels: gemm shapes do not fit: transA=%v transB=%v m=%d n=%d k=%d len(a)=%d lda=%d len(b)=%d ldb=%d len(c)=%d ldc=%d",
			transA, transB, m, n, k, la, lda, lb, ldb, lc, ldc))
	}
}
