//go:build race

package kernels

// raceEnabled: the race detector changes escape analysis, so allocation counts do not hold.
const raceEnabled = true
