package durable

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// diskFull is a temporary file that accepts limit bytes, then fails as a full disk does:
// a short write and ENOSPC.
type diskFull struct {
	*os.File
	limit int
}

func (f *diskFull) Write(p []byte) (int, error) {
	if len(p) > f.limit {
		n, _ := f.File.Write(p[:f.limit])
		f.limit = 0
		return n, &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	f.limit -= len(p)
	return f.File.Write(p)
}

// failSync is a temporary file whose Sync fails (an I/O error on flush to the device).
type failSync struct{ *os.File }

func (f failSync) Sync() error { return &fs.PathError{Op: "sync", Path: f.Name(), Err: syscall.EIO} }

func withTemp(t *testing.T, wrap func(*os.File) tempFile) {
	t.Helper()
	orig := createTemp
	createTemp = func(dir, pattern string) (tempFile, error) {
		f, err := os.CreateTemp(dir, pattern)
		if err != nil {
			return nil, err
		}
		return wrap(f), nil
	}
	t.Cleanup(func() { createTemp = orig })
}

// listing is every name in dir, sorted.
func listing(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

func wantNames(t *testing.T, dir string, want ...string) {
	t.Helper()
	if got := listing(t, dir); !slices.Equal(got, want) {
		t.Fatalf("%s holds %q, want %q (temporary debris?)", dir, got, want)
	}
}

func wantContent(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s holds %q, want %q", path, got, want)
	}
}

func TestWriteFileNewAndReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.json")
	if err := WriteFile(path, []byte("one"), 0o640); err != nil {
		t.Fatal(err)
	}
	wantContent(t, path, "one")
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	if err := WriteFile(path, []byte("two, longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantContent(t, path, "two, longer")
	wantNames(t, dir, "a.json")
}

func TestWriteFillErrorHalfway(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := WriteFile(path, []byte("previous"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("encoder broke")
	// More than the 1 MiB buffer is written before the failure, so part of it reached the file.
	err := Write(path, 0o644, func(w io.Writer) error {
		if _, err := w.Write(bytes.Repeat([]byte("x"), 3<<20)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v: want one wrapping the fill error and naming %s", err, path)
	}
	wantContent(t, path, "previous")
	wantNames(t, dir, "state.json")

	// A new file that fails stays absent.
	err = Write(filepath.Join(dir, "new"), 0o644, func(io.Writer) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	wantNames(t, dir, "state.json")
}

func TestWriteDiskFull(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.bin")
	if err := WriteFile(path, []byte("old weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB: past the buffer
	for _, limit := range []int{0, 5, 1 << 20, 2<<20 - 1} {
		withTemp(t, func(f *os.File) tempFile { return &diskFull{File: f, limit: limit} })
		for _, write := range []func() error{
			func() error { return WriteFile(path, big, 0o644) },
			func() error {
				return Write(path, 0o644, func(w io.Writer) error {
					for i := 0; i < len(big); i += 4096 {
						if _, err := w.Write(big[i : i+4096]); err != nil {
							return err
						}
					}
					return nil
				})
			},
		} {
			err := write()
			if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), path) {
				t.Fatalf("limit %d: error %v: want ENOSPC naming %s", limit, err, path)
			}
			wantContent(t, path, "old weights")
			wantNames(t, dir, "model.bin")
		}
	}
}

func TestWriteSyncFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := WriteFile(path, []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	withTemp(t, func(f *os.File) tempFile { return failSync{f} })
	err := WriteFile(path, []byte("lost"), 0o644)
	if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "sync") {
		t.Fatalf("error %v", err)
	}
	wantContent(t, path, "kept")
	wantNames(t, dir, "f")
}

func TestWriteMissingFolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "x")
	err := WriteFile(path, nil, 0o644)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v", err)
	}
}

func TestWriteConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shared")
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			body := bytes.Repeat([]byte{byte('a' + i)}, 10000+i)
			errs[i] = WriteFile(path, body, 0o644)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	got, _ := os.ReadFile(path)
	i := len(got) - 10000
	if i < 0 || i >= n || !bytes.Equal(got, bytes.Repeat([]byte{byte('a' + i)}, 10000+i)) {
		t.Fatalf("the file is not one writer's whole content (%d bytes)", len(got))
	}
	wantNames(t, dir, "shared")
}

func writeTree(files map[string]string) func(string) error {
	return func(tmp string) error {
		for name, body := range files {
			p := filepath.Join(tmp, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestWriteDirNewAndReplace(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "step-10")
	if err := WriteDir(dir, writeTree(map[string]string{"a": "1", "b": "2", "sub/c": "3"})); err != nil {
		t.Fatal(err)
	}
	wantNames(t, parent, "step-10")
	wantNames(t, dir, "a", "b", "sub")
	wantContent(t, filepath.Join(dir, "sub", "c"), "3")

	// Replacing drops files the new version does not have.
	if err := WriteDir(dir, writeTree(map[string]string{"a": "new"})); err != nil {
		t.Fatal(err)
	}
	wantNames(t, parent, "step-10")
	wantNames(t, dir, "a")
	wantContent(t, filepath.Join(dir, "a"), "new")
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o755 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
}

func TestWriteDirFailureKeepsOld(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "ckpt")
	if err := WriteDir(dir, writeTree(map[string]string{"model": "old"})); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("optimizer state failed")
	err := WriteDir(dir, func(tmp string) error {
		if err := os.WriteFile(filepath.Join(tmp, "model"), []byte("half new"), 0o644); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("error %v", err)
	}
	wantNames(t, parent, "ckpt")
	wantNames(t, dir, "model")
	wantContent(t, filepath.Join(dir, "model"), "old")

	// A full disk inside fill, through Write, leaves the same.
	withTemp(t, func(f *os.File) tempFile { return &diskFull{File: f, limit: 3} })
	err = WriteDir(dir, func(tmp string) error { return WriteFile(filepath.Join(tmp, "model"), []byte("new model"), 0o644) })
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("error %v", err)
	}
	wantNames(t, parent, "ckpt")
	wantContent(t, filepath.Join(dir, "model"), "old")

	// A new folder that fails is not created.
	if err := WriteDir(filepath.Join(parent, "new"), func(string) error { return boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	wantNames(t, parent, "ckpt")
}

func TestWriteDirConcurrent(t *testing.T) {
	parent := t.TempDir()
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = WriteDir(filepath.Join(parent, "same"), writeTree(map[string]string{"f": "x"}))
		})
	}
	wg.Wait()
	for i, err := range errs {
		// Writers of the same folder race for it; none may fail on a temporary's name.
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, fs.ErrExist) {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	for i := range n {
		wg.Go(func() {
			errs[i] = WriteDir(filepath.Join(parent, fmt.Sprintf("d%d", i)), writeTree(map[string]string{"f": fmt.Sprint(i)}))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
		wantContent(t, filepath.Join(parent, fmt.Sprintf("d%d", i), "f"), fmt.Sprint(i))
	}
	if err := CleanTemps(parent); err != nil {
		t.Fatal(err)
	}
	want := []string{"d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7", "same"}
	wantNames(t, parent, want...)
	wantContent(t, filepath.Join(parent, "same", "f"), "x")
}

func TestCleanTemps(t *testing.T) {
	parent := t.TempDir()
	mk := func(name string, dir bool) {
		p := filepath.Join(parent, name)
		var err error
		if dir {
			err = os.MkdirAll(filepath.Join(p, "x"), 0o755)
		} else {
			err = os.WriteFile(p, []byte(name), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	mk("step-1", true)
	mk(".step-2.tmp-123", true)       // a crashed WriteDir: half a new folder
	mk(".state.json.tmp-9", false)    // a crashed Write
	mk(".step-1.tmp-old-77", true)    // a crash after the rename into place: old debris
	mk(".step-3.tmp-old-5", true)     // a crash between the renames: step-3 is missing
	mk("keep.tmp-1", false)           // not ours: no leading dot
	mk(".hidden", false)              // not ours
	mk(".x.tmp-old", false)           // not ours: no digits
	mk("metrics.jsonl", false)        // not ours
	mk(".step-4.tmp-old.tmp-1", true) // a crashed WriteDir of ".step-4.tmp-old"'s sibling name: ours
	if err := CleanTemps(parent); err != nil {
		t.Fatal(err)
	}
	wantNames(t, parent, ".hidden", ".x.tmp-old", "keep.tmp-1", "metrics.jsonl", "step-1", "step-3")
	wantNames(t, filepath.Join(parent, "step-3"), "x")
	if err := CleanTemps(filepath.Join(parent, "absent")); err != nil {
		t.Errorf("missing folder: %v", err)
	}
	for name, want := range map[string]bool{".a.tmp-1": true, ".a.tmp-old-2": true, "a.tmp-1": false, ".a.tmp-": false, ".a": false} {
		if IsTemp(name) != want {
			t.Errorf("IsTemp(%q) = %v", name, !want)
		}
	}
}

// TestWriteDirCrashBetweenRenames replays what WriteDir leaves when the process dies after
// moving the old folder aside and before renaming the new one in: CleanTemps restores the old.
func TestWriteDirCrashBetweenRenames(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "ckpt")
	if err := WriteDir(dir, writeTree(map[string]string{"model": "old"})); err != nil {
		t.Fatal(err)
	}
	// The state at the crash, made by hand: the new folder complete under its temporary
	// name, the old one moved aside.
	if err := os.Rename(dir, filepath.Join(parent, ".ckpt.tmp-old-42")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(parent, ".ckpt.tmp-43"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CleanTemps(parent); err != nil {
		t.Fatal(err)
	}
	wantNames(t, parent, "ckpt")
	wantContent(t, filepath.Join(dir, "model"), "old")
}
