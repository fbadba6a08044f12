#include "textflag.h"

// func dotAVX512(a, b []float32) float32
// Σ a[i]·b[i] over the first len(a) &^ 15 elements (b at least as long), fused multiply-adds.
TEXT ·dotAVX512(SB), NOSPLIT, $0-52
	MOVQ   a_base+0(FP), SI
	MOVQ   a_len+8(FP), CX
	MOVQ   b_base+24(FP), DI
	VXORPS Z0, Z0, Z0
	SHRQ   $4, CX
	JZ     dotdone

dotloop:
	VMOVUPS     (SI), Z2
	VFMADD231PS (DI), Z2, Z0
	ADDQ        $64, SI
	ADDQ        $64, DI
	DECQ        CX
	JNZ         dotloop

dotdone:
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VMOVHLPS      X0, X0, X1
	VADDPS        X1, X0, X0
	VMOVSHDUP     X0, X1
	VADDSS        X1, X0, X0
	VZEROUPPER
	MOVSS         X0, ret+48(FP)
	RET

// func axpyAVX512(y []float32, alpha float32, x []float32)
// y[i] += alpha·x[i] over the first len(y) &^ 15 elements (x at least as long).
TEXT ·axpyAVX512(SB), NOSPLIT, $0-56
	MOVQ         y_base+0(FP), DI
	MOVQ         y_len+8(FP), CX
	VBROADCASTSS alpha+24(FP), Z1
	MOVQ         x_base+32(FP), SI
	SHRQ         $4, CX
	JZ           axdone

axloop:
	VMOVUPS     (DI), Z0
	VFMADD231PS (SI), Z1, Z0
	VMOVUPS     Z0, (DI)
	ADDQ        $64, SI
	ADDQ        $64, DI
	DECQ        CX
	JNZ         axloop

axdone:
	VZEROUPPER
	RET
