#include "textflag.h"

// BF16_CONSTS loads the constants of the bfloat16 rounding below; BF16_ROUND rounds the 16
// floats in Z0 to nearest even into Z6 (bfloat16 bits in the high half of each lane), NaN lanes
// made quiet instead of rounded — exactly FromF32. Both conversions below use them.
#define BF16_CONSTS \
	MOVL $0x7fff, AX \
	VPBROADCASTD AX, Z1 \
	MOVL $1, AX \
	VPBROADCASTD AX, Z2 \
	MOVL $0x7fffffff, AX \
	VPBROADCASTD AX, Z3 \
	MOVL $0x7f800000, AX \
	VPBROADCASTD AX, Z4 \
	MOVL $0x00400000, AX \
	VPBROADCASTD AX, Z5

#define BF16_ROUND \
	VPSRLD    $16, Z0, Z6 \
	VPANDD    Z2, Z6, Z6 \
	VPADDD    Z1, Z6, Z6 \
	VPADDD    Z0, Z6, Z6 \
	VPANDD    Z3, Z0, Z7 \
	VPCMPUD   $6, Z4, Z7, K1 \
	VPORD     Z5, Z0, K1, Z6

// func f32ToBF16AVX512(dst []uint16, src []float32)
// Converts len(src) &^ 15 floats, 16 per iteration, exactly as FromF32.
TEXT ·f32ToBF16AVX512(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	SHRQ $4, CX
	JZ   done
	BF16_CONSTS

loop:
	VMOVDQU32 (SI), Z0
	BF16_ROUND
	VPSRLD    $16, Z6, Z6
	VPMOVDW   Z6, (DI)
	ADDQ      $64, SI
	ADDQ      $32, DI
	DECQ      CX
	JNZ       loop
	VZEROUPPER

done:
	RET

// func roundBF16AVX512(dst, src []float32)
// Rounds len(src) &^ 15 floats to bfloat16 precision, kept as float32, exactly as
// Round: the rounding above, then the low 16 bits cleared.
TEXT ·roundBF16AVX512(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX
	SHRQ $4, CX
	JZ   rdone
	BF16_CONSTS
	MOVL $0xffff0000, AX
	VPBROADCASTD AX, Z8

rloop:
	VMOVDQU32 (SI), Z0
	BF16_ROUND
	VPANDD    Z8, Z6, Z6
	VMOVDQU32 Z6, (DI)
	ADDQ      $64, SI
	ADDQ      $64, DI
	DECQ      CX
	JNZ       rloop
	VZEROUPPER

rdone:
	RET

// func pairBF16AVX512(dst []uint32, s0, s1 []float32)
// Packs len(s0) &^ 15 pairs: dst[j] = bits(s0[j]) | bits(s1[j])<<16, each rounded as
// FromF32 (Pair).
TEXT ·pairBF16AVX512(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ s0_base+24(FP), SI
	MOVQ s0_len+32(FP), CX
	MOVQ s1_base+48(FP), DX
	SHRQ $4, CX
	JZ   pdone
	BF16_CONSTS
	MOVL $0xffff0000, AX
	VPBROADCASTD AX, Z8

ploop:
	VMOVDQU32 (SI), Z0
	BF16_ROUND
	VPSRLD    $16, Z6, Z10
	VMOVDQU32 (DX), Z0
	BF16_ROUND
	VPANDD    Z8, Z6, Z6
	VPORD     Z10, Z6, Z6
	VMOVDQU32 Z6, (DI)
	ADDQ      $64, SI
	ADDQ      $64, DX
	ADDQ      $64, DI
	DECQ      CX
	JNZ       ploop
	VZEROUPPER

pdone:
	RET
