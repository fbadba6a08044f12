// Package moe owns Qwen3-MoE's sparse MLP: the router, top-k routing, grouped expert dispatch
// (one GEMM per expert) and the router losses (load balancing, z-loss); it knows no attention.
//
// It follows transformers' modeling_qwen3_moe.py (Qwen3MoeSparseMoeBlock and
// load_balancing_loss_func). Register plugs it into layers (layers.RegisterSparse), so that a
// qwen3_moe config builds sparse blocks while layers never imports moe: whoever builds models
// calls moe.Register() first (explicitly: importing moe has no side effect).
package moe

import (
	"fmt"
	"slices"
	"sync"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/layers"
)

// Dimensions: N token rows, D hidden_size, E num_experts, K num_experts_per_tok (top-k),
// I moe_intermediate_size, M = N·K routed token-slots.

var registerOnce sync.Once

// Register makes layers build qwen3_moe configs' sparse layers with this package's Sparse
// (layers.RegisterSparse). Call it once before building or loading MoE models (layers.New,
// layers.Load); calling it again, from any goroutine, does nothing.
func Register() {
	registerOnce.Do(func() {
		layers.RegisterSparse(func(cfg *layers.Config, layer int, newParam func(name string, shape ...int) *autograd.Tensor) (layers.SparseMLP, error) {
			return New(cfg, layer, newParam)
		})
	})
}

// Expert is one SwiGLU expert: down(silu(gate(x)) · up(x)).
type Expert struct {
	Gate, Up, Down *autograd.Tensor // gate, up [I, D]; down [D, I]
}

// Sparse is a Qwen3-MoE sparse MLP block (Qwen3MoeSparseMoeBlock): a router mlp.gate [E, D],
// softmax over E, the top-K experts of each token weighted by their probabilities (renormalised
// over the K when NormTopKProb), summed.
//
// The router matmul and its softmax always run in fp32, also when the model runs in bf16
// mixed precision: routing decisions are discrete, and bf16 logits (8 bits of mantissa) flip
// near-tied choices; the router is 1/(3·I/E) of the block's FLOPs, so this costs nothing.
type Sparse struct {
	Router       *autograd.Tensor // mlp.gate.weight [E, D]
	Experts      []Expert         // mlp.experts.<e>
	TopK         int
	NormTopKProb bool

	last *Routing // the routing of the latest forward, for Stats
}

// New builds the sparse MLP of decoder layer `layer` from the config, creating its parameters
// through newParam with names relative to "model.layers.<layer>." (HF names).
func New(cfg *layers.Config, layer int, newParam func(name string, shape ...int) *autograd.Tensor) (*Sparse, error) {
	E, K, D, I := cfg.NumExperts, cfg.NumExpertsPerTok, cfg.HiddenSize, cfg.MoEIntermediateSize
	switch {
	case E <= 0 || K <= 0 || I <= 0:
		return nil, fmt.Errorf("layer %d: num_experts (%d), num_experts_per_tok (%d) and moe_intermediate_size (%d) must be positive", layer, E, K, I)
	case K > E:
		return nil, fmt.Errorf("layer %d: num_experts_per_tok %d exceeds num_experts %d", layer, K, E)
	}
	s := &Sparse{Router: newParam("mlp.gate.weight", E, D), TopK: K, NormTopKProb: cfg.NormTopKProb}
	for e := 0; e < E; e++ {
		pre := fmt.Sprintf("mlp.experts.%d.", e)
		s.Experts = append(s.Experts, Expert{
			Gate: newParam(pre+"gate_proj.weight", I, D),
			Up:   newParam(pre+"up_proj.weight", I, D),
			Down: newParam(pre+"down_proj.weight", D, I),
		})
	}
	return s, nil
}

// Params lists the block's parameters in HF order: the router, then every expert's gate_proj,
// up_proj, down_proj.
func (s *Sparse) Params() []*autograd.Tensor {
	ps := []*autograd.Tensor{s.Router}
	for _, e := range s.Experts {
		ps = append(ps, e.Gate, e.Up, e.Down)
	}
	return ps
}

// Forward computes the block over x [N, D]: y [N, D] and the router logits [N, E] (fp32, the
// input of LoadBalancingLoss).
func (s *Sparse) Forward(tp *autograd.Tape, x *autograd.Tensor, bf16 bool) (y, routerLogits *autograd.Tensor) {
	routerLogits = autograd.Linear(tp, x, s.Router, false) // fp32 even in bf16 mode: see Sparse
	y, s.last = MixExperts(tp, x, routerLogits, s.Experts, s.TopK, s.NormTopKProb, bf16)
	return y, routerLogits
}

// Routing returns the routing of the latest forward (nil before the first).
func (s *Sparse) Routing() *Routing { return s.last }

// Stats summarises the routing of one forward, for the metrics.
type Stats struct {
	TokensPerExpert  []int   // token-slots routed to each expert (they sum to N·K)
	MaxLoad, MinLoad int     // the largest and smallest entry of TokensPerExpert
	AuxLoss          float64 // this layer's own load-balancing loss (K when perfectly balanced)
}

// Stats reports the load of the latest forward; the zero Stats before the first.
func (s *Sparse) Stats() Stats {
	r := s.last
	if r == nil {
		return Stats{}
	}
	return Stats{
		TokensPerExpert: slices.Clone(r.Counts),
		MaxLoad:         slices.Max(r.Counts),
		MinLoad:         slices.Min(r.Counts),
		AuxLoss:         r.balance(),
	}
}

// ModelStats returns the Stats of every sparse layer of m after a forward, by layer index.
func ModelStats(m *layers.Model) map[int]Stats {
	st := map[int]Stats{}
	for i, b := range m.Blocks {
		if s, ok := b.Sparse.(*Sparse); ok {
			st[i] = s.Stats()
		}
	}
	return st
}
