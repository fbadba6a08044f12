package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/internal/testenv"
)

// rawFile writes a safetensors file by hand (length, header, data), independent of Write.
func rawFile(t testing.TB, dir, name, hdr string, data []byte) string {
	t.Helper()
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(hdr)))
	b.WriteString(hdr)
	b.Write(data)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func f32Bytes(vals ...float32) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, vals)
	return b.Bytes()
}

// wantErr checks that err is an error whose text holds every one of parts.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

func TestOpenHandBuilt(t *testing.T) {
	dir := t.TempDir()
	hdr := `{"__metadata__":{"format":"pt"},"b":{"dtype":"I64","shape":[2],"data_offsets":[24,40]},` +
		`"a":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]},"s":{"dtype":"F32","shape":[],"data_offsets":[40,44]},` +
		`"z":{"dtype":"F32","shape":[0,5],"data_offsets":[44,44]}}   `
	data := f32Bytes(0, 1, 2, 3, 4, 5)
	data = binary.LittleEndian.AppendUint64(data, uint64(1<<40))
	data = binary.LittleEndian.AppendUint64(data, math.MaxUint64) // -1
	data = append(data, f32Bytes(-7.5)...)
	path := rawFile(t, dir, "x.safetensors", hdr, data)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.Names(); !reflect.DeepEqual(got, []string{"a", "b", "s", "z"}) {
		t.Errorf("Names = %q", got)
	}
	if got := f.Metadata(); !reflect.DeepEqual(got, map[string]string{"format": "pt"}) {
		t.Errorf("Metadata = %v", got)
	}
	in, ok := f.Info("a")
	if want := (Info{Name: "a", DType: F32, Shape: []int{1, 2, 3}, Begin: 0, End: 24}); !ok || !reflect.DeepEqual(in, want) {
		t.Errorf("Info(a) = %+v, want %+v", in, want)
	}
	if v, err := f.Float32("a"); err != nil || !reflect.DeepEqual(v, []float32{0, 1, 2, 3, 4, 5}) {
		t.Errorf("Float32(a) = %v, %v", v, err)
	}
	if v, err := f.Int64("b"); err != nil || !reflect.DeepEqual(v, []int64{1 << 40, -1}) {
		t.Errorf("Int64(b) = %v, %v", v, err)
	}
	if v, err := f.Float32("s"); err != nil || !reflect.DeepEqual(v, []float32{-7.5}) {
		t.Errorf("Float32(s) = %v, %v", v, err)
	}
	if v, err := f.Float32("z"); err != nil || len(v) != 0 {
		t.Errorf("Float32(z) = %v, %v", v, err)
	}
	if got := f.Bytes("b"); !bytes.Equal(got, data[24:40]) {
		t.Errorf("Bytes(b) = %v", got)
	}
	_, err = f.Float32("b")
	wantErr(t, err, path, `"b"`, "I64")
	_, err = f.Int64("a")
	wantErr(t, err, path, `"a"`, "F32")
	_, err = f.Float32("nope")
	wantErr(t, err, path, `"nope"`)
	if f.Bytes("nope") != nil {
		t.Error("Bytes of a missing tensor is not nil")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if f.Bytes("a") != nil {
		t.Error("Bytes after Close is not nil")
	}
	_, err = f.Float32("a")
	wantErr(t, err, path, `"a"`, "closed")
}

// Byte strings of the reference implementation's own serialisation tests
// (huggingface/safetensors, safetensors/src/tensor.rs): compact JSON, padded with spaces to 8.
func TestWriteMatchesReferenceBytes(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name    string
		tensors []Tensor
		meta    map[string]string
		hdr     string
		data    []byte
	}{
		{"one tensor, no padding", []Tensor{{Name: "attn.0", DType: F32, Shape: []int{1, 2, 3}, F32: []float32{0, 1, 2, 3, 4, 5}}}, nil,
			`{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`, f32Bytes(0, 1, 2, 3, 4, 5)},
		{"forced alignment", []Tensor{{Name: "attn0", DType: F32, Shape: []int{1, 1, 2, 3}, F32: []float32{0, 1, 2, 3, 4, 5}}}, nil,
			`{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       `, f32Bytes(0, 1, 2, 3, 4, 5)},
		{"empty", nil, nil, `{}      `, nil},
		{"empty with metadata", nil, map[string]string{"framework": "pt"}, `{"__metadata__":{"framework":"pt"}}     `, nil},
	}
	for _, c := range cases {
		path := filepath.Join(dir, "w.safetensors")
		if err := Write(path, c.tensors, c.meta); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, _ := os.ReadFile(path)
		want := binary.LittleEndian.AppendUint64(nil, uint64(len(c.hdr)))
		want = append(append(want, c.hdr...), c.data...)
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, want)
		}
		if f, err := Open(path); err != nil {
			t.Errorf("%s: reopen: %v", c.name, err)
		} else {
			f.Close()
		}
	}
}

// Mixed dtypes are laid out as the reference does: by descending dtype rank, then name; the
// header follows the data order.
func TestWriteLayoutOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	err := Write(path, []Tensor{
		{Name: "h", DType: F16, Shape: []int{1}, F32: []float32{1}},
		{Name: "a", DType: BF16, Shape: []int{3}, F32: []float32{1, 2, 3}},
		{Name: "i", DType: I64, Shape: []int{1}, I64: []int64{7}},
		{Name: "b", DType: F32, Shape: []int{1}, F32: []float32{1}},
		{Name: "c", DType: F32, Shape: []int{1}, F32: []float32{2}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string][2]int64{"i": {0, 8}, "b": {8, 12}, "c": {12, 16}, "a": {16, 22}, "h": {22, 24}}
	for n, w := range want {
		in, _ := f.Info(n)
		if in.Begin != w[0] || in.End != w[1] {
			t.Errorf("%s at [%d,%d], want %v", n, in.Begin, in.End, w)
		}
	}
	raw, _ := os.ReadFile(path)
	hdr := string(raw[8 : 8+binary.LittleEndian.Uint64(raw)])
	if ii, ib, ia := strings.Index(hdr, `"i"`), strings.Index(hdr, `"b"`), strings.Index(hdr, `"a"`); !(ii < ib && ib < ia) {
		t.Errorf("header order is not the data order: %s", hdr)
	}
}

func TestRoundTripDTypes(t *testing.T) {
	inf := float32(math.Inf(1))
	negZero := float32(math.Copysign(0, -1))
	pi := float32(math.Pi) // 0x40490fdb
	src := []float32{1, 1 + 1.0/256, 1 + 3.0/256, 1 + 1.0/256 + 1.0/(1<<20), negZero, inf, pi, 0.1, 1.0 / 3, 65519, 70000, 1.0 / (1 << 25), 3.0 / (1 << 25), -2.5}
	// BF16 by hand: keep the top 16 bits of the float32, round the dropped 16 to nearest even.
	wantBF16 := []float32{1, 1, 1 + 1.0/64, 1 + 1.0/128, negZero, inf,
		3.140625,        // 0x4049_0fdb: dropped 0x0fdb < 0x8000
		0.10009765625,   // 0x3dcc_cccd: dropped 0xcccd > 0x8000 -> 0x3dcd
		0.333984375,     // 0x3eaa_aaab -> 0x3eab
		65536,           // 0x477f_ef00 -> 0x4780
		70144,           // 0x4788_b800 -> 0x4789
		1.0 / (1 << 25), // exact
		3.0 / (1 << 25), // exact
		-2.5}
	// F16 by hand (see f16Cases).
	wantF16 := []float32{1, 1 + 1.0/256, 1 + 3.0/256, 1 + 1.0/256, negZero, inf, // 10 mantissa bits hold 2^-8
		3.140625,        // 0x4248
		0.0999755859375, // 0x2e66
		0.333251953125,  // 0x3555
		65504, inf, 0, 1.0 / (1 << 23), -2.5}
	wantF16Bits := []uint16{0x3c00, 0x3c04, 0x3c0c, 0x3c04, 0x8000, 0x7c00, 0x4248, 0x2e66, 0x3555, 0x7bff, 0x7c00, 0x0000, 0x0002, 0xc100}
	ints := []int64{0, -1, math.MaxInt64, math.MinInt64, 42}
	i32 := []int64{0, -1, math.MaxInt32, math.MinInt32, 42}
	path := filepath.Join(t.TempDir(), "rt.safetensors")
	n := len(src)
	err := Write(path, []Tensor{
		{Name: "f32", DType: F32, Shape: []int{2, n / 2}, F32: src},
		{Name: "bf16", DType: BF16, Shape: []int{n}, F32: src},
		{Name: "f16", DType: F16, Shape: []int{n, 1}, F32: src},
		{Name: "i64", DType: I64, Shape: []int{5}, I64: ints},
		{Name: "i32", DType: I32, Shape: []int{5}, I64: i32},
	}, map[string]string{"format": "pt", "note": "<&>\"é"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.Metadata(); got["note"] != "<&>\"é" || got["format"] != "pt" {
		t.Errorf("metadata %v", got)
	}
	same := func(name string, got, want []float32) {
		t.Helper()
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Errorf("%s[%d] (from %g) = %g, want %g", name, i, src[i], got[i], want[i])
			}
		}
	}
	got, err := f.Float32("f32")
	if err != nil {
		t.Fatal(err)
	}
	same("f32", got, src)
	got, _ = f.Float32("bf16")
	same("bf16", got, wantBF16)
	got, _ = f.Float32("f16")
	same("f16", got, wantF16)
	raw := f.Bytes("f16")
	for i, w := range wantF16Bits {
		if h := binary.LittleEndian.Uint16(raw[2*i:]); h != w {
			t.Errorf("f16 bits[%d] = %#04x, want %#04x", i, h, w)
		}
	}
	if v, _ := f.Int64("i64"); !reflect.DeepEqual(v, ints) {
		t.Errorf("i64 = %v", v)
	}
	if v, _ := f.Int64("i32"); !reflect.DeepEqual(v, i32) {
		t.Errorf("i32 = %v", v)
	}
	if in, _ := f.Info("f16"); !reflect.DeepEqual(in.Shape, []int{n, 1}) || in.DType != F16 {
		t.Errorf("Info(f16) = %+v", in)
	}
}

func TestF64Narrowed(t *testing.T) {
	var data []byte
	for _, v := range []float64{1.5, 0.1, 1e300} {
		data = binary.LittleEndian.AppendUint64(data, math.Float64bits(v))
	}
	path := rawFile(t, t.TempDir(), "d.safetensors", `{"d":{"dtype":"F64","shape":[3],"data_offsets":[0,24]}}`, data)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := f.Float32("d")
	if err != nil || got[0] != 1.5 || got[1] != float32(0.1) || !math.IsInf(float64(got[2]), 1) {
		t.Errorf("Float32(d) = %v, %v", got, err)
	}
}

func TestWriteRejects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.safetensors")
	cases := []struct {
		tensors []Tensor
		parts   []string
	}{
		{[]Tensor{{Name: "w", DType: F32, Shape: []int{2, 3}, F32: make([]float32, 5)}}, []string{`"w"`, "6 elements", "5"}},
		{[]Tensor{{Name: "w", DType: U8, Shape: []int{1}}}, []string{`"w"`, "U8"}},
		{[]Tensor{{Name: "w", DType: "F33", Shape: []int{1}}}, []string{`"w"`, "F33"}},
		{[]Tensor{{Name: "w", DType: F32, Shape: []int{-1}}}, []string{`"w"`, "negative"}},
		{[]Tensor{{Name: "w", DType: I32, Shape: []int{1}, I64: []int64{1 << 31}}}, []string{`"w"`, "I32"}},
		{[]Tensor{{Name: "w", DType: F32, Shape: []int{1}, F32: []float32{1}}, {Name: "w", DType: F32, Shape: []int{1}, F32: []float32{1}}}, []string{`"w"`, "twice"}},
		{[]Tensor{{Name: "__metadata__", DType: F32, Shape: []int{1}, F32: []float32{1}}}, []string{"__metadata__"}},
	}
	for _, c := range cases {
		wantErr(t, Write(path, c.tensors, nil), append(c.parts, path)...)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a rejected write left %s", path)
	}
}

// goldenPath is the tiny-dense model written by PyTorch's safetensors (an independent writer).
const goldenPath = "testdata/tiny-dense.safetensors"

func TestGoldenTinyDense(t *testing.T) {
	f, err := Open(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := f.Names()
	if len(names) != 24 || names[0] != "model.embed_tokens.weight" || names[23] != "model.norm.weight" { // tied embeddings: no lm_head
		t.Fatalf("names = %q", names)
	}
	shapes := map[string][]int{
		"model.embed_tokens.weight":                      {512, 64},
		"model.layers.0.self_attn.q_proj.weight":         {96, 64},
		"model.layers.0.self_attn.k_proj.weight":         {48, 64},
		"model.layers.1.mlp.down_proj.weight":            {64, 160},
		"model.layers.1.self_attn.q_norm.weight":         {24},
		"model.layers.0.post_attention_layernorm.weight": {64},
	}
	for n, s := range shapes {
		in, ok := f.Info(n)
		if !ok || in.DType != F32 || !reflect.DeepEqual(in.Shape, s) {
			t.Errorf("%s: %+v, want F32 %v", n, in, s)
		}
	}
	if m := f.Metadata(); !reflect.DeepEqual(m, map[string]string{"format": "pt"}) {
		t.Errorf("metadata %v", m)
	}
	// Values read with Python's struct module from the same file.
	emb, _ := f.Float32("model.embed_tokens.weight")
	q, _ := f.Float32("model.layers.0.self_attn.q_proj.weight")
	norm, _ := f.Float32("model.norm.weight")
	if emb[0] != -0.030511917546391487 || emb[1] != -0.015004635788500309 || q[96*64-1] != -0.013920878060162067 || norm[63] != 0.8782997131347656 {
		t.Errorf("values: emb[0]=%v emb[1]=%v q[-1]=%v norm[63]=%v", emb[0], emb[1], q[96*64-1], norm[63])
	}

	// Re-written by Write, the file is byte-identical to PyTorch's, and reads back equal.
	var tensors []Tensor
	for _, n := range names {
		in, _ := f.Info(n)
		v, err := f.Float32(n)
		if err != nil {
			t.Fatal(err)
		}
		tensors = append(tensors, Tensor{Name: n, DType: F32, Shape: in.Shape, F32: v})
	}
	out := filepath.Join(t.TempDir(), "model.safetensors")
	if err := Write(out, tensors, f.Metadata()); err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile(goldenPath)
	mine, _ := os.ReadFile(out)
	if !bytes.Equal(orig, mine) {
		t.Errorf("rewritten file differs from PyTorch's (%d vs %d bytes)", len(mine), len(orig))
	}
	g, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, n := range names {
		if !bytes.Equal(f.Bytes(n), g.Bytes(n)) {
			t.Errorf("%s: bytes differ after rewrite", n)
		}
	}
}

// The same model also in ../shared, with an I64 tensor in the golden file.
func TestSharedGolden(t *testing.T) {
	root := testenv.Shared(t, "")
	s, err := OpenDir(filepath.Join(root, "golden", "tiny-dense"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.Names()) != 24 {
		t.Errorf("tiny-dense: %d tensors", len(s.Names()))
	}
	g, err := Open(filepath.Join(root, "golden", "tiny-dense", "golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ids, err := g.Int64("input_ids")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if id < 0 || id >= 512 {
			t.Fatalf("input id %d outside the vocabulary", id)
		}
	}
}

// Open must not allocate more than the file holds, whatever the header claims.
func TestOpenBoundedAllocation(t *testing.T) {
	dir := t.TempDir()
	files := []string{
		rawFile(t, dir, "a", "{}", nil),
		rawFile(t, dir, "b", `{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, make([]byte, 4)),
		rawFile(t, dir, "c", `{"w":{"dtype":"F32","shape":[1000000000],"data_offsets":[0,4000000000]}}`, make([]byte, 4)),
	}
	// A header length of 99 MB in a 16-byte file.
	var b []byte
	b = binary.LittleEndian.AppendUint64(b, 99_000_000)
	b = append(b, "{}      "...)
	os.WriteFile(filepath.Join(dir, "d"), b, 0o644)
	files = append(files, filepath.Join(dir, "d"))
	for _, p := range files {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f, err := Open(p)
		runtime.ReadMemStats(&after)
		if err == nil {
			f.Close()
		}
		if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
			t.Errorf("%s: Open allocated %d bytes", p, d)
		}
	}
}

func TestIndexJSONLayout(t *testing.T) {
	dir := t.TempDir()
	ts := []Tensor{
		{Name: "t0", DType: F32, Shape: []int{10}, F32: make([]float32, 10)},  // 40 bytes
		{Name: "t1", DType: F32, Shape: []int{10}, F32: make([]float32, 10)},  // 40
		{Name: "t2", DType: F32, Shape: []int{25}, F32: make([]float32, 25)},  // 100 > max: own shard
		{Name: "t3", DType: I64, Shape: []int{3}, I64: make([]int64, 3)},      // 24
		{Name: "t4", DType: BF16, Shape: []int{15}, F32: make([]float32, 15)}, // 30
	}
	if err := WriteDir(dir, ts, map[string]string{"format": "pt"}, 64); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, IndexFileName))
	if err != nil {
		t.Fatal(err)
	}
	// huggingface_hub's split: [t0] | t1 would pass 64 -> new shard; t2 > 64 gets its own
	// shard at once; t3 (40+24 = 64 fits), t4 (64+30 > 64) -> new shard.
	want := `{
  "metadata": {
    "total_size": 234
  },
  "weight_map": {
    "t0": "model-00001-of-00004.safetensors",
    "t1": "model-00003-of-00004.safetensors",
    "t2": "model-00002-of-00004.safetensors",
    "t3": "model-00003-of-00004.safetensors",
    "t4": "model-00004-of-00004.safetensors"
  }
}
`
	if string(raw) != want {
		t.Errorf("index:\n%s\nwant:\n%s", raw, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 5 {
		t.Errorf("%d files in %s, want 4 shards and the index", len(entries), dir)
	}
}

func TestWriteDirSingleVsSharded(t *testing.T) {
	var ts []Tensor
	for i, name := range []string{"model.embed_tokens.weight", "model.layers.0.mlp.up_proj.weight", "model.layers.0.input_layernorm.weight",
		"model.layers.1.mlp.up_proj.weight", "lm_head.weight", "model.norm.weight"} {
		n := 37 * (i + 1)
		v := make([]float32, n)
		for j := range v {
			v[j] = float32(math.Sin(float64(i*1000+j))) * 3
		}
		dt := []DType{F32, BF16, F16}[i%3]
		ts = append(ts, Tensor{Name: name, DType: dt, Shape: []int{n}, F32: v})
	}
	ts = append(ts, Tensor{Name: "positions", DType: I64, Shape: []int{4, 2}, I64: []int64{1, 2, 3, 4, -5, 6, 7, 1 << 50}})
	one, many := t.TempDir(), t.TempDir()
	if err := WriteDir(one, ts, nil, 0); err != nil { // "format": "pt" added for transformers
		t.Fatal(err)
	}
	if err := WriteDir(many, ts, map[string]string{"format": "pt"}, 300); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(one, SingleFileName)); err != nil {
		t.Fatal(err)
	}
	a, err := OpenDir(one)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenDir(many)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if len(b.Files()) < 3 {
		t.Fatalf("sharded into %d files, want several", len(b.Files()))
	}
	for _, p := range b.Files() {
		f, _ := Open(p)
		var sum int64
		for _, n := range f.Names() {
			in, _ := f.Info(n)
			sum += in.End - in.Begin
		}
		if sum > 300 && len(f.Names()) > 1 {
			t.Errorf("%s holds %d bytes of tensors, above the 300 limit", p, sum)
		}
		if f.Metadata()["format"] != "pt" {
			t.Errorf("%s: metadata %v", p, f.Metadata())
		}
		f.Close()
	}
	if !reflect.DeepEqual(a.Names(), b.Names()) || len(a.Names()) != len(ts) {
		t.Fatalf("names differ: %q vs %q", a.Names(), b.Names())
	}
	for _, n := range a.Names() {
		ia, _, _ := a.Info(n)
		ib, file, ok := b.Info(n)
		if !ok || ia.DType != ib.DType || !reflect.DeepEqual(ia.Shape, ib.Shape) || !strings.HasPrefix(filepath.Base(file), "model-0000") {
			t.Errorf("%s: %+v vs %+v in %s", n, ia, ib, file)
		}
		if !bytes.Equal(a.Bytes(n), b.Bytes(n)) {
			t.Errorf("%s: bytes differ", n)
		}
	}
	for _, tt := range ts {
		if tt.DType == I64 {
			v, err := b.Int64(tt.Name)
			if err != nil || !reflect.DeepEqual(v, tt.I64) {
				t.Errorf("%s = %v, %v", tt.Name, v, err)
			}
			continue
		}
		v, err := b.Float32(tt.Name)
		if err != nil {
			t.Fatal(err)
		}
		for j, x := range tt.F32 {
			want := x
			switch tt.DType {
			case BF16:
				want = math.Float32frombits((math.Float32bits(x) + 0x7fff + (math.Float32bits(x)>>16)&1) &^ 0xffff)
			case F16:
				want = F16BitsToF32(newF16Table().nearest(x))
			}
			if v[j] != want {
				t.Fatalf("%s[%d] = %g, want %g", tt.Name, j, v[j], want)
			}
		}
	}
	_, err = b.Float32("missing.weight")
	wantErr(t, err, `"missing.weight"`, IndexFileName, "model-00001-of-")
	_, err = a.Int64("missing.weight")
	wantErr(t, err, `"missing.weight"`, filepath.Join(one, SingleFileName))

	// A single file path opens as a set too.
	c, err := OpenDir(filepath.Join(one, SingleFileName))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if m := c.files[0].Metadata(); !reflect.DeepEqual(m, map[string]string{"format": "pt"}) {
		t.Errorf("WriteDir metadata %v, want format pt", m)
	}
}

// Saving again in the other layout leaves only the new files, so the folder opens as the new save.
func TestWriteDirReplacesStaleLayout(t *testing.T) {
	dir := t.TempDir()
	old := []Tensor{{Name: "a", DType: F32, Shape: []int{8}, F32: make([]float32, 8)}, {Name: "b", DType: F32, Shape: []int{8}, F32: make([]float32, 8)}}
	if err := WriteDir(dir, old, nil, 40); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}"), 0o644)
	fresh := []Tensor{{Name: "a", DType: F32, Shape: []int{1}, F32: []float32{42}}}
	if err := WriteDir(dir, fresh, nil, 0); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !reflect.DeepEqual(got, []string{"config.json", SingleFileName}) {
		t.Errorf("files after re-save: %q", got)
	}
	if err := WriteDir(dir, old, nil, 40); err != nil {
		t.Fatal(err)
	}
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.Files()) != 2 || len(s.Names()) != 2 {
		t.Errorf("after re-sharding: files %q names %q", s.Files(), s.Names())
	}
	if _, err := os.Stat(filepath.Join(dir, SingleFileName)); !os.IsNotExist(err) {
		t.Errorf("stale %s left behind", SingleFileName)
	}
}

func TestIndexErrors(t *testing.T) {
	mk := func(t *testing.T, weightMap string, shards map[string]string) string {
		dir := t.TempDir()
		for name, hdr := range shards {
			rawFile(t, dir, name, hdr, make([]byte, 4))
		}
		os.WriteFile(filepath.Join(dir, IndexFileName), []byte(`{"metadata":{"total_size":8},"weight_map":`+weightMap+`}`), 0o644)
		return dir
	}
	shardA := `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`
	shardB := `{"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`
	cases := []struct {
		name      string
		weightMap string
		shards    map[string]string
		parts     []string
	}{
		{"missing shard", `{"a":"s1.safetensors","b":"s2.safetensors"}`, map[string]string{"s1.safetensors": shardA},
			[]string{IndexFileName, "s2.safetensors", `"b"`}},
		{"tensor absent from its shard", `{"a":"s1.safetensors","c":"s1.safetensors"}`, map[string]string{"s1.safetensors": shardA},
			[]string{IndexFileName, `"c"`, "s1.safetensors"}},
		{"tensor in two shards", `{"a":"s1.safetensors","b":"s2.safetensors"}`, map[string]string{"s1.safetensors": shardA, "s2.safetensors": `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`},
			[]string{`"a"`, "s1.safetensors", "s2.safetensors"}},
		{"tensor mapped to the wrong shard", `{"a":"s2.safetensors","b":"s1.safetensors"}`, map[string]string{"s1.safetensors": shardA, "s2.safetensors": shardB},
			[]string{`"a"`, "s1.safetensors", "s2.safetensors"}},
		{"tensor listed twice", `{"a":"s1.safetensors","a":"s1.safetensors"}`, map[string]string{"s1.safetensors": shardA},
			[]string{IndexFileName, `"a"`, "twice"}},
		{"shard outside the folder", `{"a":"../s1.safetensors"}`, nil, []string{IndexFileName, `"a"`, "../s1.safetensors"}},
		{"corrupt shard", `{"a":"s1.safetensors"}`, map[string]string{"s1.safetensors": `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`},
			[]string{IndexFileName, "s1.safetensors", `"a"`}},
		{"no weight_map", `null`, nil, []string{IndexFileName, "weight_map"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := OpenDir(mk(t, c.weightMap, c.shards))
			wantErr(t, err, c.parts...)
		})
	}
	_, err := OpenDir(t.TempDir())
	wantErr(t, err, SingleFileName, IndexFileName)
}

func BenchmarkWriteOpenRead(b *testing.B) {
	v := make([]float32, 1<<22) // 16 MiB as F32
	for i := range v {
		v[i] = float32(i) * 1e-3
	}
	dir := b.TempDir()
	for _, dt := range []DType{F32, BF16} {
		b.Run(string(dt), func(b *testing.B) {
			b.SetBytes(int64(len(v)) * 4)
			for b.Loop() {
				path := filepath.Join(dir, "bench.safetensors")
				if err := Write(path, []Tensor{{Name: "w", DType: dt, Shape: []int{1024, len(v) / 1024}, F32: v}}, nil); err != nil {
					b.Fatal(err)
				}
				f, err := Open(path)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := f.Float32("w"); err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
	}
}

func BenchmarkFloat32(b *testing.B) {
	v := make([]float32, 1<<22)
	path := filepath.Join(b.TempDir(), "r.safetensors")
	if err := Write(path, []Tensor{{Name: "f32", DType: F32, Shape: []int{len(v)}, F32: v}, {Name: "bf16", DType: BF16, Shape: []int{len(v)}, F32: v}, {Name: "f16", DType: F16, Shape: []int{len(v)}, F32: v}}, nil); err != nil {
		b.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for _, name := range []string{"f32", "bf16", "f16"} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(v)) * 4)
			for b.Loop() {
				f.Float32(name)
			}
		})
	}
}
