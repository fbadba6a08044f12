package tokenizer

import "unicode/utf8"

// byteToRune is GPT-2's byte-level alphabet: every byte is shown as a printable rune, so
// vocabulary entries are strings ("Ġ" is the space byte 0x20, "Ċ" is 0x0A).
var byteToRune [256]rune

// runeToByte inverts byteToRune; runes outside the alphabet are absent.
var runeToByte = map[rune]byte{}

func init() {
	n := 0
	for b := 0; b < 256; b++ {
		if ('!' <= b && b <= '~') || (0xA1 <= b && b <= 0xAC) || (0xAE <= b && b <= 0xFF) {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = rune(256 + n)
			n++
		}
		runeToByte[byteToRune[b]] = byte(b)
	}
}

// byteLevelString shows raw bytes in the byte-level alphabet.
func byteLevelString(raw string) string {
	out := make([]rune, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		out = append(out, byteToRune[raw[i]])
	}
	return string(out)
}

// byteLevelBytes turns a string in the byte-level alphabet back into raw bytes; ok is false
// when it holds a rune outside the alphabet.
func byteLevelBytes(s string) (raw []byte, ok bool) {
	raw = make([]byte, 0, len(s))
	for _, r := range s {
		b, in := runeToByte[r]
		if !in {
			return nil, false
		}
		raw = append(raw, b)
	}
	return raw, true
}

// appendLossy appends b to dst as valid UTF-8, replacing each maximal invalid subsequence
// (the longest prefix of a well-formed sequence that is cut short, or one stray byte) by a
// single U+FFFD, as Rust's String::from_utf8_lossy and Python's errors="replace" do.
func appendLossy(dst []byte, b []byte) []byte {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		n, lo, hi := seqShape(c)
		if n == 0 {
			dst = append(dst, "\uFFFD"...)
			i++
			continue
		}
		j := i + 1
		for k := 1; k < n && j < len(b); k++ {
			x := b[j]
			if k == 1 {
				if x < lo || x > hi {
					break
				}
			} else if x < 0x80 || x > 0xBF {
				break
			}
			j++
		}
		if j-i == n {
			dst = append(dst, b[i:j]...)
		} else {
			dst = append(dst, "\uFFFD"...)
		}
		i = j
	}
	return dst
}

// seqShape gives, for a lead byte c ≥ 0x80, the length of the sequence it starts and the
// allowed range of its second byte (Unicode Table 3-7); n is 0 when c cannot start one.
func seqShape(c byte) (n int, lo, hi byte) {
	switch {
	case 0xC2 <= c && c <= 0xDF:
		return 2, 0x80, 0xBF
	case c == 0xE0:
		return 3, 0xA0, 0xBF
	case 0xE1 <= c && c <= 0xEC, c == 0xEE, c == 0xEF:
		return 3, 0x80, 0xBF
	case c == 0xED:
		return 3, 0x80, 0x9F
	case c == 0xF0:
		return 4, 0x90, 0xBF
	case 0xF1 <= c && c <= 0xF3:
		return 4, 0x80, 0xBF
	case c == 0xF4:
		return 4, 0x80, 0x8F
	}
	return 0, 0, 0
}

// validUTF8 returns s unchanged when it is valid UTF-8, else its lossy repair.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string(appendLossy(nil, []byte(s)))
}
