#!/usr/bin/env python3
"""Writes kernels/internal/asm/gemv_amd64.s and its Go declarations gemv_amd64.go: the GEMV
kernels, one-row and four-row, fp32 FMA and bf16 VDPBF16PS, all from one template.

A kernel reads W one row at a time, in memory order (the hardware prefetcher streams that
best), and for each row of x keeps one order of operations: four accumulators over 256-byte
steps, then 64-byte chunks into the first, then the masked tail, then (a0+a1)+(a2+a3) and HSUM.
The four-row kernels read each row of W once for four rows of x; since every row's sums are the
one-row kernel's, a forward of T tokens gives each token exactly the logits a forward of one
gives. The Go assembler lacks VDPBF16PS; dev/evex.py encodes it.
Run: python3 dev/gen-gemv.py [ROOT]  (ROOT, default the repository, is where kernels/ is written)
The kernels sum with HSUM from kernels/internal/asm/reduce_amd64.h, as kernels' kvdot does.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evex import vdpbf16ps  # noqa: E402

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def write(rel, text):
    """Writes text to ROOT/rel, making its folder."""
    path = os.path.join(ROOT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)

XR = ["DX", "R11", "R12", "R15"]  # the rows of x (same column offset AX)


def kernel(name, bf16, rows):
    """rows 1: func(y []float32, w []T, x []T, k int), y[j] = w[j,:]·x for j < len(y).
    rows 4: func(y []float32, ldy int, w []T, n int, x []T, ldx int, k int)."""
    elem = 2 if bf16 else 4
    shift = elem.bit_length() - 1
    per = 64 // elem                  # columns per 64-byte chunk
    load = "VMOVDQU16" if bf16 else "VMOVUPS"
    T = "uint16" if bf16 else "float32"
    o = []
    a = o.append
    if rows == 1:
        a(f"// func {name}(y []float32, w []{T}, x []{T}, k int)")
        a("// y[j] = Σ_p w[j·k+p]·x[p] for j < len(y).")
        a(f"TEXT ·{name}(SB), NOSPLIT, $0-80")
        a("\tMOVQ y_base+0(FP), DI")
        a("\tMOVQ y_len+8(FP), R8")
        a("\tMOVQ w_base+24(FP), SI")
        a("\tMOVQ x_base+48(FP), DX")
        a("\tMOVQ k+72(FP), CX")
    else:
        a(f"// func {name}(y []float32, ldy int, w []{T}, n int, x []{T}, ldx int, k int)")
        a("// y[i·ldy+j] = Σ_p w[j·k+p]·x[i·ldx+p] for i < 4, j < n; ldy and ldx in elements.")
        a(f"TEXT ·{name}(SB), NOSPLIT, $0-104")
        a("\tMOVQ y_base+0(FP), DI")
        a("\tMOVQ ldy+24(FP), R13")
        a("\tSHLQ $2, R13             // y row stride, bytes")
        a("\tMOVQ w_base+32(FP), SI")
        a("\tMOVQ n+56(FP), R8")
        a("\tMOVQ x_base+64(FP), DX")
        a("\tMOVQ ldx+88(FP), R14")
        a(f"\tSHLQ ${shift}, R14             // x row stride, bytes")
        a("\tMOVQ k+96(FP), CX")
        a("\tLEAQ (DX)(R14*1), R11")
        a("\tLEAQ (R11)(R14*1), R12")
        a("\tLEAQ (R12)(R14*1), R15")
    a("\tMOVQ CX, R9")
    a(f"\tSHLQ ${shift}, R9              // W row stride, bytes")
    a("\tMOVQ CX, R10")
    a(f"\tANDQ ${-per}, R10")
    a(f"\tSHLQ ${shift}, R10             // bytes of whole {per}-column chunks")
    a("\tMOVQ CX, R14")
    a(f"\tANDQ ${-4*per}, R14")
    a(f"\tSHLQ ${shift}, R14             // bytes of whole {4*per}-column steps")
    a("\tMOVQ CX, BX")
    a(f"\tANDQ ${per-1}, BX          // tail columns")
    a("\tMOVL $1, AX")
    a("\tSHLXL BX, AX, AX")
    a("\tDECL AX")
    a(f"\t{'KMOVD' if bf16 else 'KMOVW'} AX, K1          // tail mask")
    if rows == 4:
        a("\tLEAQ (R13)(R13*2), CX    // 3·ldy bytes")
    a("\tTESTQ R8, R8")
    a("\tJZ    done")
    a("")
    a("row:")
    for r in range(4 * rows):
        a(f"\tVPXORD Z{r}, Z{r}, Z{r}")
    a("\tXORQ AX, AX")
    a("")
    a("step:")
    a("\tCMPQ AX, R14")
    a("\tJGE  chunk")
    if rows == 1 and bf16:
        # One row: each chunk's two loads then its product (measured a little faster here).
        for s_ in range(4):
            a(f"\t{load} {64*s_}(DX)(AX*1), Z{20+s_}")
            a(f"\t{load} {64*s_}(SI)(AX*1), Z{16+s_}")
            a(vdpbf16ps(s_, 20+s_, 16+s_))
    else:
        for s_ in range(4):
            a(f"\t{load} {64*s_}(SI)(AX*1), Z{16+s_}")
        for i in range(rows):
            for s_ in range(4):
                if bf16:
                    a(f"\t{load} {64*s_}({XR[i]})(AX*1), Z{20+s_}")
                    a(vdpbf16ps(4*i+s_, 20+s_, 16+s_))
                else:
                    a(f"\tVFMADD231PS {64*s_}({XR[i]})(AX*1), Z{16+s_}, Z{4*i+s_}")
    a("\tADDQ $256, AX")
    a("\tJMP  step")
    a("")
    a("chunk:")
    a("\tCMPQ AX, R10")
    a("\tJGE  tail")
    a(f"\t{load} (SI)(AX*1), Z16")
    for i in range(rows):
        if bf16:
            a(f"\t{load} ({XR[i]})(AX*1), Z20")
            a(vdpbf16ps(4*i, 20, 16))
        else:
            a(f"\tVFMADD231PS ({XR[i]})(AX*1), Z16, Z{4*i}")
    a("\tADDQ $64, AX")
    a("\tJMP  chunk")
    a("")
    a("tail:")
    a("\tTESTQ BX, BX")
    a("\tJZ    sum")
    a(f"\t{load}.Z (SI)(AX*1), K1, Z16")
    for i in range(rows):
        a(f"\t{load}.Z ({XR[i]})(AX*1), K1, Z20")
        if bf16:
            a(vdpbf16ps(4*i, 20, 16))
        else:
            a(f"\tVFMADD231PS Z16, Z20, Z{4*i}")
    a("")
    a("sum:")
    stores = ["(DI)", "(DI)(R13*1)", "(DI)(R13*2)", "(DI)(CX*1)"]
    for i in range(rows):
        z = 4 * i
        a(f"\tVADDPS Z{z+1}, Z{z}, Z{z}")
        a(f"\tVADDPS Z{z+3}, Z{z+2}, Z{z+2}")
        a(f"\tVADDPS Z{z+2}, Z{z}, Z{z}")
        a(f"\tHSUM(Z{z}, Y{z}, X{z}, Y{z+1}, X{z+1})")
        a(f"\tVMOVSS X{z}, {stores[i]}")
    a("\tADDQ $4, DI")
    a("\tADDQ R9, SI")
    a("\tDECQ R8")
    a("\tJNZ  row")
    a("")
    a("done:")
    a("\tVZEROUPPER")
    a("\tRET")
    return "\n".join(o)


KERNELS = [("GemvF32AVX512", False, 1), ("GemvBF16AVX512", True, 1),
           ("GemvF32x4AVX512", False, 4), ("GemvBF16x4AVX512", True, 4)]
DOC = {
    "GemvF32AVX512": "is y[j] = w[j,:]·x for j < len(y) on AVX-512 FMA, one row of W at a time in\n// memory order; len(w) >= len(y)·k, len(x) >= k.",
    "GemvBF16AVX512": "is GemvF32AVX512 on bfloat16 w and x (VDPBF16PS: AVX512_BF16 and AVX512BW).",
    "GemvF32x4AVX512": "is GemvF32AVX512 for four rows of x at once (y and x with row strides ldy,\n// ldx): each row gets exactly the one-row kernel's sums, from one pass over W [n,k].",
    "GemvBF16x4AVX512": "is GemvF32x4AVX512 on bfloat16 w and x.",
}

out = ["// Code generated by dev/gen-gemv.py; DO NOT EDIT.", "", '#include "textflag.h"', '#include "reduce_amd64.h"', ""]
for name, bf16, rows in KERNELS:
    out += [kernel(name, bf16, rows), ""]
write("kernels/internal/asm/gemv_amd64.s", "\n".join(out))

decl = ["// Code generated by dev/gen-gemv.py; DO NOT EDIT.", "", "package asm", ""]
for name, bf16, rows in KERNELS:
    T = "uint16" if bf16 else "float32"
    args = f"y []float32, w []{T}, x []{T}, k int" if rows == 1 else \
        f"y []float32, ldy int, w []{T}, n int, x []{T}, ldx int, k int"
    decl += [f"// {name} {DOC[name]}", "//", "//go:noescape", f"func {name}({args})", ""]
write("kernels/internal/asm/gemv_amd64.go", "\n".join(decl))
