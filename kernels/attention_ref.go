package kernels

import (
	"fmt"
	"math"
)

// AttentionForwardRef is the naive reference of AttentionForward: for every (batch, head) it
// materialises the full T×T score matrix, then softmax, then P·V. With opt.BF16 the operands q,
// k, v and the normalised probabilities P are rounded to bfloat16 before their products.
func AttentionForwardRef[F float32 | float64](o, lse, q, k, v []F, b, t, h, kv, hd int, opt AttnOpts) {
	checkAttention("AttentionForwardRef", len(o), len(lse), len(q), len(k), len(v), b, t, h, kv, hd, opt)
	rnd := refRounder[F](opt.BF16)
	scale := float64(opt.Scale)
	s := make([]float64, t*t)
	for bi := 0; bi < b; bi++ {
		for hi := 0; hi < h; hi++ {
			g := hi / (h / kv)
			for i := 0; i < t; i++ {
				lo := attnFirstKey(opt.DocStart, bi, t, i)
				m := math.Inf(-1)
				for j := lo; j <= i; j++ {
					var dot float64
					for c := 0; c < hd; c++ {
						dot += float64(rnd(q[((bi*t+i)*h+hi)*hd+c])) * float64(rnd(k[((bi*t+j)*kv+g)*hd+c]))
					}
					s[i*t+j] = dot * scale
					m = max(m, s[i*t+j])
				}
				var sum float64
				for j := lo; j <= i; j++ {
					sum += math.Exp(s[i*t+j] - m)
				}
				l := m + math.Log(sum)
				lse[(bi*h+hi)*t+i] = F(l)
				out := o[((bi*t+i)*h+hi)*hd:][:hd]
				acc := make([]float64, hd)
				for j := lo; j <= i; j++ {
					p := float64(rnd(F(math.Exp(s[i*t+j] - l))))
					for c := 0; c < hd; c++ {
						acc[c] += p * float64(rnd(v[((bi*t+j)*kv+g)*hd+c]))
					}
				}
				for c := range out {
					out[c] = F(acc[c])
				}
			}
		}
	}
}

// AttentionBackwardRef is the naive reference of AttentionBackward (accumulates into dq, dk,
// dv): P = exp(S − lse), D = rowsum(dO∘O), dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P∘(dP − D),
// dQ += scale·dS·K, dK += scale·dSᵀ·Q. With opt.BF16 every product's operands are rounded to
// bfloat16: q, k, v and P as in the forward, dO, and scale·dS (D is summed from fp32 dO).
func AttentionBackwardRef[F float32 | float64](dq, dk, dv, do, q, k, v, o, lse []F, b, t, h, kv, hd int, opt AttnOpts) {
	checkAttention("AttentionBackwardRef", len(o), len(lse), len(q), len(k), len(v), b, t, h, kv, hd, opt)
	checkAttentionGrads("AttentionBackwardRef", len(dq), len(dk), len(dv), len(do), b, t, h, kv, hd)
	rnd := refRounder[F](opt.BF16)
	scale := float64(opt.Scale)
	qi := func(bi, i, hi, c int) int { return ((bi*t+i)*h+hi)*hd + c }
	ki := func(bi, j, g, c int) int { return ((bi*t+j)*kv+g)*hd + c }
	for bi := 0; bi < b; bi++ {
		for hi := 0; hi < h; hi++ {
			g := hi / (h / kv)
			for i := 0; i < t; i++ {
				lo := attnFirstKey(opt.DocStart, bi, t, i)
				l := float64(lse[(bi*h+hi)*t+i])
				var dd float64
				for c := 0; c < hd; c++ {
					dd += float64(do[qi(bi, i, hi, c)]) * float64(o[qi(bi, i, hi, c)])
				}
				for j := lo; j <= i; j++ {
					var dot float64
					for c := 0; c < hd; c++ {
						dot += float64(rnd(q[qi(bi, i, hi, c)])) * float64(rnd(k[ki(bi, j, g, c)]))
					}
					p := math.Exp(dot*scale - l)
					pr := float64(rnd(F(p)))
					var dp float64
					for c := 0; c < hd; c++ {
						dor := float64(rnd(do[qi(bi, i, hi, c)]))
						dv[ki(bi, j, g, c)] += F(pr * dor)
						dp += dor * float64(rnd(v[ki(bi, j, g, c)]))
					}
					ds := float64(rnd(F(p * (dp - dd) * scale)))
					for c := 0; c < hd; c++ {
						dq[qi(bi, i, hi, c)] += F(ds * float64(rnd(k[ki(bi, j, g, c)])))
						dk[ki(bi, j, g, c)] += F(ds * float64(rnd(q[qi(bi, i, hi, c)])))
					}
				}
			}
		}
	}
}

// refRounder returns bf16 rounding (through float32) when on, else the identity.
func refRounder[F float32 | float64](on bool) func(F) F {
	if !on {
		return func(x F) F { return x }
	}
	return func(x F) F { return F(RoundBF16Value(float32(x))) }
}

// attnFirstKey is the first key position query i of sequence bi may attend to.
func attnFirstKey(docStart []int32, bi, t, i int) int {
	if docStart == nil {
		return 0
	}
	return int(docStart[bi*t+i])
}

func checkAttention(name string, lo, llse, lq, lk, lv, b, t, h, kv, hd int, opt AttnOpts) {
	if b < 0 || t < 0 || h <= 0 || kv <= 0 || hd <= 0 || h%kv != 0 ||
		lo != b*t*h*hd || lq != b*t*h*hd || lk != b*t*kv*hd || lv != b*t*kv*hd || llse != b*h*t {
		panic(fmt.Sprintf("kernels: %s: b=%d t=%d h=%d kv=%d hd=%d (h a multiple of kv) need len(q)=len(o)=%d len(k)=len(v)=%d len(lse)=%d; got len(q)=%d len(o)=%d len(k)=%d len(v)=%d len(lse)=%d",
			name, b, t, h, kv, hd, b*t*h*hd, b*t*kv*hd, b*h*t, lq, lo, lk, lv, llse))
	}
	if opt.DocStart != nil {
		if len(opt.DocStart) != b*t {
			panic(fmt.Sprintf("kernels: %s: len(DocStart)=%d want b·t=%d", name, len(opt.DocStart), b*t))
		}
		for idx, s := range opt.DocStart {
			if s < 0 || int(s) > idx%t {
				panic(fmt.Sprintf("kernels: %s: DocStart[%d]=%d must lie in [0, %d] (the token's own position)", name, idx, s, idx%t))
			}
		}
	}
}

func checkAttentionGrads(name string, ldq, ldk, ldv, ldo, b, t, h, kv, hd int) {
	if ldq != b*t*h*hd || ldo != b*t*h*hd || ldk != b*t*kv*hd || ldv != b*t*kv*hd {
		panic(fmt.Sprintf("kernels: %s: b=%d t=%d h=%d kv=%d hd=%d need len(dq)=len(do)=%d len(dk)=len(dv)=%d; got len(dq)=%d len(do)=%d len(dk)=%d len(dv)=%d",
			name, b, t, h, kv, hd, b*t*h*hd, b*t*kv*hd, ldq, ldo, ldk, ldv))
	}
}
