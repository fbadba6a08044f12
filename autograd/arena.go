package autograd

// arena recycles the float buffers of one tape's activations and their gradients: buffers are
// handed out during forward and backward and all taken back when the step ends, so a training
// loop that repeats the same shapes allocates nothing after its first step (and the garbage
// collector sees nothing per step).
type arena[T any] struct {
	free map[int][][]T // by length
	used [][]T
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
