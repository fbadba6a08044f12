#include "textflag.h"

// func adamwAVX512(p, g, m, v []float32, c *[8]float32)
// AdamW's element-wise update (adamw.go) over the first len(p) &^ 15 elements, the same
// float32 operations in the same order as the Go loop, so the results are bit-identical:
// c = {decay, 1−β1, β2, 1−β2, sqrt(1−β2^t), eps, step size, gradient scale}.
TEXT ·adamwAVX512(SB), NOSPLIT, $0-104
	MOVQ p_base+0(FP), DI
	MOVQ p_len+8(FP), CX
	MOVQ g_base+24(FP), SI
	MOVQ m_base+48(FP), R8
	MOVQ v_base+72(FP), R9
	MOVQ c+96(FP), AX
	VBROADCASTSS 0(AX), Z10  // decay
	VBROADCASTSS 4(AX), Z11  // 1−β1
	VBROADCASTSS 8(AX), Z12  // β2
	VBROADCASTSS 12(AX), Z13 // 1−β2
	VBROADCASTSS 16(AX), Z14 // sqrt(1−β2^t)
	VBROADCASTSS 20(AX), Z15 // eps
	VBROADCASTSS 24(AX), Z16 // step size
	VBROADCASTSS 28(AX), Z17 // gradient scale
	SHRQ $4, CX
	JZ   done

loop:
	VMOVUPS (DI), Z0 // p
	VMOVUPS (SI), Z1 // g
	VMULPS  Z17, Z1, Z1 // ·scale
	VMOVUPS (R8), Z2 // m
	VMOVUPS (R9), Z3 // v
	VMULPS  Z10, Z0, Z0 // p·decay
	VSUBPS  Z2, Z1, Z4  // g − m
	VMULPS  Z4, Z11, Z4 // (1−β1)·(g − m)
	VADDPS  Z4, Z2, Z2  // m'
	VMULPS  Z12, Z3, Z3 // v·β2
	VMULPS  Z1, Z13, Z5 // (1−β2)·g
	VMULPS  Z1, Z5, Z5  // ·g
	VADDPS  Z5, Z3, Z3  // v'
	VSQRTPS Z3, Z6
	VDIVPS  Z14, Z6, Z6 // sqrt(v')/sqrt(1−β2^t)
	VADDPS  Z15, Z6, Z6 // + eps
	VDIVPS  Z6, Z2, Z7  // m'/denom
	VMULPS  Z7, Z16, Z7 // step size·(m'/denom)
	VSUBPS  Z7, Z0, Z0
	VMOVUPS Z2, (R8)
	VMOVUPS Z3, (R9)
	VMOVUPS Z0, (DI)
	ADDQ    $64, DI
	ADDQ    $64, SI
	ADDQ    $64, R8
	ADDQ    $64, R9
	DECQ    CX
	JNZ     loop

done:
	VZEROUPPER
	RET
