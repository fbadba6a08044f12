package kernels

import "testing"

// smallDecodeShapes are the [n,k] weight matrices one decoding step of bench_torch.py's
// `small` config multiplies (per layer q, k, v, o, gate, up, down; then the tied LM head):
// 29 M weights, more than the last-level cache holds, so these benchmarks measure streaming
// weights from DRAM as decoding does, not a matrix that stays in cache.
func smallDecodeShapes() [][2]int {
	var s [][2]int
	for range 8 {
		s = append(s, [2]int{512, 512}, [2]int{256, 512}, [2]int{256, 512}, [2]int{512, 512},
			[2]int{1536, 512}, [2]int{1536, 512}, [2]int{512, 1536})
	}
	return append(s, [2]int{8192, 512})
}

func BenchmarkGemvF32SmallDecodeStep(b *testing.B) {
	shapes := smallDecodeShapes()
	ws := make([][]float32, len(shapes))
	bytes := 0
	for i, s := range shapes {
		ws[i] = make([]float32, s[0]*s[1])
		for j := range ws[i] {
			ws[i][j] = float32(j%7) - 3
		}
		bytes += 4 * len(ws[i])
	}
	x, y := make([]float32, 1536), make([]float32, 8192)
	b.SetBytes(int64(bytes))
	for b.Loop() {
		for i, s := range shapes {
			GemvF32(y, ws[i], x, s[0], s[1])
		}
	}
}

func BenchmarkGemvBF16SmallDecodeStep(b *testing.B) {
	shapes := smallDecodeShapes()
	ws := make([][]uint16, len(shapes))
	bytes := 0
	for i, s := range shapes {
		ws[i] = make([]uint16, s[0]*s[1])
		for j := range ws[i] {
			ws[i][j] = F32ToBF16Bits(float32(j%7) - 3)
		}
		bytes += 2 * len(ws[i])
	}
	x, y := make([]float32, 1536), make([]float32, 8192)
	b.SetBytes(int64(bytes))
	for b.Loop() {
		for i, s := range shapes {
			GemvBF16(y, ws[i], x, s[0], s[1])
		}
	}
}
