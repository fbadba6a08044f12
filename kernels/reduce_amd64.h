// Horizontal sums shared by the AVX-512 kernels (included by the .s files).

// HSUM_Z0 sums the 16 floats of Z0 into the low float of X0 (Z1 clobbered), in one fixed order:
// dotAVX512 and kvScoresAVX512 both use it, so their dot products agree to the bit.
#define HSUM_Z0 \
	VEXTRACTF64X4 $1, Z0, Y1 \
	VADDPS        Y1, Y0, Y0 \
	VEXTRACTF128  $1, Y0, X1 \
	VADDPS        X1, X0, X0 \
	VMOVHLPS      X0, X0, X1 \
	VADDPS        X1, X0, X0 \
	VMOVSHDUP     X0, X1 \
	VADDSS        X1, X0, X0

// ROW_DONE ends a row of a GEMV kernel: the four accumulators Z0-Z3 summed and reduced into
// y[j] at (DI), then on to the next y (DI), row (SI += R9 bytes) and count (R8), back to row.
#define ROW_DONE \
	VADDPS Z1, Z0, Z0 \
	VADDPS Z3, Z2, Z2 \
	VADDPS Z2, Z0, Z0 \
	HSUM_Z0 \
	VMOVSS X0, (DI) \
	ADDQ   $4, DI \
	ADDQ   R9, SI \
	DECQ   R8 \
	JMP    row
