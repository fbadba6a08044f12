package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/gwen-ml/gwen/internal/durable"
	"github.com/gwen-ml/gwen/kernels/bf16"
)

// Tensor is one tensor to write. The data comes from F32 for the float dtypes (F32 as is, BF16
// and F16 rounded to nearest even) and from I64 for the integer ones (I64 as is, I32 range-checked).
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	F32   []float32
	I64   []int64
}

// planned is a tensor placed in the data buffer.
type planned struct {
	t          *Tensor
	begin, end int64
}

// layout validates tensors and places them as the reference implementation does: sorted by
// dtype alignment, largest first, then by name, back to back from offset 0. The header lists
// them in the same order, so the file is byte-identical to Hugging Face's for the same input.
func layout(path string, tensors []Tensor) ([]planned, int64, error) {
	seen := map[string]bool{}
	order := make([]planned, len(tensors))
	for i := range tensors {
		t := &tensors[i]
		if err := checkTensor(t); err != nil {
			return nil, 0, fmt.Errorf("safetensors: writing %s: tensor %q: %w", path, t.Name, err)
		}
		if seen[t.Name] {
			return nil, 0, fmt.Errorf("safetensors: writing %s: tensor %q given twice", path, t.Name)
		}
		seen[t.Name] = true
		order[i].t = t
	}
	slices.SortFunc(order, func(a, b planned) int {
		if ra, rb := dtypeTable[a.t.DType].rank, dtypeTable[b.t.DType].rank; ra != rb {
			return rb - ra
		}
		switch {
		case a.t.Name < b.t.Name:
			return -1
		case a.t.Name > b.t.Name:
			return 1
		}
		return 0
	})
	var off int64
	for i := range order {
		n, _ := byteLen(order[i].t.DType, order[i].t.Shape) // checked by checkTensor
		order[i].begin, order[i].end = off, off+n
		off += n
	}
	return order, off, nil
}

// checkTensor checks that a tensor can be written: a valid name, a writable dtype, a shape
// whose element count matches the data.
func checkTensor(t *Tensor) error {
	if t.Name == "" || t.Name == "__metadata__" || !utf8.ValidString(t.Name) {
		return errors.New("invalid tensor name")
	}
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("negative dimension in shape %v", t.Shape)
		}
	}
	if !t.DType.Known() {
		return fmt.Errorf("unknown dtype %q", t.DType)
	}
	nbytes, err := byteLen(t.DType, t.Shape)
	if err != nil {
		return err
	}
	n := nbytes / int64(t.DType.Bits()/8)
	var have int
	var src string
	switch t.DType {
	case F32, BF16, F16:
		have, src = len(t.F32), "F32"
	case I64:
		have, src = len(t.I64), "I64"
	case I32:
		have, src = len(t.I64), "I64"
		for _, v := range t.I64 {
			if v < math.MinInt32 || v > math.MaxInt32 {
				return fmt.Errorf("value %d does not fit I32", v)
			}
		}
	default:
		return fmt.Errorf("dtype %s cannot be written (writable: F32, BF16, F16 from F32; I64, I32 from I64)", t.DType)
	}
	if int64(have) != n {
		return fmt.Errorf("shape %v holds %d elements but the %s data has %d", t.Shape, n, src, have)
	}
	return nil
}

// quoteJSON writes s as a JSON string, without Go's HTML escaping (as serde_json writes it).
func quoteJSON(buf *bytes.Buffer, s string) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a valid UTF-8 string cannot fail
	buf.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

// encodeHeader writes the compact JSON header, padded with spaces to a multiple of 8 bytes.
func encodeHeader(order []planned, metadata map[string]string) []byte {
	var buf bytes.Buffer
	buf.WriteByte('{')
	if metadata != nil {
		buf.WriteString(`"__metadata__":{`)
		for i, k := range slices.Sorted(maps.Keys(metadata)) {
			if i > 0 {
				buf.WriteByte(',')
			}
			quoteJSON(&buf, k)
			buf.WriteByte(':')
			quoteJSON(&buf, metadata[k])
		}
		buf.WriteByte('}')
		if len(order) > 0 {
			buf.WriteByte(',')
		}
	}
	for i, p := range order {
		if i > 0 {
			buf.WriteByte(',')
		}
		quoteJSON(&buf, p.t.Name)
		buf.WriteString(`:{"dtype":"` + string(p.t.DType) + `","shape":[`)
		for j, d := range p.t.Shape {
			if j > 0 {
				buf.WriteByte(',')
			}
			buf.WriteString(strconv.Itoa(d))
		}
		fmt.Fprintf(&buf, `],"data_offsets":[%d,%d]}`, p.begin, p.end)
	}
	buf.WriteByte('}')
	for buf.Len()%8 != 0 {
		buf.WriteByte(' ')
	}
	return buf.Bytes()
}

// writeData writes one tensor's data, little-endian, a chunk of elements at a time.
func writeData(w io.Writer, t *Tensor) error {
	const chunk = 1 << 14 // elements per write
	buf := make([]byte, chunk*8)
	var bits [chunk]uint16
	le := binary.LittleEndian
	n := len(t.F32)
	if t.DType == I64 || t.DType == I32 {
		n = len(t.I64)
	}
	size := t.DType.Bits() / 8
	for start := 0; start < n; start += chunk {
		end := min(start+chunk, n)
		switch t.DType {
		case F32:
			for i, f := range t.F32[start:end] {
				le.PutUint32(buf[4*i:], math.Float32bits(f))
			}
		case BF16:
			bf16.FromF32s(bits[:], t.F32[start:end])
			for i := range end - start {
				le.PutUint16(buf[2*i:], bits[i])
			}
		case F16:
			for i, f := range t.F32[start:end] {
				le.PutUint16(buf[2*i:], F32ToF16Bits(f))
			}
		case I64:
			for i, v := range t.I64[start:end] {
				le.PutUint64(buf[8*i:], uint64(v))
			}
		case I32:
			for i, v := range t.I64[start:end] {
				le.PutUint32(buf[4*i:], uint32(int32(v)))
			}
		default:
			return fmt.Errorf("dtype %s cannot be written", t.DType) // excluded by checkTensor
		}
		if _, err := w.Write(buf[:(end-start)*size]); err != nil {
			return err
		}
	}
	return nil
}

// Write writes tensors to a safetensors file at path, atomically: a temporary file in the same
// folder is written, synced and renamed over path, and the folder synced. On any error the
// temporary file is removed and an existing file at path is left as it was. metadata (nil for
// none) becomes the header's "__metadata__".
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	order, _, err := layout(path, tensors)
	if err != nil {
		return err
	}
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("safetensors: writing %s: metadata %q is not valid UTF-8", path, k)
		}
	}
	hdr := encodeHeader(order, metadata)
	return writeAtomic(path, func(w io.Writer) error {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(hdr)))
		if _, err := w.Write(n[:]); err != nil {
			return err
		}
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		for _, p := range order {
			if err := writeData(w, p.t); err != nil {
				return fmt.Errorf("tensor %q: %w", p.t.Name, err)
			}
		}
		return nil
	})
}

// wrapTemp wraps the writer of every file this package writes (a seam for tests of failing
// disks; the identity otherwise).
var wrapTemp = func(w io.Writer) io.Writer { return w }

// writeAtomic writes path through fill with durable.Write (a temporary file beside it, synced
// and renamed over it, the folder synced); on error path is left as it was.
func writeAtomic(path string, fill func(io.Writer) error) error {
	if err := durable.Write(path, 0o644, func(w io.Writer) error { return fill(wrapTemp(w)) }); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// shardName is Hugging Face's name for shard i (1-based) of n.
func shardName(i, n int) string { return fmt.Sprintf("model-%05d-of-%05d.safetensors", i, n) }

var shardPattern = regexp.MustCompile(`^model-\d{5}-of-\d{5}\.safetensors$`)

// WriteDir writes tensors as a model folder's weights. When maxShardBytes <= 0 or all tensor
// data fits in it, dir/model.safetensors; otherwise shards model-0000i-of-0000K.safetensors,
// split as huggingface_hub does (tensors in the given order fill a shard until the next would
// pass maxShardBytes; a tensor larger than that gets a shard of its own), and
// model.safetensors.index.json with {"metadata": {"total_size": N}, "weight_map": {..}}. Each
// file is written atomically, the index last; then weight files of an earlier save that the new
// one does not use (model.safetensors, the index, model-*-of-*.safetensors) are removed, so that
// the folder opens as what was just written. metadata goes into every file's header, with
// "format": "pt" added when it has no "format" (transformers requires it).
func WriteDir(dir string, tensors []Tensor, metadata map[string]string, maxShardBytes int64) error {
	metadata = withFormat(metadata)
	var total int64
	sizes := make([]int64, len(tensors))
	for i := range tensors {
		if err := checkTensor(&tensors[i]); err != nil {
			return fmt.Errorf("safetensors: writing %s: tensor %q: %w", dir, tensors[i].Name, err)
		}
		sizes[i], _ = byteLen(tensors[i].DType, tensors[i].Shape)
		total += sizes[i]
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("safetensors: writing %s: %w", dir, err)
	}
	if maxShardBytes <= 0 || total <= maxShardBytes {
		if err := Write(filepath.Join(dir, SingleFileName), tensors, metadata); err != nil {
			return err
		}
		return removeStale(dir, map[string]bool{SingleFileName: true})
	}

	var shards [][]Tensor
	for _, idx := range splitShards(sizes, maxShardBytes, false) {
		shard := make([]Tensor, len(idx))
		for j, i := range idx {
			shard[j] = tensors[i]
		}
		shards = append(shards, shard)
	}

	keep := map[string]bool{IndexFileName: true}
	weightMap := map[string]string{}
	for i, shard := range shards {
		name := shardName(i+1, len(shards))
		keep[name] = true
		for _, t := range shard {
			if _, dup := weightMap[t.Name]; dup {
				return fmt.Errorf("safetensors: writing %s: tensor %q given twice", dir, t.Name)
			}
			weightMap[t.Name] = name
		}
	}
	for i, shard := range shards {
		if err := Write(filepath.Join(dir, shardName(i+1, len(shards))), shard, metadata); err != nil {
			return err
		}
	}
	if err := writeIndex(dir, total, weightMap); err != nil {
		return err
	}
	return removeStale(dir, keep)
}

// splitShards groups tensors of the given byte sizes into shards, as indices: in order, each
// shard filled until the next tensor would pass maxShardBytes. A tensor larger than that gets a
// shard alone: where it comes when keepOrder, else before the shard being filled, as
// huggingface_hub's split_state_dict_into_shards does.
func splitShards(sizes []int64, maxShardBytes int64, keepOrder bool) [][]int {
	var shards [][]int
	var cur []int
	var size int64
	for i, n := range sizes {
		if n > maxShardBytes && !keepOrder {
			shards = append(shards, []int{i})
			continue
		}
		if size+n > maxShardBytes && len(cur) > 0 {
			shards = append(shards, cur)
			cur, size = nil, 0
		}
		cur = append(cur, i)
		size += n
	}
	if len(cur) > 0 {
		shards = append(shards, cur)
	}
	return shards
}

// withFormat is metadata with "format": "pt" added when it has no "format": transformers
// refuses a file whose metadata lacks it (load_state_dict: "does not contain the valid
// metadata"), so a model folder always says it holds PyTorch tensors.
func withFormat(metadata map[string]string) map[string]string {
	if _, ok := metadata["format"]; ok {
		return metadata
	}
	m := map[string]string{"format": "pt"}
	for k, v := range metadata {
		m[k] = v
	}
	return m
}

// writeIndex writes dir/model.safetensors.index.json as huggingface_hub does:
// {"metadata": {"total_size": N}, "weight_map": {tensor: shard}}, indented by two spaces.
func writeIndex(dir string, total int64, weightMap map[string]string) error {
	index := struct {
		Metadata  map[string]int64  `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}{map[string]int64{"total_size": total}, weightMap}
	js, err := json.MarshalIndent(index, "", "  ")
	if err != nil {
		return fmt.Errorf("safetensors: writing %s: %w", dir, err)
	}
	js = append(js, '\n')
	return writeAtomic(filepath.Join(dir, IndexFileName), func(w io.Writer) error {
		_, err := w.Write(js)
		return err
	})
}

// WriteShards writes a model folder's weights, as WriteDir does, for tensors whose data is
// made while writing: tensors give Name, DType (F32, BF16 or F16) and Shape, no data, and
// fill(t) writes tensor t's values into t.F32 (len = its element count; the memory is reused
// for the next shard). fill is called once per tensor, in the given order, and only one
// shard's fp32 data is in memory at a time, so a model larger than memory can be made.
//
// The split keeps the given order, which fill's single pass needs: tensors fill a shard until
// the next would pass maxShardBytes, and one larger than maxShardBytes is a shard alone where
// it comes (WriteDir, as huggingface_hub, puts such a tensor before the shard being filled).
// It returns the number of weight files written.
func WriteShards(dir string, tensors []Tensor, metadata map[string]string, maxShardBytes int64, fill func(t *Tensor) error) (int, error) {
	metadata = withFormat(metadata)
	var total int64
	sizes := make([]int64, len(tensors))
	for i := range tensors {
		t := tensors[i]
		if t.DType != F32 && t.DType != BF16 && t.DType != F16 {
			return 0, fmt.Errorf("safetensors: writing %s: tensor %q: dtype %s (WriteShards makes F32, BF16 or F16)", dir, t.Name, t.DType)
		}
		n, err := byteLen(t.DType, t.Shape)
		if err != nil {
			return 0, fmt.Errorf("safetensors: writing %s: tensor %q: %w", dir, t.Name, err)
		}
		sizes[i] = n
		total += n
	}
	shards := [][]int{make([]int, len(tensors))} // indices into tensors
	for i := range tensors {
		shards[0][i] = i
	}
	if maxShardBytes > 0 && total > maxShardBytes {
		shards = splitShards(sizes, maxShardBytes, true)
	}
	largest := 0
	for _, s := range shards {
		n := 0
		for _, i := range s {
			n += int(sizes[i] / int64(tensors[i].DType.Bits()/8))
		}
		largest = max(largest, n)
	}
	slab := make([]float32, largest) // reused by every shard

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("safetensors: writing %s: %w", dir, err)
	}
	keep := map[string]bool{}
	weightMap := map[string]string{}
	for k, s := range shards {
		name := SingleFileName
		if len(shards) > 1 {
			name = shardName(k+1, len(shards))
		}
		keep[name] = true
		ts := make([]Tensor, len(s))
		off := 0
		for j, i := range s {
			n := int(sizes[i] / int64(tensors[i].DType.Bits()/8))
			ts[j] = Tensor{Name: tensors[i].Name, DType: tensors[i].DType, Shape: tensors[i].Shape, F32: slab[off : off+n : off+n]}
			off += n
			clear(ts[j].F32)
			if err := fill(&ts[j]); err != nil {
				return 0, fmt.Errorf("safetensors: writing %s: tensor %q: %w", dir, ts[j].Name, err)
			}
			if _, dup := weightMap[ts[j].Name]; dup {
				return 0, fmt.Errorf("safetensors: writing %s: tensor %q given twice", dir, ts[j].Name)
			}
			weightMap[ts[j].Name] = name
		}
		if err := Write(filepath.Join(dir, name), ts, metadata); err != nil {
			return 0, err
		}
	}
	if len(shards) > 1 {
		keep[IndexFileName] = true
		if err := writeIndex(dir, total, weightMap); err != nil {
			return 0, err
		}
	}
	return len(shards), removeStale(dir, keep)
}

// removeStale removes the weight files of dir that keep does not name.
func removeStale(dir string, keep map[string]bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("safetensors: cleaning %s: %w", dir, err)
	}
	for _, e := range entries {
		n := e.Name()
		if keep[n] || !(n == SingleFileName || n == IndexFileName || shardPattern.MatchString(n)) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("safetensors: removing stale %s: %w", filepath.Join(dir, n), err)
		}
	}
	return nil
}
