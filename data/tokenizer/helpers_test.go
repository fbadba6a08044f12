package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"sync"
	"testing"

	"github.com/gwen-ml/gwen/internal/testenv"
)

var (
	qwenOnce sync.Once
	qwenTok  *Tokenizer
	qwenErr  error
)

// qwen3 loads the bundled Qwen3 tokenizer (assets/qwen3-tokenizer) once per test binary.
func qwen3(t testing.TB) *Tokenizer {
	qwenOnce.Do(func() {
		qwenTok, qwenErr = Load(testenv.Tokenizer())
	})
	if qwenErr != nil {
		t.Fatal(qwenErr)
	}
	return qwenTok
}

// readJSONL decodes every line of a JSON Lines file into a T.
func readJSONL[T any](t testing.TB, path string) []T {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	r := bufio.NewReaderSize(f, 1<<20)
	for line := 1; ; line++ {
		b, err := r.ReadBytes('\n')
		if len(b) > 0 {
			var v T
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("%s:%d: %v", path, line, err)
			}
			out = append(out, v)
		}
		if err != nil {
			break
		}
	}
	return out
}
