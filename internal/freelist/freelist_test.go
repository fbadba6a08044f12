package freelist

import (
	"runtime"
	"sync"
	"testing"
)

// Values come back last in, first out, survive a garbage collection, and an empty list makes
// new zero values; concurrent users never receive the same value at once.
func TestList(t *testing.T) {
	var l List[[]int]
	a, b := l.Get(), l.Get()
	if *a != nil || *b != nil || a == b {
		t.Fatal("an empty list must hand out distinct new zero values")
	}
	*a = []int{1}
	l.Put(a)
	l.Put(b)
	runtime.GC()
	if l.Get() != b || l.Get() != a {
		t.Fatal("values must come back last in, first out, across a GC")
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	held := map[*[]int]bool{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				x := l.Get()
				mu.Lock()
				if held[x] {
					t.Error("one value handed to two users at once")
				}
				held[x] = true
				mu.Unlock()
				mu.Lock()
				delete(held, x)
				mu.Unlock()
				l.Put(x)
			}
		}()
	}
	wg.Wait()
}
