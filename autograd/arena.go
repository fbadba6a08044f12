package autograd

import (
	"flag"
	"math"
	"os"
	"sync"
	"testing"
	"unsafe"

	"github.com/gwen-ml/gwen/internal/freelist"
)

// arena recycles the float buffers of one tape's activations and their gradients, so that a
// training loop that repeats the same shapes allocates nothing after its first step (and the
// garbage collector sees nothing per step).
//
// A training tape keeps its free buffers by exact length (its shapes repeat step after step)
// and files every buffer it hands out under a stamp: the index of the first recorded backward
// step that may read it (see Tape.now). Backward runs the steps in reverse and gives a stamp's
// buffers back as soon as that step has run, since every step that could still read them ran
// before it: an activation, its gradient and its bfloat16 copy are recycled for the gradients
// of earlier layers instead of living until the end of the step.
//
// An inference arena (shared) serves lengths that change from call to call (prompts of any
// length), so it hands out the smallest free buffer that is large enough and, when none is,
// drops the largest free one before allocating: it never holds more buffers than one step had
// in use at once, nor any larger than the largest request. Its large buffers live outside the
// Go heap (offHeapAlloc), so the garbage collector neither counts nor scans them.
type arena[T any] struct {
	free   map[int][][]T // training: by length
	pool   [][]T         // shared: free buffers at full capacity
	used   [][]T         // shared: handed out
	shared bool

	byStamp [][][]T    // training: handed out, by stamp
	stampOf map[*T]int // training: the stamp of each buffer handed out, by its first element
}

// get returns a buffer of n elements with arbitrary contents, given back at stamp (training;
// a shared arena ignores it).
func (a *arena[T]) get(n, stamp int) []T {
	if a.shared {
		b := a.fit(n)
		a.used = append(a.used, b)
		return b
	}
	if a.free == nil {
		a.free, a.stampOf = map[int][][]T{}, map[*T]int{}
	}
	var b []T
	if l := a.free[n]; len(l) > 0 {
		b = l[len(l)-1]
		l[len(l)-1] = nil
		a.free[n] = l[:len(l)-1]
	} else {
		b = make([]T, n)
	}
	if n > 0 {
		for len(a.byStamp) <= stamp {
			a.byStamp = append(a.byStamp, nil)
		}
		a.byStamp[stamp] = append(a.byStamp[stamp], b)
		a.stampOf[&b[0]] = stamp
	}
	return b
}

// restamp files b, a buffer this arena handed out, under another stamp: a buffer handed over
// to another tensor (a gradient that takes over its input's) lives as long as its new owner.
// Buffers that are not this arena's whole buffers are left alone.
func (a *arena[T]) restamp(b []T, stamp int) {
	if a.shared || len(b) == 0 {
		return
	}
	old, ok := a.stampOf[&b[0]]
	if !ok || old == stamp {
		return
	}
	a.unfile(b, old)
	for len(a.byStamp) <= stamp {
		a.byStamp = append(a.byStamp, nil)
	}
	a.byStamp[stamp] = append(a.byStamp[stamp], b)
	a.stampOf[&b[0]] = stamp
}

// giveBack takes back one buffer of a training arena before its stamp ends (Tape.takeData),
// for the requests that follow; it reports false, leaving b alone, where b is not a whole
// buffer this arena handed out.
func (a *arena[T]) giveBack(b []T) bool {
	if a.shared || len(b) == 0 {
		return false
	}
	stamp, ok := a.stampOf[&b[0]]
	if !ok || len(b) != cap(b) {
		return false
	}
	a.unfile(b, stamp)
	a.putFree(b)
	return true
}

// unfile removes b from the buffers handed out under stamp.
func (a *arena[T]) unfile(b []T, stamp int) {
	l := a.byStamp[stamp]
	for i := range l {
		if &l[i][0] == &b[0] {
			l[i] = l[len(l)-1]
			l[len(l)-1] = nil
			a.byStamp[stamp] = l[:len(l)-1]
			return
		}
	}
}

// putFree files b, handed out and now back, with the free buffers of its length (poisoned
// first where poisonFreed says so).
func (a *arena[T]) putFree(b []T) {
	if poisonFreed() {
		poison(b)
	}
	a.free[len(b)] = append(a.free[len(b)], b)
	delete(a.stampOf, &b[0])
}

// releaseStamp takes back the buffers of one stamp (training).
func (a *arena[T]) releaseStamp(stamp int) {
	if stamp >= len(a.byStamp) {
		return
	}
	l := a.byStamp[stamp]
	for i, b := range l {
		a.putFree(b)
		l[i] = nil
	}
	a.byStamp[stamp] = l[:0]
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
	if !a.shared {
		for s := range a.byStamp {
			a.releaseStamp(s)
		}
		return
	}
	for i, b := range a.used {
		a.pool = append(a.pool, b[:cap(b)])
		a.used[i] = nil
	}
	a.used = a.used[:0]
}

// poisonFreed reports whether a training arena fills every buffer it takes back with NaN
// (bfloat16 NaN for bits), so that a read after release shows in the numbers: in every test
// binary except while it runs benchmarks (whose timings the filling would distort), and
// wherever the environment sets GWEN_POISON_FREED=1 (0 turns it off).
var poisonFreed = sync.OnceValue(func() bool {
	switch os.Getenv("GWEN_POISON_FREED") {
	case "1":
		return true
	case "0":
		return false
	}
	if !testing.Testing() {
		return false
	}
	bench := flag.Lookup("test.bench")
	return bench == nil || bench.Value.String() == ""
})

func poison[T any](b []T) {
	switch b := any(b).(type) {
	case []float32:
		nan := float32(math.NaN())
		for i := range b {
			b[i] = nan
		}
	case []uint16:
		for i := range b {
			b[i] = 0x7fc0
		}
	}
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
