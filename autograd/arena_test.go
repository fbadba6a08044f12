package autograd

import "testing"

// A shared arena (inference tapes) serves requests of changing lengths from what it holds:
// smaller requests reuse larger buffers, a larger one replaces the largest free buffer, so it
// never holds more buffers than one step used at once, nor any larger than the largest request
// so far; every buffer handed out is usable to its length (off-heap mappings included).
func TestSharedArenaStaysBounded(t *testing.T) {
	var a arena[float32]
	a.shared = true
	largest := 0
	for _, n := range []int{40000, 50000, 30000, 90000, 90000, 10, 200000} {
		largest = max(largest, n)
		bufs := [][]float32{a.get(n), a.get(n / 2), a.get(n)}
		for i, b := range bufs {
			want := n
			if i == 1 {
				want = n / 2
			}
			if len(b) != want {
				t.Fatalf("request of %d got %d elements", want, len(b))
			}
			for j := range b {
				b[j] = float32(j)
			}
		}
		a.release()
		if len(a.pool) != 3 {
			t.Fatalf("after requests of %d: %d free buffers, want the 3 a step used", n, len(a.pool))
		}
		for _, b := range a.pool {
			if cap(b) > largest {
				t.Fatalf("a buffer of %d elements, larger than any request (%d)", cap(b), largest)
			}
		}
	}
}
