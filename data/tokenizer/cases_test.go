package tokenizer

import (
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/text/unicode/norm"

	"github.com/gwen-ml/gwen/internal/testenv"
)

// tokCase is one line of tokenizer-cases/cases.jsonl, produced by Hugging Face tokenizers.
type tokCase struct {
	ID                 string   `json:"id"`
	Tag                string   `json:"tag"`
	Text               string   `json:"text"`
	Normalized         *string  `json:"normalized"`
	Pretokens          []string `json:"pretokens"`
	IDs                []int32  `json:"ids"`
	IDsSpecialAsText   []int32  `json:"ids_special_as_text"`
	Decoded            string   `json:"decoded"`
	DecodedSkipSpecial string   `json:"decoded_skip_special"`
}

type decodeCase struct {
	ID                 string  `json:"id"`
	Why                string  `json:"why"`
	IDs                []int32 `json:"ids"`
	Decoded            string  `json:"decoded"`
	DecodedSkipSpecial string  `json:"decoded_skip_special"`
}

func checkCases(t *testing.T, path string) {
	tok := qwen3(t)
	cases := readJSONL[tokCase](t, path)
	if len(cases) == 0 {
		t.Fatalf("%s: no cases", path)
	}
	failed := 0
	fail := func(c tokCase, format string, args ...any) {
		failed++
		if failed <= 20 {
			t.Errorf("%s (%s) %.60q: "+format, append([]any{c.ID, c.Tag, c.Text}, args...)...)
		}
	}
	for _, c := range cases {
		nfc := norm.NFC.String(c.Text)
		if c.Normalized != nil && *c.Normalized != nfc {
			fail(c, "NFC gives %q, HF normalizer %q", nfc, *c.Normalized)
		}
		if c.Pretokens != nil {
			var got []string
			for _, p := range appendPieces(nil, nfc) {
				got = append(got, byteLevelString(p))
			}
			if !slices.Equal(got, c.Pretokens) {
				fail(c, "pretokens\n got %q\nwant %q", got, c.Pretokens)
			}
		}
		if got := tok.EncodeWith(c.Text, Options{}); !slices.Equal(got, c.IDs) {
			fail(c, "ids\n got %v\nwant %v", got, c.IDs)
		}
		if got := tok.EncodeWith(c.Text, Options{SplitSpecialTokens: true}); !slices.Equal(got, c.IDsSpecialAsText) {
			fail(c, "ids_special_as_text\n got %v\nwant %v", got, c.IDsSpecialAsText)
		}
		if got := tok.Decode(c.IDs, false); got != c.Decoded {
			fail(c, "decoded %q, want %q", got, c.Decoded)
		}
		if got := tok.Decode(c.IDs, true); got != c.DecodedSkipSpecial {
			fail(c, "decoded_skip_special %q, want %q", got, c.DecodedSkipSpecial)
		}
	}
	t.Logf("%s: %d cases, %d mismatches", path, len(cases), failed)
}

func checkDecodeCases(t *testing.T, path string) {
	tok := qwen3(t)
	cases := readJSONL[decodeCase](t, path)
	if len(cases) == 0 {
		t.Fatalf("%s: no cases", path)
	}
	for _, c := range cases {
		if got := tok.Decode(c.IDs, false); got != c.Decoded {
			t.Errorf("%s (%s): decoded %q, want %q", c.ID, c.Why, got, c.Decoded)
		}
		if got := tok.Decode(c.IDs, true); got != c.DecodedSkipSpecial {
			t.Errorf("%s (%s): decoded_skip_special %q, want %q", c.ID, c.Why, got, c.DecodedSkipSpecial)
		}
	}
	t.Logf("%s: %d decode cases", path, len(cases))
}

// TestCasesBundled checks the subset of the Hugging Face cases kept in testdata.
func TestCasesBundled(t *testing.T) { checkCases(t, filepath.Join("testdata", "cases.jsonl")) }

// TestCasesShared checks every case in ../shared/tokenizer-cases.
func TestCasesShared(t *testing.T) {
	checkCases(t, filepath.Join(testenv.Shared(t, "tokenizer-cases"), "cases.jsonl"))
}

func TestDecodeCasesBundled(t *testing.T) {
	checkDecodeCases(t, filepath.Join("testdata", "decode_cases.jsonl"))
}

func TestDecodeCasesShared(t *testing.T) {
	checkDecodeCases(t, filepath.Join(testenv.Shared(t, "tokenizer-cases"), "decode_cases.jsonl"))
}
