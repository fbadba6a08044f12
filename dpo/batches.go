package dpo

import (
	"fmt"

	"github.com/gwen-ml/gwen/data"
)

// Pair is one preference pair as token ids: the prompt, and the chosen and rejected responses
// that follow it. Scores are what the scoring function gave the two responses (online DPO).
type Pair struct {
	Prompt, Chosen, Rejected   []int32
	ChosenScore, RejectedScore float64
}

// Sequences returns the pair as data's sequences: prompt+chosen and prompt+rejected, the
// response tokens labelled and the prompt's Ignore.
func (p Pair) Sequences() (chosen, rejected data.Sequence) {
	return responseSequence(p.Prompt, p.Chosen), responseSequence(p.Prompt, p.Rejected)
}

func responseSequence(prompt, response []int32) data.Sequence {
	n := len(prompt) + len(response)
	s := data.Sequence{IDs: make([]int32, 0, n), Labels: make([]int32, 0, n)}
	s.IDs = append(append(s.IDs, prompt...), response...)
	for range prompt {
		s.Labels = append(s.Labels, data.Ignore)
	}
	s.Labels = append(s.Labels, response...)
	return s
}

// PairBatches lays pairs out as preference batches of perBatch pairs (the last may hold fewer)
// with rows of seqLen tokens (0: the longest sequence of the pairs), padded with pad: the same
// batches data's pipeline makes for Parquet pairs (data.Packer.NextPairs), so one Objective
// trains both. A sequence longer than seqLen is cut to seqLen; a pair with a response left
// without any token is dropped, and dropped counts them.
func PairBatches(pairs []Pair, perBatch, seqLen int, pad int32) (batches []data.Batch, dropped int, err error) {
	seqs := make([][2]data.Sequence, len(pairs))
	for i, p := range pairs {
		seqs[i][0], seqs[i][1] = p.Sequences()
	}
	return SequenceBatches(seqs, perBatch, seqLen, pad)
}

// SequenceBatches is PairBatches for pairs already encoded as (chosen, rejected) sequences,
// e.g. by data.Encoder.
func SequenceBatches(pairs [][2]data.Sequence, perBatch, seqLen int, pad int32) (batches []data.Batch, dropped int, err error) {
	if perBatch <= 0 || seqLen < 0 {
		return nil, 0, fmt.Errorf("dpo: %d pairs per batch of %d tokens per row", perBatch, seqLen)
	}
	if seqLen == 0 {
		for _, p := range pairs {
			seqLen = max(seqLen, len(p[0].IDs), len(p[1].IDs))
		}
	}
	kept := make([][2]data.Sequence, 0, len(pairs))
	for _, p := range pairs {
		ok := true
		for k := range p {
			s := p[k]
			if len(s.IDs) != len(s.Labels) {
				return nil, 0, fmt.Errorf("dpo: a sequence of %d ids and %d labels", len(s.IDs), len(s.Labels))
			}
			if len(s.IDs) > seqLen {
				s = data.Sequence{IDs: s.IDs[:seqLen], Labels: s.Labels[:seqLen]}
			}
			p[k] = s
			ok = ok && trained(s)
		}
		if !ok {
			dropped++
			continue
		}
		kept = append(kept, p)
	}
	for lo := 0; lo < len(kept); lo += perBatch {
		chunk := kept[lo:min(lo+perBatch, len(kept))]
		pk, err := data.NewPacker(data.LayoutPadded, 2*len(chunk), seqLen, pad)
		if err != nil {
			return nil, 0, err
		}
		i := 0
		b, err := pk.NextPairs(func() (data.Sequence, data.Sequence, error) {
			p := chunk[i]
			i++
			return p[0], p[1], nil
		})
		if err != nil {
			return nil, 0, err
		}
		batches = append(batches, b)
	}
	return batches, dropped, nil
}

// trained reports whether a sequence has a labelled token after its first (the first is never
// scored: nothing predicts it).
func trained(s data.Sequence) bool {
	for _, l := range s.Labels[min(1, len(s.Labels)):] {
		if l != data.Ignore {
			return true
		}
	}
	return false
}
