package autograd

import "unsafe"

// arena recycles the float buffers of one tape's activations and their gradients: buffers are
// handed out during forward and backward and all taken back when the step ends, so a training
// loop that repeats the same shapes allocates nothing after its first step (and the garbage
// collector sees nothing per step).
type arena[T any] struct {
	free    map[int][][]T // by length
	used    [][]T
	offHeap bool // large buffers come from offHeapAlloc: for tapes that are never dropped
}

// get returns a buffer of n floats with arbitrary contents.
func (a *arena[T]) get(n int) []T {
	if a.free == nil {
		a.free = map[int][][]T{}
	}
	var b []T
	if l := a.free[n]; len(l) > 0 {
		b = l[len(l)-1]
		a.free[n] = l[:len(l)-1]
	} else if a.offHeap {
		b = offHeapSlice[T](n)
	} else {
		b = make([]T, n)
	}
	a.used = append(a.used, b)
	return b
}

// release takes every buffer handed out back for reuse.
func (a *arena[T]) release() {
	for i, b := range a.used {
		a.free[len(b)] = append(a.free[len(b)], b)
		a.used[i] = nil
	}
	a.used = a.used[:0]
}

// offHeapMin is the size in bytes from which an off-heap arena maps its buffers outside the Go
// heap; smaller ones are ordinary slices.
const offHeapMin = 64 << 10

// offHeapSlice returns n zeroed elements of memory the garbage collector does not manage (see
// offHeapAlloc), or an ordinary slice below offHeapMin bytes or where mapping fails. T must hold
// no pointers. The memory is never returned: only tapes that live as long as the process (the
// pooled inference tapes) use it.
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
