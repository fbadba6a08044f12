// Package chat renders conversations with Qwen3's chat template (its Jinja logic written out
// in Go) and tokenizes them with the token spans of each assistant turn, for SFT loss masks.
package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/gwen-ml/gwen/data/tokenizer"
)

// Message is one turn of a conversation, as in transformers' apply_chat_template.
type Message struct {
	Role    string `json:"role"` // system, user, assistant or tool; the template skips others
	Content string `json:"content"`
	// ReasoningContent is the assistant's thinking; nil means absent (then a <think>…</think>
	// block inside Content is taken as the reasoning).
	ReasoningContent *string    `json:"reasoning_content,omitempty"`
	ToolCalls        []ToolCall `json:"tool_calls,omitempty"`
}

// ToolCall is a function call made by the assistant.
type ToolCall struct {
	Name string `json:"name"`
	// Arguments is JSON: a JSON string is written as its text, any other value with tojson.
	Arguments json.RawMessage `json:"arguments"`
}

// Options are the template's variables besides messages.
type Options struct {
	Tools               []json.RawMessage // function schemas, each written with tojson
	AddGenerationPrompt bool
	// EnableThinking nil means not passed. Only false changes anything: the generation
	// prompt then holds an empty think block.
	EnableThinking *bool
}

// UnmarshalJSON reads a message as transformers gets it. Content must be present and a string
// (null or missing content makes the Jinja template fail in transformers too); a tool call
// may wrap its name and arguments in "function" or not.
func (m *Message) UnmarshalJSON(data []byte) error {
	var raw struct {
		Role             string            `json:"role"`
		Content          json.RawMessage   `json:"content"`
		ReasoningContent json.RawMessage   `json:"reasoning_content"`
		ToolCalls        []json.RawMessage `json:"tool_calls"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*m = Message{Role: raw.Role}
	if len(raw.Content) == 0 || string(raw.Content) == "null" {
		return fmt.Errorf("%s message: content is missing or null (use \"\")", raw.Role)
	}
	if err := json.Unmarshal(raw.Content, &m.Content); err != nil {
		return fmt.Errorf("%s message: content must be a string: %w", raw.Role, err)
	}
	if len(raw.ReasoningContent) > 0 && string(raw.ReasoningContent) != "null" {
		var s string
		if err := json.Unmarshal(raw.ReasoningContent, &s); err != nil {
			return fmt.Errorf("%s message: reasoning_content must be a string: %w", raw.Role, err)
		}
		m.ReasoningContent = &s
	}
	for i, tc := range raw.ToolCalls {
		call, err := parseToolCall(tc)
		if err != nil {
			return fmt.Errorf("%s message: tool_calls[%d]: %w", raw.Role, i, err)
		}
		m.ToolCalls = append(m.ToolCalls, call)
	}
	return nil
}

func parseToolCall(data []byte) (ToolCall, error) {
	var outer struct {
		Function  json.RawMessage `json:"function"`
		Name      json.RawMessage `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	}
	if err := json.Unmarshal(data, &outer); err != nil {
		return ToolCall{}, err
	}
	name, args := outer.Name, outer.Arguments
	var fn map[string]json.RawMessage
	if len(outer.Function) > 0 && json.Unmarshal(outer.Function, &fn) == nil && len(fn) > 0 {
		name, args = fn["name"], fn["arguments"] // {% if tool_call.function %}: a non-empty dict
	}
	var call ToolCall
	if err := json.Unmarshal(name, &call.Name); err != nil || len(name) == 0 {
		return call, fmt.Errorf("name must be a string, got %s", name)
	}
	if len(args) == 0 {
		return call, errors.New("arguments are missing")
	}
	call.Arguments = args
	return call, nil
}

// turn is where one assistant message landed in the rendered text, in bytes.
type turn struct {
	message              int
	start, end           int // after "<|im_start|>assistant\n"; after its "<|im_end|>"
	thinkStart, thinkEnd int // the "<think>\n…\n</think>\n\n" block; equal when none
	emptyThink           bool
}

// Render returns the conversation as Qwen3's chat template writes it.
func Render(messages []Message, o Options) (string, error) {
	s, _, err := render(messages, o)
	return s, err
}

// render follows tokenizer_config.json's chat_template line by line.
func render(messages []Message, o Options) (string, []turn, error) {
	if len(messages) == 0 {
		return "", nil, errors.New("no messages (the template reads messages[0])")
	}
	var b strings.Builder
	var turns []turn
	if len(o.Tools) > 0 {
		b.WriteString("<|im_start|>system\n")
		if messages[0].Role == "system" {
			b.WriteString(messages[0].Content + "\n\n")
		}
		b.WriteString("# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>")
		for i, tool := range o.Tools {
			js, err := toJSON(tool)
			if err != nil {
				return "", nil, fmt.Errorf("tools[%d]: %w", i, err)
			}
			b.WriteString("\n" + js)
		}
		b.WriteString("\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n")
	} else if messages[0].Role == "system" {
		b.WriteString("<|im_start|>system\n" + messages[0].Content + "<|im_end|>\n")
	}
	// The last user message that is a real query, not a wrapped tool response.
	lastQuery := len(messages) - 1
	for i := len(messages) - 1; i >= 0; i-- {
		m := messages[i]
		if m.Role == "user" && !(strings.HasPrefix(m.Content, "<tool_response>") && strings.HasSuffix(m.Content, "</tool_response>")) {
			lastQuery = i
			break
		}
	}
	for i, m := range messages {
		switch {
		case m.Role == "user" || (m.Role == "system" && i > 0):
			b.WriteString("<|im_start|>" + m.Role + "\n" + m.Content + "<|im_end|>\n")
		case m.Role == "assistant":
			content, reasoning := m.Content, ""
			if m.ReasoningContent != nil {
				reasoning = *m.ReasoningContent
			} else if strings.Contains(m.Content, "</think>") {
				content = strings.TrimLeft(m.Content[strings.LastIndex(m.Content, "</think>")+len("</think>"):], "\n")
				before := strings.TrimRight(m.Content[:strings.Index(m.Content, "</think>")], "\n")
				if k := strings.LastIndex(before, "<think>"); k >= 0 {
					before = before[k+len("<think>"):]
				}
				reasoning = strings.TrimLeft(before, "\n")
			}
			b.WriteString("<|im_start|>" + m.Role + "\n")
			t := turn{message: i, start: b.Len()}
			t.thinkStart, t.thinkEnd = t.start, t.start
			last := i == len(messages)-1
			if i > lastQuery && (last || reasoning != "") {
				r := strings.Trim(reasoning, "\n")
				b.WriteString("<think>\n" + r + "\n</think>\n\n")
				t.thinkEnd, t.emptyThink = b.Len(), r == ""
				b.WriteString(strings.TrimLeft(content, "\n"))
			} else {
				b.WriteString(content)
			}
			for k, call := range m.ToolCalls {
				if (k == 0 && content != "") || k > 0 {
					b.WriteString("\n")
				}
				b.WriteString("<tool_call>\n{\"name\": \"" + call.Name + "\", \"arguments\": ")
				var s string
				if err := json.Unmarshal(call.Arguments, &s); err == nil {
					b.WriteString(s)
				} else {
					js, err := toJSON(call.Arguments)
					if err != nil {
						return "", nil, fmt.Errorf("message %d: tool_calls[%d].arguments: %w", i, k, err)
					}
					b.WriteString(js)
				}
				b.WriteString("}\n</tool_call>")
			}
			b.WriteString("<|im_end|>")
			t.end = b.Len()
			turns = append(turns, t)
			b.WriteString("\n")
		case m.Role == "tool":
			if i == 0 || messages[i-1].Role != "tool" {
				b.WriteString("<|im_start|>user")
			}
			b.WriteString("\n<tool_response>\n" + m.Content + "\n</tool_response>")
			if i == len(messages)-1 || messages[i+1].Role != "tool" {
				b.WriteString("<|im_end|>\n")
			}
		}
	}
	if o.AddGenerationPrompt {
		b.WriteString("<|im_start|>assistant\n")
		if o.EnableThinking != nil && !*o.EnableThinking {
			b.WriteString("<think>\n\n</think>\n\n")
		}
	}
	return b.String(), turns, nil
}

// Span is where one assistant turn lies in Encode's ids, for loss masks.
type Span struct {
	Message int // index of the assistant message
	// Start, End: tokens [Start, End) of the reply, from the token after
	// "<|im_start|>assistant\n" through "<|im_end|>" (the "\n" after it is not included).
	Start, End int
	// ThinkStart, ThinkEnd: tokens [ThinkStart, ThinkEnd) of the "<think>\n…\n</think>\n\n"
	// block the template wrote for this turn; both equal Start when it wrote none.
	ThinkStart, ThinkEnd int
	// EmptyThink: the block holds no reasoning ("<think>\n\n</think>\n\n"), as the template
	// writes for a final turn without thinking. SFT can leave these tokens out of the loss.
	EmptyThink bool
}

// Encode renders messages and tokenizes the text as apply_chat_template(tokenize=True) does,
// and returns a Span per assistant turn. A token that straddles two regions (say "\n\n" made
// of the header's newline and one that starts the reply) belongs to the region of its last byte.
func Encode(tok *tokenizer.Tokenizer, messages []Message, o Options) ([]int32, []Span, error) {
	for i, m := range messages {
		bad := !utf8.ValidString(m.Role) || !utf8.ValidString(m.Content) ||
			(m.ReasoningContent != nil && !utf8.ValidString(*m.ReasoningContent))
		for _, c := range m.ToolCalls {
			bad = bad || !utf8.ValidString(c.Name) || !utf8.Valid(c.Arguments)
		}
		if bad {
			return nil, nil, fmt.Errorf("message %d is not valid UTF-8", i)
		}
	}
	text, turns, err := render(messages, o)
	if err != nil {
		return nil, nil, err
	}
	ids, ends := tok.EncodeOffsets(text)
	// boundary is the first token whose last byte is at or after off.
	boundary := func(off int) int {
		lo, hi := 0, len(ends)
		for lo < hi {
			mid := (lo + hi) / 2
			if ends[mid] > off {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		return lo
	}
	spans := make([]Span, len(turns))
	for k, t := range turns {
		spans[k] = Span{
			Message: t.message,
			Start:   boundary(t.start), End: boundary(t.end),
			ThinkStart: boundary(t.thinkStart), ThinkEnd: boundary(t.thinkEnd),
			EmptyThink: t.emptyThink,
		}
	}
	return ids, spans, nil
}
