// Package generate owns decoding with the training layers: KV-cached batched generation,
// sampling (greedy, temperature, top-k, top-p, min-p, repetition penalty), stop rules, a
// thinking budget, and speculative decoding with a draft model. It follows transformers'
// generate() semantics; it knows nothing of training loops, tokenizers' files or the CLI.
package generate

import (
	"cmp"
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Sampling picks the next token from the logits, with the names and order of transformers'
// logits processors: repetition penalty, then temperature, top-k, top-p, min-p.
type Sampling struct {
	Temperature       float64 // 0: greedy (argmax, first index on ties)
	TopK              int     // keep the K highest scores (ties at the K-th kept); 0: off
	TopP              float64 // keep the smallest top set holding this much probability; 0 or 1: off
	MinP              float64 // drop tokens below MinP × the top probability; 0: off
	RepetitionPenalty float64 // divide positive / multiply negative logits of seen tokens; 0 or 1: off
}

// Validate names the first out-of-range field.
func (s Sampling) Validate() error {
	switch {
	case s.Temperature < 0 || math.IsNaN(s.Temperature):
		return fmt.Errorf("temperature %g must be >= 0", s.Temperature)
	case s.TopK < 0:
		return fmt.Errorf("top_k %d must be >= 0", s.TopK)
	case s.TopP < 0 || s.TopP > 1 || math.IsNaN(s.TopP):
		return fmt.Errorf("top_p %g must lie in [0, 1]", s.TopP)
	case s.MinP < 0 || s.MinP > 1 || math.IsNaN(s.MinP):
		return fmt.Errorf("min_p %g must lie in [0, 1]", s.MinP)
	case s.RepetitionPenalty < 0 || math.IsNaN(s.RepetitionPenalty):
		return fmt.Errorf("repetition_penalty %g must be > 0 (1 = off)", s.RepetitionPenalty)
	}
	return nil
}

// Dist is a next-token distribution over a few candidate ids, most likely first; tokens not
// listed have probability 0.
type Dist struct {
	IDs []int32
	P   []float64 // sums to 1
}

// Prob is the probability of id.
func (d Dist) Prob(id int32) float64 {
	for i, x := range d.IDs {
		if x == id {
			return d.P[i]
		}
	}
	return 0
}

// Sample draws a token with a uniform u in [0, 1).
func (d Dist) Sample(u float64) int32 {
	acc := 0.0
	for i, p := range d.P {
		acc += p
		if u < acc {
			return d.IDs[i]
		}
	}
	return d.IDs[len(d.IDs)-1] // rounding: u beyond the last partial sum
}

// OneHot is the distribution that always picks id.
func OneHot(id int32) Dist { return Dist{IDs: []int32{id}, P: []float64{1}} }

// Dist applies the processors to one row of logits [V] given the ids seen so far (prompt and
// generated, for the repetition penalty).
func (s Sampling) Dist(logits []float32, history []int32) Dist {
	scores := logits
	if s.RepetitionPenalty != 0 && s.RepetitionPenalty != 1 {
		scores = slices.Clone(logits)
		pen := float32(s.RepetitionPenalty)
		for _, id := range history {
			if id < 0 || int(id) >= len(logits) {
				continue
			}
			// From the original logit, so a repeated id is penalised once (as torch's gather/scatter).
			if l := logits[id]; l < 0 {
				scores[id] = l * pen
			} else {
				scores[id] = l / pen
			}
		}
	}
	if s.Temperature == 0 {
		best := 0
		for i, v := range scores {
			if v > scores[best] {
				best = i
			}
		}
		return OneHot(int32(best))
	}
	// Candidates, highest score first: the top-k set (ties at the threshold kept) or all.
	var ids []int32
	if s.TopK > 0 && s.TopK < len(scores) {
		ids = topK(scores, s.TopK)
	} else {
		ids = make([]int32, len(scores))
		for i := range ids {
			ids[i] = int32(i)
		}
	}
	sortByScore(ids, scores)
	// Softmax of scores/T over the candidates, in float64.
	inv := 1 / s.Temperature
	top := float64(scores[ids[0]]) * inv
	p := make([]float64, len(ids))
	sum := 0.0
	for i, id := range ids {
		p[i] = math.Exp(float64(scores[id])*inv - top)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	n := len(ids)
	if s.TopP > 0 && s.TopP < 1 {
		// transformers drops token i when the mass of i and everything below it is <= 1 − top_p.
		tail := 0.0
		keep := 1
		for i := n - 1; i >= 1; i-- {
			tail += p[i]
			if tail > 1-s.TopP {
				keep = i + 1
				break
			}
		}
		n = keep
	}
	if s.MinP > 0 {
		cut := s.MinP * p[0]
		for n > 1 && p[n-1] < cut {
			n--
		}
	}
	ids, p = ids[:n], p[:n]
	sum = 0
	for _, v := range p {
		sum += v
	}
	for i := range p {
		p[i] /= sum
	}
	return Dist{IDs: ids, P: p}
}

// topK returns the ids whose score is at least the k-th largest (ties included), unordered.
func topK(scores []float32, k int) []int32 {
	h := make(minHeap, 0, k)
	for _, v := range scores {
		if len(h) < k {
			heap.Push(&h, v)
		} else if v > h[0] {
			h[0] = v
			heap.Fix(&h, 0)
		}
	}
	thr := h[0]
	var ids []int32
	for i, v := range scores {
		if v >= thr {
			ids = append(ids, int32(i))
		}
	}
	return ids
}

type minHeap []float32

func (h minHeap) Len() int           { return len(h) }
func (h minHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h minHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *minHeap) Push(x any)        { *h = append(*h, x.(float32)) }
func (h *minHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}

// newRNG is the generator of row r for a seed (math/rand/v2's PCG): rows draw independently,
// so a row's tokens do not depend on which other prompts share its batch.
func newRNG(seed uint64, row int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x5851f42d4c957f2d^uint64(row)))
}

// sortByScore orders ids by descending score, ties in their current order (a stable sort). A
// whole vocabulary (151,936 ids, once per row and token when sampling) goes through two
// passes of a stable radix sort on the scores' bits, some 100× faster than a comparison sort;
// short lists take the comparison sort.
func sortByScore(ids []int32, scores []float32) {
	if len(ids) < 4096 {
		slices.SortStableFunc(ids, func(a, b int32) int { return cmp.Compare(scores[b], scores[a]) })
		return
	}
	// key: the float's bits mapped so that unsigned order is descending score order.
	// -0 sorts as +0, NaN last, as cmp.Compare orders them.
	key := func(id int32) uint32 {
		v := scores[id]
		if v != v {
			return 0xffffffff
		}
		b := math.Float32bits(v)
		if b == 0x80000000 {
			b = 0
		}
		if b&0x80000000 != 0 {
			b = ^b
		} else {
			b |= 0x80000000
		}
		return ^b
	}
	tmp := make([]int32, len(ids))
	var count [1 << 16]int
	src, dst := ids, tmp
	for shift := uint(0); shift < 32; shift += 16 {
		clear(count[:])
		for _, id := range src {
			count[key(id)>>shift&0xffff]++
		}
		sum := 0
		for i, c := range count {
			count[i] = sum
			sum += c
		}
		for _, id := range src {
			d := key(id) >> shift & 0xffff
			dst[count[d]] = id
			count[d]++
		}
		src, dst = dst, src
	}
	// two passes: the sorted ids are back in ids
}
