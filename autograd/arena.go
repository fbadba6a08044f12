package autograd

// arena recycles the float buffers of one tape's activations and their gradients: buffers are
// handed out during forward and backward and all taken back when the step ends, so a training
// loop that repeats the same shapes allocates nothing after its first step (and the garbage
// collector sees nothing per step).
type arena struct {
	free map[int][][]float32 // by length
	used [][]float32
}

// get returns a buffer of n floats with arbitrary contents.
func (a *arena) get(n int) []float32 {
	if a.free == nil {
		a.free = map[int][][]float32{}
	}
	var b []float32
	if l := a.free[n]; len(l) > 0 {
		b = l[len(l)-1]
		a.free[n] = l[:len(l)-1]
	} else {
		b = make([]float32, n)
	}
	a.used = append(a.used, b)
	return b
}

// release takes every buffer handed out back for reuse.
func (a *arena) release() {
	for i, b := range a.used {
		a.free[len(b)] = append(a.free[len(b)], b)
		a.used[i] = nil
	}
	a.used = a.used[:0]
}
