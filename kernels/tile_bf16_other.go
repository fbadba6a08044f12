//go:build !amd64

package kernels

// bf16TileAsm has no kernels off amd64: bf16Tile runs bf16TileGo.
func bf16TileAsm(c []float32, ldc int, a []uint32, ars, aps int, b []uint32, ldb int, m, n, kp int, alpha float32, acc bool) bool {
	return false
}
