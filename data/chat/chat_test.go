package chat

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gwen-ml/gwen/data/tokenizer"
	"github.com/gwen-ml/gwen/internal/testenv"
)

var (
	tokOnce sync.Once
	tok     *tokenizer.Tokenizer
	tokErr  error
)

func qwen3(t testing.TB) *tokenizer.Tokenizer {
	tokOnce.Do(func() { tok, tokErr = tokenizer.Load(testenv.Tokenizer()) })
	if tokErr != nil {
		t.Fatal(tokErr)
	}
	return tok
}

// chatCase is one line of chat_cases.jsonl: rendered by @huggingface/jinja, tokenized by HF.
type chatCase struct {
	ID                  string            `json:"id"`
	Name                string            `json:"name"`
	Messages            []Message         `json:"messages"`
	Tools               []json.RawMessage `json:"tools"`
	AddGenerationPrompt bool              `json:"add_generation_prompt"`
	EnableThinking      *bool             `json:"enable_thinking"`
	Text                string            `json:"text"`
	IDs                 []int32           `json:"ids"`
}

func readCases(t *testing.T, path string) []chatCase {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []chatCase
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for line := 1; sc.Scan(); line++ {
		var c chatCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("%s:%d: %v", path, line, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no cases", path)
	}
	return out
}

func checkChatCases(t *testing.T, path string) {
	tk := qwen3(t)
	cases := readCases(t, path)
	for _, c := range cases {
		o := Options{Tools: c.Tools, AddGenerationPrompt: c.AddGenerationPrompt, EnableThinking: c.EnableThinking}
		text, err := Render(c.Messages, o)
		if err != nil {
			t.Errorf("%s %s: %v", c.ID, c.Name, err)
			continue
		}
		if text != c.Text {
			t.Errorf("%s %s: text\n got %q\nwant %q", c.ID, c.Name, text, c.Text)
		}
		ids, spans, err := Encode(tk, c.Messages, o)
		if err != nil || !slices.Equal(ids, c.IDs) {
			t.Errorf("%s %s: ids (err %v)\n got %v\nwant %v", c.ID, c.Name, err, ids, c.IDs)
			continue
		}
		checkSpans(t, tk, c, ids, spans)
	}
	t.Logf("%s: %d chat cases", path, len(cases))
}

// checkSpans asserts what a span must be, from the HF ids and the messages alone.
func checkSpans(t *testing.T, tk *tokenizer.Tokenizer, c chatCase, ids []int32, spans []Span) {
	imEnd, _ := tk.TokenID("<|im_end|>")
	var assistants []int
	for i, m := range c.Messages {
		if m.Role == "assistant" {
			assistants = append(assistants, i)
		}
	}
	if len(spans) != len(assistants) {
		t.Errorf("%s: %d spans for %d assistant messages", c.ID, len(spans), len(assistants))
		return
	}
	prevEnd := 0
	for k, s := range spans {
		m := c.Messages[s.Message]
		if s.Message != assistants[k] || s.Start < prevEnd || s.Start > s.ThinkStart || s.ThinkStart > s.ThinkEnd || s.ThinkEnd > s.End {
			t.Errorf("%s: span %+v out of order", c.ID, s)
			continue
		}
		prevEnd = s.End
		if ids[s.End-1] != imEnd {
			t.Errorf("%s: span %+v does not end with <|im_end|>", c.ID, s)
		}
		if head := tk.Decode(ids[:s.Start], false); !strings.HasSuffix(head, "<|im_start|>assistant\n") {
			t.Errorf("%s: span %+v is not preceded by the assistant header: %q", c.ID, s, head[max(0, len(head)-40):])
		}
		body := tk.Decode(ids[s.Start:s.End], false)
		answer := m.Content
		if i := strings.LastIndex(answer, "</think>"); i >= 0 && m.ReasoningContent == nil {
			answer = strings.TrimLeft(answer[i+len("</think>"):], "\n")
		}
		if !strings.Contains(body, answer) {
			t.Errorf("%s: span %+v = %q lacks the answer %q", c.ID, s, body, answer)
		}
		think := tk.Decode(ids[s.ThinkStart:s.ThinkEnd], false)
		switch {
		case s.ThinkStart == s.ThinkEnd:
		case s.EmptyThink && think != "<think>\n\n</think>\n\n":
			t.Errorf("%s: empty think span %q", c.ID, think)
		case !strings.HasPrefix(think, "<think>\n") || !strings.HasSuffix(think, "\n</think>\n\n"):
			t.Errorf("%s: think span %q", c.ID, think)
		}
	}
}

func TestChatCasesBundled(t *testing.T) {
	checkChatCases(t, filepath.Join("testdata", "chat_cases.jsonl"))
}

func TestChatCasesShared(t *testing.T) {
	checkChatCases(t, filepath.Join(testenv.Shared(t, "tokenizer-cases"), "chat_cases.jsonl"))
}

// TestSpansByHand: spans of small conversations, worked out from the template by hand.
func TestSpansByHand(t *testing.T) {
	tk := qwen3(t)
	msgs := []Message{
		{Role: "user", Content: "Hi"},
		{Role: "assistant", Content: "Hello!"},
	}
	ids, spans, err := Encode(tk, msgs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHello!<|im_end|>\n
	if len(spans) != 1 {
		t.Fatalf("spans %+v", spans)
	}
	s := spans[0]
	if got := tk.Decode(ids[s.Start:s.End], false); got != "<think>\n\n</think>\n\nHello!<|im_end|>" {
		t.Errorf("reply %q", got)
	}
	if got := tk.Decode(ids[s.ThinkStart:s.ThinkEnd], false); got != "<think>\n\n</think>\n\n" || !s.EmptyThink {
		t.Errorf("think %q empty=%v", got, s.EmptyThink)
	}
	if got := tk.Decode(ids[s.End:], false); got != "\n" {
		t.Errorf("after the span %q", got)
	}

	// History before the last query: no think block, reasoning dropped.
	r := "Greeting."
	msgs = []Message{
		{Role: "user", Content: "Hi"},
		{Role: "assistant", Content: "Hello!", ReasoningContent: &r},
		{Role: "user", Content: "Bye"},
		{Role: "assistant", Content: "\nSee you.", ReasoningContent: &r},
	}
	ids, spans, err = Encode(tk, msgs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 2 {
		t.Fatalf("spans %+v", spans)
	}
	if s := spans[0]; s.ThinkStart != s.ThinkEnd || s.EmptyThink || tk.Decode(ids[s.Start:s.End], false) != "Hello!<|im_end|>" {
		t.Errorf("history span %+v = %q", s, tk.Decode(ids[s.Start:s.End], false))
	}
	if s := spans[1]; s.EmptyThink || tk.Decode(ids[s.ThinkStart:s.ThinkEnd], false) != "<think>\nGreeting.\n</think>\n\n" ||
		tk.Decode(ids[s.ThinkEnd:s.End], false) != "See you.<|im_end|>" {
		t.Errorf("last span %+v", s)
	}

	// A reply starting with a newline outside a think block merges with the header's "\n"
	// into one token "\n\n"; it belongs to the reply (its last byte is the reply's).
	msgs = []Message{{Role: "user", Content: "Hi"}, {Role: "assistant", Content: "Hello"}, {Role: "user", Content: "x"}}
	msgs[1].Content = "\n\nIndented"
	ids, spans, err = Encode(tk, msgs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s := spans[0]; tk.Decode(ids[s.Start:s.End], false) != "\n\n\nIndented<|im_end|>" || tk.Decode(ids[:s.Start], false) != "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant" {
		t.Errorf("straddling span %+v = %q", s, tk.Decode(ids[s.Start:s.End], false))
	}
}

func TestGenerationPrompt(t *testing.T) {
	f, tr := false, true
	msgs := []Message{{Role: "system", Content: "S"}, {Role: "user", Content: "Q"}}
	for _, c := range []struct {
		et   *bool
		want string
	}{
		{nil, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"},
		{&tr, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"},
		{&f, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"},
	} {
		got, err := Render(msgs, Options{AddGenerationPrompt: true, EnableThinking: c.et})
		if err != nil || got != c.want {
			t.Errorf("enable_thinking %v: %q, %v", c.et, got, err)
		}
	}
}

func TestMessageJSONErrors(t *testing.T) {
	for _, in := range []string{
		`{"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}`,
		`{"role": "user"}`,
		`{"role": "user", "content": [{"type": "text", "text": "x"}]}`,
		`{"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f"}}]}`,
	} {
		var m Message
		if err := json.Unmarshal([]byte(in), &m); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
	if _, err := Render(nil, Options{}); err == nil {
		t.Error("no messages: no error")
	}
}

// TestToJSON against Python's json.dumps(json.loads(s), ensure_ascii=False).
func TestToJSON(t *testing.T) {
	in := `{"b":1,"a":[true,null,"x\"<&>\n\u0001\u007f\u2028é"],"c":{},"d":[],"b":2.50,"e":-0,"f":1E400,"g":12345678901234567890}`
	want := "{\"b\": 2.5, \"a\": [true, null, \"x\\\"<&>\\n\\u0001\u007f\u2028é\"], \"c\": {}, \"d\": [], \"e\": 0, \"f\": Infinity, \"g\": 12345678901234567890}"
	if got, err := toJSON(json.RawMessage(in)); err != nil || got != want {
		t.Errorf("toJSON\n got %s (%v)\nwant %s", got, err, want)
	}
	for f, want := range map[float64]string{
		1.0: "1.0", 0.1: "0.1", 1e16: "1e+16", 1e15: "1000000000000000.0", 1e-5: "1e-05",
		0.0001: "0.0001", 1.5e300: "1.5e+300", 123456789012345680.0: "1.2345678901234568e+17",
		3.14: "3.14", -2.5e-7: "-2.5e-07", 100.0: "100.0", 1e22: "1e+22",
	} {
		if got := pyFloatRepr(f); got != want {
			t.Errorf("pyFloatRepr(%g) = %s, want %s", f, got, want)
		}
	}
}
