package tokenizer

import "unicode/utf8"

// Unicode editions. The classes below are Unicode 16.0 (unicode16_tables.go), the edition of
// Oniguruma 6.9.10, which Hugging Face tokenizers runs the Split regex with; Go 1.26's unicode
// package is 15.0 and would split letters added in 15.1 and 16.0 (CJK Ext. I, Kirat Rai, …)
// differently. NFC comes from golang.org/x/text/unicode/norm, whose tables are Unicode 15.0
// under Go 1.26 (17.0 from Go 1.27): only characters given canonical decompositions after
// 15.0 (none in the cases) could normalize differently from Hugging Face.

// Rune classes of the Qwen pre-tokenizer pattern: \p{L}, \p{N}, \s split into the line
// breaks \r and \n (which the pattern names) and other white space, and everything else.
const (
	clsOther   uint8 = iota // not a letter, number or white space
	clsLetter               // \p{L}
	clsNumber               // \p{N}
	clsSpace                // \s other than \r and \n
	clsNewline              // \r or \n
)

type runeRange struct{ lo, hi rune }

// classBlocks and classIndex are a two-stage table over all code points: the class of r is
// classBlocks[classIndex[r>>8]][r&0xFF]. Built once from the Unicode 16.0 tables.
var (
	classIndex  [(utf8.MaxRune + 1) >> 8]uint16
	classBlocks [][256]uint8
	asciiClass  [128]uint8
)

func init() {
	flat := make([]uint8, utf8.MaxRune+1)
	set := func(ranges []runeRange, c uint8) {
		for _, r := range ranges {
			for x := r.lo; x <= r.hi; x++ {
				flat[x] = c
			}
		}
	}
	set(letters16, clsLetter)
	set(numbers16, clsNumber)
	set(space16, clsSpace)
	flat['\r'], flat['\n'] = clsNewline, clsNewline
	seen := map[[256]uint8]uint16{}
	for i := range classIndex {
		var b [256]uint8
		copy(b[:], flat[i<<8:])
		idx, ok := seen[b]
		if !ok {
			idx = uint16(len(classBlocks))
			classBlocks = append(classBlocks, b)
			seen[b] = idx
		}
		classIndex[i] = idx
	}
	copy(asciiClass[:], flat[:128])
}

// runeClass returns the pre-tokenizer class of r (a valid code point).
func runeClass(r rune) uint8 {
	if r < 128 {
		return asciiClass[r]
	}
	return classBlocks[classIndex[r>>8]][r&0xFF]
}
