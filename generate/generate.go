package generate

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/gwen-ml/gwen/layers"
)

// Options configure a generation. The zero value (plus MaxNewTokens) is greedy decoding
// without stops.
type Options struct {
	Sampling
	MaxNewTokens int
	Seed         uint64
	StopIDs      []int32  // stop after any of these (EOS, <|im_end|>); the stop token is kept
	StopStrings  []string // stop once the generated text contains one (needs Decode)
	// Decode turns ids into text; only stop strings use it.
	Decode func(ids []int32) string
	// ThinkingBudget > 0 caps the tokens inside an open <think> block: once that many have
	// been generated since ThinkStart, ThinkEnd is forced as the next token. 0: no cap.
	ThinkingBudget       int
	ThinkStart, ThinkEnd int32
	Pad                  int32 // token placed left of shorter prompts (never attended to)
	// OnToken, if set, sees each new token of each row as it is chosen.
	OnToken func(row int, id int32)
	// OnLogits, if set, sees the raw logits [V] each token of each row was chosen from.
	OnLogits func(row int, logits []float32)
}

// Result is one row's output.
type Result struct {
	IDs    []int32 // new tokens, the stop token included
	Reason string  // "stop_id", "stop_string" or "length"
}

func (o *Options) validate(vocab int) error {
	if o.MaxNewTokens < 0 {
		return fmt.Errorf("generate: max new tokens %d must be >= 0", o.MaxNewTokens)
	}
	if err := o.Sampling.Validate(); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	if len(o.StopStrings) > 0 && o.Decode == nil {
		return fmt.Errorf("generate: stop strings need a Decode function")
	}
	if o.ThinkingBudget > 0 && (o.ThinkStart == o.ThinkEnd || o.ThinkEnd < 0 || int(o.ThinkEnd) >= vocab) {
		return fmt.Errorf("generate: a thinking budget needs distinct <think> and </think> ids in the vocabulary (got %d, %d)", o.ThinkStart, o.ThinkEnd)
	}
	return nil
}

func checkPrompt(p []int32, row, vocab int) error {
	if len(p) == 0 {
		return fmt.Errorf("generate: prompt %d is empty", row)
	}
	for i, id := range p {
		if id < 0 || int(id) >= vocab {
			return fmt.Errorf("generate: prompt %d, token %d: id %d is outside the vocabulary [0, %d)", row, i, id, vocab)
		}
	}
	return nil
}

// dist is the distribution of the token after seq (prompt + generated so far), with the
// thinking budget's forcing applied.
func (o *Options) dist(logits []float32, seq []int32, promptLen int) Dist {
	if o.ThinkingBudget > 0 {
		if n, open := thinkingTokens(seq, promptLen, o.ThinkStart, o.ThinkEnd); open && n >= o.ThinkingBudget {
			return OneHot(o.ThinkEnd)
		}
	}
	return o.Sampling.Dist(logits, seq)
}

// thinkingTokens reports whether seq ends inside a <think> block and how many generated
// tokens (index >= promptLen) that block holds so far.
func thinkingTokens(seq []int32, promptLen int, start, end int32) (n int, open bool) {
	for i := len(seq) - 1; i >= 0; i-- {
		switch seq[i] {
		case end:
			return 0, false
		case start:
			return len(seq) - max(i+1, promptLen), true
		}
	}
	return 0, false
}

// stopped reports why a row whose last generated token was just appended must stop, or "".
func (o *Options) stopped(gen []int32) string {
	if len(gen) == 0 {
		return ""
	}
	last := gen[len(gen)-1]
	for _, s := range o.StopIDs {
		if last == s {
			return "stop_id"
		}
	}
	if len(o.StopStrings) > 0 {
		// Every token decodes to at least one byte, so the last len(s)+1 tokens hold any
		// occurrence that the newest token completed.
		longest := 0
		for _, s := range o.StopStrings {
			longest = max(longest, len(s))
		}
		text := o.Decode(gen[max(0, len(gen)-longest-1):])
		for _, s := range o.StopStrings {
			if s != "" && strings.Contains(text, s) {
				return "stop_string"
			}
		}
	}
	if len(gen) >= o.MaxNewTokens {
		return "length"
	}
	return ""
}

// Generate continues each prompt with the model's KV-cached forward (no tape). Prompts of
// different lengths are left-padded into one batch (layers.KVCache's Start); every row decodes
// one token per step until all rows have stopped.
func Generate(m *layers.Model, prompts [][]int32, o Options) ([]Result, error) {
	V := m.Config.VocabSize
	if err := o.validate(V); err != nil {
		return nil, err
	}
	B := len(prompts)
	if B == 0 {
		return nil, nil
	}
	longest := 0
	for r, p := range prompts {
		if err := checkPrompt(p, r, V); err != nil {
			return nil, err
		}
		longest = max(longest, len(p))
	}
	res := make([]Result, B)
	if o.MaxNewTokens == 0 {
		for r := range res {
			res[r].Reason = "length"
		}
		return res, nil
	}
	cache := layers.NewKVCache(&m.Config, B, longest+o.MaxNewTokens)
	ids := make([]int32, B*longest)
	for r, p := range prompts {
		pad := longest - len(p)
		cache.Start[r] = int32(pad)
		for j := 0; j < pad; j++ {
			ids[r*longest+j] = o.Pad
		}
		copy(ids[r*longest+pad:], p)
	}
	seqs := make([][]int32, B)
	rngs := make([]*rand.Rand, B)
	for r, p := range prompts {
		seqs[r] = append(make([]int32, 0, len(p)+o.MaxNewTokens), p...)
		rngs[r] = newRNG(o.Seed, r)
	}
	// The prefill needs each row's last logits only (left padding puts every prompt's end last).
	out := m.Forward(nil, layers.Input{IDs: ids, B: B, T: longest, Cache: cache, KeepLogits: 1})
	logits, T := out.Logits.Data, 1
	live := B
	next := make([]int32, B)
	for live > 0 {
		for r := range prompts {
			if res[r].Reason != "" {
				next[r] = o.Pad
				continue
			}
			row := logits[((r+1)*T-1)*V : (r+1)*T*V]
			if o.OnLogits != nil {
				o.OnLogits(r, row)
			}
			d := o.dist(row, seqs[r], len(prompts[r]))
			tok := d.IDs[0]
			if len(d.IDs) > 1 {
				tok = d.Sample(rngs[r].Float64())
			}
			seqs[r] = append(seqs[r], tok)
			res[r].IDs = append(res[r].IDs, tok)
			next[r] = tok
			if o.OnToken != nil {
				o.OnToken(r, tok)
			}
			if why := o.stopped(res[r].IDs); why != "" {
				res[r].Reason = why
				live--
			}
		}
		if live == 0 {
			break
		}
		out = m.Forward(nil, layers.Input{IDs: next, B: B, T: 1, Cache: cache})
		logits, T = out.Logits.Data, 1
	}
	return res, nil
}
