//go:build unix

package autograd

import "syscall"

// offHeapAlloc maps size bytes of anonymous memory, or returns nil. Memory outside the Go heap
// does not count towards the garbage collector's heap goal: an inference tape's activations,
// reused on every call, would otherwise double the heap the collector lets grow.
func offHeapAlloc(size int) []byte {
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil
	}
	return b
}

// offHeapRelease unmaps b, a whole mapping of offHeapAlloc. A slice offHeapSlice fell back to
// (the mapping failed) is not a mapping: Munmap refuses it and the collector frees it.
func offHeapRelease(b []byte) { _ = syscall.Munmap(b) }
