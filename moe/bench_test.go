package moe_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/moe"
)

// The speed target: a sparse layer (16 experts, top-4, hidden 512, moe_intermediate
// 384, 2048 tokens), forward + backward, within 1.3× a dense SwiGLU MLP with the same active
// FLOPs (intermediate 4·384 = 1536), both as autograd graphs. On a shared machine compare the
// interleaved pair, which times both in every iteration and reports the ratio:
//
//	go test ./moe/ -run '^$' -bench 'MLP' -benchtime 5x -count 3
const benchN, benchD, benchE, benchK, benchI = 2048, 512, 16, 4, 384

// denseStep returns one forward+backward of the dense SwiGLU MLP with intermediate K·I.
func denseStep(r *rand.Rand) func() {
	const I = benchK * benchI
	gate := autograd.Param("gate", randVec(r, I*benchD, 0.02), I, benchD)
	up := autograd.Param("up", randVec(r, I*benchD, 0.02), I, benchD)
	down := autograd.Param("down", randVec(r, benchD*I, 0.02), benchD, I)
	x := autograd.New(randVec(r, benchN*benchD, 1), benchN, benchD)
	x.RequiresGrad = true
	dy := randVec(r, benchN*benchD, 1)
	return func() {
		tp := autograd.NewTape()
		h := autograd.SwiGLU(tp, autograd.Linear(tp, x, gate, false), autograd.Linear(tp, x, up, false))
		y := autograd.Linear(tp, h, down, false)
		tp.BackwardFrom(y, dy)
		for _, p := range []*autograd.Tensor{x, gate, up, down} {
			p.ZeroGrad()
		}
	}
}

// sparseStep returns one forward+backward of the sparse block, and the block.
func sparseStep(r *rand.Rand) (func(), *moe.Sparse) {
	cfg := &layers.Config{ModelType: "qwen3_moe", HiddenSize: benchD, NumExperts: benchE, NumExpertsPerTok: benchK, MoEIntermediateSize: benchI, NormTopKProb: true}
	s, err := moe.New(cfg, 0, func(name string, shape ...int) *autograd.Tensor {
		n := 1
		for _, v := range shape {
			n *= v
		}
		return autograd.Param(name, randVec(r, n, 0.02), shape...)
	})
	if err != nil {
		panic(err)
	}
	x := autograd.New(randVec(r, benchN*benchD, 1), benchN, benchD)
	x.RequiresGrad = true
	dy := randVec(r, benchN*benchD, 1)
	return func() {
		tp := autograd.NewTape()
		y, _ := s.Forward(tp, x, false)
		tp.BackwardFrom(y, dy)
		x.ZeroGrad()
		for _, p := range s.Params() {
			p.ZeroGrad()
		}
	}, s
}

func BenchmarkMLPDense(b *testing.B) {
	step := denseStep(rand.New(rand.NewPCG(1, 2)))
	for b.Loop() {
		step()
	}
}

func BenchmarkMLPSparse(b *testing.B) {
	step, s := sparseStep(rand.New(rand.NewPCG(1, 2)))
	for b.Loop() {
		step()
	}
	st := s.Stats()
	b.ReportMetric(float64(st.MaxLoad)/float64(benchN*benchK/benchE), "maxload/mean")
}

// BenchmarkMLPSparseVsDense runs both in every iteration, so load changes on a shared machine
// hit both alike; ns/op is their sum, sparse/dense the ratio of the summed times.
func BenchmarkMLPSparseVsDense(b *testing.B) {
	dense := denseStep(rand.New(rand.NewPCG(1, 2)))
	sparse, _ := sparseStep(rand.New(rand.NewPCG(1, 2)))
	var td, ts time.Duration
	for b.Loop() {
		t0 := time.Now()
		dense()
		t1 := time.Now()
		sparse()
		td, ts = td+t1.Sub(t0), ts+time.Since(t1)
	}
	b.ReportMetric(float64(td.Milliseconds())/float64(b.N), "dense-ms/op")
	b.ReportMetric(float64(ts.Milliseconds())/float64(b.N), "sparse-ms/op")
	b.ReportMetric(float64(ts)/float64(td), "sparse/dense")
}
