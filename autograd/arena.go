package autograd

import (
	"unsafe"

	"github.com/gwen-ml/gwen/internal/freelist"
)

// arena recycles the float buffers of one tape's activations and their gradients: buffers are
// handed out during forward and backward and all taken back when the step ends, so a training
// loop that repeats the same shapes allocates nothing after its first step (and the garbage
// collector sees nothing per step).
//
// A training tape keeps its free buffers by exact length: its shapes repeat step after step.
// An inference arena (shared) serves lengths that change from call to call (prompts of any
// length), so it hands out the smallest free buffer that is large enough and, when none is,
// drops the largest free one before allocating: it never holds more buffers than one step had
// in use at once, nor any larger than the largest request. Its large buffers live outside the
// Go heap (offHeapAlloc), so the garbage collector neither counts nor scans them.
type arena[T any] struct {
	free   map[int][][]T // training: by length
	pool   [][]T         // shared: free buffers at full capacity
	used   [][]T
	shared bool
}

// get returns a buffer of n elements with arbitrary contents.
func (a *arena[T]) get(n int) []T {
	var b []T
	if a.shared {
		b = a.fit(n)
	} else {
		if a.free == nil {
			a.free = map[int][][]T{}
		}
		if l := a.free[n]; len(l) > 0 {
			b = l[len(l)-1]
			a.free[n] = l[:len(l)-1]
		} else {
			b = make([]T, n)
		}
	}
	a.used = append(a.used, b)
	return b
}

// fit is a shared arena's get: the smallest free buffer of capacity ≥ n, else a new one, the
// largest free buffer (too small for n) given back first.
func (a *arena[T]) fit(n int) []T {
	i, fits := freelist.BestFit(len(a.pool), n, func(i int) int { return cap(a.pool[i]) })
	if i >= 0 {
		b := a.pool[i]
		last := len(a.pool) - 1
		a.pool[i], a.pool[last] = a.pool[last], nil
		a.pool = a.pool[:last]
		if fits {
			return b[:n]
		}
		offHeapFree(b)
	}
	return offHeapSlice[T](n)
}

// release takes every buffer handed out back for reuse.
func (a *arena[T]) release() {
	for i, b := range a.used {
		if a.shared {
			a.pool = append(a.pool, b[:cap(b)])
		} else {
			a.free[len(b)] = append(a.free[len(b)], b)
		}
		a.used[i] = nil
	}
	a.used = a.used[:0]
}

// offHeapMin is the size in bytes from which a shared arena maps its buffers outside the Go
// heap; smaller ones are ordinary slices.
const offHeapMin = 64 << 10

// offHeapSlice returns n zeroed elements of memory the garbage collector does not manage (see
// offHeapAlloc), or an ordinary slice below offHeapMin bytes or where mapping fails. T must hold
// no pointers. Only shared arenas use it, and give it back with offHeapFree.
func offHeapSlice[T any](n int) []T {
	var zero T
	size := n * int(unsafe.Sizeof(zero))
	if size < offHeapMin {
		return make([]T, n)
	}
	b := offHeapAlloc(size)
	if b == nil {
		return make([]T, n)
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), n)
}

// offHeapFree unmaps a buffer of offHeapSlice (its full capacity); ordinary slices are left to
// the garbage collector.
func offHeapFree[T any](b []T) {
	var zero T
	size := cap(b) * int(unsafe.Sizeof(zero))
	if size < offHeapMin {
		return
	}
	offHeapRelease(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(b))), size))
}
