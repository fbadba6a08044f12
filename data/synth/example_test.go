package synth_test

import (
	"fmt"

	"github.com/gwen-ml/gwen/data/synth"
)

func ExampleMath() {
	row := synth.Math(1, 1, synth.WithKinds(synth.Linear))[0]
	fmt.Println(row.Prompt)
	fmt.Println(row.Answer)
	fmt.Println(row.Messages[1].Content)
	// Output:
	// Solve for x: 2x - 17 = -25.
	// -4
	// <think>
	// Add 17 to both sides: 2x = -8.
	// Divide both sides by 2: x = -4.
	// Check: x = -4 makes both sides equal.
	// </think>
	//
	// x = -4, so the answer is \boxed{-4}.
}
