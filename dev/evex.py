"""The EVEX encodings the Go assembler lacks, for the kernel generators in dev/."""


def vdpbf16ps(dst, src1, src2):
    """EVEX.512.F3.0F38.W0 52 /r, register form: dst += pairs(src1)·pairs(src2)."""
    p0 = 0x02  # mm = 0F38
    p0 |= (0 if dst & 8 else 0x80)    # R (inverted dst bit 3)
    p0 |= (0 if src2 & 16 else 0x40)  # X (inverted rm bit 4)
    p0 |= (0 if src2 & 8 else 0x20)   # B (inverted rm bit 3)
    p0 |= (0 if dst & 16 else 0x10)   # R' (inverted dst bit 4)
    p1 = ((~src1 & 0xF) << 3) | 0x04 | 0x02  # W0, vvvv = ~src1, 1, pp = F3
    p2 = 0x40 | (0 if src1 & 16 else 0x08)  # L'L = 512, V' = ~src1 bit 4
    modrm = 0xC0 | ((dst & 7) << 3) | (src2 & 7)
    b = [0x62, p0, p1, p2, 0x52, modrm]
    return "\t" + "; ".join(f"BYTE ${x:#04x}" for x in b) + f" // VDPBF16PS Z{src2}, Z{src1}, Z{dst}"

# The bytes the earlier hand-written one-row kernel used (its tests passed), as a check of the encoder.
assert vdpbf16ps(0, 4, 5).startswith("\tBYTE $0x62; BYTE $0xf2; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xc5")
assert vdpbf16ps(1, 6, 7).startswith("\tBYTE $0x62; BYTE $0xf2; BYTE $0x4e; BYTE $0x48; BYTE $0x52; BYTE $0xcf")
assert vdpbf16ps(3, 6, 7).startswith("\tBYTE $0x62; BYTE $0xf2; BYTE $0x4e; BYTE $0x48; BYTE $0x52; BYTE $0xdf")
