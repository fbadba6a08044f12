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

// BestFit takes the smallest capacity that holds the request, else the largest, ties to the
// lower index, and -1 for no buffers.
func TestBestFit(t *testing.T) {
	caps := []int{50, 20, 80, 20, 80}
	capOf := func(i int) int { return caps[i] }
	for _, c := range []struct {
		n, want int
		fits    bool
	}{{10, 1, true}, {20, 1, true}, {21, 0, true}, {60, 2, true}, {81, 2, false}} {
		if i, fits := BestFit(len(caps), c.n, capOf); i != c.want || fits != c.fits {
			t.Errorf("BestFit(%d) = %d, %v; want %d, %v", c.n, i, fits, c.want, c.fits)
		}
	}
	if i, _ := BestFit(0, 5, capOf); i != -1 {
		t.Errorf("BestFit over no buffers = %d, want -1", i)
	}
}
