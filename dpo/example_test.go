package dpo_test

import (
	"fmt"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/dpo"
)

// One pair whose policy prefers the chosen reply by 2 nats more than the reference does: the
// rewards are β·(π − ref), and the sigmoid loss −logσ(β·h) is below log 2.
func ExampleLoss() {
	logps := []float64{-10, -14} // policy: chosen, rejected
	policy := dpo.LogProbs{Tensor: autograd.New([]float32{-10, -14}, 2), Values: logps}
	reference := []float64{-11, -13}
	_, stats := dpo.Loss(nil, policy, reference, dpo.Config{}) // sigmoid, β 0.1
	s := stats[0]
	fmt.Printf("h %.1f, rewards %.2f and %.2f, loss %.4f\n", s.Logit, s.ChosenReward, s.RejectedReward, s.Loss)
	// Output: h 2.0, rewards 0.10 and -0.10, loss 0.5981
}
