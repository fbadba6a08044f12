#include "textflag.h"
#include "reduce_amd64.h"

// The Go assembler does not know VDPBF16PS (AVX512_BF16), so it is encoded by hand:
// EVEX.512.F3.0F38.W0 52 /r, register form: 62 F2 P1 48 52 ModRM, P1 = 0 ~src1 1 10 (src1 the
// x chunk, Z4 or Z6), ModRM = 11 dst src2 (dst Z0-Z3, src2 the weights, Z5 or Z7).
#define DP_Z0_Z4_Z5 BYTE $0x62; BYTE $0xF2; BYTE $0x5E; BYTE $0x48; BYTE $0x52; BYTE $0xC5
#define DP_Z1_Z6_Z7 BYTE $0x62; BYTE $0xF2; BYTE $0x4E; BYTE $0x48; BYTE $0x52; BYTE $0xCF
#define DP_Z2_Z4_Z5 BYTE $0x62; BYTE $0xF2; BYTE $0x5E; BYTE $0x48; BYTE $0x52; BYTE $0xD5
#define DP_Z3_Z6_Z7 BYTE $0x62; BYTE $0xF2; BYTE $0x4E; BYTE $0x48; BYTE $0x52; BYTE $0xDF

// func gemvBF16AVX512(y []float32, w []uint16, x []uint16, k int)
// y[j] = Σ_p w[j·k+p]·x[p] for j < len(y), bfloat16 operands, fp32 accumulation by
// VDPBF16PS. One row at a time, so that w is read strictly in memory order (which the
// hardware prefetcher streams best from DRAM): four accumulators over 128-column steps, then
// 32-column steps, then the last k%32 columns with a zeroing mask (nothing past a row is
// touched).
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
	MOVQ CX, R12
	ANDQ $-128, R12
	SHLQ $1, R12          // bytes of whole 128-column steps
	MOVQ CX, BX
	ANDQ $31, BX          // tail columns
	MOVL $1, AX
	SHLXL BX, AX, AX
	DECL AX
	KMOVD AX, K1          // tail mask, one bit per column

row:
	TESTQ R8, R8
	JZ    done
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	XORQ   AX, AX

loop128:
	CMPQ AX, R12
	JGE  loop32
	VMOVDQU16 (DX)(AX*1), Z4
	VMOVDQU16 (SI)(AX*1), Z5
	DP_Z0_Z4_Z5
	VMOVDQU16 64(DX)(AX*1), Z6
	VMOVDQU16 64(SI)(AX*1), Z7
	DP_Z1_Z6_Z7
	VMOVDQU16 128(DX)(AX*1), Z4
	VMOVDQU16 128(SI)(AX*1), Z5
	DP_Z2_Z4_Z5
	VMOVDQU16 192(DX)(AX*1), Z6
	VMOVDQU16 192(SI)(AX*1), Z7
	DP_Z3_Z6_Z7
	ADDQ $256, AX
	JMP  loop128

loop32:
	CMPQ AX, R10
	JGE  tail
	VMOVDQU16 (DX)(AX*1), Z4
	VMOVDQU16 (SI)(AX*1), Z5
	DP_Z0_Z4_Z5
	ADDQ $64, AX
	JMP  loop32

tail:
	TESTQ BX, BX
	JZ    sum
	VMOVDQU16.Z (DX)(AX*1), K1, Z4
	VMOVDQU16.Z (SI)(AX*1), K1, Z5
	DP_Z0_Z4_Z5

sum:
	ROW_DONE

done:
	VZEROUPPER
	RET
