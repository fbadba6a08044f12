package metrics_test

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/gwen-ml/gwen/metrics"
)

func ExampleRecord_MarshalJSON() {
	r := metrics.Record{Step: 120, Stage: "sft", Values: map[string]float64{"loss": 1.25, "lr": 2e-4, "moe/aux_loss": 0.01}}
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	// Output: {"step":120,"stage":"sft","loss":1.25,"lr":0.0002,"moe/aux_loss":0.01}
}

// A trainer's sinks: the JSONL file first (it is the complete record), then the progress
// lines; Log lines reach the sinks that take them.
func ExampleTee() {
	dir, _ := os.MkdirTemp("", "run")
	defer os.RemoveAll(dir)
	jl, err := metrics.OpenJSONL(dir+"/metrics.jsonl", -1)
	if err != nil {
		panic(err)
	}
	sink := metrics.Tee(jl, metrics.NewProgress(os.Stdout, 0, false))
	sink.Write(metrics.Record{Step: 1, Values: map[string]float64{"loss": 2.5}})
	sink.Write(metrics.Record{Step: 1, Eval: true, Values: map[string]float64{"loss": 2.75, "ppl": 15.6}})
	metrics.Log(sink, "saved checkpoint step-1")
	sink.Close(0)
	rs, _ := metrics.ReadJSONL(dir + "/metrics.jsonl")
	fmt.Println(len(rs), "records")
	// Output:
	// step 1 loss 2.5
	// eval step 1 loss 2.75 ppl 15.6
	// saved checkpoint step-1
	// 2 records
}
