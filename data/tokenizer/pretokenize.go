package tokenizer

import "unicode/utf8"

// qwenPattern is the Split pre-tokenizer regex of Qwen2/Qwen3 (and GPT-4's cl100k family
// before it). nextPiece implements it by hand: Go's regexp has no look-ahead for \s+(?!\S).
const qwenPattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

// peek decodes the rune at s[i] (i < len(s), s valid UTF-8) and returns its class and size.
func peek(s string, i int) (r rune, cls uint8, size int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), asciiClass[c], 1
	}
	r, size = utf8.DecodeRuneInString(s[i:])
	return r, runeClass(r), size
}

// foldASCII maps the runes that case-fold onto an ASCII letter to that lower-case letter:
// A–Z, and U+017F ſ (folds to s) and U+212A Kelvin sign (folds to k), as Oniguruma's (?i) does.
func foldASCII(r rune) rune {
	switch {
	case 'A' <= r && r <= 'Z':
		return r + ('a' - 'A')
	case r == 0x17F:
		return 's'
	case r == 0x212A:
		return 'k'
	}
	return r
}

// contraction returns the length of the (?i:'s|'t|'re|'ve|'m|'ll|'d) match at s[i:], or 0.
func contraction(s string, i int) int {
	if s[i] != '\'' || i+1 >= len(s) {
		return 0
	}
	r1, _, n1 := peek(s, i+1)
	switch foldASCII(r1) {
	case 's', 't', 'm', 'd':
		return 1 + n1
	case 'r', 'v', 'l':
		j := i + 1 + n1
		if j >= len(s) {
			return 0
		}
		r2, _, n2 := peek(s, j)
		want := 'e'
		if foldASCII(r1) == 'l' {
			want = 'l'
		}
		if foldASCII(r2) == want {
			return 1 + n1 + n2
		}
	}
	return 0
}

// nextPiece returns the end of the pre-token that starts at s[i] (i < len(s)): the match
// that the leftmost-first alternation qwenPattern finds there. Every rune is matched by some
// alternative, so successive calls tile s.
func nextPiece(s string, i int) int {
	// 1. contractions
	if n := contraction(s, i); n > 0 {
		return i + n
	}
	_, c0, n0 := peek(s, i)
	// 2. [^\r\n\p{L}\p{N}]?\p{L}+
	j := -1
	if c0 == clsLetter {
		j = i + n0
	} else if c0 == clsOther || c0 == clsSpace {
		if i+n0 < len(s) {
			if _, c1, n1 := peek(s, i+n0); c1 == clsLetter {
				j = i + n0 + n1
			}
		}
	}
	if j >= 0 {
		for j < len(s) {
			_, c, n := peek(s, j)
			if c != clsLetter {
				break
			}
			j += n
		}
		return j
	}
	// 3. \p{N}
	if c0 == clsNumber {
		return i + n0
	}
	// 4.  ?[^\s\p{L}\p{N}]+[\r\n]*
	j = -1
	if c0 == clsOther {
		j = i
	} else if s[i] == ' ' && i+1 < len(s) {
		if _, c1, _ := peek(s, i+1); c1 == clsOther {
			j = i + 1
		}
	}
	if j >= 0 {
		for j < len(s) {
			_, c, n := peek(s, j)
			if c != clsOther {
				break
			}
			j += n
		}
		for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
			j++
		}
		return j
	}
	// Only white space is left (c0 is clsSpace or clsNewline). Measure the run.
	end, lastNL, last, runes := i, -1, i, 0
	for end < len(s) {
		_, c, n := peek(s, end)
		if c != clsSpace && c != clsNewline {
			break
		}
		if c == clsNewline {
			lastNL = end
		}
		last = end
		end += n
		runes++
	}
	// 5. \s*[\r\n]+ : up to and including the run's last line break
	if lastNL >= 0 {
		return lastNL + 1
	}
	// 6. \s+(?!\S) : the whole run at the end of the text, else all but its last rune
	if end == len(s) {
		return end
	}
	if runes >= 2 {
		return last
	}
	// 7. \s+
	return end
}

// appendPieces appends the pre-tokens of s (valid UTF-8) to dst.
func appendPieces(dst []string, s string) []string {
	for i := 0; i < len(s); {
		j := nextPiece(s, i)
		dst = append(dst, s[i:j])
		i = j
	}
	return dst
}
