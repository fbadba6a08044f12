// Horizontal sums shared by the AVX-512 kernels: the generated GEMVs here and, through
// #include "internal/asm/reduce_amd64.h", kernels' hand-written kvdot and rmsnorm.

// HSUM sums the 16 floats of Z (Y, X: its halves) into the low float of X (YT, XT: a
// clobbered temporary), in one fixed order: every kernel that must agree to the bit with
// another (dotAVX512 and kvScoresAVX512; the one-row and four-row GEMVs) reduces with it.
#define HSUM(Z, Y, X, YT, XT) \
	VEXTRACTF64X4 $1, Z, YT \
	VADDPS        YT, Y, Y \
	VEXTRACTF128  $1, Y, XT \
	VADDPS        XT, X, X \
	VMOVHLPS      X, X, XT \
	VADDPS        XT, X, X \
	VMOVSHDUP     X, XT \
	VADDSS        XT, X, X

#define HSUM_Z0 HSUM(Z0, Y0, X0, Y1, X1)
