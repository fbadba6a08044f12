#include "textflag.h"

// The Go assembler does not know VDPBF16PS (AVX512_BF16), so it is encoded by hand:
// EVEX.512.F3.0F38.W0 52 /r, register form, src1 = Z4 (the x chunk), src2 = Z5-Z7 (the
// weights, loaded first), dst = Z0-Z3: 62 F2 5E 48 52 ModRM, ModRM = 11 dst src2.
#define DP_Z0_Z4_Z5 BYTE $0x62; BYTE $0xF2; BYTE $0x5E; BYTE $0x48; BYTE $0x52; BYTE $0xC5
#define DP_Z1_Z4_Z6 BYTE $0x62; BYTE $0xF2; BYTE $0x5E; BYTE $0x48; BYTE $0x52; BYTE $0xCE
#define DP_Z2_Z4_Z7 BYTE $0x62; BYTE $0xF2; BYTE $0x5E; BYTE $0x48; BYTE $0x52; BYTE $0xD7
#define DP_Z3_Z4_Z5 BYTE $0x62; BYTE $0xF2; BYTE $0x5E; BYTE $0x48; BYTE $0x52; BYTE $0xDD

// REDUCE16 sums the 16 floats of Z (X its low quarter, Y its low half) into the float at
// off(DI); Z5 is clobbered.
#define REDUCE16(Z, Y, X, off) \
	VEXTRACTF32X8 $1, Z, Y5 \
	VADDPS        Y5, Y, Y \
	VEXTRACTF128  $1, Y, X5 \
	VADDPS        X5, X, X \
	VHADDPS       X, X, X \
	VHADDPS       X, X, X \
	VMOVSS        X, off(DI)

// func gemvBF16AVX512(y []float32, w []uint16, x []uint16, k int)
// y[j] = Σ_p w[j·k+p]·x[p] for j < len(y), bfloat16 operands, fp32 accumulation by
// VDPBF16PS: four rows at a time share each 32-element load of x, the last k%32 columns are
// read with a zeroing mask (nothing past a row is touched), leftover rows one at a time.
TEXT ·gemvBF16AVX512(SB), NOSPLIT, $0-80
	MOVQ y_base+0(FP), DI
	MOVQ y_len+8(FP), R8
	MOVQ w_base+24(FP), SI
	MOVQ x_base+48(FP), DX
	MOVQ k+72(FP), CX
	LEAQ (CX)(CX*1), R9   // row stride in bytes
	MOVQ CX, R10
	ANDQ $-32, R10
	SHLQ $1, R10          // bytes of whole 32-column steps
	MOVQ CX, BX
	ANDQ $31, BX          // tail columns
	MOVL $1, AX
	SHLXL BX, AX, AX
	DECL AX
	KMOVD AX, K1          // tail mask, one bit per column

row4:
	CMPQ R8, $4
	JLT  row1
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	MOVQ SI, R11
	LEAQ (R11)(R9*1), R12
	LEAQ (R12)(R9*1), R13
	LEAQ (R13)(R9*1), R14
	XORQ AX, AX

loop4:
	CMPQ AX, R10
	JGE  tail4
	VMOVDQU16 (DX)(AX*1), Z4
	VMOVDQU16 (R11)(AX*1), Z5
	DP_Z0_Z4_Z5
	VMOVDQU16 (R12)(AX*1), Z6
	DP_Z1_Z4_Z6
	VMOVDQU16 (R13)(AX*1), Z7
	DP_Z2_Z4_Z7
	VMOVDQU16 (R14)(AX*1), Z5
	DP_Z3_Z4_Z5
	ADDQ $64, AX
	JMP  loop4

tail4:
	TESTQ BX, BX
	JZ    sum4
	VMOVDQU16.Z (DX)(AX*1), K1, Z4
	VMOVDQU16.Z (R11)(AX*1), K1, Z5
	DP_Z0_Z4_Z5
	VMOVDQU16.Z (R12)(AX*1), K1, Z6
	DP_Z1_Z4_Z6
	VMOVDQU16.Z (R13)(AX*1), K1, Z7
	DP_Z2_Z4_Z7
	VMOVDQU16.Z (R14)(AX*1), K1, Z5
	DP_Z3_Z4_Z5

sum4:
	REDUCE16(Z0, Y0, X0, 0)
	REDUCE16(Z1, Y1, X1, 4)
	REDUCE16(Z2, Y2, X2, 8)
	REDUCE16(Z3, Y3, X3, 12)
	ADDQ $16, DI
	LEAQ (SI)(R9*4), SI
	SUBQ $4, R8
	JMP  row4

row1:
	TESTQ R8, R8
	JZ    done
	VPXORD Z0, Z0, Z0
	XORQ   AX, AX

loop1:
	CMPQ AX, R10
	JGE  tail1
	VMOVDQU16 (DX)(AX*1), Z4
	VMOVDQU16 (SI)(AX*1), Z5
	DP_Z0_Z4_Z5
	ADDQ $64, AX
	JMP  loop1

tail1:
	TESTQ BX, BX
	JZ    sum1
	VMOVDQU16.Z (DX)(AX*1), K1, Z4
	VMOVDQU16.Z (SI)(AX*1), K1, Z5
	DP_Z0_Z4_Z5

sum1:
	REDUCE16(Z0, Y0, X0, 0)
	ADDQ $4, DI
	ADDQ R9, SI
	DECQ R8
	JMP  row1

done:
	VZEROUPPER
	RET
