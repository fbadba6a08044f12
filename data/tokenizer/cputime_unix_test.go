//go:build unix

package tokenizer

import "syscall"

// cpuSeconds is this process's user+system CPU time, for benchmarks on shared machines.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
