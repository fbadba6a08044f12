package moe

import (
	"fmt"
	"math"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/layers"
)

// LoadBalancingLoss is transformers' load_balancing_loss_func (Switch Transformer's auxiliary
// loss) over the router logits of every sparse layer, pooled into one set of R rows:
//
//	aux = E · Σ_e f_e · P̄_e,  f_e = (slots of the R rows' top-K that are e) / R,  P̄_e = mean_r softmax(l_r)_e
//
// f counts all K slots (not divided by K), so perfectly balanced routing gives aux = K. The
// loss is differentiable w.r.t. the logits through P̄; the top-K choice is not. It returns the
// scalar tensor (on the tape when any logits require a gradient) and its float64 value.
func LoadBalancingLoss(tp *autograd.Tape, routerLogits []*autograd.Tensor, numExperts, topK int) (loss *autograd.Tensor, value float64) {
	E := numExperts
	if E <= 0 || topK <= 0 || topK > E {
		panic(fmt.Sprintf("moe.LoadBalancingLoss: num_experts %d, top_k %d", E, topK))
	}
	R := routerRows("moe.LoadBalancingLoss", routerLogits, E)
	loss = autograd.Zeros(1)
	if R == 0 {
		return loss, 0
	}
	probs := make([][]float32, len(routerLogits))
	count := make([]float64, E) // top-K slots per expert
	psum := make([]float64, E)  // Σ_r P[r, e]
	idx := make([]int32, topK)
	for i, l := range routerLogits {
		n := len(l.Data) / E
		probs[i] = make([]float32, n*E)
		for t := 0; t < n; t++ {
			p := probs[i][t*E : (t+1)*E]
			softmaxRow(p, l.Data[t*E:(t+1)*E])
			chooseTopK(idx, p)
			for _, e := range idx {
				count[e]++
			}
			for e, v := range p {
				psum[e] += float64(v)
			}
		}
	}
	for e := range count {
		value += count[e] * psum[e]
	}
	value *= float64(E) / (float64(R) * float64(R))
	loss.Data[0] = float32(value)
	if !tp.Recording(routerLogits...) {
		return loss, value
	}
	loss.RequiresGrad = true
	tp.Record(func() {
		g := loss.Grad()
		if g == nil {
			return
		}
		// d aux / d P[r, e] = E·count_e / R², then through each row's softmax.
		dp := make([]float64, E)
		for e := range dp {
			dp[e] = float64(g[0]) * float64(E) * count[e] / (float64(R) * float64(R))
		}
		for i, l := range routerLogits {
			if l.RequiresGrad {
				softmaxBackward(l.GradBuf(), probs[i], dp, E)
			}
		}
	})
	return loss, value
}

// softmaxBackward accumulates dl[r] += p[r] ⊙ (dp − <p[r], dp>) for every row r of p [R, E],
// with the same upstream gradient dp [E] in every row.
func softmaxBackward(dl, p []float32, dp []float64, E int) {
	for t := 0; t < len(p)/E; t++ {
		row := p[t*E : (t+1)*E]
		var dot float64
		for e, v := range row {
			dot += float64(v) * dp[e]
		}
		for e, v := range row {
			dl[t*E+e] += float32(float64(v) * (dp[e] - dot))
		}
	}
}

// RouterZLoss is ST-MoE's router z-loss, the mean over all R rows of logsumexp(l_r)², which
// keeps the router logits small. Transformers' Qwen3-MoE has no such term; it is an option.
func RouterZLoss(tp *autograd.Tape, routerLogits []*autograd.Tensor, numExperts int) (loss *autograd.Tensor, value float64) {
	E := numExperts
	R := routerRows("moe.RouterZLoss", routerLogits, E)
	loss = autograd.Zeros(1)
	if R == 0 {
		return loss, 0
	}
	lse := make([][]float64, len(routerLogits))
	for i, l := range routerLogits {
		n := len(l.Data) / E
		lse[i] = make([]float64, n)
		for t := 0; t < n; t++ {
			row := l.Data[t*E : (t+1)*E]
			m := float64(row[0])
			for _, v := range row {
				m = max(m, float64(v))
			}
			var s float64
			for _, v := range row {
				s += math.Exp(float64(v) - m)
			}
			lse[i][t] = m + math.Log(s)
			value += lse[i][t] * lse[i][t]
		}
	}
	value /= float64(R)
	loss.Data[0] = float32(value)
	if !tp.Recording(routerLogits...) {
		return loss, value
	}
	loss.RequiresGrad = true
	tp.Record(func() {
		g := loss.Grad()
		if g == nil {
			return
		}
		for i, l := range routerLogits {
			if !l.RequiresGrad {
				continue
			}
			dl := l.GradBuf()
			for t, z := range lse[i] { // d z² / d l = 2z·softmax(l)
				c := float64(g[0]) * 2 * z / float64(R)
				for e := t * E; e < (t+1)*E; e++ {
					dl[e] += float32(c * math.Exp(float64(l.Data[e])-z))
				}
			}
		}
	})
	return loss, value
}

// AddScaled returns the scalar a + coef·b on the tape (how the router losses join the
// language-model loss).
func AddScaled(tp *autograd.Tape, a, b *autograd.Tensor, coef float64) *autograd.Tensor {
	if len(a.Data) != 1 || len(b.Data) != 1 {
		panic(fmt.Sprintf("moe.AddScaled: %v + coef·%v, want scalars", a.Shape, b.Shape))
	}
	out := autograd.New([]float32{float32(float64(a.Data[0]) + coef*float64(b.Data[0]))}, a.Shape...)
	if !tp.Recording(a, b) {
		return out
	}
	out.RequiresGrad = true
	tp.Record(func() {
		g := out.Grad()
		if g == nil {
			return
		}
		if a.RequiresGrad {
			a.GradBuf()[0] += g[0]
		}
		if b.RequiresGrad {
			b.GradBuf()[0] += float32(coef * float64(g[0]))
		}
	})
	return out
}

// RouterLosses are the values AddRouterLosses added.
type RouterLosses struct {
	Aux, Z float64 // load-balancing loss and router z-loss (before their coefficients)
}

// AddRouterLosses returns ce + router_aux_loss_coef·aux (+ zCoef·z when zCoef > 0) over the
// router logits of a forward, as transformers' Qwen3MoeForCausalLM forms its loss with
// output_router_logits. It adds the term whatever cfg.OutputRouterLogits says (transformers
// adds it only when that is true): whether to train with it is the caller's choice. With no
// router logits (a dense model) it returns ce unchanged.
func AddRouterLosses(tp *autograd.Tape, ce *autograd.Tensor, routerLogits []*autograd.Tensor, cfg *layers.Config, zCoef float64) (*autograd.Tensor, RouterLosses) {
	var v RouterLosses
	if len(routerLogits) == 0 {
		return ce, v
	}
	aux, a := LoadBalancingLoss(tp, routerLogits, cfg.NumExperts, cfg.NumExpertsPerTok)
	v.Aux = a
	total := AddScaled(tp, ce, aux, cfg.RouterAuxLossCoef)
	if zCoef > 0 {
		z, zv := RouterZLoss(tp, routerLogits, cfg.NumExperts)
		v.Z = zv
		total = AddScaled(tp, total, z, zCoef)
	}
	return total, v
}

// routerRows is the number of token rows in routerLogits ([N, E] per sparse layer); it panics,
// naming the loss fn, when a layer's logits are not whole rows of E.
func routerRows(fn string, routerLogits []*autograd.Tensor, E int) int {
	R := 0
	for _, l := range routerLogits {
		if E <= 0 || len(l.Data)%E != 0 {
			panic(fmt.Sprintf("%s: router logits %v for %d experts", fn, l.Shape, E))
		}
		R += len(l.Data) / E
	}
	return R
}
