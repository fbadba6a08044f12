package kernels

import "github.com/gwen-ml/gwen/internal/freelist"

// The pure-Go GEMM: always compiled, the fallback when OpenBLAS is absent and the cross-check
// for it. Goto/BLIS structure: C is cut into nc-wide column panels; for each kc-deep slice of
// k the matching kc×nc panel of op(B) is packed into NR-wide strips, every mc×kc block of op(A)
// into MR-tall strips (transposes are resolved once, while packing), and an MR×NR micro-kernel
// runs over pairs of strips with its accumulators in local variables.
//
// The Go compiler does not vectorise and, by default (GOAMD64=v1), does not fuse a*b+c: the
// ceiling is scalar MULSS and ADDSS on two pipes each, 4 flops/cycle, ≈14 GFLOP/s per core on
// the 3.6 GHz (boost) Zen 4 EPYC this was tuned on. Measured there, one goroutine, 1024×512×768
// NN: ≈10 GFLOP per CPU-second (≈11 built with GOAMD64=v3, where a*b+c becomes an FMA); OpenBLAS
// does ≈100. The micro-kernel shape was chosen by measurement (kc=256, data in L1, GFLOP/s on a
// loaded machine): 2×4 unrolled 4 deep in k 8.6-10.4, 2×3 unrolled 8 9.6, 3×3 8.5, 2×6 7,
// 3×4 5, 4×4 3.3. Beyond 8-10 accumulators the register allocator spills (amd64 leaves Go 15
// XMM registers) and the kernel runs at half speed. Blocking matters less: kc 128-384, mc
// 64-256 and nc 512-1024 all gave 9.3-10.3 GFLOP per CPU-second, kc=256 mc=128 nc=1024 the most.
const (
	gemmMR = 2    // micro-tile rows
	gemmNR = 4    // micro-tile columns
	gemmKC = 256  // depth of a packed slice: a B strip (kc×NR, 4 KiB) stays in L1
	gemmMC = 128  // rows of a packed A block (mc×kc, 128 KiB) stay in L2
	gemmNC = 1024 // columns of a packed B panel (kc×nc, 1 MiB) stay in L2/L3
	// gemmWorkerFlops is the least work (2·m·n·k) worth a goroutine of its own.
	gemmWorkerFlops = 1 << 18
)

// gemmScratch holds one worker's packing buffers, reused so steady-state calls do not allocate.
type gemmScratch struct {
	a [gemmMC * gemmKC]float32
	b [gemmKC * gemmNC]float32
}

var gemmScratchPool freelist.List[gemmScratch]

// SgemmGo is the pure-Go GEMM, same contract as SgemmRef:
//
//	C[m,n] = alpha · op(A)[m,k] · op(B)[k,n] + beta · C
//
// row-major, op(X) = Xᵀ when transX; beta == 0 overwrites C without reading it. Work is split
// over rows (or over columns when m is small) across GOMAXPROCS goroutines with Parallel.
func SgemmGo(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if gemmTrivial(m, n, k, alpha, beta, c, ldc) {
		return
	}
	sgemmGo(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, true, false)
}

// sgemmGo runs the blocked GEMM on validated, non-trivial shapes; parallel=false keeps it on the
// calling goroutine (SgemmBatched parallelises over the batch instead); bf16 rounds op(A) and
// op(B) to bfloat16 as they are packed (SgemmBF16 without copies).
func sgemmGo(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int, parallel, bf16 bool) {
	g := goGemm{transA: transA, transB: transB, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
		beta: beta, c: c, ldc: ldc, bf16: bf16}
	flops := 2 * m * n * k
	if !parallel || flops < 2*gemmWorkerFlops {
		g.block(0, m, 0, n)
		return
	}
	g.parallel(m, n, flops)
}

// parallel splits C over goroutines, the larger side first, so every goroutine gets whole
// micro-tiles and a fair share. (g is a copy: the closures capture it, the serial path's stays
// on the stack.)
func (g goGemm) parallel(m, n, flops int) {
	if m >= n || n < 4*gemmNR {
		units := (m + gemmMR - 1) / gemmMR
		grain := max(1, units*gemmWorkerFlops/flops)
		Parallel(units, grain, func(lo, hi int) { g.block(lo*gemmMR, min(hi*gemmMR, m), 0, n) })
		return
	}
	units := (n + gemmNR - 1) / gemmNR
	grain := max(1, units*gemmWorkerFlops/flops)
	Parallel(units, grain, func(lo, hi int) { g.block(0, m, lo*gemmNR, min(hi*gemmNR, n)) })
}

// gemmTrivial handles the cases that need no multiplication: an empty C, and k == 0 or
// alpha == 0, where C = beta·C (beta == 0 writes zeros, even over NaN). It reports whether it
// did the whole job.
func gemmTrivial(m, n, k int, alpha, beta float32, c []float32, ldc int) bool {
	if m == 0 || n == 0 {
		return true
	}
	if k != 0 && alpha != 0 {
		return false
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		switch beta {
		case 1:
		case 0:
			clear(row)
		default:
			for j := range row {
				row[j] *= beta
			}
		}
	}
	return true
}

// goGemm is one GEMM's operands, shared read-only by the goroutines that compute it.
type goGemm struct {
	transA, transB bool
	k              int
	alpha          float32
	a              []float32
	lda            int
	b              []float32
	ldb            int
	beta           float32
	c              []float32
	ldc            int
	bf16           bool // round the packed operands to bfloat16
}

// block computes C[r0:r1, c0:c1] on the calling goroutine.
func (g *goGemm) block(r0, r1, c0, c1 int) {
	s := gemmScratchPool.Get()
	defer gemmScratchPool.Put(s)
	for jc := c0; jc < c1; jc += gemmNC {
		nb := min(gemmNC, c1-jc)
		for pc := 0; pc < g.k; pc += gemmKC {
			kb := min(gemmKC, g.k-pc)
			g.packB(s.b[:], pc, kb, jc, nb)
			beta := g.beta
			if pc > 0 { // the first slice applied beta; the rest accumulate
				beta = 1
			}
			for ic := r0; ic < r1; ic += gemmMC {
				mb := min(gemmMC, r1-ic)
				g.packA(s.a[:], ic, mb, pc, kb)
				g.macro(s.a[:], s.b[:], mb, nb, kb, beta, ic, jc)
			}
		}
	}
}

// packA copies op(A)[i0:i0+mb, p0:p0+kb] into MR-row strips: strip s holds, for each p, the
// MR values op(A)[i0+s·MR+i, p0+p], rows past mb padded with zeros.
func (g *goGemm) packA(dst []float32, i0, mb, p0, kb int) {
	if g.bf16 {
		packed := dst[:(mb+gemmMR-1)/gemmMR*gemmMR*kb]
		defer RoundBF16(packed, packed)
	}
	a, lda := g.a, g.lda
	for s := 0; s*gemmMR < mb; s++ {
		strip := dst[s*gemmMR*kb : (s+1)*gemmMR*kb]
		rows := min(gemmMR, mb-s*gemmMR)
		r := i0 + s*gemmMR
		if rows < gemmMR {
			clear(strip)
		}
		for i := 0; i < rows; i++ {
			if g.transA { // A stored [k, m]: column r+i of A, one element per row
				for p := 0; p < kb; p++ {
					strip[p*gemmMR+i] = a[(p0+p)*lda+r+i]
				}
			} else {
				src := a[(r+i)*lda+p0 : (r+i)*lda+p0+kb]
				for p, v := range src {
					strip[p*gemmMR+i] = v
				}
			}
		}
	}
}

// packB copies op(B)[p0:p0+kb, j0:j0+nb] into NR-column strips: strip s holds, for each p, the
// NR values op(B)[p0+p, j0+s·NR+j], columns past nb padded with zeros.
func (g *goGemm) packB(dst []float32, p0, kb, j0, nb int) {
	if g.bf16 {
		packed := dst[:(nb+gemmNR-1)/gemmNR*gemmNR*kb]
		defer RoundBF16(packed, packed)
	}
	b, ldb := g.b, g.ldb
	for s := 0; s*gemmNR < nb; s++ {
		strip := dst[s*gemmNR*kb : (s+1)*gemmNR*kb]
		cols := min(gemmNR, nb-s*gemmNR)
		j := j0 + s*gemmNR
		switch {
		case g.transB: // B stored [n, k]: row j+jj of B is column j+jj of op(B)
			if cols < gemmNR {
				clear(strip)
			}
			for jj := 0; jj < cols; jj++ {
				src := b[(j+jj)*ldb+p0 : (j+jj)*ldb+p0+kb]
				for p, v := range src {
					strip[p*gemmNR+jj] = v
				}
			}
		case cols == gemmNR:
			for p := 0; p < kb; p++ {
				src := b[(p0+p)*ldb+j : (p0+p)*ldb+j+gemmNR]
				d := strip[p*gemmNR : p*gemmNR+gemmNR]
				d[0], d[1], d[2], d[3] = src[0], src[1], src[2], src[3]
			}
		default:
			clear(strip)
			for p := 0; p < kb; p++ {
				copy(strip[p*gemmNR:p*gemmNR+cols], b[(p0+p)*ldb+j:(p0+p)*ldb+j+cols])
			}
		}
	}
}

// macro multiplies a packed mb×kb block of op(A) by a packed kb×nb panel of op(B) into
// C[i0:i0+mb, j0:j0+nb] = alpha·(A·B) + beta·C. The B strip (kb×NR) is reused from L1 across
// all row strips of the block.
func (g *goGemm) macro(ap, bp []float32, mb, nb, kb int, beta float32, i0, j0 int) {
	alpha, c, ldc := g.alpha, g.c, g.ldc
	var t [gemmMR * gemmNR]float32
	for jr := 0; jr < nb; jr += gemmNR {
		nr := min(gemmNR, nb-jr)
		bs := bp[jr*kb : (jr+gemmNR)*kb]
		for ir := 0; ir < mb; ir += gemmMR {
			mr := min(gemmMR, mb-ir)
			gemmMicro2x4(kb, ap[ir*kb:(ir+gemmMR)*kb], bs, &t)
			for i := 0; i < mr; i++ {
				row := c[(i0+ir+i)*ldc+j0+jr : (i0+ir+i)*ldc+j0+jr+nr]
				acc := t[i*gemmNR : i*gemmNR+nr]
				switch beta {
				case 0:
					for j, v := range acc {
						row[j] = alpha * v
					}
				case 1:
					for j, v := range acc {
						row[j] += alpha * v
					}
				default:
					for j, v := range acc {
						row[j] = alpha*v + beta*row[j]
					}
				}
			}
		}
	}
}

// gemmMicro2x4 sets t = Ap·Bp for one packed 2-row strip of A and one 4-column strip of B,
// both kc deep. Eight accumulators and the loads of one unrolled step fit the 15 XMM
// registers Go allocates; unrolling 4 deep lets the scheduler interleave loads and arithmetic.
func gemmMicro2x4(kc int, ap, bp []float32, t *[gemmMR * gemmNR]float32) {
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	ap = ap[:kc*gemmMR]
	bp = bp[:kc*gemmNR]
	for ; len(ap) >= 8 && len(bp) >= 16; ap, bp = ap[8:], bp[16:] {
		a := ap[:8:8]
		b := bp[:16:16]
		c00 += a[0] * b[0]
		c01 += a[0] * b[1]
		c02 += a[0] * b[2]
		c03 += a[0] * b[3]
		c10 += a[1] * b[0]
		c11 += a[1] * b[1]
		c12 += a[1] * b[2]
		c13 += a[1] * b[3]
		c00 += a[2] * b[4]
		c01 += a[2] * b[5]
		c02 += a[2] * b[6]
		c03 += a[2] * b[7]
		c10 += a[3] * b[4]
		c11 += a[3] * b[5]
		c12 += a[3] * b[6]
		c13 += a[3] * b[7]
		c00 += a[4] * b[8]
		c01 += a[4] * b[9]
		c02 += a[4] * b[10]
		c03 += a[4] * b[11]
		c10 += a[5] * b[8]
		c11 += a[5] * b[9]
		c12 += a[5] * b[10]
		c13 += a[5] * b[11]
		c00 += a[6] * b[12]
		c01 += a[6] * b[13]
		c02 += a[6] * b[14]
		c03 += a[6] * b[15]
		c10 += a[7] * b[12]
		c11 += a[7] * b[13]
		c12 += a[7] * b[14]
		c13 += a[7] * b[15]
	}
	// The remainder, one step at a time: the loop above unrolled by hand, kept apart because a
	// shared helper would take the sixteen accumulators out of registers.
	for ; len(ap) >= 2 && len(bp) >= 4; ap, bp = ap[2:], bp[4:] {
		a := ap[:2:2]
		b := bp[:4:4]
		c00 += a[0] * b[0]
		c01 += a[0] * b[1]
		c02 += a[0] * b[2]
		c03 += a[0] * b[3]
		c10 += a[1] * b[0]
		c11 += a[1] * b[1]
		c12 += a[1] * b[2]
		c13 += a[1] * b[3]
	}
	*t = [gemmMR * gemmNR]float32{c00, c01, c02, c03, c10, c11, c12, c13}
}
