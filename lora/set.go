package lora

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/kernels"
	"github.com/gwen-ml/gwen/kernels/bf16"
	"github.com/gwen-ml/gwen/layers"
)

// Set is the adapters attached to one model (Attach, AttachPEFT): their parameters, the
// switch that runs the base alone, and the dropout key.
type Set struct {
	Adapters []*Adapter // in the model's module order (HF parameter order)
	Config   Config     // what was attached (R and Alpha; per-module ranks may differ after AttachPEFT)

	model    *layers.Model
	linears  []*layers.Linear // the wrapped Linear of each adapter
	frozen   []*autograd.Tensor
	seed     uint64
	disabled bool
	training bool
	step     int
	micro    int
}

// Params returns the trainable tensors, lora_A then lora_B of each module in model order, each
// named by its PEFT key (base_model.model.<module>.lora_A.weight): the list the optimizer owns,
// whose names key its state and the checkpoint.
func (s *Set) Params() []*autograd.Tensor {
	ps := make([]*autograd.Tensor, 0, 2*len(s.Adapters))
	for _, a := range s.Adapters {
		ps = append(ps, a.A, a.B)
	}
	return ps
}

// SetDisabled(true) makes every adapter a no-op: the model computes the base alone (DPO's
// reference log-probs), recording nothing for the adapters. SetDisabled(false) turns them back on.
//
// With activation checkpointing (layers.Model.Checkpointing) backward re-runs each block's
// forward, reading the switch and the dropout key (Train) as they are then: change neither
// between a forward on a recording tape and its Backward (run DPO's reference forwards before
// the policy's, or after its backward).
func (s *Set) SetDisabled(off bool) { s.disabled = off }

// Disabled reports whether the adapters are switched off.
func (s *Set) Disabled() bool { return s.disabled }

// Train turns dropout on for the forwards that follow, with masks keyed by (step, micro): each
// element's mask is a pure function of (seed, step, micro, module, element index), so no RNG
// state needs saving — a resumed run, and a checkpointed block's recomputation, draw the same
// masks. Call it before each micro-batch's forward with that micro-batch's index (forwards
// with the same key share masks position by position). A set starts in eval mode.
func (s *Set) Train(step, micro int) { s.training, s.step, s.micro = true, step, micro }

// Eval turns dropout off (evaluation, generation, reference forwards).
func (s *Set) Eval() { s.training = false }

// Detach removes the adapters from the model and gives back the gradients Attach froze: the
// model is as it was before Attach.
func (s *Set) Detach() {
	for _, l := range s.linears {
		l.Adapter = nil
	}
	for _, p := range s.frozen {
		p.RequiresGrad = true
	}
	s.linears, s.frozen = nil, nil
}

// dropping reports whether forwards apply dropout now.
func (s *Set) dropping() bool { return s.training && s.Config.Dropout > 0 }

// dropoutKey is the key of one module's masks in this step and micro-batch.
func (s *Set) dropoutKey(module uint64) uint64 {
	k := mix64(s.seed ^ 0x6c6f72612d64726f) // "lora-dro"
	k = mix64(k ^ uint64(s.step))
	k = mix64(k ^ uint64(s.micro))
	return mix64(k ^ module)
}

// dropoutMask draws PEFT's lora_dropout mask for n elements as bits: bit i%16 of mask[i/16] is
// set where element i is kept. One hash, mix64(key + j·φ), serves elements 4j..4j+3: element i
// is kept when its 16-bit lane (bits 16·(i%4) up) is ≥ p·2¹⁶, rounded, so the mask is a pure
// function of the key, the same at any thread count. An adapter draws it once in forward and
// reads it in forward and backward (the dropped input, its gradient).
func (s *Set) dropoutMask(mask []uint16, n int, key uint64) {
	thresh, _ := s.dropoutRule()
	kernels.Parallel(len(mask), dropoutGrain/4, func(lo, hi int) {
		for w := lo; w < hi; w++ {
			var bits uint16
			for q := range 4 { // four groups of four elements, one hash each
				h := mix64(key + uint64(4*w+q)*0x9e3779b97f4a7c15)
				for l := range 4 {
					if h&0xffff >= thresh {
						bits |= 1 << (4*q + l)
					}
					h >>= 16
				}
			}
			mask[w] = bits
		}
	})
}

// dropped sets dst[i] = src[i]·keep where mask keeps element i, else 0 (dst may be src): the
// dropped input. Dropout drops few elements, so every element is scaled and the dropped ones
// are then found by the mask's zero bits.
func dropped(dst, src []float32, mask []uint16, keep float32) {
	kernels.Parallel((len(src)+maskBlock-1)/maskBlock, 16, func(lo, hi int) {
		for blk := lo; blk < hi; blk++ {
			i0, i1 := blk*maskBlock, min((blk+1)*maskBlock, len(src))
			droppedBlock(dst[i0:i1], src[i0:i1], mask[i0/16:], keep)
		}
	})
}

// maskedBits is dropped with the result rounded to bfloat16 bits.
func maskedBits(dst []uint16, src []float32, mask []uint16, keep float32) {
	kernels.Parallel((len(src)+maskBlock-1)/maskBlock, 16, func(lo, hi int) {
		var tmp [maskBlock]float32
		for blk := lo; blk < hi; blk++ {
			i0, i1 := blk*maskBlock, min((blk+1)*maskBlock, len(src))
			droppedBlock(tmp[:i1-i0], src[i0:i1], mask[i0/16:], keep)
			bf16.FromF32s(dst[i0:i1], tmp[:i1-i0])
		}
	})
}

// droppedBlock is dropped on one block that starts at a mask word.
func droppedBlock(dst, src []float32, mask []uint16, keep float32) {
	for j, v := range src {
		dst[j] = v * keep
	}
	zeroDropped(dst, mask, len(src))
}

// zeroDropped sets x[i] = 0 for the first n elements whose bit in mask (element 0 at bit 0 of
// mask[0]) is clear.
func zeroDropped(x []float32, mask []uint16, n int) {
	for w := 0; w*16 < n; w++ {
		for z := ^mask[w]; z != 0; z &= z - 1 {
			if i := w*16 + bits.TrailingZeros16(z); i < n {
				x[i] = 0
			}
		}
	}
}

// maskBlock is how many elements dropped and maskedBits take at a time (a multiple of 16).
const maskBlock = 1024

// dropoutRule is the 16-bit threshold below which an element is dropped, and the scale of the
// kept ones.
func (s *Set) dropoutRule() (thresh uint64, keep float32) {
	p := s.Config.Dropout
	return uint64(math.Round(p * (1 << 16))), float32(1 / (1 - p))
}

// dropoutGrain is how many groups of 4 one core takes at least when drawing a mask.
const dropoutGrain = 1 << 14

// target is one adaptable module of a model.
type target struct {
	name   string // e.g. model.layers.3.mlp.down_proj
	layer  int
	linear *layers.Linear // nil for modules that are not layers.Linear (MoE router and experts)
	expert bool           // a MoE expert projection or router
}

// modules lists the model's 2-D weights as PEFT sees its modules, in HF parameter order: the
// Linears of each block (attention, dense MLP), and, for MoE layers, the router and expert
// projections, which are not Linears.
func modules(m *layers.Model) []target {
	var ts []target
	for i, b := range m.Blocks {
		lin := []*layers.Linear{&b.Attn.Q, &b.Attn.K, &b.Attn.V, &b.Attn.O}
		if b.MLP != nil {
			lin = append(lin, &b.MLP.Gate, &b.MLP.Up, &b.MLP.Down)
		}
		for _, l := range lin {
			ts = append(ts, target{name: strings.TrimSuffix(l.W.Name, ".weight"), layer: i, linear: l})
		}
		if b.Sparse != nil {
			for _, p := range b.Sparse.Params() {
				if len(p.Shape) == 2 {
					ts = append(ts, target{name: strings.TrimSuffix(p.Name, ".weight"), layer: i, expert: true})
				}
			}
		}
	}
	return ts
}

// Attach wraps the Linears that cfg targets with new adapters (PEFT's initialisation from seed,
// or cfg.InitFrom's weights), freezes every parameter of the model (RequiresGrad = false: no
// gradient, no weight-gradient GEMM, nothing for the optimizer), and returns the set, in eval
// mode and enabled. Errors name the key or module; on error the model is unchanged.
//
// Targets follow PEFT: a module matches a name when its path is the name or ends with
// "."+name, restricted to cfg.Layers when given; a pattern must match the whole path;
// "all-linear" takes every projection. Every listed name must match some module. In MoE
// layers, names and all-linear adapt attention only: the experts and router are not
// layers.Linear and cannot carry trainable adapters yet, so a pattern (or a name) that asks
// for them explicitly is refused (Merge applies expert adapters to a model).
func Attach(m *layers.Model, cfg Config, seed uint64) (*Set, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, l := range cfg.Layers {
		if l >= len(m.Blocks) {
			return nil, fmt.Errorf("lora.layers: %d, but the model has layers 0..%d", l, len(m.Blocks)-1)
		}
	}
	targeted := cfg.matcher()
	// Names and all-linear ask for MoE experts only implicitly: they adapt attention there.
	implicit := cfg.TargetModules.Pattern == "" || cfg.TargetModules.Pattern == AllLinear
	all := modules(m)
	var chosen []target
	for _, t := range all {
		if !targeted(t.name, t.layer) {
			continue
		}
		if t.expert {
			if implicit && (isExpertProj(t.name) || cfg.TargetModules.Pattern == AllLinear) {
				continue
			}
			return nil, fmt.Errorf("lora.target_modules %s selects %s, a mixture-of-experts module: adapters on experts and routers cannot be trained yet (they are not layers.Linear); target attention modules or exclude mlp.experts/mlp.gate",
				cfg.TargetModules, t.name)
		}
		chosen = append(chosen, t)
	}
	for _, n := range cfg.TargetModules.Names {
		if !slices.ContainsFunc(all, func(t target) bool { return nameMatches(t.name, n) }) {
			return nil, fmt.Errorf("lora.target_modules: %q names no module of this %s model (its projections: %s)", n, m.Config.ModelType, strings.Join(projNames(m), ", "))
		}
	}
	if len(chosen) == 0 {
		return nil, fmt.Errorf("lora.target_modules %s (layers %v) selects no Linear of this %s model", cfg.TargetModules, cfg.Layers, m.Config.ModelType)
	}
	s := &Set{Config: cfg, model: m, seed: seed}
	sc := scale(cfg.Alpha, cfg.R, cfg.UseRSLoRA)
	for _, t := range chosen {
		if t.linear.Adapter != nil {
			return nil, fmt.Errorf("lora: %s already has an adapter", t.name)
		}
		out, in := t.linear.W.Shape[0], t.linear.W.Shape[1]
		a := newAdapter(s, t.name, cfg.R, in, out, sc)
		a.initPEFT(seed)
		s.Adapters = append(s.Adapters, a)
		s.linears = append(s.linears, t.linear)
	}
	if cfg.InitFrom != "" {
		p, err := Load(cfg.InitFrom)
		if err != nil {
			return nil, fmt.Errorf("lora.init_from: %w", err)
		}
		if err := s.LoadPEFT(p); err != nil {
			return nil, fmt.Errorf("lora.init_from: %w", err)
		}
	}
	s.install()
	return s, nil
}

// AttachPEFT wraps exactly the modules of a loaded PEFT adapter with its weights (each module
// with its own rank and scale) and freezes the model, as Attach does: how `gwen forward
// --adapter` runs an adapter unmerged. (A run that starts from an adapter uses Attach with
// Config.InitFrom, which checks the adapter against the run's targets.) The set's Config is
// the file's: its target_modules and layers_to_transform when they parse, InitFrom p.Dir. The
// modules must be Linears of m with the adapter's shapes; errors name the module.
func AttachPEFT(m *layers.Model, p *PEFT) (*Set, error) {
	cfg := Config{R: p.Config.R, Alpha: p.Config.Alpha, Dropout: p.Config.Dropout, UseRSLoRA: p.Config.UseRSLoRA, InitFrom: p.Dir}
	if cfg.TargetModules.UnmarshalJSON(p.Config.TargetModules) != nil {
		cfg.TargetModules = Targets{}
	}
	_ = jsonInts(p.Config.LayersToTransform, &cfg.Layers)
	mods := map[string]*Module{}
	for i := range p.Modules {
		mods[p.Modules[i].Name] = &p.Modules[i]
	}
	s := &Set{Config: cfg, model: m}
	for _, t := range modules(m) { // model order
		mod := mods[t.name]
		if mod == nil {
			continue
		}
		delete(mods, t.name)
		switch {
		case t.expert:
			return nil, fmt.Errorf("lora: %s: module %s is a mixture-of-experts module; adapters on experts cannot run unmerged (merge the adapter instead)", p.file(), mod.Name)
		case t.linear.Adapter != nil:
			return nil, fmt.Errorf("lora: %s already has an adapter", mod.Name)
		case t.linear.W.Shape[0] != mod.Out || t.linear.W.Shape[1] != mod.In:
			return nil, fmt.Errorf("lora: %s: %s and %s make a [%d, %d] update for %s, which is %v", p.file(), mod.keyA(), mod.keyB(), mod.Out, mod.In, t.linear.W.Name, t.linear.W.Shape)
		}
		a := newAdapter(s, mod.Name, mod.R, mod.In, mod.Out, mod.Scale)
		copy(a.A.Data, mod.A)
		copy(a.B.Data, mod.B)
		s.Adapters = append(s.Adapters, a)
		s.linears = append(s.linears, t.linear)
	}
	for _, mod := range p.Modules { // in name order, for a stable message
		if mods[mod.Name] != nil {
			return nil, fmt.Errorf("lora: %s: module %s is not a projection of this %s model", p.file(), mod.Name, m.Config.ModelType)
		}
	}
	s.install()
	return s, nil
}

// install freezes the model's parameters and puts the adapters on their Linears.
func (s *Set) install() {
	for _, p := range s.model.Params() {
		if p.RequiresGrad {
			p.RequiresGrad = false
			s.frozen = append(s.frozen, p)
		}
	}
	for i, a := range s.Adapters {
		s.linears[i].Adapter = a
	}
}

// LoadPEFT copies a PEFT adapter's weights into the set (init_from, or an adapter checkpoint).
// The adapter must adapt exactly the set's modules, with the set's rank, shapes and scale
// (lora_alpha, use_rslora); otherwise nothing is copied and the error names the module.
func (s *Set) LoadPEFT(p *PEFT) error {
	have := map[string]*Module{}
	for i := range p.Modules {
		have[p.Modules[i].Name] = &p.Modules[i]
	}
	mine := map[string]bool{}
	for _, a := range s.Adapters {
		mine[a.Name] = true
		mod := have[a.Name]
		switch {
		case mod == nil:
			return fmt.Errorf("%s: no adapter for module %s, which this run's target_modules %s (layers %v) select", p.file(), a.Name, s.Config.TargetModules, s.Config.Layers)
		case mod.R != a.R:
			return fmt.Errorf("%s: module %s has rank %d; this run's is %d", p.file(), a.Name, mod.R, a.R)
		case mod.In != a.In || mod.Out != a.Out:
			return fmt.Errorf("%s: module %s adapts a [%d, %d] weight; the model's is [%d, %d] (another base model?)", p.file(), a.Name, mod.Out, mod.In, a.Out, a.In)
		case mod.Scale != a.Scale:
			return fmt.Errorf("%s: module %s has scale %g (lora_alpha %g, use_rslora %v); this run's is %g (alpha %g, use_rslora %v)",
				p.file(), a.Name, mod.Scale, p.Config.Alpha, p.Config.UseRSLoRA, a.Scale, s.Config.Alpha, s.Config.UseRSLoRA)
		}
	}
	for _, mod := range p.Modules {
		if !mine[mod.Name] {
			return fmt.Errorf("%s: adapts module %s, which this run's target_modules %s (layers %v) do not select", p.file(), mod.Name, s.Config.TargetModules, s.Config.Layers)
		}
	}
	for _, a := range s.Adapters {
		copy(a.A.Data, have[a.Name].A)
		copy(a.B.Data, have[a.Name].B)
	}
	return nil
}

// isExpertProj reports whether a module path is an expert's projection (mlp.experts.<e>.*).
func isExpertProj(name string) bool { return strings.Contains(name, ".mlp.experts.") }

// projNames lists the distinct last path elements of the model's adaptable modules.
func projNames(m *layers.Model) []string {
	var ns []string
	for _, t := range modules(m) {
		n := t.name[strings.LastIndexByte(t.name, '.')+1:]
		if !slices.Contains(ns, n) {
			ns = append(ns, n)
		}
	}
	return ns
}
