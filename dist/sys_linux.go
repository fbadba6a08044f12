//go:build linux && (amd64 || arm64)

package dist

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// affinity is this process's CPU affinity mask as 64-bit words (1024 CPUs), ok false if the
// kernel would not say.
func affinity() (mask []uint64, ok bool) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, false
	}
	mask = make([]uint64, len(set))
	for i, w := range set {
		mask[i] = uint64(w)
	}
	return mask, true
}

// sigaction is the kernel's struct sigaction on amd64 and arm64.
type sigaction struct {
	handler, flags, restorer uintptr
	mask                     uint64
}

// goSignals are the signals whose handlers Go's runtime depends on: the synchronous faults,
// which it turns into panics (a nil dereference is a recoverable panic) or Go tracebacks,
// SIGURG, by which it preempts goroutines, and SIGPROF, by which it profiles. MPI libraries
// install handlers during load or MPI_Init: UCX, which MPICH and Open MPI use for networks,
// takes SIGILL, SIGBUS, SIGFPE and SIGSEGV to print a backtrace and abort (measured with
// Debian's MPICH 4.0.2: it also takes SIGHUP and SIGUSR1, which are left to it); Open MPI's
// opal_signal does the same only where no handler is set, and Go's always is.
var goSignals = []unix.Signal{unix.SIGILL, unix.SIGTRAP, unix.SIGBUS, unix.SIGFPE, unix.SIGSEGV, unix.SIGURG, unix.SIGPROF}

// signalHandlers are the handlers of goSignals as the kernel holds them.
type signalHandlers [32]sigaction // indexed by signal number

// saveSignals reads the handlers of goSignals, before libmpi is loaded.
func saveSignals() *signalHandlers {
	s := new(signalHandlers)
	for _, sig := range goSignals {
		unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), 0, uintptr(unsafe.Pointer(&s[sig])), 8, 0, 0)
	}
	return s
}

// restore puts back those of goSignals' handlers that changed since saveSignals and returns
// the signals it restored.
func (s *signalHandlers) restore() []int {
	var changed []int
	for _, sig := range goSignals {
		var now sigaction
		if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), 0, uintptr(unsafe.Pointer(&now)), 8, 0, 0); e != 0 {
			continue
		}
		if now != s[sig] {
			unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&s[sig])), 0, 8, 0, 0)
			changed = append(changed, int(sig))
		}
	}
	return changed
}
