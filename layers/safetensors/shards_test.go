package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// WriteShards makes each tensor's data on demand, once, in order, keeping the given order in
// the split; the files hold what WriteDir writes for the same data.
func TestWriteShardsOrderAndContent(t *testing.T) {
	// Sizes in bytes: a 40 (F32 ×10), b 20 (BF16 ×10), c 100 (F32 ×25, larger than the 64-byte
	// limit), d 24 (F16 ×12), e 40 (F32 ×10). Kept in order, by hand: [a b] 60, [c] 100 alone,
	// [d e] 64 = the limit, so 3 shards. (WriteDir's huggingface_hub order would put c first.)
	specs := []Tensor{
		{Name: "a", DType: F32, Shape: []int{2, 5}},
		{Name: "b", DType: BF16, Shape: []int{10}},
		{Name: "c", DType: F32, Shape: []int{5, 5}},
		{Name: "d", DType: F16, Shape: []int{3, 4}},
		{Name: "e", DType: F32, Shape: []int{10}},
	}
	value := func(name string, j int) float32 { return float32(math.Sin(float64(int(name[0])*100+j))) * 2 }
	var calls []string
	fill := func(t *Tensor) error {
		calls = append(calls, t.Name)
		for j := range t.F32 {
			t.F32[j] = value(t.Name, j)
		}
		return nil
	}
	dir := t.TempDir()
	n, err := WriteShards(dir, specs, nil, 64, fill)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || !reflect.DeepEqual(calls, []string{"a", "b", "c", "d", "e"}) {
		t.Fatalf("%d files, fill called for %q; want 3 files and a..e once each", n, calls)
	}
	var index struct {
		Metadata  map[string]int64  `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	b, err := os.ReadFile(filepath.Join(dir, IndexFileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatal(err)
	}
	s1, s2, s3 := "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"
	if want := map[string]string{"a": s1, "b": s1, "c": s2, "d": s3, "e": s3}; !reflect.DeepEqual(index.WeightMap, want) {
		t.Errorf("weight map %v, want %v", index.WeightMap, want)
	}
	if index.Metadata["total_size"] != 40+20+100+24+40 {
		t.Errorf("total_size %d, want 224", index.Metadata["total_size"])
	}

	// The same tensors with their data, through WriteDir into one file: every tensor's bytes agree.
	full := make([]Tensor, len(specs))
	for i, s := range specs {
		full[i] = s
		n := 1
		for _, d := range s.Shape {
			n *= d
		}
		full[i].F32 = make([]float32, n)
		for j := range n {
			full[i].F32[j] = value(s.Name, j)
		}
	}
	one := t.TempDir()
	if err := WriteDir(one, full, nil, 0); err != nil {
		t.Fatal(err)
	}
	ref, err := OpenDir(one)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	got, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	for _, s := range specs {
		if !bytes.Equal(got.Bytes(s.Name), ref.Bytes(s.Name)) || len(ref.Bytes(s.Name)) == 0 {
			t.Errorf("%s: bytes differ from WriteDir's", s.Name)
		}
		f, err := Open(filepath.Join(dir, index.WeightMap[s.Name]))
		if err != nil {
			t.Fatal(err)
		}
		if f.Metadata()["format"] != "pt" {
			t.Errorf("%s: metadata %v, want format pt", s.Name, f.Metadata())
		}
		f.Close()
	}

	// Unsharded: one model.safetensors, no index; a stale index of the earlier save is removed.
	if n, err := WriteShards(dir, specs, nil, 0, fill); err != nil || n != 1 {
		t.Fatalf("unsharded: %d files, %v", n, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != SingleFileName {
		t.Errorf("after an unsharded save the folder holds %v", entries)
	}
}

func TestWriteShardsErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := WriteShards(dir, []Tensor{{Name: "ids", DType: I64, Shape: []int{2}}}, nil, 0, nil)
	wantErr(t, err, dir, `"ids"`, "I64")
	boom := errors.New("no entropy")
	_, err = WriteShards(dir, []Tensor{{Name: "w", DType: F32, Shape: []int{2}}}, nil, 0, func(*Tensor) error { return boom })
	wantErr(t, err, dir, `"w"`, "no entropy")
	if !errors.Is(err, boom) {
		t.Errorf("error %v does not wrap fill's", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a failed WriteShards left %v", entries)
	}
}

// The two split rules on one list, by hand: sizes a40 b20 c100 d24 e40 at a 64-byte limit.
// Order kept: [a b] [c] [d e]. huggingface_hub (split_state_dict_into_shards_factory) appends
// an oversized tensor as its own shard at once, before the shard being filled: [c] [a b] [d e].
func TestSplitShardsRules(t *testing.T) {
	sizes := []int64{40, 20, 100, 24, 40}
	if got, want := splitShards(sizes, 64, true), [][]int{{0, 1}, {2}, {3, 4}}; !reflect.DeepEqual(got, want) {
		t.Errorf("order kept: %v, want %v", got, want)
	}
	if got, want := splitShards(sizes, 64, false), [][]int{{2}, {0, 1}, {3, 4}}; !reflect.DeepEqual(got, want) {
		t.Errorf("huggingface_hub order: %v, want %v", got, want)
	}
}
