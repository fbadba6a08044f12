package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Hugging Face's names for a model folder's weights.
const (
	SingleFileName = "model.safetensors"
	IndexFileName  = "model.safetensors.index.json"
)

// Set is the tensors of a model folder: one model.safetensors, or the shards that
// model.safetensors.index.json lists, each tensor in exactly one file.
type Set struct {
	source string  // the file or index the set was opened from, for error messages
	files  []*File // in shard-name order
	where  map[string]int
	names  []string // sorted
}

// OpenDir opens the weights of a model folder. As transformers does, it prefers
// dir/model.safetensors, then dir/model.safetensors.index.json; path may also name a single
// .safetensors file. For an index, every tensor of its weight_map must be in the shard it
// names, shards must be plain file names inside dir, and no tensor may appear in two files.
func OpenDir(path string) (*Set, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if !st.IsDir() {
		return openSingle(path)
	}
	single := filepath.Join(path, SingleFileName)
	if _, err := os.Stat(single); err == nil {
		return openSingle(single)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	index := filepath.Join(path, IndexFileName)
	if _, err := os.Stat(index); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("safetensors %s: neither %s nor %s found", path, SingleFileName, IndexFileName)
		}
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return openIndex(path, index)
}

func openSingle(path string) (*Set, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	s := &Set{source: path, files: []*File{f}, where: map[string]int{}, names: f.Names()}
	for _, n := range s.names {
		s.where[n] = 0
	}
	return s, nil
}

// readIndex reads an index file's weight_map, rejecting a tensor listed twice (which Go's
// json would silently resolve) and shard names that leave the folder.
func readIndex(index string) (map[string]string, error) {
	raw, err := os.ReadFile(index)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	var doc struct {
		WeightMap json.RawMessage `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("safetensors %s: invalid index JSON: %v", index, err)
	}
	if len(doc.WeightMap) == 0 || string(doc.WeightMap) == "null" {
		return nil, fmt.Errorf("safetensors %s: index has no weight_map", index)
	}
	dec := json.NewDecoder(bytes.NewReader(doc.WeightMap))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("safetensors %s: weight_map is not an object", index)
	}
	wm := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("safetensors %s: weight_map: %v", index, err)
		}
		name := tok.(string) // object keys are strings; Unmarshal above checked the syntax
		tok, err = dec.Token()
		if err != nil {
			return nil, fmt.Errorf("safetensors %s: weight_map: %v", index, err)
		}
		shard, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("safetensors %s: weight_map: tensor %q: shard %v is not a file name", index, name, tok)
		}
		if _, dup := wm[name]; dup {
			return nil, fmt.Errorf("safetensors %s: weight_map: tensor %q listed twice", index, name)
		}
		if shard == "" || shard == "." || shard == ".." || strings.ContainsAny(shard, `/\`) {
			return nil, fmt.Errorf("safetensors %s: weight_map: tensor %q: shard %q is not a file name inside the folder", index, name, shard)
		}
		wm[name] = shard
	}
	return wm, nil
}

func openIndex(dir, index string) (*Set, error) {
	wm, err := readIndex(index)
	if err != nil {
		return nil, err
	}
	firstTensor := map[string]string{} // shard → its first tensor in name order, for messages
	for _, name := range slices.Sorted(maps.Keys(wm)) {
		if _, ok := firstTensor[wm[name]]; !ok {
			firstTensor[wm[name]] = name
		}
	}
	shards := slices.Sorted(maps.Keys(firstTensor))
	s := &Set{source: index, where: map[string]int{}}
	for i, shard := range shards {
		f, err := Open(filepath.Join(dir, shard))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("safetensors %s: shard %s (holding tensor %q): %w", index, shard, firstTensor[shard], err)
		}
		s.files = append(s.files, f)
		for _, n := range f.h.names {
			if j, dup := s.where[n]; dup {
				s.Close()
				return nil, fmt.Errorf("safetensors %s: tensor %q is in two shards, %s and %s", index, n, s.files[j].path, f.path)
			}
			s.where[n] = i
		}
	}
	for _, name := range slices.Sorted(maps.Keys(wm)) {
		want := filepath.Join(dir, wm[name])
		i, ok := s.where[name]
		if !ok {
			s.Close()
			return nil, fmt.Errorf("safetensors %s: tensor %q is mapped to shard %s, which does not hold it", index, name, want)
		}
		if got := s.files[i].path; got != want {
			s.Close()
			return nil, fmt.Errorf("safetensors %s: tensor %q is mapped to shard %s but found in %s", index, name, want, got)
		}
	}
	for n := range s.where {
		s.names = append(s.names, n)
	}
	sort.Strings(s.names)
	return s, nil
}

// Names returns every tensor name of the set, sorted.
func (s *Set) Names() []string { return slices.Clone(s.names) }

// Files returns the paths of the set's files, in order.
func (s *Set) Files() []string {
	out := make([]string, len(s.files))
	for i, f := range s.files {
		out[i] = f.path
	}
	return out
}

// Info returns the description of the named tensor and the path of the file holding it.
func (s *Set) Info(name string) (Info, string, bool) {
	i, ok := s.where[name]
	if !ok {
		return Info{}, "", false
	}
	in, _ := s.files[i].Info(name)
	return in, s.files[i].path, true
}

func (s *Set) file(name string) (*File, error) {
	i, ok := s.where[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: no tensor %q in %s (searched %s)", name, s.source, strings.Join(s.Files(), ", "))
	}
	return s.files[i], nil
}

// Float32 returns the named tensor as float32 (see File.Float32).
func (s *Set) Float32(name string) ([]float32, error) {
	f, err := s.file(name)
	if err != nil {
		return nil, err
	}
	return f.Float32(name)
}

// Int64 returns the named tensor as int64 (see File.Int64).
func (s *Set) Int64(name string) ([]int64, error) {
	f, err := s.file(name)
	if err != nil {
		return nil, err
	}
	return f.Int64(name)
}

// Bytes returns the raw bytes of the named tensor, a view valid until Close (nil if absent).
func (s *Set) Bytes(name string) []byte {
	f, err := s.file(name)
	if err != nil {
		return nil
	}
	return f.Bytes(name)
}

// Close unmaps every file of the set.
func (s *Set) Close() error {
	var errs []error
	for _, f := range s.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// Float32Into decodes the named tensor into dst; see File.Float32Into.
func (s *Set) Float32Into(dst []float32, name string) error {
	f, err := s.file(name)
	if err != nil {
		return err
	}
	return f.Float32Into(dst, name)
}
