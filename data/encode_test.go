package data

import (
	"slices"
	"sync"
	"testing"

	"github.com/gwen-ml/gwen/data/tokenizer"
	"github.com/gwen-ml/gwen/internal/testenv"
)

var (
	tokOnce sync.Once
	qwenTok *tokenizer.Tokenizer
	tokErr  error
)

// qwen3 loads the tokenizer bundled in assets/qwen3-tokenizer.
func qwen3(t testing.TB) *tokenizer.Tokenizer {
	tokOnce.Do(func() {
		qwenTok, tokErr = tokenizer.Load(testenv.Tokenizer())
	})
	if tokErr != nil {
		t.Fatal(tokErr)
	}
	return qwenTok
}

// runs decodes each maximal run of trained labels (skipping the first, never-scored token).
func runs(tok *tokenizer.Tokenizer, s Sequence) (trained, rest []string) {
	var cur []int32
	inRun := false
	flush := func() {
		if len(cur) > 0 {
			if inRun {
				trained = append(trained, tok.Decode(cur, false))
			} else {
				rest = append(rest, tok.Decode(cur, false))
			}
		}
		cur = cur[:0]
	}
	for i, id := range s.IDs {
		on := s.Labels[i] != Ignore
		if on && s.Labels[i] != id {
			panic("a label differs from its id")
		}
		if on != inRun {
			flush()
			inRun = on
		}
		cur = append(cur, id)
	}
	flush()
	return trained, rest
}

var twoTurns = []Message{
	{Role: "system", Content: "Be brief."},
	{Role: "user", Content: "What is 2+2?"},
	{Role: "assistant", Content: "4"},
	{Role: "user", Content: "And 3+3?"},
	{Role: "assistant", Content: "6"},
}

// TestSFTLabels: the trained tokens of a two-turn conversation decode to exactly each reply
// and its <|im_end|>; everything else (system, user turns, headers, the "\n" after each
// <|im_end|>, and the final turn's empty think block) is not trained. Worked by hand from the
// Qwen3 template.
func TestSFTLabels(t *testing.T) {
	tok := qwen3(t)
	for _, c := range []struct {
		name       string
		msgs       []Message
		trainThink bool
		trained    []string
		rest       []string
	}{
		{"masked empty think", twoTurns, false,
			[]string{"4<|im_end|>", "6<|im_end|>"},
			[]string{"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
				"\n<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n", "\n"}},
		{"trained empty think", twoTurns, true,
			[]string{"4<|im_end|>", "<think>\n\n</think>\n\n6<|im_end|>"},
			[]string{"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
				"\n<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n", "\n"}},
		{"reasoning is trained", []Message{{Role: "user", Content: "3+3?"}, {Role: "assistant", Content: "6", ReasoningContent: "add"}}, false,
			[]string{"<think>\nadd\n</think>\n\n6<|im_end|>"},
			[]string{"<|im_start|>user\n3+3?<|im_end|>\n<|im_start|>assistant\n", "\n"}},
	} {
		e := Encoder{Task: TaskSFT, Tok: tok, SeqLen: 1000, TrainEmptyThink: c.trainThink}
		enc, err := e.Encode(Example{Messages: c.msgs})
		if err != nil {
			t.Fatal(err)
		}
		trained, rest := runs(tok, enc.Seq)
		if !slices.Equal(trained, c.trained) || !slices.Equal(rest, c.rest) {
			t.Errorf("%s:\ntrained %q\n   want %q\n   rest %q\n   want %q", c.name, trained, c.trained, rest, c.rest)
		}
	}
}

// TestSFTLengths: over-long conversations are dropped, or cut when Truncate; a cut that leaves
// no reply token is dropped too.
func TestSFTLengths(t *testing.T) {
	tok := qwen3(t)
	ex := Example{Messages: twoTurns}
	full, _ := (&Encoder{Task: TaskSFT, Tok: tok, SeqLen: 1000}).Encode(ex)
	n := len(full.Seq.IDs)
	// The first trained token is "4", right after the first "<|im_start|>assistant\n".
	first := slices.IndexFunc(full.Seq.Labels, func(l int32) bool { return l != Ignore })
	if got := tok.Decode(full.Seq.IDs[first:first+1], false); got != "4" {
		t.Fatalf("first trained token %q, want \"4\"", got)
	}
	for _, c := range []struct {
		seqLen    int
		truncate  bool
		drop      string
		truncated bool
		length    int
	}{
		{n, false, "", false, n},
		{n - 1, false, DropTooLong, false, 0},
		{n - 1, true, "", true, n - 1},
		{first + 1, true, "", true, first + 1},
		{first, true, DropNoTarget, false, 0},
	} {
		enc, err := (&Encoder{Task: TaskSFT, Tok: tok, SeqLen: c.seqLen, Truncate: c.truncate}).Encode(ex)
		if err != nil {
			t.Fatal(err)
		}
		if enc.Drop != c.drop || enc.Truncated != c.truncated || len(enc.Seq.IDs) != c.length {
			t.Errorf("SeqLen %d truncate %v: drop %q truncated %v length %d, want %q %v %d", c.seqLen, c.truncate, enc.Drop, enc.Truncated, len(enc.Seq.IDs), c.drop, c.truncated, c.length)
		}
		if c.length > 0 && !slices.Equal(enc.Seq.IDs, full.Seq.IDs[:c.length]) {
			t.Errorf("SeqLen %d: not the head of the full sequence", c.seqLen)
		}
	}
	if enc, _ := (&Encoder{Task: TaskSFT, Tok: tok, SeqLen: 100}).Encode(Example{Messages: twoTurns[:2]}); enc.Drop != DropNoTarget {
		t.Errorf("no assistant turn: drop %q, want %q", enc.Drop, DropNoTarget)
	}
}

// TestPretrainEncode: the text's ids then EOS, all trained; an empty text is dropped.
func TestPretrainEncode(t *testing.T) {
	tok := qwen3(t)
	e := Encoder{Task: TaskPretrain, Tok: tok, EOS: tok.EOS(), SeqLen: 4}
	enc, err := e.Encode(Example{Text: "Hello world, this is longer than four tokens."})
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Decode(enc.Seq.IDs, false); got != "Hello world, this is longer than four tokens.<|im_end|>" {
		t.Errorf("decoded %q", got)
	}
	if !slices.Equal(enc.Seq.IDs, enc.Seq.Labels) || enc.Drop != "" {
		t.Errorf("labels %v differ from ids %v, or dropped %q", enc.Seq.Labels, enc.Seq.IDs, enc.Drop)
	}
	if enc, _ := e.Encode(Example{Text: ""}); enc.Drop != DropEmpty {
		t.Errorf("empty text: drop %q", enc.Drop)
	}
}

// TestPreferenceEncode: string pairs are prompt ++ response ++ EOS with the response and EOS
// trained; message-list pairs go through the template with the final reply and its
// <|im_end|> as the response.
func TestPreferenceEncode(t *testing.T) {
	tok := qwen3(t)
	e := Encoder{Task: TaskPreference, Tok: tok, EOS: tok.EOS(), SeqLen: 100}
	enc, err := e.Encode(Example{Prompt: "Say hi.", Chosen: " Hi!", Rejected: " No."})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		s    Sequence
		want []string
	}{{enc.Seq, []string{"Say hi.", " Hi!<|im_end|>"}}, {enc.Rejected, []string{"Say hi.", " No.<|im_end|>"}}} {
		trained, rest := runs(tok, c.s)
		if !slices.Equal(rest, c.want[:1]) || !slices.Equal(trained, c.want[1:]) {
			t.Errorf("string pair: rest %q trained %q, want %q", rest, trained, c.want)
		}
	}
	// Separate tokenization, then concatenation: " Hi!" is tokenized without the prompt.
	if want := append(tok.Encode("Say hi."), append(tok.Encode(" Hi!"), tok.EOS())...); !slices.Equal(enc.Seq.IDs, want) {
		t.Errorf("ids %v, want %v", enc.Seq.IDs, want)
	}

	q := Message{Role: "user", Content: "Capital of France?"}
	ex := Example{
		PromptMessages:   []Message{q},
		ChosenMessages:   []Message{q, {Role: "assistant", Content: "Paris."}},
		RejectedMessages: []Message{q, {Role: "assistant", Content: "Lyon."}},
	}
	enc, err = e.Encode(ex)
	if err != nil {
		t.Fatal(err)
	}
	head := "<|im_start|>user\nCapital of France?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
	for _, c := range []struct {
		s     Sequence
		reply string
	}{{enc.Seq, "Paris.<|im_end|>"}, {enc.Rejected, "Lyon.<|im_end|>"}} {
		trained, rest := runs(tok, c.s)
		if !slices.Equal(rest, []string{head, "\n"}) || !slices.Equal(trained, []string{c.reply}) {
			t.Errorf("message pair: rest %q trained %q, want %q %q", rest, trained, head, c.reply)
		}
	}
	// Too long: one side over SeqLen drops the pair.
	e.SeqLen = len(enc.Seq.IDs) - 1
	if enc2, _ := e.Encode(ex); enc2.Drop != DropTooLong {
		t.Errorf("over-long pair: drop %q", enc2.Drop)
	}
}
