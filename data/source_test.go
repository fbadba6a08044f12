package data

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"

	"github.com/gwen-ml/gwen/internal/testenv"
)

// The references: manifest.json and expected/*.jsonl, written by DuckDB / arrow-rs /
// hyparquet-writer and read back by DuckDB and hyparquet (see ../shared/parquet/README.md).

type manifest struct {
	Files []manifestFile `json:"files"`
}

type manifestFile struct {
	File         string                 `json:"file"`
	Rows         int64                  `json:"rows"`
	RowGroupRows []int64                `json:"row_group_rows"`
	ColumnStats  map[string]columnStats `json:"column_stats"`
}

type columnStats struct {
	Kind         string   `json:"kind"`
	Nulls        int64    `json:"nulls"`
	Empty        int64    `json:"empty"`
	UTF8Bytes    int64    `json:"utf8_bytes"`
	CodePoints   int64    `json:"code_points"`
	SHA256Concat string   `json:"sha256_concat"`
	SHA256Framed string   `json:"sha256_framed"`
	Sum          *float64 `json:"sum"`
	Min          *float64 `json:"min"`
	Max          *float64 `json:"max"`
}

// goldenDirs are the folders whose manifest.json the tests check every present file of.
func goldenDirs(t *testing.T) []string {
	dirs := []string{"testdata/parquet", "testdata/parquet/regen", "testdata/parquet/v2"}
	if s, ok := testenv.SharedPath("parquet"); ok {
		dirs = append(dirs, s)
	} else {
		t.Log("../shared/parquet not found: checking the testdata copies only")
	}
	if s := os.Getenv("GWEN_PARQUET_DIR"); s != "" { // e.g. a full gen.mjs output
		dirs = append(dirs, s)
	}
	return dirs
}

func readManifest(t *testing.T, dir string) manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestManifestStrings reads every string column of every golden file as a text source and
// checks row counts, row groups, NULLs and the framed/concatenated hashes.
func TestManifestStrings(t *testing.T) {
	n := 0
	for _, dir := range goldenDirs(t) {
		for _, mf := range readManifest(t, dir).Files {
			path := filepath.Join(dir, mf.File)
			if _, err := os.Stat(path); err != nil {
				continue
			}
			for col, want := range mf.ColumnStats {
				if want.Kind != "string" {
					continue
				}
				n++
				t.Run(filepath.Base(dir)+"/"+mf.File+"/"+col, func(t *testing.T) {
					checkStringColumn(t, path, col, mf, want)
				})
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d string columns checked", n)
	}
}

func checkStringColumn(t *testing.T, path, col string, mf manifestFile, want columnStats) {
	src, err := Open([]string{path}, Spec{Format: FormatText, Column: col})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if got := src.NumRows(); got != mf.Rows {
		t.Fatalf("NumRows %d, want %d", got, mf.Rows)
	}
	if got := src.files[0].groups; !equalInts(got, mf.RowGroupRows) {
		t.Fatalf("row groups %v, want %v", got, mf.RowGroupRows)
	}
	framed, concat := sha256.New(), sha256.New()
	null := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	var next, empty, bytes, runes int64
	for {
		ex, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for ; next < ex.Row; next++ {
			framed.Write(null)
		}
		next++
		framed.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(ex.Text))))
		framed.Write([]byte(ex.Text))
		concat.Write([]byte(ex.Text))
		if ex.Text == "" {
			empty++
		}
		bytes += int64(len(ex.Text))
		runes += int64(utf8.RuneCountInString(ex.Text))
	}
	for ; next < mf.Rows; next++ {
		framed.Write(null)
	}
	c := src.Counts()
	if c.Rows != mf.Rows || c.NullRows != want.Nulls || c.Examples != mf.Rows-want.Nulls {
		t.Errorf("counts %+v, want %d rows, %d NULL", c, mf.Rows, want.Nulls)
	}
	if empty != want.Empty || bytes != want.UTF8Bytes || runes != want.CodePoints {
		t.Errorf("empty %d bytes %d code points %d, want %d %d %d", empty, bytes, runes, want.Empty, want.UTF8Bytes, want.CodePoints)
	}
	if got := hex.EncodeToString(framed.Sum(nil)); got != want.SHA256Framed {
		t.Errorf("sha256_framed %s, want %s", got, want.SHA256Framed)
	}
	if got := hex.EncodeToString(concat.Sum(nil)); got != want.SHA256Concat {
		t.Errorf("sha256_concat %s, want %s", got, want.SHA256Concat)
	}
}

// TestManifestNumbers checks the numeric columns with parquet-go's generic value reader: it
// proves parquet-go decodes those pages (codecs, dictionary) the way DuckDB and hyparquet do.
func TestManifestNumbers(t *testing.T) {
	n := 0
	for _, dir := range goldenDirs(t) {
		for _, mf := range readManifest(t, dir).Files {
			path := filepath.Join(dir, mf.File)
			if _, err := os.Stat(path); err != nil {
				continue
			}
			for col, want := range mf.ColumnStats {
				if want.Kind != "number" {
					continue
				}
				n++
				f, pf, err := openParquet(path)
				if err != nil {
					t.Fatal(err)
				}
				c := pf.Root().Column(col)
				var nulls int64
				sum, lo, hi := 0.0, math.Inf(1), math.Inf(-1)
				for _, rg := range pf.RowGroups() {
					pages := rg.ColumnChunks()[c.Index()].Pages()
					for {
						p, err := pages.ReadPage()
						if err == io.EOF {
							break
						}
						if err != nil {
							t.Fatal(err)
						}
						vals := make([]parquet.Value, p.NumValues())
						if _, err := p.Values().ReadValues(vals); err != nil && err != io.EOF {
							t.Fatal(err)
						}
						for _, v := range vals {
							if v.IsNull() {
								nulls++
								continue
							}
							x := v.Double()
							if v.Kind() == parquet.Int64 {
								x = float64(v.Int64())
							}
							sum += x
							lo, hi = math.Min(lo, x), math.Max(hi, x)
						}
					}
					pages.Close()
				}
				f.Close()
				if nulls != want.Nulls || sum != *want.Sum || lo != *want.Min || hi != *want.Max {
					t.Errorf("%s %s: nulls %d sum %v min %v max %v, want %d %v %v %v", path, col, nulls, sum, lo, hi, want.Nulls, *want.Sum, *want.Min, *want.Max)
				}
			}
		}
	}
	if n < 4 {
		t.Fatalf("only %d numeric columns checked", n)
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// jsonMessage is a message as the expected JSONL writes it: any part may be null.
type jsonMessage struct {
	Role    *string `json:"role"`
	Content *string `json:"content"`
}

func readJSONL(t *testing.T, path string) []map[string]json.RawMessage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []map[string]json.RawMessage
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// expectMessages is what a reader must make of one expected list: its status and messages.
func expectMessages(t *testing.T, raw json.RawMessage) ([]Message, rowStatus) {
	var list *[]*jsonMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	if list == nil {
		return nil, rowNull
	}
	if len(*list) == 0 {
		return nil, rowEmpty
	}
	var out []Message
	for _, m := range *list {
		if m == nil || m.Role == nil || m.Content == nil {
			return nil, rowNullMessage
		}
		out = append(out, Message{Role: *m.Role, Content: *m.Content})
	}
	return out, rowOK
}

func allExamples(t *testing.T, src *Source) map[int64]Example {
	t.Helper()
	got := map[int64]Example{}
	for {
		ex, err := src.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got[ex.Row] = ex
	}
}

func sameMessages(a, b []Message) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestChatExpected reads the messages columns as chat and compares with expected/*.jsonl row by
// row, including which rows are skipped and why.
func TestChatExpected(t *testing.T) {
	cases := []struct{ file, expected string }{
		{"sft_messages.parquet", "sft_messages.jsonl"},
		{"sft_messages_alt.parquet", "sft_messages.jsonl"}, // list child named "item"
		{"nulls.parquet", "nulls.jsonl"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			src, err := Open([]string{filepath.Join("testdata/parquet", c.file)}, Spec{Format: FormatChat})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			got := allExamples(t, src)
			rows := readJSONL(t, filepath.Join("testdata/parquet/expected", c.expected))
			var want Counts
			for i, row := range rows {
				msgs, st := expectMessages(t, row["messages"])
				want.add(st)
				ex, ok := got[int64(i)]
				if ok != (st == rowOK) {
					t.Fatalf("row %d: got example %v, want status %d", i, ok, st)
				}
				if ok && !sameMessages(ex.Messages, msgs) {
					t.Fatalf("row %d: messages\n%+v\nwant\n%+v", i, ex.Messages, msgs)
				}
			}
			if src.Counts() != want {
				t.Errorf("counts %+v, want %+v", src.Counts(), want)
			}
			if want.Examples == 0 {
				t.Fatal("no example expected: a test that cannot fail")
			}
		})
	}
}

// TestPreference reads DPO pairs as strings and as conversations (role/content and
// content/role field order); the conversation files hold the same pairs as dpo_pairs, so the
// prompt/chosen/rejected split of the lists must give dpo_pairs' strings.
func TestPreference(t *testing.T) {
	pairs := readJSONL(t, "testdata/parquet/expected/dpo_pairs.jsonl")
	str := func(r json.RawMessage) string {
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, file := range []string{"dpo_pairs", "dpo_messages", "dpo_messages_ultrafeedback"} {
		t.Run(file, func(t *testing.T) {
			src, err := Open([]string{"testdata/parquet/" + file + ".parquet"}, Spec{Format: FormatPreference})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			got := allExamples(t, src)
			if len(got) != len(pairs) || src.Counts().Skipped() != 0 {
				t.Fatalf("%d examples, counts %+v, want %d", len(got), src.Counts(), len(pairs))
			}
			var exp []map[string]json.RawMessage
			if file != "dpo_pairs" {
				exp = readJSONL(t, "testdata/parquet/expected/"+file+".jsonl")
			}
			for i, p := range pairs {
				ex := got[int64(i)]
				if ex.Prompt != str(p["prompt"]) || ex.Chosen != str(p["chosen"]) || ex.Rejected != str(p["rejected"]) {
					t.Fatalf("row %d: %q / %q / %q, want %s / %s / %s", i, ex.Prompt, ex.Chosen, ex.Rejected, p["prompt"], p["chosen"], p["rejected"])
				}
				if exp == nil {
					continue
				}
				c, _ := expectMessages(t, exp[i]["chosen"])
				r, _ := expectMessages(t, exp[i]["rejected"])
				if !sameMessages(ex.ChosenMessages, c) || !sameMessages(ex.RejectedMessages, r) {
					t.Fatalf("row %d: lists differ from expected", i)
				}
				if len(ex.PromptMessages) != 1 || ex.PromptMessages[0].Role != "user" {
					t.Fatalf("row %d: prompt messages %+v", i, ex.PromptMessages)
				}
			}
		})
	}
}

// TestSchemaErrors: a missing column, a wrong type, a file that is not Parquet and a truncated
// Parquet file are errors naming the file (and the column where there is one).
func TestSchemaErrors(t *testing.T) {
	dir := t.TempDir()
	notParquet := filepath.Join(dir, "notes.parquet")
	os.WriteFile(notParquet, []byte("this is not a parquet file, just text\n"), 0o644)
	full, err := os.ReadFile("testdata/parquet/dpo_pairs.parquet")
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.parquet")
	os.WriteFile(truncated, full[:len(full)/2], 0o644)
	cases := []struct {
		file string
		spec Spec
		want []string
	}{
		{"testdata/parquet/dpo_pairs.parquet", Spec{Format: FormatText}, []string{"dpo_pairs.parquet", `"text"`, "no column", "prompt"}},
		{"testdata/parquet/dpo_pairs.parquet", Spec{Format: FormatChat, Column: "prompt"}, []string{"dpo_pairs.parquet", `"prompt"`, "BYTE_ARRAY (STRING)", "want LIST<STRUCT<role STRING, content STRING>>"}},
		{"testdata/parquet/sft_messages.parquet", Spec{Format: FormatText, Column: "messages"}, []string{"sft_messages.parquet", `"messages"`, "is LIST<STRUCT<role STRING, content STRING>>", "want BYTE_ARRAY (STRING)"}},
		{"testdata/parquet/nulls.parquet", Spec{Format: FormatText, Column: "id"}, []string{"nulls.parquet", `"id"`, "is INT64", "want BYTE_ARRAY"}},
		{"testdata/parquet/math_prompts.parquet", Spec{Format: FormatPreference}, []string{"math_prompts.parquet", `"prompt"`, "no column"}},
		{notParquet, Spec{Format: FormatText}, []string{notParquet, "not a readable Parquet file"}},
		{truncated, Spec{Format: FormatText}, []string{truncated, "not a readable Parquet file"}},
	}
	for _, c := range cases {
		_, err := Open([]string{c.file}, c.spec)
		if err == nil {
			t.Errorf("%s %+v: no error", c.file, c.spec)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s %+v: error %q does not say %q", c.file, c.spec, err, w)
			}
		}
		var se *SchemaError
		if strings.Contains(c.want[1], `"`) && !errors.As(err, &se) {
			t.Errorf("%v is not a *SchemaError", err)
		}
	}
}

// TestCorruptPage: damaged page bytes (footer intact) are an error naming the file, the row
// group and the column when the row is read, never a crash.
func TestCorruptPage(t *testing.T) {
	full, err := os.ReadFile("testdata/parquet/v2/pretrain_hyparquet_v2_small.parquet")
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int{1000, 120000} {
		b := append([]byte(nil), full...)
		for i := off; i < off+64; i++ {
			b[i] ^= 0x5a
		}
		p := filepath.Join(t.TempDir(), "damaged.parquet")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		src, err := Open([]string{p}, Spec{Format: FormatText})
		if err != nil {
			t.Fatal(err)
		}
		for err == nil {
			_, err = src.Next()
		}
		src.Close()
		if err == io.EOF {
			t.Fatalf("offset %d: damage not detected", off)
		}
		for _, w := range []string{p, "row group", `column "text"`} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("offset %d: error %q does not say %q", off, err, w)
			}
		}
	}
}
