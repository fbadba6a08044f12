package lora_test

import (
	"fmt"

	"github.com/gwen-ml/gwen/internal/golden"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/lora"
)

// Attach rank-8 adapters to the attention projections of layer 1: the optimizer gets their
// tensors, named by PEFT keys; the base is frozen.
func ExampleAttach() {
	m, err := layers.Load(golden.Dir("tiny-dense"))
	if err != nil {
		panic(err)
	}
	cfg := lora.Config{R: 8, Alpha: 16, TargetModules: lora.Targets{Names: []string{"q_proj", "v_proj"}}, Layers: []int{1}}
	set, err := lora.Attach(m, cfg, 42)
	if err != nil {
		panic(err)
	}
	for _, p := range set.Params() {
		fmt.Println(p.Name, p.Shape)
	}
	fmt.Println("base trainable:", m.Params()[0].RequiresGrad)
	// Output:
	// base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight [8 64]
	// base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight [96 8]
	// base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight [8 64]
	// base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight [48 8]
	// base trainable: false
}
