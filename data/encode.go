package data

import (
	"fmt"

	"github.com/gwen-ml/gwen/data/chat"
	"github.com/gwen-ml/gwen/data/tokenizer"
)

// Task is what the examples are turned into.
type Task string

const (
	// TaskPretrain: every token of every text is trained; texts are joined by EOS and packed
	// (LayoutStream).
	TaskPretrain Task = "pretrain"
	// TaskSFT: conversations through the chat template; only assistant replies are trained.
	TaskSFT Task = "sft"
	// TaskPreference: prompt+chosen and prompt+rejected rows for DPO.
	TaskPreference Task = "preference"
)

// ParseTask accepts "pretrain", "sft" or "preference".
func ParseTask(s string) (Task, error) {
	switch t := Task(s); t {
	case TaskPretrain, TaskSFT, TaskPreference:
		return t, nil
	}
	return "", fmt.Errorf("unknown task %q (want pretrain, sft or preference)", s)
}

// Encoder turns examples into sequences for one task. It is safe for concurrent use.
//
// Pretraining: Encode(text) followed by EOS; every label is the token itself. A text that
// tokenizes to nothing is dropped. Pre-tokenized examples (format tokens, Example.IDs) are
// taken as they are and followed by EOS unless their last id already is EOS, so that documents
// are separated by exactly one EOS either way; an id outside the tokenizer's vocabulary is an
// error naming the file and row. They train only as pretraining.
//
// SFT: chat.Encode of the messages (no generation prompt, enable_thinking not passed); labels
// are Ignore except on each assistant turn's reply, from the token after
// "<|im_start|>assistant\n" through its "<|im_end|>". The "\n" the template writes after
// "<|im_end|>" is not trained: it is the template's separator, not something the model must
// emit to stop (TRL's assistant_only_loss and Qwen's own SFT mask the same way). The empty
// "<think>\n\n</think>\n\n" block the template writes into the final reply of a conversation
// without reasoning is not trained unless TrainEmptyThink; reasoning that is present is.
// A conversation with no assistant token to train is dropped.
//
// Preference from message lists (ChosenMessages set): chosen and rejected are each the whole
// conversation through the chat template, and the response is the assistant turns after
// PromptMessages (masked as in SFT). From strings: Encode(prompt) ++ Encode(response) ++ EOS,
// tokenized separately and concatenated as TRL's DPOTrainer does; the response and its EOS are
// trained.
//
// A sequence longer than SeqLen is cut to its first SeqLen tokens when Truncate (and dropped
// if nothing to train is left), else dropped; a preference pair is cut or dropped as a whole.
// Pretraining never drops: long texts are split across rows by the packer.
type Encoder struct {
	Task            Task
	Tok             *tokenizer.Tokenizer
	EOS             int32 // the pretraining document separator and the end of a string response
	SeqLen          int
	Truncate        bool
	TrainEmptyThink bool
}

// Encoded is one example's sequences: one, or chosen and rejected for a preference pair.
// Drop, when not empty, says why the example gives no sequence.
type Encoded struct {
	Seq, Rejected Sequence
	Truncated     bool
	Drop          string
}

// Reasons an example is dropped.
const (
	DropEmpty    = "empty"     // no tokens
	DropNoTarget = "no target" // nothing to train (no assistant turn, or none left after truncation)
	DropTooLong  = "too long"  // longer than SeqLen without Truncate
)

// Encode turns one example into sequences. Errors are data errors naming the file and row.
func (e *Encoder) Encode(ex Example) (Encoded, error) {
	var out Encoded
	var err error
	if ex.IDs != nil {
		if e.Task != TaskPretrain {
			return Encoded{}, fmt.Errorf("%s: row %d: pre-tokenized ids (format tokens) train only with task pretrain, not %s", ex.File, ex.Row, e.Task)
		}
		return e.tokens(ex)
	}
	switch e.Task {
	case TaskPretrain:
		ids := e.Tok.Encode(ex.Text)
		if len(ids) == 0 {
			return Encoded{Drop: DropEmpty}, nil
		}
		ids = append(ids, e.EOS)
		return Encoded{Seq: Sequence{IDs: ids, Labels: ids}}, nil
	case TaskSFT:
		if out.Seq, err = e.chat(ex.Messages, 0); err != nil {
			return Encoded{}, fmt.Errorf("%s: row %d: %w", ex.File, ex.Row, err)
		}
		out.Seq, out.Truncated, out.Drop = e.fit(out.Seq)
	case TaskPreference:
		if len(ex.ChosenMessages) > 0 {
			n := len(ex.PromptMessages)
			if out.Seq, err = e.chat(ex.ChosenMessages, n); err == nil {
				out.Rejected, err = e.chat(ex.RejectedMessages, n)
			}
			if err != nil {
				return Encoded{}, fmt.Errorf("%s: row %d: %w", ex.File, ex.Row, err)
			}
		} else {
			p := e.Tok.Encode(ex.Prompt)
			out.Seq = e.concat(p, ex.Chosen)
			out.Rejected = e.concat(p, ex.Rejected)
		}
		var tc, tr bool
		var dc, dr string
		out.Seq, tc, dc = e.fit(out.Seq)
		out.Rejected, tr, dr = e.fit(out.Rejected)
		out.Truncated = tc || tr
		if out.Drop = dc; out.Drop == "" {
			out.Drop = dr
		}
	default:
		return Encoded{}, fmt.Errorf("unknown task %q", e.Task)
	}
	if out.Drop != "" {
		return Encoded{Drop: out.Drop}, nil
	}
	return out, nil
}

// tokens is a pre-tokenized pretraining example: its ids, then EOS unless they end with it.
func (e *Encoder) tokens(ex Example) (Encoded, error) {
	if len(ex.IDs) == 0 {
		return Encoded{Drop: DropEmpty}, nil
	}
	if e.Tok != nil {
		v := e.Tok.VocabSize()
		for k, id := range ex.IDs {
			if id < 0 || int(id) >= v {
				return Encoded{}, fmt.Errorf("%s: row %d: token id %d at list position %d is outside the tokenizer's vocabulary (%d ids)", ex.File, ex.Row, id, k, v)
			}
		}
	}
	ids := ex.IDs[:len(ex.IDs):len(ex.IDs)] // append copies: the example's slice is not ours
	if ids[len(ids)-1] != e.EOS {
		ids = append(ids, e.EOS)
	}
	return Encoded{Seq: Sequence{IDs: ids, Labels: ids}}, nil
}

// chat encodes msgs with the template and labels the assistant turns from message index from.
func (e *Encoder) chat(msgs []Message, from int) (Sequence, error) {
	cm := make([]chat.Message, len(msgs))
	for i, m := range msgs {
		cm[i] = chat.Message{Role: m.Role, Content: m.Content}
		if m.ReasoningContent != "" {
			r := m.ReasoningContent
			cm[i].ReasoningContent = &r
		}
	}
	ids, spans, err := chat.Encode(e.Tok, cm, chat.Options{})
	if err != nil {
		return Sequence{}, err
	}
	labels := make([]int32, len(ids))
	for i := range labels {
		labels[i] = Ignore
	}
	for _, s := range spans {
		if s.Message < from {
			continue
		}
		copy(labels[s.Start:s.End], ids[s.Start:s.End])
		if s.EmptyThink && !e.TrainEmptyThink {
			for i := s.ThinkStart; i < s.ThinkEnd; i++ {
				labels[i] = Ignore
			}
		}
	}
	return Sequence{IDs: ids, Labels: labels}, nil
}

// concat is prompt ids ++ Encode(response) ++ EOS, the response and EOS labelled.
func (e *Encoder) concat(prompt []int32, response string) Sequence {
	r := append(e.Tok.Encode(response), e.EOS)
	ids := append(append(make([]int32, 0, len(prompt)+len(r)), prompt...), r...)
	labels := make([]int32, len(ids))
	for i := range prompt {
		labels[i] = Ignore
	}
	copy(labels[len(prompt):], r)
	return Sequence{IDs: ids, Labels: labels}
}

// fit applies SeqLen to an SFT or preference sequence.
func (e *Encoder) fit(s Sequence) (Sequence, bool, string) {
	truncated := false
	if len(s.IDs) > e.SeqLen {
		if !e.Truncate {
			return Sequence{}, false, DropTooLong
		}
		s = Sequence{IDs: s.IDs[:e.SeqLen], Labels: s.Labels[:e.SeqLen]}
		truncated = true
	}
	// The first label is never scored (nothing predicts a row's first token).
	for _, l := range s.Labels[min(1, len(s.Labels)):] {
		if l != Ignore {
			return s, truncated, ""
		}
	}
	return Sequence{}, false, DropNoTarget
}
