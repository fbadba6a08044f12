package train

import (
	"fmt"
	"math/rand/v2"

	"github.com/gwen-ml/gwen/data/tokenizer"
	"github.com/gwen-ml/gwen/layers"
)

// passkeyFiller is the haystack of the passkey-retrieval test (Mohtashami & Jaggi, 2023).
const passkeyFiller = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "

// passkey measures long-context retrieval: a five-digit key is stated once at a random depth
// of a seqLen-token haystack, and the question at the end asks for it. A trial passes when the
// model's greedy prediction of every digit of the answer, read teacher-forced from one
// forward, is the key's. It returns the fraction of trials that pass.
func passkey(m *layers.Model, tok *tokenizer.Tokenizer, seqLen, trials int, seed uint64) (float64, error) {
	rng := rand.New(rand.NewPCG(seed, 0x7061737368))
	filler := tok.Encode(passkeyFiller)
	question := tok.Encode("What is the pass key? The pass key is ")
	pass := 0
	for range trials {
		key := fmt.Sprintf("%05d", rng.IntN(100000))
		fact := tok.Encode(fmt.Sprintf("The pass key is %s. Remember it. %s is the pass key. ", key, key))
		answer := tok.Encode(key)
		room := seqLen - len(fact) - len(question) - len(answer)
		if room < 0 {
			return 0, fmt.Errorf("passkey: seq_len %d is too short for the test (needs more than %d tokens)", seqLen, seqLen-room)
		}
		hay := make([]int32, 0, room)
		for len(hay) < room {
			hay = append(hay, filler[:min(len(filler), room-len(hay))]...)
		}
		depth := rng.IntN(room + 1)
		ids := append(append(append(append(append([]int32{}, hay[:depth]...), fact...), hay[depth:]...), question...), answer...)
		T := len(ids)
		// Only the last len(answer)+1 positions' logits: the ones that predict the answer's
		// digits (a long context's [T, V] logits would not fit).
		keep := len(answer) + 1
		logits := m.Forward(nil, layers.Input{IDs: ids, B: 1, T: T, KeepLogits: keep}).Logits.Data
		V := m.Config.VocabSize
		ok := true
		for i := range answer {
			pos := i // row i of the kept logits predicts answer[i]
			row := logits[pos*V : (pos+1)*V]
			best := 0
			for j, v := range row {
				if v > row[best] {
					best = j
				}
			}
			if int32(best) != answer[i] {
				ok = false
				break
			}
		}
		if ok {
			pass++
		}
	}
	return float64(pass) / float64(trials), nil
}
