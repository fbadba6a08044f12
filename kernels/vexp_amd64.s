#include "textflag.h"

// AVX-512F kernels for the element-wise transcendentals of vexp.go: 16 float32 lanes per
// instruction, and the last len%16 elements through the same instructions under a lane mask
// (K1), so every element is computed the same way wherever it sits in the slice.
//
// e^y (EXPZ) as Cephes expf, with fused multiply-adds: n = round(y·log2 e) (VRNDSCALEPS),
// r = y − n·c1 − n·c2 (ln 2 in two parts), e^r ≈ 1 + r + r²·P(r) (P of degree 5),
// e^y = e^r·2^n by VSCALEFPS. y is clamped to ≤ 89 first (so +Inf gives no NaN; every y above
// ln(max float32) = 88.7228 still overflows to +Inf in VSCALEFPS), lanes with y < −87.33654
// (−Inf included) are zeroed by K2 rather than going subnormal, and NaN flows through as NaN.

// Constants: Z16 log2 e, Z17 c1, Z18 c2, Z19..Z24 P's coefficients (highest first), Z25 1.0,
// Z26 the clamp 89, Z27 the underflow bound −87.33654.
#define EXPCONSTS \
	MOVL $0x3fb8aa3b, AX; VPBROADCASTD AX, Z16; \
	MOVL $0x3f318000, AX; VPBROADCASTD AX, Z17; \
	MOVL $0xb95e8083, AX; VPBROADCASTD AX, Z18; \
	MOVL $0x39506967, AX; VPBROADCASTD AX, Z19; \
	MOVL $0x3ab743ce, AX; VPBROADCASTD AX, Z20; \
	MOVL $0x3c088908, AX; VPBROADCASTD AX, Z21; \
	MOVL $0x3d2aa9c1, AX; VPBROADCASTD AX, Z22; \
	MOVL $0x3e2aaaaa, AX; VPBROADCASTD AX, Z23; \
	MOVL $0x3f000000, AX; VPBROADCASTD AX, Z24; \
	MOVL $0x3f800000, AX; VPBROADCASTD AX, Z25; \
	MOVL $0x42b20000, AX; VPBROADCASTD AX, Z26; \
	MOVL $0xc2aeac4f, AX; VPBROADCASTD AX, Z27

// EXPZ sets y = e^y in all 16 lanes; n, p, t are scratch, K2 is clobbered.
#define EXPZ(y, n, p, t) \
	VMINPS       y, Z26, y; \
	VCMPPS       $0x15, Z27, y, K2; \
	VMULPS       Z16, y, n; \
	VRNDSCALEPS  $8, n, n; \
	VFNMADD231PS Z17, n, y; \
	VFNMADD231PS Z18, n, y; \
	VMOVAPS      Z20, p; \
	VFMADD231PS  Z19, y, p; \
	VFMADD213PS  Z21, y, p; \
	VFMADD213PS  Z22, y, p; \
	VFMADD213PS  Z23, y, p; \
	VFMADD213PS  Z24, y, p; \
	VMULPS       y, y, t; \
	VFMADD213PS  y, t, p; \
	VADDPS       Z25, p, p; \
	VSCALEFPS.Z  n, p, K2, y

// TAILMASK sets K1 to the low CX lanes (0 < CX < 16).
#define TAILMASK \
	MOVL  $1, AX; \
	SHLL  CX, AX; \
	DECL  AX; \
	KMOVW AX, K1

// HSUM sets X0 = the sum of Z30's lanes, in a fixed order.
#define HSUM \
	VMOVAPS       Z30, Z0; \
	VEXTRACTF64X4 $1, Z0, Y1; \
	VADDPS        Y1, Y0, Y0; \
	VEXTRACTF128  $1, Y0, X1; \
	VADDPS        X1, X0, X0; \
	VMOVHLPS      X0, X0, X1; \
	VADDPS        X1, X0, X0; \
	VMOVSHDUP     X0, X1; \
	VADDSS        X1, X0, X0

// dst[i] = scale·e^(src[i] − sub) under K1, Z30 += those lanes.
#define EXPSUB_BODY \
	VMOVUPS.Z   (SI), K1, Z0; \
	VSUBPS      Z28, Z0, Z0; \
	EXPZ(Z0, Z1, Z2, Z3); \
	VMULPS      Z29, Z0, Z0; \
	VMOVUPS     Z0, K1, (DI); \
	VADDPS      Z0, Z30, K1, Z30

// func vexpSubAVX512(dst, src []float32, sub, scale float32) float32
// dst[i] = scale·e^(src[i] − sub) for i < len(src) (len(dst) >= len(src)); returns Σ dst[i]
// summed in 16 float32 lanes, then across lanes.
TEXT ·vexpSubAVX512(SB), NOSPLIT, $0-60
	MOVQ         dst_base+0(FP), DI
	MOVQ         src_base+24(FP), SI
	MOVQ         src_len+32(FP), CX
	VBROADCASTSS sub+48(FP), Z28
	VBROADCASTSS scale+52(FP), Z29
	VPXORD       Z30, Z30, Z30
	EXPCONSTS
	KXNORW       K1, K1, K1
	SUBQ         $16, CX
	JLT          tail

loop:
	EXPSUB_BODY
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JGE  loop

tail:
	ADDQ $16, CX
	JZ   done
	TAILMASK
	EXPSUB_BODY

done:
	HSUM
	VZEROUPPER
	MOVSS X0, ret+56(FP)
	RET

// Z30 += e^(src[i] − sub) under K1.
#define EXPSUM_BODY \
	VMOVUPS.Z   (SI), K1, Z0; \
	VSUBPS      Z28, Z0, Z0; \
	EXPZ(Z0, Z1, Z2, Z3); \
	VADDPS      Z0, Z30, K1, Z30

// func vexpSumAVX512(src []float32, sub float32) float32
// Returns Σ e^(src[i] − sub), summed in 16 float32 lanes, then across lanes; writes nothing.
TEXT ·vexpSumAVX512(SB), NOSPLIT, $0-36
	MOVQ         src_base+0(FP), SI
	MOVQ         src_len+8(FP), CX
	VBROADCASTSS sub+24(FP), Z28
	VPXORD       Z30, Z30, Z30
	EXPCONSTS
	KXNORW       K1, K1, K1
	SUBQ         $16, CX
	JLT          tail

loop:
	EXPSUM_BODY
	ADDQ $64, SI
	SUBQ $16, CX
	JGE  loop

tail:
	ADDQ $16, CX
	JZ   done
	TAILMASK
	EXPSUM_BODY

done:
	HSUM
	VZEROUPPER
	MOVSS X0, ret+32(FP)
	RET

// Z30 = max(Z30, x) under K1; K3 |= lanes holding NaN.
#define MAX_BODY \
	VMOVUPS.Z (SI), K1, Z0; \
	VMAXPS    Z0, Z30, K1, Z30; \
	VCMPPS    $3, Z0, Z0, K1, K2; \
	KORW      K2, K3, K3

// func vmaxAVX512(x []float32) float32
// Returns max x[i]: −Inf for an empty slice, NaN when any element is NaN.
TEXT ·vmaxAVX512(SB), NOSPLIT, $0-28
	MOVQ         x_base+0(FP), SI
	MOVQ         x_len+8(FP), CX
	MOVL         $0xff800000, AX
	VPBROADCASTD AX, Z30
	KXORW        K3, K3, K3
	KXNORW       K1, K1, K1
	SUBQ         $16, CX
	JLT          tail

loop:
	MAX_BODY
	ADDQ $64, SI
	SUBQ $16, CX
	JGE  loop

tail:
	ADDQ $16, CX
	JZ   done
	TAILMASK
	MAX_BODY

done:
	VMOVAPS       Z30, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VMAXPS        X1, X0, X0
	VMOVHLPS      X0, X0, X1
	VMAXPS        X1, X0, X0
	VMOVSHDUP     X0, X1
	VMAXSS        X1, X0, X0
	VZEROUPPER
	KORTESTW      K3, K3
	JZ            ret
	MOVL          $0x7fc00000, AX
	MOVL          AX, ret+24(FP)
	RET

ret:
	MOVSS X0, ret+24(FP)
	RET

// h = g·σ(g)·u = g/(1 + e^−g)·u under K1 (Z31 = 0).
#define SWIGLU_FWD_BODY \
	VMOVUPS.Z (SI), K1, Z4; \
	VSUBPS    Z4, Z31, Z0; \
	EXPZ(Z0, Z1, Z2, Z3); \
	VADDPS    Z25, Z0, Z0; \
	VDIVPS    Z0, Z4, Z0; \
	VMOVUPS.Z (DX), K1, Z5; \
	VMULPS    Z5, Z0, Z0; \
	VMOVUPS   Z0, K1, (DI)

// func swigluFwdAVX512(h, gate, up []float32)
// h[i] = gate[i]·σ(gate[i])·up[i] for i < len(h); gate and up are at least as long.
TEXT ·swigluFwdAVX512(SB), NOSPLIT, $0-72
	MOVQ   h_base+0(FP), DI
	MOVQ   h_len+8(FP), CX
	MOVQ   gate_base+24(FP), SI
	MOVQ   up_base+48(FP), DX
	VPXORD Z31, Z31, Z31
	EXPCONSTS
	KXNORW K1, K1, K1
	SUBQ   $16, CX
	JLT    tail

loop:
	SWIGLU_FWD_BODY
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $16, CX
	JGE  loop

tail:
	ADDQ $16, CX
	JZ   done
	TAILMASK
	SWIGLU_FWD_BODY

done:
	VZEROUPPER
	RET

// With s = σ(g) = 1/(1 + e^−g): dup += dh·g·s, dgate += dh·u·s·(1 + g·(1 − s)), under K1.
// R8 dgate, R9 dup, R10 dh, SI gate, DX up.
#define SWIGLU_BWD_BODY \
	KANDW       K1, K4, K5; \
	VMOVUPS.Z   (SI), K1, Z4; \
	VSUBPS      Z4, Z31, Z0; \
	EXPZ(Z0, Z1, Z2, Z3); \
	VADDPS      Z25, Z0, Z0; \
	VDIVPS      Z0, Z25, Z5; \
	VMOVUPS.Z   (R10), K1, Z6; \
	VMOVUPS.Z   (DX), K1, Z7; \
	VMULPS      Z5, Z4, Z8; \
	VMOVUPS.Z   (R9), K5, Z9; \
	VFMADD231PS Z8, Z6, Z9; \
	VMOVUPS     Z9, K1, (R9); \
	VSUBPS      Z5, Z25, Z10; \
	VFMADD213PS Z25, Z4, Z10; \
	VMULPS      Z7, Z6, Z11; \
	VMULPS      Z5, Z11, Z11; \
	VMOVUPS.Z   (R8), K5, Z12; \
	VFMADD231PS Z10, Z11, Z12; \
	VMOVUPS     Z12, K1, (R8)

// func swigluBwdAVX512(dgate, dup, dh, gate, up []float32, acc bool)
// The SwiGLU backward for i < len(dgate); the other slices are at least as long. With acc the
// gradients are added to dgate and dup, without it they overwrite them (K4 masks the loads of
// the old values: all lanes, or none, so those load zeros and never read dgate or dup).
TEXT ·swigluBwdAVX512(SB), NOSPLIT, $0-121
	MOVQ   dgate_base+0(FP), R8
	MOVQ   dgate_len+8(FP), CX
	MOVQ   dup_base+24(FP), R9
	MOVQ   dh_base+48(FP), R10
	MOVQ   gate_base+72(FP), SI
	MOVQ   up_base+96(FP), DX
	MOVBLZX acc+120(FP), AX
	NEGL   AX
	KMOVW  AX, K4
	VPXORD Z31, Z31, Z31
	EXPCONSTS
	KXNORW K1, K1, K1
	SUBQ   $16, CX
	JLT    tail

loop:
	SWIGLU_BWD_BODY
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, R8
	ADDQ $64, R9
	ADDQ $64, R10
	SUBQ $16, CX
	JGE  loop

tail:
	ADDQ $16, CX
	JZ   done
	TAILMASK
	SWIGLU_BWD_BODY

done:
	VZEROUPPER
	RET
