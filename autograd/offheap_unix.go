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
