package kernels

import (
	"fmt"
	"math"
)

// SwiGLU as Qwen3's MLP uses it: h = silu(gate) · up, element-wise, silu(g) = g·σ(g).

// SwiGLUForward writes h = silu(gate)·up over n values (16 lanes at a time with AVX-512:
// vexp.go).
func SwiGLUForward(h, gate, up []float32, n int) {
	checkSwiGLU("SwiGLUForward", n, len(h), len(gate), len(up))
	Parallel(n, 1<<14, func(lo, hi int) {
		swigluForwardRow(h[lo:hi], gate[lo:hi], up[lo:hi])
	})
}

// SwiGLUBackward accumulates dgate += dh·up·σ(g)·(1 + g·(1−σ(g))) and dup += dh·silu(g)
// (16 lanes at a time with AVX-512: vexp.go).
func SwiGLUBackward(dgate, dup, dh, gate, up []float32, n int) {
	swigluBackward(dgate, dup, dh, gate, up, n, true)
}

// SwiGLUBackwardWrite is SwiGLUBackward writing the gradients over dgate and dup instead of
// adding to them (their old contents are never read), for gradients that do not exist yet: it
// spares clearing them first.
func SwiGLUBackwardWrite(dgate, dup, dh, gate, up []float32, n int) {
	swigluBackward(dgate, dup, dh, gate, up, n, false)
}

func swigluBackward(dgate, dup, dh, gate, up []float32, n int, acc bool) {
	checkSwiGLU("SwiGLUBackward", n, len(dh), len(gate), len(up))
	if len(dgate) != n || len(dup) != n {
		panic(fmt.Sprintf("kernels: SwiGLUBackward: n=%d but len(dgate)=%d len(dup)=%d", n, len(dgate), len(dup)))
	}
	Parallel(n, 1<<14, func(lo, hi int) {
		swigluBackwardRow(dgate[lo:hi], dup[lo:hi], dh[lo:hi], gate[lo:hi], up[lo:hi], acc)
	})
}

// SwiGLUForwardRef is the naive reference of SwiGLUForward.
func SwiGLUForwardRef[F float32 | float64](h, gate, up []F, n int) {
	checkSwiGLU("SwiGLUForwardRef", n, len(h), len(gate), len(up))
	for i := 0; i < n; i++ {
		g := float64(gate[i])
		h[i] = F(g / (1 + math.Exp(-g)) * float64(up[i]))
	}
}

// SwiGLUBackwardRef is the naive reference of SwiGLUBackward (accumulates).
func SwiGLUBackwardRef[F float32 | float64](dgate, dup, dh, gate, up []F, n int) {
	checkSwiGLU("SwiGLUBackwardRef", n, len(dh), len(gate), len(up))
	for i := 0; i < n; i++ {
		g := float64(gate[i])
		s := 1 / (1 + math.Exp(-g))
		d := float64(dh[i])
		dup[i] += F(d * g * s)
		dgate[i] += F(d * float64(up[i]) * (s + g*s*(1-s)))
	}
}

func checkSwiGLU(name string, n, a, b, c int) {
	if n < 0 || a != n || b != n || c != n {
		panic(fmt.Sprintf("kernels: %s: n=%d but lengths are %d, %d, %d", name, n, a, b, c))
	}
}
