package tokenizer

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/gwen-ml/gwen/internal/testenv"
)

// tinyJSON is a hand-made byte-level BPE tokenizer.json: the 256 byte tokens have the ids of
// their bytes; merges, by rank: b+c → 256, a+b → 257, ab+ab → 258; added tokens <x> (special)
// and <y> (not special).
func tinyJSON(t *testing.T, edit func(m map[string]any)) string {
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[string(byteToRune[b])] = b
	}
	vocab["bc"], vocab["ab"], vocab["abab"] = 256, 257, 258
	doc := map[string]any{
		"added_tokens": []any{
			map[string]any{"id": 259, "content": "<x>", "special": true},
			map[string]any{"id": 260, "content": "<y>", "special": false},
		},
		"normalizer": map[string]any{"type": "NFC"},
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": qwenPattern}, "behavior": "Isolated", "invert": false},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
		}},
		"decoder": map[string]any{"type": "ByteLevel"},
		"model":   map[string]any{"type": "BPE", "vocab": vocab, "merges": []any{"b c", "a b", []any{"ab", "ab"}}},
	}
	if edit != nil {
		edit(doc)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTinyTokenizer(t *testing.T) {
	tok, err := LoadFiles(tinyJSON(t, nil), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		text string
		want []int32
	}{
		{"abc", []int32{'a', 256}},      // b+c has the lower rank, so ab never forms
		{"abab", []int32{258}},          // a+b twice, then ab+ab
		{"ababab", []int32{258, 257}},   // leftmost pair of equal rank first
		{"ab c", []int32{257, 32, 'c'}}, // " c" is its own pre-token; space stays the byte 0x20
		{"x<x>ab<y>", []int32{'x', 259, 257, 260}},
		{"", nil},
	} {
		if got := tok.Encode(c.text); !slices.Equal(got, c.want) {
			t.Errorf("Encode(%q) = %v, want %v", c.text, got, c.want)
		}
	}
	if got := tok.EncodeWith("<x><y>", Options{SplitSpecialTokens: true}); !slices.Equal(got, []int32{'<', 'x', '>', 260}) {
		t.Errorf("split special: %v", got)
	}
	if got := tok.Decode([]int32{'a', 259, 256, 260, 999, -1}, false); got != "a<x>bc<y>" {
		t.Errorf("Decode = %q", got)
	}
	if got := tok.Decode([]int32{'a', 259, 256, 260}, true); got != "abc<y>" {
		t.Errorf("Decode skip special = %q", got)
	}
	if tok.VocabSize() != 261 || tok.EOS() != -1 {
		t.Errorf("VocabSize %d EOS %d", tok.VocabSize(), tok.EOS())
	}
}

// TestRefusals: tokenizer.json files of another shape are refused, naming what is unsupported.
func TestRefusals(t *testing.T) {
	for _, c := range []struct {
		name, want string
		edit       func(m map[string]any)
	}{
		{"unigram", `model type "Unigram"`, func(m map[string]any) { m["model"] = map[string]any{"type": "Unigram", "vocab": []any{}} }},
		{"wordpiece", `model type "WordPiece"`, func(m map[string]any) { m["model"].(map[string]any)["type"] = "WordPiece" }},
		{"byte fallback", "byte_fallback", func(m map[string]any) { m["model"].(map[string]any)["byte_fallback"] = true }},
		{"lowercase", `normalizer type "Lowercase"`, func(m map[string]any) { m["normalizer"] = map[string]any{"type": "Lowercase"} }},
		{"metaspace", `pre_tokenizer type "Metaspace"`, func(m map[string]any) { m["pre_tokenizer"] = map[string]any{"type": "Metaspace"} }},
		{"gpt2 regex", `pre_tokenizer type "ByteLevel"`, func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "ByteLevel", "use_regex": true}
		}},
		{"other split", `Split pattern "\\s+"`, func(m map[string]any) {
			m["pre_tokenizer"].(map[string]any)["pretokenizers"].([]any)[0].(map[string]any)["pattern"] = map[string]any{"Regex": `\s+`}
		}},
		{"sentencepiece decoder", "decoder", func(m map[string]any) { m["decoder"] = map[string]any{"type": "Metaspace"} }},
		{"lstrip", `added token "<x>"`, func(m map[string]any) {
			m["added_tokens"].([]any)[0].(map[string]any)["lstrip"] = true
		}},
		{"bad merge", "not in the vocabulary", func(m map[string]any) { m["model"].(map[string]any)["merges"] = []any{"q z"} }},
	} {
		_, err := LoadFiles(tinyJSON(t, c.edit), "")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %s", c.name, err, c.want)
		}
	}
	// Other Unicode normal forms and no normalizer work.
	for _, n := range []any{nil, map[string]any{"type": "NFKC"}, map[string]any{"type": "Sequence", "normalizers": []any{}}} {
		tok, err := LoadFiles(tinyJSON(t, func(m map[string]any) { m["normalizer"] = n }), "")
		if err != nil {
			t.Fatalf("normalizer %v: %v", n, err)
		}
		want := []int32{0xEF, 0xAC, 0x81} // U+FB01 ﬁ as bytes; NFKC makes it "fi"
		if n != nil && n.(map[string]any)["type"] == "NFKC" {
			want = []int32{'f', 'i'}
		}
		if got := tok.Encode("\ufb01"); !slices.Equal(got, want) {
			t.Errorf("normalizer %v: Encode(ﬁ) = %v, want %v", n, got, want)
		}
	}
}

func TestQwen3Specials(t *testing.T) {
	tok := qwen3(t)
	if tok.VocabSize() != 151669 || tok.EOS() != 151645 || tok.Pad() != 151643 || tok.BOS() != -1 {
		t.Errorf("VocabSize %d EOS %d Pad %d BOS %d", tok.VocabSize(), tok.EOS(), tok.Pad(), tok.BOS())
	}
	for s, want := range map[string]int32{"<|im_start|>": 151644, "<think>": 151667, "Ċ": 198, "assistant": 77091} {
		if id, ok := tok.TokenID(s); !ok || id != want {
			t.Errorf("TokenID(%q) = %d, %v; want %d", s, id, ok, want)
		}
	}
	if !tok.IsSpecial(151644) || tok.IsSpecial(151667) || tok.IsSpecial(198) {
		t.Error("IsSpecial: <|im_start|> is special, <think> and Ċ are not")
	}
	if !strings.Contains(tok.ChatTemplate(), "enable_thinking") {
		t.Error("chat_template not read")
	}
}

// TestLossy checks the U+FFFD policy against Python's bytes.decode("utf-8", "replace").
func TestLossy(t *testing.T) {
	for in, want := range map[string]string{
		"\xe2\x82":           "\ufffd",
		"\x80\x80":           "\ufffd\ufffd",
		"\xed\xa0\x80":       "\ufffd\ufffd\ufffd",
		"\xf0\x9f\x98":       "\ufffd",
		"\xf0\x9f\x98A":      "\ufffdA",
		"\xc0\xaf":           "\ufffd\ufffd",
		"\xf4\x90\x80\x80":   "\ufffd\ufffd\ufffd\ufffd",
		"a\xe0\x80b":         "a\ufffd\ufffdb",
		"\xef\xbf\xbd":       "\ufffd",
		"\xe2\x82\xac\xe2":   "\u20ac\ufffd",
		"plain ascii, é, 日本": "plain ascii, é, 日本",
	} {
		if got := string(appendLossy(nil, []byte(in))); got != want {
			t.Errorf("lossy(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestInvalidUTF8 is the documented policy: invalid input encodes as its lossy repair.
func TestInvalidUTF8(t *testing.T) {
	tok := qwen3(t)
	for in, repaired := range map[string]string{
		"a\xffb":               "a\ufffdb",
		"\xe2\x82 x":           "\ufffd x",
		"<|im_start|>\xed\xa0": "<|im_start|>\ufffd\ufffd",
	} {
		if got, want := tok.Encode(in), tok.Encode(repaired); !slices.Equal(got, want) {
			t.Errorf("Encode(%q) = %v, want Encode(%q) = %v", in, got, repaired, want)
		}
	}
}

func TestEncodeOffsets(t *testing.T) {
	tok := qwen3(t)
	for _, text := range []string{
		"Hello<|im_end|> world\n\n  x",
		"cafe\u0301 e\u0301\u0323x<think>\u1100\u1161",
		"",
	} {
		ids, ends := tok.EncodeOffsets(text)
		if !slices.Equal(ids, tok.EncodeWith(text, Options{})) || len(ends) != len(ids) {
			t.Fatalf("%q: EncodeOffsets ids differ from Encode or %d ends for %d ids", text, len(ends), len(ids))
		}
		prev := 0
		for i, e := range ends {
			if e < prev || e > len(text) {
				t.Fatalf("%q: ends %v not increasing within the text", text, ends)
			}
			prev = e
			// Up to each end, the decoded prefix is the NFC of the text's prefix.
			if dec := tok.Decode(ids[:i+1], false); i+1 < len(ids) && strings.HasPrefix(text, "Hello") && dec != text[:e] {
				t.Errorf("%q: tokens up to %d decode to %q, text up to %d is %q", text, i, dec, e, text[:e])
			}
		}
		if len(ends) > 0 && ends[len(ends)-1] != len(text) {
			t.Errorf("%q: last end %d, want %d", text, ends[len(ends)-1], len(text))
		}
	}
}

func TestEncodeBatch(t *testing.T) {
	tok := qwen3(t)
	cases := readJSONL[tokCase](t, filepath.Join("testdata", "cases.jsonl"))
	texts := make([]string, len(cases))
	for i, c := range cases {
		texts[i] = c.Text
	}
	got := tok.EncodeBatch(texts)
	for i, c := range cases {
		if !slices.Equal(got[i], c.IDs) {
			t.Fatalf("EncodeBatch[%d] (%s) = %v, want %v", i, c.ID, got[i], c.IDs)
		}
	}
}

// naiveBPE is the textbook byte-level BPE on strings (as in OpenAI's GPT-2 encoder.py):
// repeatedly join every occurrence of the best-ranked adjacent pair.
func naiveBPE(word string, ranks map[[2]string]int) []string {
	var parts []string
	for i := 0; i < len(word); i++ {
		parts = append(parts, string(byteToRune[word[i]]))
	}
	for len(parts) > 1 {
		best, bestRank := [2]string{}, -1
		for i := 0; i+1 < len(parts); i++ {
			if r, ok := ranks[[2]string{parts[i], parts[i+1]}]; ok && (bestRank < 0 || r < bestRank) {
				best, bestRank = [2]string{parts[i], parts[i+1]}, r
			}
		}
		if bestRank < 0 {
			break
		}
		var next []string
		for i := 0; i < len(parts); i++ {
			if i+1 < len(parts) && parts[i] == best[0] && parts[i+1] == best[1] {
				next = append(next, best[0]+best[1])
				i++
			} else {
				next = append(next, parts[i])
			}
		}
		parts = next
	}
	return parts
}

// TestBPEAgainstNaive compares both merge loops with the textbook algorithm on random words
// made of vocabulary pieces, read straight from tokenizer.json.
func TestBPEAgainstNaive(t *testing.T) {
	tok := qwen3(t)
	data, err := os.ReadFile(filepath.Join(testenv.Tokenizer(), "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Model struct {
			Vocab  map[string]int32
			Merges [][2]string
		}
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	ranks := make(map[[2]string]int, len(f.Model.Merges))
	for i, m := range f.Model.Merges {
		if _, dup := ranks[m]; !dup {
			ranks[m] = i
		}
	}
	var pieces []string
	for s := range f.Model.Vocab {
		if raw, ok := byteLevelBytes(s); ok && len(raw) <= 6 {
			pieces = append(pieces, string(raw))
		}
	}
	slices.Sort(pieces)
	rng := rand.New(rand.NewPCG(1, 2))
	sc := newScratch()
	for n := 0; n < 300; n++ {
		var b strings.Builder
		for b.Len() < 2+rng.IntN(3*smallWord) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		word := b.String()
		var want []int32
		for _, p := range naiveBPE(word, ranks) {
			want = append(want, f.Model.Vocab[p])
		}
		small := tok.model.encodeSmall(nil, word, sc)
		heap := tok.model.encodeHeap(nil, word, sc)
		if !slices.Equal(small, want) || !slices.Equal(heap, want) {
			t.Fatalf("word %q:\nsmall %v\nheap  %v\nnaive %v", word, small, heap, want)
		}
	}
}

// TestUnicodeTables: the Unicode 16.0 classes agree with Go's Unicode 15.0 tables on every
// code point Go knows; they differ only on code points that Go has unassigned.
func TestUnicodeTables(t *testing.T) {
	goClass := func(r rune) uint8 {
		switch {
		case r == '\r' || r == '\n':
			return clsNewline
		case unicode.IsSpace(r):
			return clsSpace
		case unicode.IsLetter(r):
			return clsLetter
		case unicode.IsNumber(r):
			return clsNumber
		}
		return clsOther
	}
	added := 0
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if got, want := runeClass(r), goClass(r); got != want {
			assignedInGo := false
			for name, tab := range unicode.Categories {
				if name != "Cn" && name != "C" && unicode.Is(tab, r) {
					assignedInGo = true
					break
				}
			}
			if assignedInGo {
				t.Errorf("U+%04X: class %d, Go's unicode says %d", r, got, want)
			}
			added++
		}
	}
	// U+2EBF0 (CJK Ext. I, 15.1) and U+16D40 (Kirat Rai, 16.0) are letters for HF.
	if runeClass(0x2EBF0) != clsLetter || runeClass(0x16D40) != clsLetter || runeClass(0x16D70) != clsNumber {
		t.Error("letters and digits of Unicode 15.1/16.0 are not classified")
	}
	t.Logf("%d code points classified beyond Go's Unicode %s tables", added, unicode.Version)
}

// TestContractionFolding: only ASCII letters, ſ and K fold onto the contraction letters.
func TestContractionFolding(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		for _, l := range "strvmlde" {
			eq := false
			for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
				if f == l {
					eq = true
				}
			}
			if r == l {
				eq = true
			}
			if eq != (foldASCII(r) == l) {
				t.Errorf("U+%04X folds to %c: %v, foldASCII says %c", r, l, eq, foldASCII(r))
			}
		}
	}
}
