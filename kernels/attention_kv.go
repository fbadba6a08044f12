package kernels

import (
	"fmt"
	"sync"
)

// KVAttnOpts configures AttentionForwardKV.
type KVAttnOpts struct {
	Scale float32 // usually 1/sqrt(hd)
	// Start is nil or [b]: the first valid cache slot of each sequence (left padding). Query
	// slot s attends to slots [min(Start, s), s], so a padding query still sees itself.
	Start []int32
	// BF16: round q and the normalised probabilities to bfloat16 before their products. k and v
	// must already hold bfloat16-rounded values (RoundBF16 them once as they enter the cache)
	// so that no step rounds the whole cache again.
	BF16 bool
}

// kvScratchPool holds one worker's score row (grown to the longest context seen).
var kvScratchPool = sync.Pool{New: func() any { return new([]float32) }}

// AttentionForwardKV is causal grouped-query attention of tn new queries per sequence against a
// key/value cache, for generation (no backward). q, o are [b, tn, h, hd]; k, v are
// [b, kcap, kv, hd] with valid keys in slots [0, past+tn) — the new tokens' keys already
// written at slots past..past+tn-1. Query i sits at slot past+i and attends to the slots
// [min(Start[bi], past+i), past+i]. Equal to AttentionForwardRef over the full past+tn tokens
// with DocStart = min(Start, slot), restricted to the last tn queries. Scratch: one pooled
// score row per worker.
func AttentionForwardKV(o, q, k, v []float32, b, tn, past, kcap, h, kv, hd int, opt KVAttnOpts) {
	if b < 0 || tn < 0 || past < 0 || h <= 0 || kv <= 0 || hd <= 0 || h%kv != 0 || past+tn > kcap ||
		len(q) != b*tn*h*hd || len(o) != b*tn*h*hd || len(k) != b*kcap*kv*hd || len(v) != b*kcap*kv*hd {
		panic(fmt.Sprintf("kernels: AttentionForwardKV: b=%d tn=%d past=%d kcap=%d h=%d kv=%d hd=%d (h a multiple of kv, past+tn <= kcap) need len(q)=len(o)=%d len(k)=len(v)=%d; got len(q)=%d len(o)=%d len(k)=%d len(v)=%d",
			b, tn, past, kcap, h, kv, hd, b*tn*h*hd, b*kcap*kv*hd, len(q), len(o), len(k), len(v)))
	}
	if opt.Start != nil && len(opt.Start) != b {
		panic(fmt.Sprintf("kernels: AttentionForwardKV: len(Start)=%d want b=%d", len(opt.Start), b))
	}
	for bi, s := range opt.Start {
		if s < 0 {
			panic(fmt.Sprintf("kernels: AttentionForwardKV: Start[%d]=%d is negative", bi, s))
		}
	}
	rep := h / kv
	total := past + tn
	vec := kvRowsVec(hd) // whole rows of the cache per call rather than one position at a time
	// One work item is one (sequence, query head); its cost grows with the context length.
	Parallel(b*h, max(1, 1<<14/max(1, tn*total*hd)), func(lo, hi int) {
		sp := kvScratchPool.Get().(*[]float32)
		if cap(*sp) < total+hd {
			*sp = make([]float32, total+hd)
		}
		s := (*sp)[:total]
		qr := (*sp)[total : total+hd]
		defer kvScratchPool.Put(sp)
		for item := lo; item < hi; item++ {
			bi, hh := item/h, item%h
			g := hh / rep
			first := 0
			if opt.Start != nil {
				first = int(opt.Start[bi])
			}
			for i := 0; i < tn; i++ {
				slot := past + i
				j0 := min(first, slot)
				qo := ((bi*tn+i)*h + hh) * hd
				copy(qr, q[qo:qo+hd])
				if opt.BF16 {
					RoundBF16(qr, qr)
				}
				ps := s[j0 : slot+1]
				m := float32(-1e30)
				if vec {
					kvScores(ps, qr, k[((bi*kcap+j0)*kv+g)*hd:], kv*hd, opt.Scale)
					m = max(m, sliceMax(ps))
				} else {
					for j := j0; j <= slot; j++ {
						kr := k[((bi*kcap+j)*kv+g)*hd:][:hd]
						dot := kvDot(qr, kr)
						s[j] = dot * opt.Scale
						m = max(m, s[j])
					}
				}
				inv := 1 / expSubInPlace(ps, m)
				for j := range ps {
					ps[j] *= inv
				}
				if opt.BF16 {
					RoundBF16(ps, ps)
				}
				out := o[qo : qo+hd]
				if vec {
					kvAccum(out, ps, v[((bi*kcap+j0)*kv+g)*hd:], kv*hd)
					continue
				}
				clear(out)
				for j, p := range ps {
					kvAxpy(out, p, v[((bi*kcap+j0+j)*kv+g)*hd:][:hd])
				}
			}
		}
	})
}

// kvDot is Σ a·b: AVX-512 over whole vectors, four scalar accumulators for the rest.
func kvDot(a, b []float32) float32 {
	b = b[:len(a)]
	v, i := dotVec(a, b)
	var s0, s1, s2, s3 float32
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return v + (s0 + s1) + (s2 + s3)
}

// kvAxpy is y += a·x (AVX-512 over whole vectors).
func kvAxpy(y []float32, a float32, x []float32) {
	x = x[:len(y)]
	for i := axpyVec(y, a, x); i < len(y); i++ {
		y[i] += a * x[i]
	}
}
