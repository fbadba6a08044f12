package kernels

import (
	"math"
	"testing"
)

// One cached key: the output is its value whatever the scores.
func TestAttentionKVHand(t *testing.T) {
	// kcap 3, past 0, tn 1: one query at slot 0 sees only key 0.
	q := []float32{1, 2}
	k := []float32{3, -1, 99, 99, 99, 99}
	v := []float32{0.5, 7, 99, 99, 99, 99}
	o := make([]float32, 2)
	AttentionForwardKV(o, q, k, v, 1, 1, 0, 3, 1, 1, 2, KVAttnOpts{Scale: 0.5})
	closeTo(t, "o", o, []float32{0.5, 7}, 0, 0)
	// A query whose Start lies past its own slot (a left-padding position) sees itself only.
	AttentionForwardKV(o, q, k, v, 1, 1, 0, 3, 1, 1, 2, KVAttnOpts{Scale: 0.5, Start: []int32{2}})
	closeTo(t, "o padded", o, []float32{0.5, 7}, 0, 0)
	// Two keys with equal scores (q = 0) average their values; slot 2 is beyond past+tn.
	q0 := []float32{0, 0}
	k2 := []float32{1, 2, 3, 4, 99, 99}
	v2 := []float32{10, 20, 30, 40, 99, 99}
	AttentionForwardKV(o, q0, k2, v2, 1, 1, 1, 3, 1, 1, 2, KVAttnOpts{Scale: 1})
	closeTo(t, "o mean", o, []float32{20, 30}, 1e-6, 0)
}

// The cached kernel equals the naive full attention (float64) on the last tn queries, at sizes
// from one decode step to a chunk, with GQA, left-padding starts, a cache larger than the
// context, a parallel split over heads and bf16 operands.
func TestAttentionKVMatchesRef(t *testing.T) {
	cases := []struct {
		b, past, tn, kcap, h, kv, hd int
		start                        []int32
		bf16                         bool
	}{
		{1, 0, 5, 5, 2, 1, 8, nil, false},
		{2, 7, 1, 12, 4, 2, 8, []int32{0, 3}, false},
		{2, 13, 4, 20, 6, 2, 16, []int32{5, 0}, false},
		{1, 0, 6, 9, 4, 4, 8, []int32{4}, false}, // prefill with padding queries before Start
		{3, 290, 3, 300, 8, 2, 32, []int32{0, 17, 200}, false},
		{2, 9, 2, 11, 4, 2, 8, []int32{1, 0}, true},
	}
	for n, c := range cases {
		rng := newRNG(uint64(100 + n))
		total := c.past + c.tn
		qf := randF64(rng, c.b*total*c.h*c.hd, 1)
		kf := randF64(rng, c.b*total*c.kv*c.hd, 1)
		vf := randF64(rng, c.b*total*c.kv*c.hd, 1)
		doc := make([]int32, c.b*total)
		for bi := 0; bi < c.b; bi++ {
			for s := 0; s < total; s++ {
				if c.start != nil {
					doc[bi*total+s] = min(c.start[bi], int32(s))
				}
			}
		}
		scale := float32(0.35)
		// The reference sees float32-valued inputs in float64.
		q64, k64, v64 := to64(to32(qf)), to64(to32(kf)), to64(to32(vf))
		oRef := make([]float64, len(q64))
		lse := make([]float64, c.b*c.h*total)
		AttentionForwardRef(oRef, lse, q64, k64, v64, c.b, total, c.h, c.kv, c.hd, AttnOpts{Scale: scale, DocStart: doc, BF16: c.bf16})

		// Cache layout [b, kcap, kv, hd], filled with junk beyond the valid slots.
		k := randF32(rng, c.b*c.kcap*c.kv*c.hd, 50)
		v := randF32(rng, c.b*c.kcap*c.kv*c.hd, 50)
		rowKV := c.kv * c.hd
		for bi := 0; bi < c.b; bi++ {
			copy(k[bi*c.kcap*rowKV:], to32(kf[bi*total*rowKV:(bi+1)*total*rowKV]))
			copy(v[bi*c.kcap*rowKV:], to32(vf[bi*total*rowKV:(bi+1)*total*rowKV]))
		}
		if c.bf16 { // the cache holds bf16-rounded keys and values (KVAttnOpts.BF16)
			RoundBF16(k, k)
			RoundBF16(v, v)
		}
		rowQ := c.h * c.hd
		q := make([]float32, c.b*c.tn*rowQ)
		want := make([]float64, c.b*c.tn*rowQ)
		for bi := 0; bi < c.b; bi++ {
			copy(q[bi*c.tn*rowQ:], to32(qf[(bi*total+c.past)*rowQ:(bi+1)*total*rowQ]))
			copy(want[bi*c.tn*rowQ:], oRef[(bi*total+c.past)*rowQ:(bi+1)*total*rowQ])
		}
		o := make([]float32, len(q))
		AttentionForwardKV(o, q, k, v, c.b, c.tn, c.past, c.kcap, c.h, c.kv, c.hd, KVAttnOpts{Scale: scale, Start: c.start, BF16: c.bf16})
		atol := 2e-6
		if c.bf16 {
			atol = 2e-3 // a bf16 rounding of P may flip on a last-bit difference in the scores
			// and the rounding must show: fp32 attention lies farther away than fp32 noise.
			o32 := make([]float32, len(q))
			AttentionForwardKV(o32, q, k, v, c.b, c.tn, c.past, c.kcap, c.h, c.kv, c.hd, KVAttnOpts{Scale: scale, Start: c.start})
			worst := 0.0
			for i := range o32 {
				worst = max(worst, math.Abs(float64(o32[i]-o[i])))
			}
			if worst < 1e-4 {
				t.Errorf("case %d: bf16 output within %.3g of fp32: operands were not rounded", n, worst)
			}
		}
		closeTo(t, label("case %d o", n), to64(o), want, atol, 1e-5)
	}
}

func TestAttentionKVShapePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("past+tn > kcap did not panic")
		}
	}()
	AttentionForwardKV(make([]float32, 4), make([]float32, 4), make([]float32, 8), make([]float32, 8), 1, 2, 3, 4, 1, 1, 2, KVAttnOpts{Scale: 1})
}

func to64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// The row kernels (kvScores, kvAccum) compute what the per-position path does, in the same
// order: the outputs agree to the bit, fp32 and bf16, decoding and a prefill chunk, GQA.
func TestAttentionKVRowKernelsBitIdentical(t *testing.T) {
	if !kvRowsVec(64) {
		t.Skip("no AVX-512 here: AttentionForwardKV runs the per-position path only")
	}
	for _, c := range []struct{ past, tn, hd int }{{0, 1, 64}, {200, 1, 64}, {37, 5, 128}, {9, 3, 16}, {5, 2, 80}} {
		for _, bf16 := range []bool{false, true} {
			b, h, kv, kcap := 2, 4, 2, c.past+c.tn+3
			rng := newRNG(uint64(c.past + c.hd))
			q := randF32(rng, b*c.tn*h*c.hd, 1)
			k := randF32(rng, b*kcap*kv*c.hd, 1)
			v := randF32(rng, b*kcap*kv*c.hd, 1)
			if bf16 {
				RoundBF16(k, k)
				RoundBF16(v, v)
			}
			opt := KVAttnOpts{Scale: 0.125, BF16: bf16, Start: []int32{0, int32(c.past / 2)}}
			o1, o2 := make([]float32, len(q)), make([]float32, len(q))
			AttentionForwardKV(o1, q, k, v, b, c.tn, c.past, kcap, h, kv, c.hd, opt)
			kvRowsOn = false
			AttentionForwardKV(o2, q, k, v, b, c.tn, c.past, kcap, h, kv, c.hd, opt)
			kvRowsOn = true
			for i := range o1 {
				if math.Float32bits(o1[i]) != math.Float32bits(o2[i]) {
					t.Fatalf("past=%d tn=%d hd=%d bf16=%v: o[%d] = %v with the row kernels, %v per position", c.past, c.tn, c.hd, bf16, i, o1[i], o2[i])
				}
			}
		}
	}
}
