//go:build unix

package data

import (
	"io"
	"os"
	"syscall"
	"testing"
)

// BenchmarkReadText reads the text column of the Parquet file named by GWEN_PARQUET_LARGE
// (gen.mjs's large.parquet: 50 MB of text in one row group) into Go strings; MB/s counts
// UTF-8 text bytes, as ../shared/parquet/bench.mjs does for DuckDB. cpu-MB/s divides by the
// process's CPU time instead of wall time (less sensitive to a busy shared machine).
//
//	GWEN_PARQUET_LARGE=/tmp/pq/parquet/large.parquet go test ./data/ -run '^$' -bench ReadText -benchtime 3x
func BenchmarkReadText(b *testing.B) {
	path := os.Getenv("GWEN_PARQUET_LARGE")
	if path == "" {
		b.Skip("GWEN_PARQUET_LARGE not set (a Parquet file with a text column, e.g. gen.mjs's large.parquet)")
	}
	var bytes int64
	cpu0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		src, err := Open([]string{path}, Spec{Format: FormatText})
		if err != nil {
			b.Fatal(err)
		}
		bytes = 0
		for {
			ex, err := src.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			bytes += int64(len(ex.Text))
		}
		src.Close()
		b.SetBytes(bytes)
	}
	b.ReportMetric(float64(bytes)*float64(b.N)/1e6/(cpuSeconds()-cpu0), "cpu-MB/s")
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
