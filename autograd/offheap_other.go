//go:build !unix

package autograd

// offHeapAlloc has no mapping here: shared arenas fall back to ordinary slices.
func offHeapAlloc(size int) []byte { return nil }

func offHeapRelease(b []byte) {}
