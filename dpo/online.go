package dpo

import (
	"fmt"
	"math"
	"slices"

	"github.com/gwen-ml/gwen/data"
	"github.com/gwen-ml/gwen/data/chat"
	"github.com/gwen-ml/gwen/data/tokenizer"
	"github.com/gwen-ml/gwen/generate"
	"github.com/gwen-ml/gwen/layers"
)

// Prompt is one online-DPO prompt: a conversation (ending with a user turn) or, when Messages
// is empty, Text as a single user turn; Answer is the reference the score function gets.
type Prompt struct {
	Messages []data.Message
	Text     string
	Answer   string
}

// sampleRows bounds the rows of one generation batch (the KV cache grows with it).
const sampleRows = 32

// SamplePairs is one round of online (iterative) DPO's pair building. Each prompt goes through
// the chat template with the generation prompt in thinking mode; the model (as it is: with its
// adapters on, in eval mode — the caller's business) samples k completions of at most maxNew
// tokens at temperature with package generate, stopping at <|im_end|>, <|endoftext|> or the
// tokenizer's EOS (the stop token stays in the completion). score(completion, answer) scores
// each completion's text (decoded with special tokens kept, the stop token dropped). The
// completion with the highest score is chosen and the one with the lowest rejected (the first
// of equals in both cases); a prompt whose completions all score the same gives no pair.
// meanReward is the mean score of all k·len(prompts) samples.
//
// The samples are a pure function of (model, prompts, k, temperature, maxNew, seed): a resumed
// run that derives seed from its round regenerates the same pairs.
func SamplePairs(m *layers.Model, tok *tokenizer.Tokenizer, prompts []Prompt, k int, temperature float64, maxNew int, seed uint64,
	score func(completion, answer string) float64) (pairs []Pair, meanReward float64, err error) {
	if k < 2 || maxNew < 1 || !(temperature >= 0) || math.IsInf(temperature, 0) {
		return nil, 0, fmt.Errorf("dpo: online sampling needs k ≥ 2 samples (got %d), max new tokens ≥ 1 (got %d) and a temperature ≥ 0 (got %v)", k, maxNew, temperature)
	}
	ids := make([][]int32, len(prompts))
	on := true
	for i, p := range prompts {
		msgs := []chat.Message{{Role: "user", Content: p.Text}}
		if len(p.Messages) > 0 {
			msgs = make([]chat.Message, len(p.Messages))
			for j, mm := range p.Messages {
				msgs[j] = chat.Message{Role: mm.Role, Content: mm.Content}
			}
		}
		if ids[i], _, err = chat.Encode(tok, msgs, chat.Options{AddGenerationPrompt: true, EnableThinking: &on}); err != nil {
			return nil, 0, fmt.Errorf("dpo: prompt %d: %w", i, err)
		}
	}
	var stops []int32
	for _, s := range []string{"<|im_end|>", "<|endoftext|>"} {
		if id, ok := tok.TokenID(s); ok {
			stops = append(stops, id)
		}
	}
	if id := tok.EOS(); id >= 0 && !slices.Contains(stops, id) {
		stops = append(stops, id)
	}
	opt := generate.Options{Sampling: generate.Sampling{Temperature: temperature}, MaxNewTokens: maxNew, StopIDs: stops}
	if pad := tok.Pad(); pad >= 0 {
		opt.Pad = pad
	}

	per := max(1, sampleRows/k) // prompts per generation batch
	total, n := 0.0, 0
	for lo := 0; lo < len(prompts); lo += per {
		hi := min(lo+per, len(prompts))
		rows := make([][]int32, 0, (hi-lo)*k)
		for i := lo; i < hi; i++ {
			for range k {
				rows = append(rows, ids[i])
			}
		}
		opt.Seed = splitMix(seed ^ splitMix(uint64(lo/per)+1))
		res, err := generate.Generate(m, rows, opt)
		if err != nil {
			return nil, 0, fmt.Errorf("dpo: sampling: %w", err)
		}
		for i := lo; i < hi; i++ {
			samples := res[(i-lo)*k : (i-lo+1)*k]
			scores := make([]float64, k)
			for j, s := range samples {
				text := s.IDs
				if s.Reason == "stop_id" {
					text = text[:len(text)-1]
				}
				scores[j] = score(tok.Decode(text, false), prompts[i].Answer)
				total += scores[j]
				n++
			}
			best, worst := 0, 0
			for j, s := range scores {
				if s > scores[best] {
					best = j
				}
				if s < scores[worst] {
					worst = j
				}
			}
			if scores[best] == scores[worst] {
				continue // a tie: nothing to prefer
			}
			pairs = append(pairs, Pair{Prompt: ids[i], Chosen: samples[best].IDs, Rejected: samples[worst].IDs,
				ChosenScore: scores[best], RejectedScore: scores[worst]})
		}
	}
	if n > 0 {
		meanReward = total / float64(n)
	}
	return pairs, meanReward, nil
}

// splitMix is SplitMix64's finaliser.
func splitMix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
