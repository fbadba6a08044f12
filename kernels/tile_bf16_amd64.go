package kernels

import "github.com/gwen-ml/gwen/kernels/internal/asm"

//go:generate sh -c "cd .. && python3 dev/gen-tile.py"

// bf16TileAsm runs bf16Tile on the generated VDPBF16PS kernels (asm.TileBF16Kernels): columns in blocks of 64 (four
// masked vectors), rows in blocks of 6 within them; a block of one vector over a row-major A
// runs on the kernels that take two pair rows per step (asm.TileBF16KernelsK2). It reports
// false where the CPU lacks them.
func bf16TileAsm(c []float32, ldc int, a []uint32, ars, aps int, b []uint32, ldb int, m, n, kp int, alpha float32, acc bool) bool {
	if !hasAVX512BF16 {
		return false
	}
	var accu uintptr
	if acc {
		accu = 1
	}
	for j0 := 0; j0 < n; j0 += 64 {
		w := min(64, n-j0)
		nv := (w + 15) / 16
		var masks uint64
		for v := range nv {
			masks |= uint64(1<<min(16, w-16*v)-1) << (16 * v)
		}
		// One vector of a row-major A: two pair rows of B per step (the K2 kernels), or each
		// row's one accumulator chain bounds the speed.
		k2 := nv == 1 && aps == 1 && kp > 1
		for i0 := 0; i0 < m; i0 += 6 {
			r := min(6, m-i0)
			kern := asm.TileBF16Kernels[r-1][nv-1]
			if k2 {
				kern = asm.TileBF16KernelsK2[r-1]
			}
			kern(&c[i0*ldc+j0], uintptr(ldc*4), &a[i0*ars], uintptr(ars*4), uintptr(aps*4),
				&b[j0], uintptr(ldb*4), uintptr(kp), masks, alpha, accu)
		}
	}
	return true
}
