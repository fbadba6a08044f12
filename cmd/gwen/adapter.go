package main

import (
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/layers/safetensors"
	"github.com/gwen-ml/gwen/lora"
)

// attachAdapter runs the PEFT adapter in dir unmerged on m (gwen forward --adapter): each of
// its modules wraps its Linear, and the base is frozen, so only the adapter's tensors get
// gradients. dir "" attaches nothing and returns nil.
func attachAdapter(m *layers.Model, dir string) (*lora.Set, error) {
	if dir == "" {
		return nil, nil
	}
	p, err := lora.Load(dir)
	if err != nil {
		return nil, err
	}
	return lora.AttachPEFT(m, p)
}

// gradTensors are the grad.<name> tensors gwen forward --grads writes: one per trainable tensor,
// the adapter's (under their PEFT keys) when set is not nil, else every parameter of m (zeros
// where no gradient flowed).
func gradTensors(m *layers.Model, set *lora.Set) []safetensors.Tensor {
	ps := m.Params()
	if set != nil {
		ps = set.Params()
	}
	out := make([]safetensors.Tensor, 0, len(ps))
	for _, p := range ps {
		g := p.Grad()
		if g == nil {
			g = make([]float32, len(p.Data))
		}
		out = append(out, safetensors.Tensor{Name: "grad." + p.Name, DType: "F32", Shape: p.Shape, F32: g})
	}
	return out
}
