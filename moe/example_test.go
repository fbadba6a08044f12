package moe_test

import (
	"fmt"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/moe"
)

// Four tokens, four experts, top-2: token t prefers experts t and t+1 (mod 4), so every expert
// gets two of the eight slots and the mean router probabilities are uniform. Perfect balance
// gives aux = top_k.
func ExampleLoadBalancingLoss() {
	logits := autograd.New([]float32{
		2, 1, 0, 0,
		0, 2, 1, 0,
		0, 0, 2, 1,
		1, 0, 0, 2,
	}, 4, 4)
	_, aux := moe.LoadBalancingLoss(nil, []*autograd.Tensor{logits}, 4, 2)
	fmt.Printf("aux = %.4f\n", aux)
	// Output: aux = 2.0000
}
