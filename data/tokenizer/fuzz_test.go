package tokenizer

import (
	"slices"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// FuzzRoundTrip: for valid UTF-8 in NFC, decode(encode(s)) == s, the offsets end at len(s),
// and splitting special tokens changes nothing when s has none.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{
		"Hello world", "  leading and trailing  ", "a\n\n\tb\r\n", "don't WE'LL 'ſ", "日本語のテキスト",
		"<|im_start|>user\nhi<|im_end|>", "<think>\n\n</think>\n\n", "x\U00016d40'LL 1\U00016d702",
		"e\u0301 \u1100\u1161\u11a8", "👩🏽‍💻 🇯🇵", "1234567890", "\u00a0\u3000 \u2028", "<<|im_end|>>",
	} {
		f.Add(s)
	}
	tok := qwen3(f)
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			t.Skip()
		}
		s = norm.NFC.String(s)
		ids := tok.EncodeWith(s, Options{})
		if got := tok.Decode(ids, false); got != s {
			t.Fatalf("Decode(Encode(%q)) = %q (ids %v)", s, got, ids)
		}
		ids2, ends := tok.EncodeOffsets(s)
		if !slices.Equal(ids, ids2) || (len(ends) > 0 && ends[len(ends)-1] != len(s)) {
			t.Fatalf("EncodeOffsets(%q) = %v %v, Encode %v", s, ids2, ends, ids)
		}
		if m, _ := tok.rawAdded.find(s, 0, false); m == nil {
			if split := tok.EncodeWith(s, Options{SplitSpecialTokens: true}); !slices.Equal(split, ids) {
				t.Fatalf("%q: SplitSpecialTokens changed %v to %v", s, ids, split)
			}
		}
	})
}
