#include "textflag.h"
#include "internal/asm/reduce_amd64.h"

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
	HSUM_Z0
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

// func kvScoresAVX512(s []float32, q []float32, k []float32, stride int, scale float32)
// s[j] = scale·(q·k[j·stride:][:len(q)]) for j < len(s), len(q) a positive multiple of 16:
// each dot product in dotAVX512's order (one accumulator over the 16-wide chunks, then the
// same reduction), so the scores equal kvDot's to the bit.
TEXT ·kvScoresAVX512(SB), NOSPLIT, $0-84
	MOVQ   s_base+0(FP), DI
	MOVQ   s_len+8(FP), R8
	MOVQ   q_base+24(FP), SI
	MOVQ   q_len+32(FP), CX
	MOVQ   k_base+48(FP), DX
	MOVQ   stride+72(FP), R9
	VMOVSS scale+80(FP), X8
	SHLQ   $2, R9
	SHRQ   $4, CX
	JZ     scdone
	TESTQ  R8, R8
	JZ     scdone

scpos:
	VXORPS Z0, Z0, Z0
	MOVQ   SI, R10
	MOVQ   DX, R11
	MOVQ   CX, R12

scchunk:
	VMOVUPS     (R10), Z2
	VFMADD231PS (R11), Z2, Z0
	ADDQ        $64, R10
	ADDQ        $64, R11
	DECQ        R12
	JNZ         scchunk

	HSUM_Z0
	VMULSS        X8, X0, X0
	VMOVSS        X0, (DI)
	ADDQ          $4, DI
	ADDQ          R9, DX
	DECQ          R8
	JNZ           scpos

scdone:
	VZEROUPPER
	RET

// func kvAccumAVX512(out []float32, p []float32, v []float32, stride int)
// out[c] = Σ_j p[j]·v[j·stride+c] for c < len(out), a positive multiple of 16: from zero, one
// fused multiply-add per j in order — axpyAVX512's steps from a cleared out, so the same bits.
// Four 16-wide chunks at a time (independent chains), then one at a time.
TEXT ·kvAccumAVX512(SB), NOSPLIT, $0-80
	MOVQ out_base+0(FP), DI
	MOVQ out_len+8(FP), CX
	MOVQ p_base+24(FP), SI
	MOVQ p_len+32(FP), R8
	MOVQ v_base+48(FP), DX
	MOVQ stride+72(FP), R9
	SHLQ $2, R9
	SHRQ $4, CX

acc4:
	CMPQ   CX, $4
	JLT    acc1
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	MOVQ   SI, R10
	MOVQ   DX, R11
	MOVQ   R8, R12
	TESTQ  R12, R12
	JZ     store4

pos4:
	VBROADCASTSS (R10), Z4
	VFMADD231PS  (R11), Z4, Z0
	VFMADD231PS  64(R11), Z4, Z1
	VFMADD231PS  128(R11), Z4, Z2
	VFMADD231PS  192(R11), Z4, Z3
	ADDQ         $4, R10
	ADDQ         R9, R11
	DECQ         R12
	JNZ          pos4

store4:
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	ADDQ    $256, DI
	ADDQ    $256, DX
	SUBQ    $4, CX
	JMP     acc4

acc1:
	TESTQ  CX, CX
	JZ     accdone
	VXORPS Z0, Z0, Z0
	MOVQ   SI, R10
	MOVQ   DX, R11
	MOVQ   R8, R12
	TESTQ  R12, R12
	JZ     store1

pos1:
	VBROADCASTSS (R10), Z4
	VFMADD231PS  (R11), Z4, Z0
	ADDQ         $4, R10
	ADDQ         R9, R11
	DECQ         R12
	JNZ          pos1

store1:
	VMOVUPS Z0, (DI)
	ADDQ    $64, DI
	ADDQ    $64, DX
	DECQ    CX
	JMP     acc1

accdone:
	VZEROUPPER
	RET
