// Package data owns the path from Parquet files to training batches: sources (one file, a glob
// or a folder), the text/chat/preference/tokens example kinds, resumable positions and
// mixtures, and tokenizing, label masks and packing into batches on a bounded worker pool.
package data

import (
	"fmt"
	"strings"
)

// Format is the kind of example a source yields.
type Format string

const (
	// FormatText reads one string column (default "text") into Example.Text.
	FormatText Format = "text"
	// FormatChat reads one LIST<STRUCT<role, content[, reasoning_content]>> column (default
	// "messages") into Example.Messages.
	FormatChat Format = "chat"
	// FormatPreference reads "prompt", "chosen", "rejected" as strings, or "chosen" and
	// "rejected" as message lists (the UltraFeedback layout; no prompt column needed then).
	FormatPreference Format = "preference"
	// FormatTokens reads one pre-tokenized LIST<INT32> or LIST<INT64> column (default
	// "input_ids") into Example.IDs. It trains as pretraining text does (see Encoder).
	FormatTokens Format = "tokens"
)

// ParseFormat accepts "text", "chat", "preference" or "tokens". (ParseTask has the same shape for
// another enumeration; Go has no enum type to hang one parser on.)
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatText, FormatChat, FormatPreference, FormatTokens:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q (want text, chat, preference or tokens)", s)
}

// Spec says what to read from each file.
type Spec struct {
	Format Format
	// Column is the text column (default "text"), the messages column (default "messages") or
	// the token ids column (default "input_ids"); unused for preference data.
	Column string
}

func (s Spec) column() string {
	if s.Column != "" {
		return s.Column
	}
	switch s.Format {
	case FormatChat:
		return "messages"
	case FormatTokens:
		return "input_ids"
	}
	return "text"
}

// Message is one turn of a conversation. ReasoningContent is empty unless the source has a
// non-NULL reasoning_content field.
type Message struct {
	Role             string `json:"role"`
	Content          string `json:"content"`
	ReasoningContent string `json:"reasoning_content,omitempty"`
}

// Example is one row of a source. Which fields are set depends on the source's Format:
//   - text: Text;
//   - tokens: IDs (never empty; every id in [0, 2³¹));
//   - chat: Messages (never empty);
//   - preference from strings: Prompt, Chosen, Rejected;
//   - preference from message lists: ChosenMessages and RejectedMessages as stored, and
//     PromptMessages = their longest common leading run of identical turns (at least one, the
//     last of which is not an assistant turn); Prompt, Chosen and Rejected are then the contents
//     of those turns and of the remaining turns, joined by "\n\n".
type Example struct {
	Text string

	IDs []int32

	Messages []Message

	Prompt, Chosen, Rejected         string
	PromptMessages                   []Message
	ChosenMessages, RejectedMessages []Message

	// File is the path of the Parquet file and Row the 0-based row index within it.
	File string
	Row  int64
}

// joinContents joins the contents of msgs with blank lines.
func joinContents(msgs []Message) string {
	if len(msgs) == 1 {
		return msgs[0].Content
	}
	parts := make([]string, len(msgs))
	for i, m := range msgs {
		parts[i] = m.Content
	}
	return strings.Join(parts, "\n\n")
}

// splitPreference fills the prompt/chosen/rejected strings of a list-form preference example.
// It reports false when the two conversations share no leading turn, or when the shared part
// ends with an assistant turn or leaves nothing for one side.
func (ex *Example) splitPreference() bool {
	c, r := ex.ChosenMessages, ex.RejectedMessages
	n := 0
	for n < len(c) && n < len(r) && c[n] == r[n] {
		n++
	}
	// The prompt ends at the last shared non-assistant turn.
	for n > 0 && c[n-1].Role == "assistant" {
		n--
	}
	if n == 0 || n == len(c) || n == len(r) {
		return false
	}
	ex.PromptMessages = c[:n:n]
	ex.Prompt = joinContents(c[:n])
	ex.Chosen = joinContents(c[n:])
	ex.Rejected = joinContents(r[n:])
	return true
}
