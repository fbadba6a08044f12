//go:build !(linux && (amd64 || arm64))

package dist

// affinity is unknown here: every rank is taken to see the whole machine.
func affinity() ([]uint64, bool) { return nil, false }

// signalHandlers cannot be saved here; MPI's handlers stay (see sys_linux.go).
type signalHandlers struct{}

func saveSignals() *signalHandlers     { return nil }
func (*signalHandlers) restore() []int { return nil }
