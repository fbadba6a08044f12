package safetensors

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func fileBytes(hdr string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	return append(append(b, hdr...), data...)
}

// FuzzOpen feeds arbitrary files to Open: it must never panic, every error must name the file,
// and a file it accepts must satisfy everything the header promised.
func FuzzOpen(f *testing.F) {
	seedDir := f.TempDir()
	valid := filepath.Join(seedDir, "valid.safetensors")
	err := Write(valid, []Tensor{
		{Name: "a", DType: F32, Shape: []int{2, 2}, F32: []float32{1, 2, 3, 4}},
		{Name: "b", DType: BF16, Shape: []int{3}, F32: []float32{1, -2, 3}},
		{Name: "c", DType: F16, Shape: []int{1}, F32: []float32{0.5}},
		{Name: "i", DType: I64, Shape: []int{2}, I64: []int64{-1, 7}},
		{Name: "s", DType: F32, Shape: []int{}, F32: []float32{9}},
	}, map[string]string{"format": "pt"})
	if err != nil {
		f.Fatal(err)
	}
	b, _ := os.ReadFile(valid)
	f.Add(b)
	f.Add(fileBytes(`{}`, nil))
	f.Add(fileBytes(`{"__metadata__":{"k":"v"},"w":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}}`, []byte{1, 2, 3}))
	f.Add(fileBytes(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)))
	f.Add(fileBytes(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12)))
	f.Add(fileBytes(`{"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, make([]byte, 8)))
	f.Add(fileBytes(`{"w":{"dtype":"I32","shape":[1],"data_offsets":[4,0]}}`, make([]byte, 4)))
	f.Add(fileBytes(`{"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]},"x":{"dtype":"BOOL","shape":[0],"data_offsets":[2,2]}}`, make([]byte, 2)))
	f.Add(fileBytes(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":[[[{}]]]}}`, make([]byte, 4)))
	f.Add(b[:len(b)-3])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'})

	path := filepath.Join(f.TempDir(), "fuzz.safetensors")
	f.Fuzz(func(t *testing.T, content []byte) {
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		file, err := Open(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		defer file.Close()
		n := binary.LittleEndian.Uint64(content)
		dataLen := int64(len(content)) - 8 - int64(n)
		names := file.Names()
		if !slices.IsSorted(names) {
			t.Fatalf("names not sorted: %q", names)
		}
		var covered int64
		for _, name := range names {
			in, ok := file.Info(name)
			if !ok || in.Name != name || in.Begin < 0 || in.Begin > in.End || in.End > dataLen {
				t.Fatalf("accepted a bad range: %+v of %d data bytes", in, dataLen)
			}
			want, err := byteLen(in.DType, in.Shape)
			if err != nil || want != in.End-in.Begin {
				t.Fatalf("accepted %+v whose size is %d, %v", in, want, err)
			}
			covered += in.End - in.Begin
			raw := file.Bytes(name)
			if int64(len(raw)) != in.End-in.Begin || !bytes.Equal(raw, content[8+int64(n)+in.Begin:8+int64(n)+in.End]) {
				t.Fatalf("%s: Bytes is not the range", name)
			}
			if v, err := file.Float32(name); err == nil {
				if int64(len(v)) != in.NumElements() {
					t.Fatalf("%s: %d floats for %d elements", name, len(v), in.NumElements())
				}
			} else if !strings.Contains(err.Error(), name) {
				t.Fatalf("error does not name the tensor: %v", err)
			}
			if v, err := file.Int64(name); err == nil && int64(len(v)) != in.NumElements() {
				t.Fatalf("%s: %d ints for %d elements", name, len(v), in.NumElements())
			}
		}
		if covered != dataLen {
			t.Fatalf("tensors cover %d of %d data bytes", covered, dataLen)
		}
	})
}
