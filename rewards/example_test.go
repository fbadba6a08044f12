package rewards_test

import (
	"fmt"

	"github.com/gwen-ml/gwen/rewards"
)

func ExampleParse() {
	set, err := rewards.Parse("format,answer", "0.5,1")
	if err != nil {
		panic(err)
	}
	for _, c := range []string{
		`<think>x+2=0</think>The answer is \boxed{-2}`, // both rules
		`x = -2, so \boxed{-2}`,                        // no think block
		`<think>so \boxed{-2}`,                         // the think block never closes
	} {
		scores, total := set.Score(c, "-2")
		fmt.Println(scores["format"], scores["answer"], total)
	}
	// Output:
	// 1 1 1.5
	// 0 1 1
	// 0 0 0
}

func ExampleEquivalent() {
	fmt.Println(rewards.Equivalent(`\frac12`, "0.5"))
	fmt.Println(rewards.Equivalent("0.333", "1/3"))
	fmt.Println(rewards.Equivalent("5 apples", "5"))
	fmt.Println(rewards.Equivalent("1,000", "1000"))
	// Output:
	// true
	// false
	// true
	// true
}
