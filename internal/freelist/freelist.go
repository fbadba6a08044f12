// Package freelist keeps values for reuse between calls: List, a mutex-guarded stack of *T that,
// unlike sync.Pool, keeps what it is given across garbage collections, and BestFit, the choice
// of which free buffer serves a request of a given size.
package freelist

import "sync"

// List is a free list of *T, safe for concurrent use. The zero List is empty and ready.
type List[T any] struct {
	mu    sync.Mutex
	items []*T
}

// Get returns the most recently put value, or a new zero T when the list is empty.
func (l *List[T]) Get() *T {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.items); n > 0 {
		x := l.items[n-1]
		l.items[n-1] = nil
		l.items = l.items[:n-1]
		return x
	}
	return new(T)
}

// Put gives x back for a later Get.
func (l *List[T]) Put(x *T) {
	l.mu.Lock()
	l.items = append(l.items, x)
	l.mu.Unlock()
}

// BestFit chooses among count free buffers, whose capacities capOf gives, the one to serve a
// request of n: the smallest that holds n (fits true) or, when none does, the largest (fits
// false, for the caller to replace); -1 when count is 0. Ties go to the lower index.
func BestFit(count, n int, capOf func(i int) int) (i int, fits bool) {
	best, largest := -1, -1
	for j := range count {
		c := capOf(j)
		if c >= n && (best < 0 || c < capOf(best)) {
			best = j
		}
		if largest < 0 || c > capOf(largest) {
			largest = j
		}
	}
	if best >= 0 {
		return best, true
	}
	return largest, false
}
