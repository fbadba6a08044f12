//go:build unix

package data

import "testing"

// BenchmarkPipelinePretrain measures the whole path Parquet → tokenize → pack on the
// testdata pretraining file (5000 texts, 1.58 M tokens, one shuffled stream): tokens/s counts
// the B·T tokens of the batches produced, cpu-tokens/s divides by the process's CPU time
// instead of wall time (steadier on a shared machine; with W workers on W free cores it is
// about tokens/s ÷ W).
//
//	go test ./data/ -run '^$' -bench PipelinePretrain -benchtime 2x
func BenchmarkPipelinePretrain(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run(map[int]string{1: "workers=1", 2: "workers=2"}[workers], func(b *testing.B) {
			const rows, seqLen, batches = 8, 2048, 48 // 786k tokens, half the file
			tok := qwen3(b)
			b.ResetTimer()
			cpu0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				m := mixOf(b, Spec{Format: FormatText}, []string{"testdata/parquet/regen/pretrain_v2.parquet"}, []bool{true}, []float64{1})
				p, err := NewPipeline(m, tok, PipelineConfig{Task: TaskPretrain, Rows: rows, SeqLen: seqLen, Workers: workers})
				if err != nil {
					b.Fatal(err)
				}
				for range batches {
					if _, err := p.Next(); err != nil {
						b.Fatal(err)
					}
				}
				p.Close()
			}
			tokens := float64(b.N * rows * seqLen * batches)
			b.ReportMetric(tokens/b.Elapsed().Seconds(), "tokens/s")
			b.ReportMetric(tokens/(cpuSeconds()-cpu0), "cpu-tokens/s")
		})
	}
}
