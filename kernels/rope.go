package kernels

import (
	"fmt"
	"math"
)

// RoPE describes a rotary position embedding the way a Hugging Face config does (rope_theta,
// head_dim, rope_scaling). Zero values mean "absent" and take transformers' defaults.
type RoPE struct {
	Type                          string  // "default", "linear", "dynamic", "yarn" (HF rope_type; "" = default)
	Theta                         float64 // rope_theta
	HeadDim                       int
	Factor                        float64
	MaxPositionEmbeddings         int     // config.max_position_embeddings
	OriginalMaxPositionEmbeddings int     // rope_scaling.original_max_position_embeddings (yarn)
	BetaFast, BetaSlow            float64 // yarn; 0 = HF default (32, 1)
	AttentionFactor               float64 // yarn attention_factor; 0 = HF default
	MScale, MScaleAllDim          float64 // yarn mscale / mscale_all_dim (0 = absent)
	Truncate                      *bool   // yarn truncate; nil = true
}

// InvFreq returns the inverse frequencies [HeadDim/2] and the attention scaling for a forward
// whose largest position is seqLen-1, exactly as transformers' ROPE_INIT_FUNCTIONS compute them
// (fp32 where torch is fp32). Only "dynamic" depends on seqLen, and only once seqLen exceeds
// MaxPositionEmbeddings (HF's dynamic_rope_update). Unknown types and bad values panic: the
// config layer validates them first.
func (r RoPE) InvFreq(seqLen int) (invFreq []float32, attentionScaling float32) {
	dim := r.HeadDim
	if dim <= 0 || dim%2 != 0 || r.Theta <= 0 {
		panic(fmt.Sprintf("kernels: RoPE needs an even HeadDim > 0 and Theta > 0, got HeadDim=%d Theta=%v", dim, r.Theta))
	}
	half := dim / 2
	// base ** (arange(0, dim, 2).float() / dim), every step in float32 as torch does.
	powFreqs := func(base float32) []float32 {
		out := make([]float32, half)
		for i := range out {
			e := float32(2*i) / float32(dim)
			out[i] = float32(math.Pow(float64(base), float64(e)))
		}
		return out
	}
	invert := func(p []float32) []float32 {
		out := make([]float32, len(p))
		for i, v := range p {
			out[i] = 1 / v
		}
		return out
	}
	needFactor := func() {
		if r.Factor <= 0 {
			panic(fmt.Sprintf("kernels: RoPE type %q needs Factor > 0, got %v", r.Type, r.Factor))
		}
	}
	switch r.Type {
	case "", "default":
		return invert(powFreqs(float32(r.Theta))), 1
	case "linear":
		needFactor()
		inv := invert(powFreqs(float32(r.Theta)))
		for i := range inv {
			inv[i] /= float32(r.Factor)
		}
		return inv, 1
	case "dynamic":
		needFactor()
		mpe := r.MaxPositionEmbeddings
		if mpe <= 0 {
			panic("kernels: dynamic RoPE needs MaxPositionEmbeddings > 0")
		}
		if seqLen <= mpe {
			return invert(powFreqs(float32(r.Theta))), 1
		}
		// seq_len is a tensor here, so base' is computed in float32.
		f := float32(r.Factor)
		ratio := f*float32(seqLen)/float32(mpe) - (f - 1)
		scale := float32(math.Pow(float64(ratio), float64(dim)/float64(dim-2)))
		base := float32(r.Theta) * scale
		return invert(powFreqs(base)), 1
	case "yarn":
		return r.yarnInvFreq()
	}
	panic(fmt.Sprintf("kernels: unsupported RoPE type %q (want default, linear, dynamic or yarn)", r.Type))
}

// yarnInvFreq follows transformers' _compute_yarn_parameters (explicit factor; correction
// range from original_max_position_embeddings; floor/ceil unless Truncate is false).
func (r RoPE) yarnInvFreq() ([]float32, float32) {
	if r.Factor <= 0 {
		panic(fmt.Sprintf("kernels: yarn RoPE needs Factor > 0, got %v", r.Factor))
	}
	dim, base, factor := r.HeadDim, r.Theta, r.Factor
	half := dim / 2
	getMScale := func(scale, m float64) float64 {
		if scale <= 1 {
			return 1
		}
		return 0.1*m*math.Log(scale) + 1
	}
	att := r.AttentionFactor
	if att == 0 {
		if r.MScale != 0 && r.MScaleAllDim != 0 {
			att = getMScale(factor, r.MScale) / getMScale(factor, r.MScaleAllDim)
		} else {
			att = getMScale(factor, 1)
		}
	}
	betaFast, betaSlow := r.BetaFast, r.BetaSlow
	if betaFast == 0 {
		betaFast = 32
	}
	if betaSlow == 0 {
		betaSlow = 1
	}
	ompe := r.OriginalMaxPositionEmbeddings
	if ompe == 0 {
		ompe = r.MaxPositionEmbeddings
	}
	if ompe <= 0 {
		panic("kernels: yarn RoPE needs OriginalMaxPositionEmbeddings or MaxPositionEmbeddings > 0")
	}
	correctionDim := func(rot float64) float64 {
		return float64(dim) * math.Log(float64(ompe)/(rot*2*math.Pi)) / (2 * math.Log(base))
	}
	low, high := correctionDim(betaFast), correctionDim(betaSlow)
	if r.Truncate == nil || *r.Truncate {
		low, high = math.Floor(low), math.Ceil(high)
	}
	low, high = max(low, 0), min(high, float64(dim-1))
	if low == high {
		high += 0.001 // transformers' guard against a zero-width ramp
	}
	inv := make([]float32, half)
	for i := range inv {
		e := float32(2*i) / float32(dim)
		pos := float32(math.Pow(float64(float32(base)), float64(e)))
		extra := 1 / pos
		inter := 1 / (float32(factor) * pos)
		ramp := (float32(i) - float32(low)) / float32(high-low)
		ramp = min(max(ramp, 0), 1)
		ef := 1 - ramp // inv_freq_extrapolation_factor
		inv[i] = inter*(1-ef) + extra*ef
	}
	return inv, float32(att)
}

// RoPETables writes cos and sin [seqLen, hd] = cat(f, f).cos()/sin() · attentionScaling with
// f = fp32(pos · invFreq), pos = 0..seqLen-1 (HF's fp32 path, rotate_half layout).
func RoPETables(cos, sin, invFreq []float32, attentionScaling float32, seqLen, hd int) {
	if hd <= 0 || hd%2 != 0 || len(invFreq) != hd/2 || len(cos) != seqLen*hd || len(sin) != seqLen*hd {
		panic(fmt.Sprintf("kernels: RoPETables: seqLen=%d hd=%d (even) need len(invFreq)=%d len(cos)=len(sin)=%d; got %d, %d, %d",
			seqLen, hd, hd/2, seqLen*hd, len(invFreq), len(cos), len(sin)))
	}
	half := hd / 2
	Parallel(seqLen, rowGrain(hd*8), func(lo, hi int) {
		for p := lo; p < hi; p++ {
			for j, f := range invFreq {
				a := float64(float32(p) * f)
				c := float32(math.Cos(a)) * attentionScaling
				s := float32(math.Sin(a)) * attentionScaling
				cos[p*hd+j], cos[p*hd+j+half] = c, c
				sin[p*hd+j], sin[p*hd+j+half] = s, s
			}
		}
	})
}

// RoPEForward rotates x [n, heads, hd] into y (which may alias x): token row i uses table row
// pos[i]. y1 = x1·cos1 − x2·sin1, y2 = x2·cos2 + x1·sin2 (x1, x2 the halves of each head).
func RoPEForward(y, x []float32, pos []int32, cos, sin []float32, n, heads, hd int) {
	checkRoPE("RoPEForward", len(y), len(x), pos, len(cos), len(sin), n, heads, hd)
	half := hd / 2
	Parallel(n, rowGrain(heads*hd), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			p := int(pos[i])
			c, s := cos[p*hd:p*hd+hd], sin[p*hd:p*hd+hd]
			for h := 0; h < heads; h++ {
				o := (i*heads + h) * hd
				ropeRow(y[o:o+hd], x[o:o+hd], c, s, half)
			}
		}
	})
}

// ropeRow rotates one head's row by the table row c, s (yr may be xr).
func ropeRow(yr, xr, c, s []float32, half int) {
	for j := 0; j < half; j++ {
		x1, x2 := xr[j], xr[j+half]
		yr[j] = x1*c[j] - x2*s[j]
		yr[j+half] = x2*c[j+half] + x1*s[j+half]
	}
}

// ropeRowBackward accumulates dr += Rᵀ·g for one head's row.
func ropeRowBackward(dr, g, c, s []float32, half int) {
	for j := 0; j < half; j++ {
		g1, g2 := g[j], g[j+half]
		dr[j] += g1*c[j] + g2*s[j+half]
		dr[j+half] += g2*c[j+half] - g1*s[j]
	}
}

// RoPEBackward accumulates dx += Rᵀ·dy for the rotation RoPEForward applied. Its loop is
// RoPEForward's with the transposed row kernel: kept side by side rather than shared through a
// function value, which the compiler would not inline in the per-row loop.
func RoPEBackward(dx, dy []float32, pos []int32, cos, sin []float32, n, heads, hd int) {
	checkRoPE("RoPEBackward", len(dx), len(dy), pos, len(cos), len(sin), n, heads, hd)
	half := hd / 2
	Parallel(n, rowGrain(heads*hd), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			p := int(pos[i])
			c, s := cos[p*hd:p*hd+hd], sin[p*hd:p*hd+hd]
			for h := 0; h < heads; h++ {
				o := (i*heads + h) * hd
				ropeRowBackward(dx[o:o+hd], dy[o:o+hd], c, s, half)
			}
		}
	})
}

// RoPEForwardRef is the naive reference of RoPEForward (y must not alias x).
func RoPEForwardRef[F float32 | float64](y, x []F, pos []int32, cos, sin []F, n, heads, hd int) {
	checkRoPE("RoPEForwardRef", len(y), len(x), pos, len(cos), len(sin), n, heads, hd)
	half := hd / 2
	for i := 0; i < n; i++ {
		p := int(pos[i])
		for h := 0; h < heads; h++ {
			o := (i*heads + h) * hd
			for j := 0; j < hd; j++ {
				// q·cos + rotate_half(q)·sin, rotate_half(q) = cat(−q2, q1)
				var rot F
				if j < half {
					rot = -x[o+j+half]
				} else {
					rot = x[o+j-half]
				}
				y[o+j] = x[o+j]*cos[p*hd+j] + rot*sin[p*hd+j]
			}
		}
	}
}

// RoPEBackwardRef is the naive reference of RoPEBackward (accumulates).
func RoPEBackwardRef[F float32 | float64](dx, dy []F, pos []int32, cos, sin []F, n, heads, hd int) {
	checkRoPE("RoPEBackwardRef", len(dx), len(dy), pos, len(cos), len(sin), n, heads, hd)
	half := hd / 2
	for i := 0; i < n; i++ {
		p := int(pos[i])
		for h := 0; h < heads; h++ {
			o := (i*heads + h) * hd
			for j := 0; j < hd; j++ {
				// y_j = x_j·cos_j + rot_j·sin_j; x_j appears in y_j and in rot of its partner.
				g := dy[o+j] * cos[p*hd+j]
				if j < half {
					g += dy[o+j+half] * sin[p*hd+j+half] // y_{j+half} has +x_j·sin
				} else {
					g -= dy[o+j-half] * sin[p*hd+j-half] // y_{j-half} has −x_j·sin
				}
				dx[o+j] += g
			}
		}
	}
}

func checkRoPE(name string, ly, lx int, pos []int32, lcos, lsin, n, heads, hd int) {
	if n < 0 || heads <= 0 || hd <= 0 || hd%2 != 0 || ly != n*heads*hd || lx != n*heads*hd ||
		len(pos) != n || lcos%hd != 0 || lcos != lsin {
		panic(fmt.Sprintf("kernels: %s: n=%d heads=%d hd=%d (even) need len(y)=len(x)=%d len(pos)=%d len(cos)=len(sin)=rows·hd; got len(y)=%d len(x)=%d len(pos)=%d len(cos)=%d len(sin)=%d",
			name, n, heads, hd, n*heads*hd, n, ly, lx, len(pos), lcos, lsin))
	}
	rows := lcos / hd
	for i, p := range pos {
		if p < 0 || int(p) >= rows {
			panic(fmt.Sprintf("kernels: %s: pos[%d]=%d outside the %d table rows", name, i, p, rows))
		}
	}
}
