// Package testenv locates the files tests read: the repository root, the bundled Qwen3
// tokenizer, and the reference data in ../shared beside the repository. Test support only.
package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// RepoRoot is the repository's root folder (found from this file, not the working directory).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Tokenizer is the bundled Qwen3 tokenizer folder, assets/qwen3-tokenizer.
func Tokenizer() string { return filepath.Join(RepoRoot(), "assets", "qwen3-tokenizer") }

// SharedPath is ../shared/<sub> beside the repository and whether it exists.
func SharedPath(sub string) (string, bool) {
	p := filepath.Join(RepoRoot(), "..", "shared", sub)
	_, err := os.Stat(p)
	return p, err == nil
}

// Shared is ../shared/<sub>, or skips the test, saying so, when it is absent.
func Shared(t testing.TB, sub string) string {
	t.Helper()
	p, ok := SharedPath(sub)
	if !ok {
		t.Skipf("reference data %s is absent (it lives in ../shared beside the repository)", p)
	}
	return p
}
