package data

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

type tokRow32 struct {
	IDs []int32 `parquet:"input_ids,list"` // 3-level LIST, required int32 elements
}

type tokRow64 struct {
	IDs []int64 `parquet:"input_ids"` // a bare repeated int64
}

type tokRowDict struct {
	IDs []int64 `parquet:"tokens,list,dict"` // dictionary-encoded, another column name
}

// writeParquet writes rows with parquet-go, flushing a row group every groupRows rows, with
// small pages so that lists cross page boundaries.
func writeParquet[T any](t *testing.T, path string, rows []T, groupRows int, opts ...parquet.WriterOption) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[T](f, append([]parquet.WriterOption{parquet.PageBufferSize(64)}, opts...)...)
	for i := 0; i < len(rows); i += groupRows {
		if _, err := w.Write(rows[i:min(i+groupRows, len(rows))]); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// tokenDocs are hand-written id lists: lengths 1 to 40, so pages (64 bytes) split lists.
func tokenDocs() [][]int64 {
	var docs [][]int64
	for i := 0; i < 23; i++ {
		d := make([]int64, 1+(i*7)%40)
		for k := range d {
			d[k] = int64(1000*i + k)
		}
		docs = append(docs, d)
	}
	docs = append(docs, []int64{2147483647, 0}) // the int32 extremes pass through
	return docs
}

// TestTokensLayouts: the same id lists written as a 3-level LIST<INT32>, a bare repeated
// INT64, and a dictionary-encoded LIST<INT64> under another column name, over several row
// groups and pages, read back as written; Seek into the middle continues exactly.
func TestTokensLayouts(t *testing.T) {
	docs := tokenDocs()
	var r32 []tokRow32
	var r64 []tokRow64
	var rd []tokRowDict
	for _, d := range docs {
		d32 := make([]int32, len(d))
		for k, v := range d {
			d32[k] = int32(v)
		}
		r32 = append(r32, tokRow32{d32})
		r64 = append(r64, tokRow64{d})
		rd = append(rd, tokRowDict{d})
	}
	dir := t.TempDir()
	p32, p64, pd := filepath.Join(dir, "list32.parquet"), filepath.Join(dir, "bare64.parquet"), filepath.Join(dir, "dict64.parquet")
	writeParquet(t, p32, r32, 10)
	writeParquet(t, p64, r64, 7)
	writeParquet(t, pd, rd, 24)
	if !hasDictionaryPage(t, pd) {
		t.Fatal("dict64.parquet has no dictionary-encoded page: the test would not cover them")
	}
	for _, c := range []struct {
		path string
		spec Spec
	}{{p32, Spec{Format: FormatTokens}}, {p64, Spec{Format: FormatTokens, Column: "input_ids"}}, {pd, Spec{Format: FormatTokens, Column: "tokens"}}} {
		src, err := Open([]string{c.path}, c.spec)
		if err != nil {
			t.Fatal(err)
		}
		got := allExamples(t, src)
		if len(got) != len(docs) || src.Counts() != (Counts{Rows: int64(len(docs)), Examples: int64(len(docs))}) {
			t.Fatalf("%s: %d examples, counts %+v", c.path, len(got), src.Counts())
		}
		for i, d := range docs {
			if !equalIDs(got[int64(i)].IDs, d) {
				t.Fatalf("%s row %d: %v, want %v", c.path, i, got[int64(i)].IDs, d)
			}
		}
		// Row 15 is row 1 of the second row group of list32 (groups of 10) and row 1 of the
		// third of bare64 (groups of 7); dict64 has one group.
		pos := map[string]Position{p32: {RowGroup: 1, Row: 5}, p64: {RowGroup: 2, Row: 1}, pd: {RowGroup: 0, Row: 15}}[c.path]
		if err := src.Seek(pos); err != nil {
			t.Fatal(err)
		}
		ex, err := src.Next()
		if err != nil || ex.Row != 15 || !equalIDs(ex.IDs, docs[15]) {
			t.Fatalf("%s: after Seek(%+v): row %d %v (%v), want row 15 %v", c.path, pos, ex.Row, ex.IDs, err, docs[15])
		}
		src.Close()
	}
}

func equalIDs(got []int32, want []int64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if int64(got[i]) != want[i] {
			return false
		}
	}
	return true
}

func hasDictionaryPage(t *testing.T, path string) bool {
	f, pf, err := openParquet(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, rg := range pf.RowGroups() {
		pages := rg.ColumnChunks()[0].Pages()
		for {
			p, err := pages.ReadPage()
			if err != nil {
				break
			}
			if p.Dictionary() != nil {
				pages.Close()
				return true
			}
		}
		pages.Close()
	}
	return false
}

// TestTokensNulls: a NULL list, an empty list and a list with a NULL element give no example
// and are counted as such (optional LIST of optional INT32, written from maps).
func TestTokensNulls(t *testing.T) {
	schema := parquet.NewSchema("r", parquet.Group{"input_ids": parquet.Optional(parquet.List(parquet.Optional(parquet.Int(32))))})
	p := filepath.Join(t.TempDir(), "nulls.parquet")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[map[string]any](f, schema)
	one, two := int32(1), int32(2)
	rows := []map[string]any{
		{"input_ids": []*int32{&one, &two}},
		{"input_ids": nil},
		{"input_ids": []*int32{}},
		{"input_ids": []*int32{&one, nil}},
		{"input_ids": []*int32{&two}},
	}
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	src, err := Open([]string{p}, Spec{Format: FormatTokens})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got := allExamples(t, src)
	if want := (Counts{Rows: 5, Examples: 2, NullRows: 1, NullMessages: 1, EmptyLists: 1}); src.Counts() != want {
		t.Errorf("counts %+v, want %+v", src.Counts(), want)
	}
	if len(got) != 2 || !slices.Equal(got[0].IDs, []int32{1, 2}) || !slices.Equal(got[4].IDs, []int32{2}) {
		t.Errorf("examples %+v", got)
	}
}

// TestTokensSchemaErrors: a column of the wrong type is a SchemaError naming the file, the
// column, the type found and the type wanted; a missing one lists the file's columns.
func TestTokensSchemaErrors(t *testing.T) {
	dir := t.TempDir()
	type strList struct {
		IDs []string `parquet:"input_ids,list"`
	}
	type dblList struct {
		IDs []float64 `parquet:"input_ids,list"`
	}
	type flat struct {
		IDs  int64  `parquet:"input_ids"`
		Text string `parquet:"text"`
	}
	pS, pD, pF := filepath.Join(dir, "strings.parquet"), filepath.Join(dir, "doubles.parquet"), filepath.Join(dir, "flat.parquet")
	writeParquet(t, pS, []strList{{[]string{"a"}}}, 1)
	writeParquet(t, pD, []dblList{{[]float64{1}}}, 1)
	writeParquet(t, pF, []flat{{1, "a"}}, 1)
	cases := []struct {
		path, column, found string
	}{
		{pS, "input_ids", "LIST<BYTE_ARRAY (STRING)>"},
		{pD, "input_ids", "LIST<DOUBLE>"},
		{pF, "input_ids", "INT64"},
		{pF, "text", "BYTE_ARRAY (STRING)"},
		{"testdata/parquet/sft_messages.parquet", "messages", "LIST<STRUCT<role STRING, content STRING>>"},
	}
	for _, c := range cases {
		_, err := Open([]string{c.path}, Spec{Format: FormatTokens, Column: c.column})
		var se *SchemaError
		if !errors.As(err, &se) || se.File != c.path || se.Column != c.column || se.Found != c.found || se.Want != "LIST<INT32> or LIST<INT64>" {
			t.Errorf("%s column %s: %#v (%v), want found %q", c.path, c.column, se, err, c.found)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, c.path) || !strings.Contains(msg, `"`+c.column+`"`) || !strings.Contains(msg, c.found) {
			t.Errorf("message %q", msg)
		}
	}
	_, err := Open([]string{pF}, Spec{Format: FormatTokens, Column: "ids"})
	var se *SchemaError
	if !errors.As(err, &se) || se.Found != "" || !slices.Equal(se.Available, []string{"input_ids", "text"}) {
		t.Errorf("missing column: %v", err)
	}
	if f, err := ParseFormat("tokens"); err != nil || f != FormatTokens {
		t.Errorf("ParseFormat(tokens) = %q, %v", f, err)
	}
	if _, err := ParseFormat("token"); err == nil || !strings.Contains(err.Error(), "tokens") {
		t.Errorf("ParseFormat(token): %v", err)
	}
}

// TestTokensOutOfRange: an INT64 id that does not fit int32 is an error naming the file, the
// row group, the row, the column and the position in the list.
func TestTokensOutOfRange(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.parquet")
	writeParquet(t, p, []tokRow64{{[]int64{1}}, {[]int64{5, 1 << 31}}}, 1)
	src, err := Open([]string{p}, Spec{Format: FormatTokens})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Next(); err != nil {
		t.Fatal(err)
	}
	_, err = src.Next()
	for _, w := range []string{p, "row group 1, row 0", `column "input_ids"`, "token id 2147483648 at list position 1"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not say %q", err, w)
		}
	}
}

// TestTokensPipeline: pre-tokenized documents are stream-packed as pretraining text is, with
// one EOS after each document (none added after one that already ends with EOS). The batches
// are worked out by hand.
func TestTokensPipeline(t *testing.T) {
	tok := qwen3(t)
	E := int64(tok.EOS())
	const I = Ignore
	e := int32(E)
	p := filepath.Join(t.TempDir(), "docs.parquet")
	writeParquet(t, p, []tokRow64{{[]int64{11, 12, 13}}, {[]int64{21, 22, E}}, {nil}, {[]int64{31}}, {[]int64{41, 42, 43, 44, 45}}}, 5)
	src, err := Open([]string{p}, Spec{Format: FormatTokens})
	if err != nil {
		t.Fatal(err)
	}
	mix, err := NewMixture([]*Stream{NewStream(src, false, 0)}, []float64{1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := NewPipeline(mix, tok, PipelineConfig{Task: TaskPretrain, Rows: 2, SeqLen: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	// The stream: 11 12 13 E | 21 22 E | 31 E | 41 42 43 44 45 E | (next epoch) 11 12 13 E | 21 …
	want := []Batch{{
		IDs:      []int32{11, 12, 13, e, 21 /**/, 22, e, 31, e, 41},
		Labels:   []int32{I, 12, 13, e, I /**/, I, e, I, e, I},
		Pos:      []int32{0, 1, 2, 3, 0 /**/, 0, 1, 0, 1, 0},
		DocStart: []int32{0, 0, 0, 0, 4 /**/, 0, 0, 2, 2, 4},
	}, {
		IDs:      []int32{42, 43, 44, 45, e /**/, 11, 12, 13, e, 21},
		Labels:   []int32{I, 43, 44, 45, e /**/, I, 12, 13, e, I},
		Pos:      []int32{0, 1, 2, 3, 4 /**/, 0, 1, 2, 3, 0},
		DocStart: []int32{0, 0, 0, 0, 0 /**/, 0, 0, 0, 0, 4},
	}}
	for i, w := range want {
		w.B, w.T = 2, 5
		b, err := pl.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !equalBatch(b, w) {
			t.Fatalf("batch %d:\n%+v\nwant\n%+v", i, b, w)
		}
	}
	if c := pl.Counts(); c.Examples < 5 {
		t.Errorf("counts %+v", c)
	}
}

// TestTokensMatchText: ids written as a tokens column give the same batches, bit for bit, as
// the texts they were tokenized from (read as format text), and resume the same way.
func TestTokensMatchText(t *testing.T) {
	tok := qwen3(t)
	src, err := Open([]string{"testdata/parquet/regen/pretrain_v2.parquet"}, Spec{Format: FormatText})
	if err != nil {
		t.Fatal(err)
	}
	type textRow struct {
		Text string `parquet:"text"`
	}
	var texts []textRow
	var ids []tokRow32
	for len(texts) < 60 {
		ex, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(ex.Text) > 4000 {
			continue // keep the test fast
		}
		texts = append(texts, textRow{ex.Text})
		ids = append(ids, tokRow32{tok.Encode(ex.Text)})
	}
	src.Close()
	dir := t.TempDir()
	pt, pi := filepath.Join(dir, "text.parquet"), filepath.Join(dir, "ids.parquet")
	writeParquet(t, pt, texts, 25)
	writeParquet(t, pi, ids, 25)
	cfg := PipelineConfig{Task: TaskPretrain, Rows: 2, SeqLen: 96}
	open := func(path string, f Format) *Pipeline {
		p, err := NewPipeline(mixOf(t, Spec{Format: f}, []string{path}, []bool{true}, []float64{1}), tok, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	pText, pIDs := open(pt, FormatText), open(pi, FormatTokens)
	want, got := take(t, pText, 12), take(t, pIDs, 5)
	st := pIDs.State()
	pText.Close()
	pIDs.Close()
	resumed := open(pi, FormatTokens)
	defer resumed.Close()
	if err := resumed.Restore(st); err != nil {
		t.Fatal(err)
	}
	got = append(got, take(t, resumed, 7)...)
	for i := range want {
		if !equalBatch(got[i], want[i]) {
			t.Fatalf("batch %d differs from the text pipeline's", i)
		}
	}
}

// TestTokensEncodeErrors: ids outside the vocabulary and tokens under another task are errors
// naming the file and row.
func TestTokensEncodeErrors(t *testing.T) {
	tok := qwen3(t)
	enc := Encoder{Task: TaskPretrain, Tok: tok, EOS: tok.EOS(), SeqLen: 8}
	ex := Example{IDs: []int32{5, int32(tok.VocabSize())}, File: "f.parquet", Row: 7}
	if _, err := enc.Encode(ex); err == nil || !strings.Contains(err.Error(), "f.parquet: row 7: token id") {
		t.Errorf("out of vocabulary: %v", err)
	}
	enc.Task = TaskSFT
	if _, err := enc.Encode(Example{IDs: []int32{5}, File: "f.parquet", Row: 3}); err == nil || !strings.Contains(err.Error(), "f.parquet: row 3: pre-tokenized") {
		t.Errorf("tokens under sft: %v", err)
	}
	enc.Task = TaskPretrain
	in := []int32{5, 6}
	out, err := enc.Encode(Example{IDs: in[:2:2]})
	if err != nil || !slices.Equal(out.Seq.IDs, []int32{5, 6, tok.EOS()}) || !slices.Equal(out.Seq.Labels, out.Seq.IDs) {
		t.Errorf("encode: %+v %v", out, err)
	}
	backing := []int32{5, 6, 99}
	if _, err := enc.Encode(Example{IDs: backing[:2]}); err != nil || backing[2] != 99 {
		t.Errorf("Encode wrote into the example's backing array: %v %v", backing, err)
	}
}
