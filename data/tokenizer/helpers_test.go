package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// repoRoot walks up from the package folder to the folder holding go.mod.
func repoRoot(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}

// sharedDir is ../shared/<sub> beside the repository, or skips the test when it is absent.
func sharedDir(t testing.TB, sub string) string {
	d := filepath.Join(repoRoot(t), "..", "shared", sub)
	if _, err := os.Stat(d); err != nil {
		t.Skipf("reference data %s is absent (it lives in ../shared beside the repo): %v", d, err)
	}
	return d
}

var (
	qwenOnce sync.Once
	qwenTok  *Tokenizer
	qwenErr  error
)

// qwen3 loads the bundled Qwen3 tokenizer (assets/qwen3-tokenizer) once per test binary.
func qwen3(t testing.TB) *Tokenizer {
	qwenOnce.Do(func() {
		qwenTok, qwenErr = Load(filepath.Join(repoRoot(t), "assets", "qwen3-tokenizer"))
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
