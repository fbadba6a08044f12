package tokenizer

import (
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/internal/testenv"
)

func BenchmarkLoad(b *testing.B) {
	dir := testenv.Tokenizer()
	for b.Loop() {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}

// corpusLines reads the file named by GWEN_TOKENIZER_CORPUS (corpus.txt from
// ../shared/tokenizer-cases/tools, see its README) as lines without their "\n".
func corpusLines(b *testing.B) ([]string, int) {
	path := os.Getenv("GWEN_TOKENIZER_CORPUS")
	if path == "" {
		b.Skip("set GWEN_TOKENIZER_CORPUS to corpus.txt (built by ../shared/tokenizer-cases/tools/gen_corpus.mjs)")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	// Split like bench.mjs: text.split('\n'), without the empty string after the last "\n".
	lines := strings.Split(string(data), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines, len(data)
}

// BenchmarkCorpus encodes the corpus line by line like tools/bench.mjs does (each line
// without its "\n"; MB = 1e6 bytes of the file), single-threaded and on all cores, each
// iteration with a freshly loaded tokenizer (cold word cache).
func BenchmarkCorpus(b *testing.B) {
	lines, size := corpusLines(b)
	dir := testenv.Tokenizer()
	// cpu accumulates the process CPU time spent while the timer runs.
	var cpu, cpuStart float64
	start := func(b *testing.B) { runtime.GC(); cpuStart = cpuSeconds(); b.StartTimer() }
	stop := func(b *testing.B) { b.StopTimer(); cpu += cpuSeconds() - cpuStart }
	report := func(b *testing.B, tokens int) {
		s := b.Elapsed().Seconds() / float64(b.N)
		b.ReportMetric(float64(size)/1e6/s, "MB/s")
		b.ReportMetric(float64(tokens)/s, "tokens/s")
		b.ReportMetric(float64(tokens), "tokens")
		b.ReportMetric(cpu/float64(b.N), "cpu-s/op")
		cpu = 0
	}
	b.Run("single", func(b *testing.B) {
		tokens := 0
		b.StopTimer()
		b.ResetTimer()
		for range b.N {
			tok, err := Load(dir)
			if err != nil {
				b.Fatal(err)
			}
			start(b)
			tokens = 0
			for _, l := range lines {
				tokens += len(tok.Encode(l))
			}
			stop(b)
		}
		report(b, tokens)
	})
	b.Run("batch", func(b *testing.B) {
		tokens := 0
		b.StopTimer()
		b.ResetTimer()
		for range b.N {
			tok, err := Load(dir)
			if err != nil {
				b.Fatal(err)
			}
			start(b)
			tokens = 0
			for lo := 0; lo < len(lines); lo += 1024 {
				for _, ids := range tok.EncodeBatch(lines[lo:min(lo+1024, len(lines))]) {
					tokens += len(ids)
				}
			}
			stop(b)
		}
		report(b, tokens)
	})
	b.Run("whole", func(b *testing.B) {
		text := strings.Join(lines, "\n") + "\n"
		tokens := 0
		b.StopTimer()
		b.ResetTimer()
		for range b.N {
			tok, err := Load(dir)
			if err != nil {
				b.Fatal(err)
			}
			start(b)
			tokens = len(tok.Encode(text))
			stop(b)
		}
		report(b, tokens)
	})
}
