// Package asm holds kernels' generated AVX-512 assembly (dev/gen-gemv.py, dev/gen-tile.py):
// the one- and four-row GEMVs and the VDPBF16PS tiles. Package kernels decides when they run.
//
// Everything here but doc.go and reduce_amd64.h (the horizontal sum the GEMVs share, to the
// bit, with kernels' kvdot) is written by the generators: edit those, rerun them, and commit
// both (dev/README.md). The functions exist on amd64 only and need the CPU features their
// comments name; callers check them (golang.org/x/sys/cpu) and keep a Go fallback.
package asm
