#!/usr/bin/env python3
"""Writes kernels/internal/asm/tile_bf16_amd64.s and its Go declarations tile_bf16_amd64.go:
the VDPBF16PS micro-kernels of kernels' bf16Tile, the small products of bfloat16 pairs that
the attention's BF16 blocks run on.

TileBF16R{r}V{v} computes r rows (1-6) by v vectors of 16 columns (1-4):

    C[i·ldc + j] = alpha·Σ_p pairdot(a[i·ars + p·aps], b[p·ldb + j])  (+ C when acc != 0)

where every element of a and b is a uint32 holding two bfloat16 (the lower half first) and
pairdot multiplies them pairwise and adds (VDPBF16PS, fp32 accumulation). Strides are in bytes;
masks holds the four 16-bit column masks of the vectors (loads and stores are masked, so
columns past n are never read or written). A is read by 32-bit broadcasts, so both a row-major
bfloat16 matrix (ars = row bytes, aps = 4) and a pair-packed transposed one (ars = 4,
aps = row bytes) are valid A operands. Registers: Z0-Z23 the r×v accumulators, Z24-Z27 one
pair-row of B, Z28-Z29 the broadcasts, Z30 alpha, Z31 C when accumulating.
Run: python3 dev/gen-tile.py [ROOT]  (ROOT, default the repository, is where kernels/ is written)
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

AROW = ["(SI)", "(SI)(R10*1)", "(SI)(R10*2)", "(R9)", "(R9)(R10*1)", "(R9)(R10*2)"]


def prologue(a, name, rows, vecs):
    """The kernel's header: arguments to registers, the column masks to K1..Kvecs, row 3's
    address in R9."""
    a(f"// func {name}(c *float32, ldc uintptr, a *uint32, ars, aps uintptr, b *uint32, ldb, kp uintptr, masks uint64, alpha float32, acc uintptr)")
    a(f"TEXT ·{name}(SB), NOSPLIT, $0-88")
    a("\tMOVQ c+0(FP), DI")
    a("\tMOVQ ldc+8(FP), R8")
    a("\tMOVQ a+16(FP), SI")
    a("\tMOVQ ars+24(FP), R10")
    a("\tMOVQ aps+32(FP), R11")
    a("\tMOVQ b+40(FP), DX")
    a("\tMOVQ ldb+48(FP), R12")
    a("\tMOVQ kp+56(FP), CX")
    a("\tMOVQ masks+64(FP), AX")
    for v in range(vecs):
        if v:
            a("\tSHRQ $16, AX")
        a(f"\tKMOVW AX, K{v+1}")
    if rows > 3:
        a("\tLEAQ (SI)(R10*2), R9")
        a("\tADDQ R10, R9              // row 3")


def epilogue(a, rows, vecs):
    """C = alpha·Z(4r+v), or C += that when acc, row by row; then the return."""
    a("\tVBROADCASTSS alpha+72(FP), Z30")
    a("\tMOVQ acc+80(FP), AX")
    a("\tTESTQ AX, AX")
    a("\tJNZ  accumulate")

    def stores(per_vector):
        """Each accumulator's store (per_vector(z, v) lines), row by row, then the return."""
        for r in range(rows):
            for v in range(vecs):
                for line in per_vector(4 * r + v, v):
                    a(line)
            if r < rows - 1:
                a("\tADDQ R8, DI")
        a("\tVZEROUPPER")
        a("\tRET")

    stores(lambda z, v: [f"\tVMULPS Z30, Z{z}, Z{z}", f"\tVMOVUPS Z{z}, K{v+1}, {64*v}(DI)"])
    a("")
    a("accumulate:")
    stores(lambda z, v: [f"\tVMOVUPS.Z {64*v}(DI), K{v+1}, Z31", f"\tVFMADD231PS Z30, Z{z}, Z31",
                         f"\tVMOVUPS Z31, K{v+1}, {64*v}(DI)"])


def kernel(rows, vecs):
    o = []
    a = o.append
    prologue(a, f"TileBF16R{rows}V{vecs}", rows, vecs)
    for r in range(rows):
        for v in range(vecs):
            z = 4 * r + v
            a(f"\tVPXORD Z{z}, Z{z}, Z{z}")
    a("")
    a("loop:")
    for v in range(vecs):
        a(f"\tVMOVDQU32.Z {64*v}(DX), K{v+1}, Z{24+v}")
    for r in range(rows):
        bz = 28 + r % 2
        a(f"\tVPBROADCASTD {AROW[r]}, Z{bz}")
        for v in range(vecs):
            a(vdpbf16ps(4 * r + v, bz, 24 + v))
    a("\tADDQ R11, SI")
    if rows > 3:
        a("\tADDQ R11, R9")
    a("\tADDQ R12, DX")
    a("\tDECQ CX")
    a("\tJNZ  loop")
    a("")
    epilogue(a, rows, vecs)
    return "\n".join(o)


def kernel_k2(rows):
    """TileBF16R{rows}V1K2: see the module doc."""
    o = []
    a = o.append
    prologue(a, f"TileBF16R{rows}V1K2", rows, 1)
    for r in range(rows):
        for z in (4 * r, 4 * r + 1):
            a(f"\tVPXORD Z{z}, Z{z}, Z{z}")
    a("\tMOVQ CX, BX")
    a("\tSHRQ $1, BX")
    a("\tJZ   tail")
    a("")
    a("loop:")
    a("\tVMOVDQU32.Z 0(DX), K1, Z24")
    a("\tVMOVDQU32.Z (DX)(R12*1), K1, Z25")
    def dot(r, second):
        """Row r's pair of A times a pair row of B into its accumulator: the pair at the
        current address into Z4r (B in Z24), or the next one into Z4r+1 (B in Z25)."""
        a(f"\tVPBROADCASTD {'4' if second else ''}{AROW[r]}, Z{29 if second else 28}")
        a(vdpbf16ps(4 * r + second, 29 if second else 28, 25 if second else 24))

    for r in range(rows):
        dot(r, 0)
        dot(r, 1)
    a("\tADDQ $8, SI")
    if rows > 3:
        a("\tADDQ $8, R9")
    a("\tLEAQ (DX)(R12*2), DX")
    a("\tDECQ BX")
    a("\tJNZ  loop")
    a("")
    a("tail:")
    a("\tTESTQ $1, CX")
    a("\tJZ   sum")
    a("\tVMOVDQU32.Z 0(DX), K1, Z24")
    for r in range(rows):
        dot(r, 0)
    a("")
    a("sum:")
    for r in range(rows):
        a(f"\tVADDPS Z{4*r+1}, Z{4*r}, Z{4*r}")
    epilogue(a, rows, 1)
    return "\n".join(o)


out = ["// Code generated by dev/gen-tile.py; DO NOT EDIT.", "", '#include "textflag.h"', ""]
for rows in range(1, 7):
    for vecs in range(1, 5):
        out += [kernel(rows, vecs), ""]
for rows in range(1, 7):
    out += [kernel_k2(rows), ""]
write("kernels/internal/asm/tile_bf16_amd64.s", "\n".join(out))

decl = ["// Code generated by dev/gen-tile.py; DO NOT EDIT.", "", "package asm", ""]
for rows in range(1, 7):
    for vecs in range(1, 5):
        decl += ["//go:noescape",
                 f"func TileBF16R{rows}V{vecs}(c *float32, ldc uintptr, a *uint32, ars, aps uintptr, b *uint32, ldb, kp uintptr, masks uint64, alpha float32, acc uintptr)",
                 ""]
for rows in range(1, 7):
    decl += ["//go:noescape",
             f"func TileBF16R{rows}V1K2(c *float32, ldc uintptr, a *uint32, ars, aps uintptr, b *uint32, ldb, kp uintptr, masks uint64, alpha float32, acc uintptr)",
             ""]
decl += ["// TileBF16Kernels[r-1][v-1] is TileBF16R{r}V{v}.",
         "var TileBF16Kernels = [6][4]func(c *float32, ldc uintptr, a *uint32, ars, aps uintptr, b *uint32, ldb, kp uintptr, masks uint64, alpha float32, acc uintptr){"]
for rows in range(1, 7):
    decl.append("\t{" + ", ".join(f"TileBF16R{rows}V{v}" for v in range(1, 5)) + "},")
decl += ["}", "",
         "// TileBF16KernelsK2[r-1] is TileBF16R{r}V1K2.",
         "var TileBF16KernelsK2 = [6]func(c *float32, ldc uintptr, a *uint32, ars, aps uintptr, b *uint32, ldb, kp uintptr, masks uint64, alpha float32, acc uintptr){",
         "\t" + ", ".join(f"TileBF16R{rows}V1K2" for rows in range(1, 7)) + ",",
         "}", ""]
write("kernels/internal/asm/tile_bf16_amd64.go", "\n".join(decl))
