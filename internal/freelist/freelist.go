// Package freelist holds values for reuse between calls: a mutex-guarded stack of *T that, unlike
// sync.Pool, keeps what it is given across garbage collections.
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
