package layers

import (
	"fmt"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/kernels"
)

// KVCache holds what generation keeps between forwards: per decoder layer, the keys (after
// QK-norm and RoPE, as transformers' DynamicCache stores them) and the values of every token
// seen so far, for B rows.
//
// Rows of different prompt lengths are left-padded: all rows share the slot count Len, and
// row r's real tokens begin at slot Start[r]. Slots before Start[r] are never attended to by
// the row's real tokens, and the row's positions count from Start[r] (position = slot −
// Start[r]), as transformers derives position_ids from the attention mask. Each Forward with
// the cache appends T slots to every row.
type KVCache struct {
	B, Cap int         // rows, slots per row
	Len    int         // filled slots (the same in every row)
	Start  []int32     // [B] first real slot of each row; set before the first Forward
	K, V   [][]float32 // per layer [B, Cap, KV, hd]

	kv, hd int
}

// NewKVCache allocates a cache for b rows of up to capacity tokens each (prompt + new).
func NewKVCache(cfg *Config, b, capacity int) *KVCache {
	if b <= 0 || capacity <= 0 {
		panic(fmt.Sprintf("layers.NewKVCache: %d rows of %d slots", b, capacity))
	}
	c := &KVCache{B: b, Cap: capacity, Start: make([]int32, b), kv: cfg.NumKeyValueHeads, hd: cfg.HeadDim}
	n := b * capacity * c.kv * c.hd
	for i := 0; i < cfg.NumHiddenLayers; i++ {
		c.K = append(c.K, make([]float32, n))
		c.V = append(c.V, make([]float32, n))
	}
	return c
}

// Truncate forgets every slot from n on (speculative decoding rejects draft tokens this way).
func (c *KVCache) Truncate(n int) {
	if n < 0 || n > c.Len {
		panic(fmt.Sprintf("layers.KVCache.Truncate(%d) with %d slots filled", n, c.Len))
	}
	c.Len = n
}

// positions checks a cached forward's input and returns its position ids: by default each
// row continues from its cached length (slot − Start, never below 0 on padding slots).
func (c *KVCache) positions(tp *autograd.Tape, in Input, layers int) []int32 {
	switch {
	case tp.Records():
		panic("layers.Forward: a KV cache is for inference; pass a nil tape")
	case in.DocStart != nil:
		panic("layers.Forward: DocStart and a KV cache exclude each other (the cache's Start marks each row's first token)")
	case in.B != c.B || len(c.Start) != c.B:
		panic(fmt.Sprintf("layers.Forward: batch of %d rows, KV cache of %d rows (%d starts)", in.B, c.B, len(c.Start)))
	case c.Len+in.T > c.Cap:
		panic(fmt.Sprintf("layers.Forward: %d cached + %d new tokens exceed the KV cache's %d slots", c.Len, in.T, c.Cap))
	case len(c.K) != layers:
		panic(fmt.Sprintf("layers.Forward: KV cache has %d layers, the model %d", len(c.K), layers))
	}
	if in.Pos != nil {
		return in.Pos
	}
	pos := make([]int32, in.B*in.T)
	for r := 0; r < in.B; r++ {
		for j := 0; j < in.T; j++ {
			pos[r*in.T+j] = max(0, int32(c.Len+j)-c.Start[r])
		}
	}
	return pos
}

// attend appends the new keys and values [B·T, KV·hd] of one layer to the cache and returns
// the attention of the new queries [B·T, H·hd] over every cached slot of their row.
func (c *KVCache) attend(layer int, q, k, v *autograd.Tensor, b, t, h int, scale float32, bf16 bool) *autograd.Tensor {
	kv, hd := c.kv, c.hd
	row := kv * hd
	K, V := c.K[layer], c.V[layer]
	for r := 0; r < b; r++ {
		dst := (r*c.Cap + c.Len) * row
		copy(K[dst:dst+t*row], k.Data[r*t*row:(r+1)*t*row])
		copy(V[dst:dst+t*row], v.Data[r*t*row:(r+1)*t*row])
		if bf16 { // rounded once on entry, not at every step (kernels.KVAttnOpts.BF16)
			kernels.RoundBF16(K[dst:dst+t*row], K[dst:dst+t*row])
			kernels.RoundBF16(V[dst:dst+t*row], V[dst:dst+t*row])
		}
	}
	if c.Len == 0 {
		// Prefill: the new tokens are the whole context; the training kernel serves.
		var doc []int32
		for r, s := range c.Start {
			if s == 0 {
				continue
			}
			if doc == nil {
				doc = make([]int32, b*t)
			}
			for j := 0; j < t; j++ {
				doc[r*t+j] = min(s, int32(j))
			}
		}
		return autograd.Attention(nil, q, k, v, b, t, h, kv, hd, kernels.AttnOpts{Scale: scale, DocStart: doc, BF16: bf16})
	}
	o := autograd.Zeros(b*t, h*hd)
	kernels.AttentionForwardKV(o.Data, q.Data, K, V, b, t, c.Len, c.Cap, h, kv, hd, kernels.KVAttnOpts{Scale: scale, Start: c.Start, BF16: bf16})
	return o
}
