package metrics

import (
	"os"
	"path/filepath"
	"testing"
)

func TestJSONLNewRunTruncates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out", "metrics.jsonl")
	s, err := OpenJSONL(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	s.Write(Record{Step: 1, Values: map[string]float64{"loss": 2}})
	// The line is in the file before Close: a kill loses nothing written.
	if b, _ := os.ReadFile(path); string(b) != "{\"step\":1,\"loss\":2}\n" {
		t.Errorf("before Close the file holds %q", b)
	}
	if err := s.Close(0); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(Record{Step: 2}); err == nil {
		t.Error("Write after Close succeeded")
	}
	s, err = OpenJSONL(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	s.Write(Record{Step: 0, Stage: "a", Values: map[string]float64{"lr": 0.5}})
	s.Close(0)
	if b, _ := os.ReadFile(path); string(b) != "{\"step\":0,\"stage\":\"a\",\"lr\":0.5}\n" {
		t.Errorf("a new run left %q", b)
	}
}

func TestJSONLResumeCutsLaterSteps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	// Lines written by hand, with spacing Gwen would not write: they must survive byte for byte.
	kept := "{\"step\":1, \"loss\":3.0}\n" +
		"{\"step\":2,\"loss\":2.9}\n" +
		"{\"step\":2,\"eval\":true,\"loss\":2.95}\n"
	dropped := "{\"step\":3,\"loss\":2.8}\n{\"step\":4,\"loss\":2.7}\n{\"step\":4,\"eval\":true,\"loss\":2.75}\n{\"step\":5,\"lo"
	os.WriteFile(path, []byte(kept+dropped), 0o600)
	s, err := OpenJSONL(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(Record{Step: 3, Values: map[string]float64{"loss": 2.5}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(0); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if want := kept + "{\"step\":3,\"loss\":2.5}\n"; string(b) != want {
		t.Errorf("after resume at 2:\n have %q\n want %q", b, want)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("rewritten file has mode %v", st.Mode())
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}

	// A torn last line alone is cut even when no step is dropped; a complete last line
	// without its newline gets one before the next append.
	os.WriteFile(path, []byte(kept+"{\"step\":2,\"x"), 0o644)
	s, _ = OpenJSONL(path, 7)
	s.Write(Record{Step: 3})
	s.Close(0)
	if b, _ := os.ReadFile(path); string(b) != kept+"{\"step\":3}\n" {
		t.Errorf("torn line: have %q", b)
	}
	os.WriteFile(path, []byte("{\"step\":1}"), 0o644)
	s, _ = OpenJSONL(path, 7)
	s.Write(Record{Step: 2})
	s.Close(0)
	if b, _ := os.ReadFile(path); string(b) != "{\"step\":1}\n{\"step\":2}\n" {
		t.Errorf("no final newline: have %q", b)
	}

	// Resuming with no file yet starts one; a corrupt middle line refuses to resume.
	other := filepath.Join(t.TempDir(), "metrics.jsonl")
	if s, err := OpenJSONL(other, 5); err != nil {
		t.Errorf("resume without a file: %v", err)
	} else {
		s.Close(0)
	}
	os.WriteFile(path, []byte("{\"step\":1}\ngarbage\n{\"step\":2}\n"), 0o644)
	if _, err := OpenJSONL(path, 1); err == nil {
		t.Error("resume over a corrupt file succeeded")
	}
	if b, _ := os.ReadFile(path); string(b) != "{\"step\":1}\ngarbage\n{\"step\":2}\n" {
		t.Errorf("a failed resume changed the file: %q", b)
	}
}
