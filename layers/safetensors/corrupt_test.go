package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Each corrupt file is built by hand; Open must refuse it with an error naming the file and,
// where there is one, the tensor, and must not panic.
func TestOpenCorrupt(t *testing.T) {
	dir := t.TempDir()
	w := func(dt string, shape string, b, e int) string {
		return fmt.Sprintf(`{"dtype":%q,"shape":%s,"data_offsets":[%d,%d]}`, dt, shape, b, e)
	}
	cases := []struct {
		name  string
		hdr   string
		data  int // bytes of data after the header
		parts []string
	}{
		{"invalid JSON", `{"w":{"dtype":"F32",`, 4, []string{`"w"`, "invalid header JSON"}},
		{"invalid JSON inside an entry", `{"w":{"dtype" "F32"}}`, 4, []string{"w"}},
		{"trailing comma", `{"w":` + w("F32", "[1]", 0, 4) + `,}`, 4, []string{"invalid header JSON"}},
		{"not an object", `["w"]`, 0, []string{"'{'"}},
		{"empty header", ``, 0, []string{"'{'"}},
		{"trailing garbage", `{"w":` + w("F32", "[1]", 0, 4) + `}x`, 4, []string{"after the top-level object"}},
		{"two objects", `{}{}`, 0, []string{"after the top-level object"}},
		{"invalid UTF-8", "{\"w\xff\":" + w("F32", "[1]", 0, 4) + "}", 4, []string{"UTF-8"}},
		{"unknown dtype", `{"w":` + w("F33", "[1]", 0, 4) + `}`, 4, []string{`"w"`, "F33"}},
		{"dtype not a string", `{"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}`, 4, []string{`"w"`, "dtype"}},
		{"negative dimension", `{"w":` + w("F32", "[-1]", 0, 4) + `}`, 4, []string{`"w"`, "negative"}},
		{"fractional dimension", `{"w":` + w("F32", "[1.5]", 0, 4) + `}`, 4, []string{`"w"`, "1.5"}},
		{"dimension past int64", `{"w":` + w("F32", "[99999999999999999999]", 0, 4) + `}`, 4, []string{`"w"`, "int64"}},
		{"shape product overflows", `{"w":` + w("F32", "[4294967296,4294967296]", 0, 4) + `}`, 4, []string{`"w"`, "overflows"}},
		{"byte size overflows", `{"w":` + w("F64", "[2305843009213693952]", 0, 4) + `}`, 4, []string{`"w"`, "overflows"}},
		{"shape not an array", `{"w":` + w("F32", `"1"`, 0, 4) + `}`, 4, []string{`"w"`, "shape"}},
		{"offsets reversed", `{"w":` + w("F32", "[1]", 4, 0) + `}`, 4, []string{`"w"`, "reversed"}},
		{"negative offset", `{"w":` + w("F32", "[1]", -4, 0) + `}`, 4, []string{`"w"`, "negative"}},
		{"three offsets", `{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, 4, []string{`"w"`, "data_offsets"}},
		{"offsets past the end", `{"w":` + w("F32", "[2]", 0, 8) + `}`, 4, []string{`"w"`, "past the end"}},
		{"size contradicts shape", `{"w":` + w("F32", "[2]", 0, 4) + `}`, 4, []string{`"w"`, "needs 8"}},
		{"size contradicts dtype", `{"w":` + w("BF16", "[4]", 0, 4) + `}`, 4, []string{`"w"`, "needs 8"}},
		{"overlap", `{"a":` + w("F32", "[2]", 0, 8) + `,"b":` + w("F32", "[2]", 4, 12) + `}`, 12, []string{`"a"`, `"b"`, "overlap"}},
		{"zero-size tensor inside another", `{"a":` + w("F32", "[2]", 0, 8) + `,"z":` + w("F32", "[0]", 4, 4) + `}`, 8, []string{`"a"`, `"z"`, "overlap"}},
		{"same range twice", `{"a":` + w("F32", "[1]", 0, 4) + `,"b":` + w("F32", "[1]", 0, 4) + `}`, 4, []string{`"a"`, `"b"`, "overlap"}},
		{"hole between", `{"a":` + w("F32", "[1]", 0, 4) + `,"b":` + w("F32", "[1]", 8, 12) + `}`, 12, []string{`"a"`, `"b"`, "hole"}},
		{"hole at the start", `{"b":` + w("F32", "[1]", 4, 8) + `}`, 8, []string{`"b"`, "hole"}},
		{"bytes after the last tensor", `{"a":` + w("F32", "[1]", 0, 4) + `}`, 8, []string{`"a"`, "4 bytes of data after"}},
		{"data but no tensor", `{}`, 8, []string{"no tensor"}},
		{"duplicate tensor", `{"w":` + w("F32", "[1]", 0, 4) + `,"w":` + w("F32", "[1]", 0, 4) + `}`, 4, []string{`"w"`, "twice"}},
		{"duplicate field", `{"w":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 4, []string{`"w"`, "dtype", "twice"}},
		{"missing dtype", `{"w":{"shape":[1],"data_offsets":[0,4]}}`, 4, []string{`"w"`, "no dtype"}},
		{"missing offsets", `{"w":{"dtype":"F32","shape":[1]}}`, 4, []string{`"w"`, "no data_offsets"}},
		{"entry not an object", `{"w":[1,2]}`, 0, []string{`"w"`}},
		{"duplicate metadata", `{"__metadata__":{},"__metadata__":{}}`, 0, []string{"__metadata__", "twice"}},
		{"metadata value not a string", `{"__metadata__":{"step":3}}`, 0, []string{"__metadata__", `"step"`}},
		{"metadata duplicate key", `{"__metadata__":{"a":"1","a":"2"}}`, 0, []string{"__metadata__", `"a"`, "twice"}},
		{"metadata not an object", `{"__metadata__":[]}`, 0, []string{"__metadata__"}},
		{"sub-byte dtype, odd bit count", `{"w":` + w("F4", "[3]", 0, 1) + `}`, 1, []string{`"w"`, "whole number of bytes"}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := rawFile(t, dir, fmt.Sprintf("c%02d.safetensors", i), c.hdr, make([]byte, c.data))
			f, err := Open(path)
			if err == nil {
				f.Close()
			}
			wantErr(t, err, append(c.parts, path)...)
		})
	}
}

// Files the format allows that a too-strict reader would refuse.
func TestOpenAccepts(t *testing.T) {
	dir := t.TempDir()
	for i, c := range []struct {
		hdr  string
		data int
	}{
		{`{}`, 0},
		{"{}\t\n \r", 0},
		{`{"__metadata__":null}`, 0},
		{`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":{"a":[1,{"b":null}]}}}`, 4}, // unknown fields skipped
		{`{"b":{"dtype":"U8","shape":[3],"data_offsets":[4,7]},"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}`, 7},
		{`{"w":{"dtype":"F4","shape":[2,3],"data_offsets":[0,3]}}`, 3},
		{`{"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"y":{"dtype":"F32","shape":[3,0],"data_offsets":[0,0]}}`, 0},
		{`{"w":{"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}}`, 0},
	} {
		path := rawFile(t, dir, fmt.Sprintf("ok%d", i), c.hdr, make([]byte, c.data))
		f, err := Open(path)
		if err != nil {
			t.Errorf("%s: %v", c.hdr, err)
			continue
		}
		f.Close()
	}
}

func TestOpenBadLength(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	le := binary.LittleEndian
	short := write("short", []byte{1, 2, 3})
	_, err := Open(short)
	wantErr(t, err, short, "shorter than the 8-byte")

	beyond := write("beyond", append(le.AppendUint64(nil, 100), "{}"...))
	_, err = Open(beyond)
	wantErr(t, err, beyond, "header length 100 exceeds the 2 bytes")

	huge := write("huge", append(le.AppendUint64(nil, 1<<63+5), "{}"...))
	_, err = Open(huge)
	wantErr(t, err, huge, "exceeds the 100000000-byte limit")

	over := write("over", append(le.AppendUint64(nil, MaxHeaderBytes+1), "{}"...))
	_, err = Open(over)
	wantErr(t, err, over, "limit")

	_, err = Open(dir)
	wantErr(t, err, dir, "not a regular file")
	_, err = Open(filepath.Join(dir, "absent"))
	wantErr(t, err, "absent")
}

// A file cut short (a copy interrupted): the header promises data the file lacks.
func TestOpenTruncated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.safetensors")
	err := Write(path, []Tensor{
		{Name: "a", DType: F32, Shape: []int{16}, F32: make([]float32, 16)},
		{Name: "b", DType: F32, Shape: []int{16}, F32: make([]float32, 16)},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	for cut, tensor := range map[int64]string{1: `"b"`, 63: `"b"`, 64: `"b"`, 65: `"a"`} {
		os.Truncate(path, st.Size()-cut)
		_, err := Open(path)
		wantErr(t, err, path, tensor, "truncated")
	}
	os.Truncate(path, 12) // inside the header
	_, err = Open(path)
	wantErr(t, err, path, "header length")
}

// --- atomic writes ---

// failingFile is a real temporary file whose writes fail with ENOSPC past limit bytes.
// failingWriter accepts limit bytes, then fails as a full disk does: a short write and ENOSPC.
type failingWriter struct {
	io.Writer
	limit int
}

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.limit {
		n, _ := f.Writer.Write(p[:f.limit])
		f.limit = 0
		return n, &fs.PathError{Op: "write", Path: "temporary file", Err: syscall.ENOSPC}
	}
	f.limit -= len(p)
	return f.Writer.Write(p)
}

func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.tmp-*"))
	return m
}

func TestWriteDiskFullKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	good := []Tensor{{Name: "w", DType: F32, Shape: []int{4}, F32: []float32{1, 2, 3, 4}}}
	if err := Write(path, good, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)

	big := []Tensor{{Name: "w", DType: F32, Shape: []int{1 << 20}, F32: make([]float32, 1<<20)}}
	for _, limit := range []int{0, 5, 100, 1 << 20} {
		orig := wrapTemp
		wrapTemp = func(w io.Writer) io.Writer { return &failingWriter{Writer: w, limit: limit} }
		err := Write(path, big, nil)
		wrapTemp = orig
		wantErr(t, err, path, "no space left")
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("error %v does not wrap ENOSPC", err)
		}
		after, _ := os.ReadFile(path)
		if string(after) != string(before) {
			t.Fatalf("limit %d: the previous file was changed", limit)
		}
		if tmp := tempFiles(t, dir); len(tmp) != 0 {
			t.Fatalf("limit %d: temporary files left: %q", limit, tmp)
		}
	}
	// WriteDir too: a shard that fails leaves the folder's previous index and shards usable.
	if err := WriteDir(dir, good, nil, 0); err != nil {
		t.Fatal(err)
	}
	orig := wrapTemp
	wrapTemp = func(w io.Writer) io.Writer { return &failingWriter{Writer: w, limit: 100} }
	err := WriteDir(dir, append(big, Tensor{Name: "v", DType: F32, Shape: []int{1 << 20}, F32: make([]float32, 1<<20)}), nil, 1<<20)
	wrapTemp = orig
	wantErr(t, err, "no space left")
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatalf("folder unusable after a failed WriteDir: %v", err)
	}
	if v, err := s.Float32("w"); err != nil || v[3] != 4 {
		t.Errorf("old data lost: %v %v", v, err)
	}
	s.Close()
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Fatalf("temporary files left: %q", tmp)
	}
}

func TestWriteBadTensorKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	if err := Write(path, []Tensor{{Name: "w", DType: F32, Shape: []int{2}, F32: []float32{1, 2}}}, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	err := Write(path, []Tensor{
		{Name: "ok", DType: F32, Shape: []int{2}, F32: []float32{1, 2}},
		{Name: "w", DType: F32, Shape: []int{3, 3}, F32: []float32{1, 2}},
	}, nil)
	wantErr(t, err, path, `"w"`, "9 elements")
	after, _ := os.ReadFile(path)
	if string(after) != string(before) {
		t.Error("previous file changed")
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("temporary files left: %q", tmp)
	}
	err = WriteDir(dir, []Tensor{{Name: "w", DType: BF16, Shape: []int{3}, F32: []float32{1}}}, nil, 0)
	wantErr(t, err, dir, `"w"`)
}

func TestWriteReadOnlyFolder(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores folder permissions; TestWriteDiskFullKeepsOldFile covers the failure path")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	if err := Write(path, []Tensor{{Name: "w", DType: F32, Shape: []int{1}, F32: []float32{1}}}, nil); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o555)
	defer os.Chmod(dir, 0o755)
	err := Write(path, []Tensor{{Name: "w", DType: F32, Shape: []int{1}, F32: []float32{2}}}, nil)
	wantErr(t, err, path)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if v, _ := f.Float32("w"); v[0] != 1 {
		t.Error("previous file changed")
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("temporary files left: %q", tmp)
	}
}

func TestWriteMissingFolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "x.safetensors")
	err := Write(path, nil, nil)
	wantErr(t, err, path)
	if !strings.Contains(err.Error(), "no such file") {
		t.Errorf("error %v", err)
	}
}
