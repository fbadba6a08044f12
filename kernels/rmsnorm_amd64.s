#include "textflag.h"
#include "internal/asm/reduce_amd64.h"

// func rmsScaleAVX512(y, x, w []float32, r float32)
// y[j] = w[j]·(x[j]·r) over the first len(y) &^ 15 elements (x and w at least as long): the
// Go loop's two roundings per element, in its order.
TEXT ·rmsScaleAVX512(SB), NOSPLIT, $0-76
	MOVQ         y_base+0(FP), DI
	MOVQ         y_len+8(FP), CX
	MOVQ         x_base+24(FP), SI
	MOVQ         w_base+48(FP), DX
	VBROADCASTSS r+72(FP), Z1
	SHRQ         $4, CX
	JZ           scdone

scloop:
	VMULPS  (SI), Z1, Z0
	VMULPS  (DX), Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, DI
	DECQ    CX
	JNZ     scloop

scdone:
	VZEROUPPER
	RET

// func rmsBackwardDotAVX512(acc, dy, x, w []float32, r float32) float32
// Over the first len(acc) &^ 15 elements, with xh = x[j]·r: acc[j] += dy[j]·xh, and returns
// Σ (dy[j]·w[j])·xh (one vector accumulator, then HSUM).
TEXT ·rmsBackwardDotAVX512(SB), NOSPLIT, $0-108
	MOVQ         acc_base+0(FP), DI
	MOVQ         acc_len+8(FP), CX
	MOVQ         dy_base+24(FP), SI
	MOVQ         x_base+48(FP), DX
	MOVQ         w_base+72(FP), R8
	VBROADCASTSS r+96(FP), Z2
	VXORPS       Z0, Z0, Z0
	SHRQ         $4, CX
	JZ           bddone

bdloop:
	VMULPS  (DX), Z2, Z3 // xh
	VMOVUPS (SI), Z4     // dy
	VMULPS  Z3, Z4, Z5   // dy·xh
	VADDPS  (DI), Z5, Z5
	VMOVUPS Z5, (DI)
	VMULPS  (R8), Z4, Z6 // dy·w
	VMULPS  Z3, Z6, Z6   // ·xh
	VADDPS  Z6, Z0, Z0
	ADDQ    $64, DI
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, R8
	DECQ    CX
	JNZ     bdloop

bddone:
	HSUM_Z0
	VZEROUPPER
	MOVSS X0, ret+104(FP)
	RET

// func rmsBackwardDxAVX512(dx, dy, x, w []float32, r, c float32)
// dx[j] += r·(dy[j]·w[j] − (x[j]·r)·c) over the first len(dx) &^ 15 elements, the Go loop's
// operations in its order.
TEXT ·rmsBackwardDxAVX512(SB), NOSPLIT, $0-104
	MOVQ         dx_base+0(FP), DI
	MOVQ         dx_len+8(FP), CX
	MOVQ         dy_base+24(FP), SI
	MOVQ         x_base+48(FP), DX
	MOVQ         w_base+72(FP), R8
	VBROADCASTSS r+96(FP), Z1
	VBROADCASTSS c+100(FP), Z2
	SHRQ         $4, CX
	JZ           dxdone

dxloop:
	VMOVUPS (SI), Z3
	VMULPS  (R8), Z3, Z3 // dy·w
	VMULPS  (DX), Z1, Z4 // x·r
	VMULPS  Z2, Z4, Z4   // ·c
	VSUBPS  Z4, Z3, Z3
	VMULPS  Z3, Z1, Z3   // r·(…)
	VADDPS  (DI), Z3, Z3
	VMOVUPS Z3, (DI)
	ADDQ    $64, DI
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, R8
	DECQ    CX
	JNZ     dxloop

dxdone:
	VZEROUPPER
	RET
