package dist_test

import (
	"fmt"
	"log"

	"github.com/gwen-ml/gwen/dist"
)

// A data-parallel step: each rank computes gradients on its shard, starts the all-reduce of
// each bucket as soon as backward has finished it, and waits for all of them before the
// optimizer step; token counts are summed in float64 to normalise the loss globally. Run
// outside a launcher, Open gives the single-process Comm and the sums are the rank's own.
func ExampleComm() {
	c, err := dist.Open()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	buckets := [][]float32{{0.5, -1}, {2, 4, 8}} // gradients, last layers first
	var pending []dist.Request
	for _, b := range buckets { // as backward finishes each bucket
		r, err := c.IAllReduceSum(b)
		if err != nil {
			log.Fatal(err)
		}
		pending = append(pending, r)
	}
	for _, r := range pending { // before clipping and the optimizer step
		if err := r.Wait(); err != nil {
			log.Fatal(err)
		}
	}
	tokens := []float64{1234}
	if err := c.AllReduceSumFloat64(tokens); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("rank %d of %d: summed gradients %v, %v tokens\n", c.Rank(), c.Size(), buckets, tokens[0])
	// Output: rank 0 of 1: summed gradients [[0.5 -1] [2 4 8]], 1234 tokens
}
