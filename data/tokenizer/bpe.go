package tokenizer

import "math"

// bpe is a byte-level BPE model: every byte has a token, and merges join two adjacent
// tokens into one, lowest rank first (leftmost among equal ranks), as tokenizers' BPE does.
type bpe struct {
	byteTok [256]int32
	// merges maps a pair (left<<32 | right) to rank<<32 | merged id; comparing two values
	// compares ranks.
	merges map[uint64]uint64
}

const noMerge = math.MaxUint64

func (m *bpe) pair(a, b int32) uint64 {
	v, ok := m.merges[uint64(uint32(a))<<32|uint64(uint32(b))]
	if !ok {
		return noMerge
	}
	return v
}

// smallWord is the length in bytes up to which encode uses the quadratic algorithm on
// slices; longer words use a heap.
const smallWord = 96

// encode appends the tokens of one pre-token (raw bytes) to dst.
func (m *bpe) encode(dst []int32, word string, sc *scratch) []int32 {
	if len(word) == 1 {
		return append(dst, m.byteTok[word[0]])
	}
	if len(word) > smallWord {
		return m.encodeHeap(dst, word, sc)
	}
	return m.encodeSmall(dst, word, sc)
}

// encodeSmall is encode on slices: each step scans the pair ranks for the lowest, merges it
// and looks up only the two new pairs. Quadratic, and the fastest for short words.
func (m *bpe) encodeSmall(dst []int32, word string, sc *scratch) []int32 {
	syms := sc.syms[:0]
	for i := 0; i < len(word); i++ {
		syms = append(syms, m.byteTok[word[i]])
	}
	ranks := sc.ranks[:0]
	for k := 0; k+1 < len(syms); k++ {
		ranks = append(ranks, m.pair(syms[k], syms[k+1]))
	}
	for {
		best, bk := uint64(noMerge), -1
		for k, r := range ranks {
			if r < best {
				best, bk = r, k
			}
		}
		if bk < 0 {
			break
		}
		syms[bk] = int32(uint32(best))
		syms = append(syms[:bk+1], syms[bk+2:]...)
		ranks = append(ranks[:bk], ranks[bk+1:]...)
		if bk > 0 {
			ranks[bk-1] = m.pair(syms[bk-1], syms[bk])
		}
		if bk < len(ranks) {
			ranks[bk] = m.pair(syms[bk], syms[bk+1])
		}
	}
	sc.syms, sc.ranks = syms, ranks
	return append(dst, syms...)
}

// heapSym is one symbol of encodeHeap's linked list; id < 0 marks a merged-away symbol.
type heapSym struct {
	id         int32
	prev, next int32
}

// heapItem is a candidate merge of the symbol at pos with its right neighbour.
type heapItem struct {
	key uint64 // rank<<32 | merged id
	pos int32
}

func (a heapItem) less(b heapItem) bool {
	return a.key < b.key || (a.key == b.key && a.pos < b.pos)
}

// encodeHeap is encode for long words: O(n log n) with a priority queue of candidate merges
// that are checked again when popped, so stale ones are skipped.
func (m *bpe) encodeHeap(dst []int32, word string, sc *scratch) []int32 {
	n := len(word)
	syms := sc.heapSyms[:0]
	for i := 0; i < n; i++ {
		syms = append(syms, heapSym{id: m.byteTok[word[i]], prev: int32(i - 1), next: int32(i + 1)})
	}
	syms[n-1].next = -1
	h := sc.heap[:0]
	push := func(it heapItem) {
		h = append(h, it)
		for c := len(h) - 1; c > 0; {
			p := (c - 1) / 2
			if !h[c].less(h[p]) {
				break
			}
			h[c], h[p] = h[p], h[c]
			c = p
		}
	}
	pop := func() heapItem {
		top := h[0]
		last := len(h) - 1
		h[0] = h[last]
		h = h[:last]
		for p := 0; ; {
			l, r, s := 2*p+1, 2*p+2, p
			if l < len(h) && h[l].less(h[s]) {
				s = l
			}
			if r < len(h) && h[r].less(h[s]) {
				s = r
			}
			if s == p {
				break
			}
			h[p], h[s] = h[s], h[p]
			p = s
		}
		return top
	}
	for i := 0; i+1 < n; i++ {
		if k := m.pair(syms[i].id, syms[i+1].id); k != noMerge {
			push(heapItem{k, int32(i)})
		}
	}
	for len(h) > 0 {
		it := pop()
		a := &syms[it.pos]
		if a.id < 0 || a.next < 0 {
			continue
		}
		b := &syms[a.next]
		if m.pair(a.id, b.id) != it.key {
			continue
		}
		a.id = int32(uint32(it.key))
		b.id = -1
		a.next = b.next
		if a.next >= 0 {
			syms[a.next].prev = it.pos
			if k := m.pair(a.id, syms[a.next].id); k != noMerge {
				push(heapItem{k, it.pos})
			}
		}
		if a.prev >= 0 {
			if k := m.pair(syms[a.prev].id, a.id); k != noMerge {
				push(heapItem{k, a.prev})
			}
		}
	}
	for i := int32(0); i >= 0; i = syms[i].next {
		dst = append(dst, syms[i].id)
	}
	sc.heapSyms, sc.heap = syms, h
	return dst
}

// scratch is per-goroutine working memory for encoding, with its word cache.
type scratch struct {
	syms     []int32
	ranks    []uint64
	heapSyms []heapSym
	heap     []heapItem
	pieces   []string
	cache    map[string][]int32
}

// cacheWords bounds a scratch's word cache; it is emptied when full.
const (
	cacheWords   = 1 << 16
	cacheMaxWord = 64
)

func newScratch() *scratch {
	return &scratch{cache: make(map[string][]int32, 1024)}
}
