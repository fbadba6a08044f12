package durable

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRemoveDir(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "step-3")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "sub", "f"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(parent, "keep"), []byte("y"), 0o644)
	if err := RemoveDir(dir); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(parent)
	if len(ents) != 1 || ents[0].Name() != "keep" {
		t.Errorf("left behind: %v", ents)
	}
	if err := RemoveDir(dir); err != nil {
		t.Errorf("a missing folder: %v", err)
	}
	// A crash after the rename leaves only a temporary, which CleanTemps removes.
	os.MkdirAll(filepath.Join(parent, ".step-4.tmp-123", "x"), 0o755)
	if err := CleanTemps(parent); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 1 {
		t.Errorf("CleanTemps left %v", ents)
	}
}
