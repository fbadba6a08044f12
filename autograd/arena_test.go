package autograd

import (
	"math"
	"testing"
)

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
		bufs := [][]float32{a.get(n, 0), a.get(n/2, 0), a.get(n, 0)}
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

// Backward gives memory back as it goes: a chain of n layers x + norm(x), two activations the
// size of x each, ends a step holding about 2n buffers of that size (the activations all live
// at the end of the forward, and backward's gradients reuse the ones of the layers already
// done), not the 3n of activations and gradients kept to the end; and the gradients on
// recycled memory equal the ones on fresh memory (each freed buffer is poisoned with NaN in
// tests, so a read after release would show).
func TestBackwardRecyclesAsItGoes(t *testing.T) {
	const n, d, rows = 40, 64, 8
	w := make([]*Tensor, n)
	for i := range w {
		w[i] = Param("w", make([]float32, d), d)
		for j := range w[i].Data {
			w[i].Data[j] = 1 + 0.01*float32((i*7+j)%13)
		}
	}
	x0 := make([]float32, rows*d)
	for j := range x0 {
		x0[j] = float32(j%17) - 8
	}
	step := func(tp *Tape) {
		x := New(append([]float32(nil), x0...), rows, d)
		x.RequiresGrad = true
		for i := range n { // a residual chain: x + norm(x)
			x = Add(tp, x, RMSNorm(tp, x, w[i], 1e-6))
		}
		tp.BackwardFrom(x, x0)
	}
	grads := func() [][]float32 {
		var g [][]float32
		for _, p := range w {
			g = append(g, append([]float32(nil), p.Grad()...))
			p.ZeroGrad()
		}
		return g
	}
	tp := NewTape()
	step(tp)
	first := grads()
	held := len(tp.mem.free[rows*d])
	if held > 2*n+4 {
		t.Fatalf("after a step of %d layers the tape holds %d buffers of an activation's size, want about %d (gradients reusing activations)", n, held, 2*n)
	}
	step(tp) // the same step on recycled (poisoned) memory
	for i, g := range grads() {
		for j := range g {
			if g[j] != first[i][j] || math.IsNaN(float64(g[j])) {
				t.Fatalf("w[%d] gradient [%d]: %g on recycled memory, %g on fresh", i, j, g[j], first[i][j])
			}
		}
	}
}

// A tensor whose data the tape takes back early (takeData) gives its buffer to the very next
// request of its size in the same forward, keeps its shape, and still takes a gradient of its
// size, on memory of its own; a parameter's data and a view are never taken.
func TestTakeDataRecyclesInForward(t *testing.T) {
	tp := NewTape()
	p := Param("p", make([]float32, 6), 2, 3)
	x := Add(tp, p, New(make([]float32, 6), 2, 3))
	buf := &x.Data[0]
	tp.takeData(x)
	if x.Data != nil {
		t.Fatal("takeData left the data in place")
	}
	if r, c := x.Rows(); r != 2 || c != 3 {
		t.Fatalf("Rows after takeData = %d, %d", r, c)
	}
	y := Add(tp, p, New(make([]float32, 6), 2, 3))
	if &y.Data[0] != buf {
		t.Fatal("the next activation of the same size did not reuse the taken buffer")
	}
	g, beta := x.GradForWrite()
	if len(g) != 6 || beta != 0 || &g[0] == &y.Data[0] {
		t.Fatalf("gradient after takeData: %d values, beta %g, shared with y: %v", len(g), beta, &g[0] == &y.Data[0])
	}
	tp.takeData(p)
	v := y.Reshape(3, 2)
	tp.takeData(v)
	if p.Data == nil || v.Data == nil || y.Data == nil {
		t.Fatal("takeData took a parameter's or a view's data")
	}
}
