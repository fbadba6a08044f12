//go:build !unix

package autograd

// offHeapAlloc has no mapping here: off-heap arenas fall back to ordinary slices.
func offHeapAlloc(size int) []byte { return nil }
