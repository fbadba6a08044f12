// REDUCE16 sums the 16 floats of Z (X its low quarter, Y its low half) into the float at
// off(DI); Z5 is clobbered. Shared by the GEMV kernels.
#define REDUCE16(Z, Y, X, off) \
	VEXTRACTF32X8 $1, Z, Y5 \
	VADDPS        Y5, Y, Y \
	VEXTRACTF128  $1, Y, X5 \
	VADDPS        X5, X, X \
	VHADDPS       X, X, X \
	VHADDPS       X, X, X \
	VMOVSS        X, off(DI)
