package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/gwen-ml/gwen/data/tokenizer"
)

// TestDataTokens: a pre-tokenized file written here reads back through `gwen data cat` and
// `stats` with --format tokens, and `gwen data batches --format tokens` packs it as
// pretraining text: each document followed by EOS (none added when it already ends with EOS).
func TestDataTokens(t *testing.T) {
	const tokDir = "../../assets/qwen3-tokenizer"
	tok, err := tokenizer.Load(tokDir)
	if err != nil {
		t.Fatal(err)
	}
	e := tok.EOS()
	type row struct {
		IDs []int32 `parquet:"input_ids,list"`
	}
	rows := []row{{[]int32{11, 12, 13}}, {[]int32{21, e}}, {[]int32{31, 32}}}
	p := filepath.Join(t.TempDir(), "ids.parquet")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := parquet.Write(f, rows); err != nil {
		t.Fatal(err)
	}
	f.Close()

	var out, errb bytes.Buffer
	if code := run([]string{"data", "cat", p, "--format", "tokens"}, nil, &out, &errb); code != 0 {
		t.Fatalf("cat: exit %d: %s", code, errb.String())
	}
	want := "{\"ids\":[11,12,13]}\n{\"ids\":[21," + jsonInt(e) + "]}\n{\"ids\":[31,32]}\n"
	if out.String() != want {
		t.Errorf("cat:\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	if code := run([]string{"data", "stats", p, "--format", "tokens"}, nil, &out, &errb); code != 0 {
		t.Fatalf("stats: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "length (ids)") || !strings.Contains(out.String(), "\nids                         7 ") {
		t.Errorf("stats:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"data", "batches", p, "--format", "tokens", "--tokenizer", tokDir, "--rows", "1", "--seq-len", "9", "--quiet=false"}, nil, &out, &errb); code != 0 {
		t.Fatalf("batches: exit %d: %s", code, errb.String())
	}
	var b struct {
		IDs [][]int32 `json:"ids"`
		Pos [][]int32 `json:"pos"`
	}
	line, _, _ := bytes.Cut(out.Bytes(), []byte("\n"))
	if err := json.Unmarshal(line, &b); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	// 11 12 13 E | 21 E | 31 32 E
	if !slices.Equal(b.IDs[0], []int32{11, 12, 13, e, 21, e, 31, 32, e}) || !slices.Equal(b.Pos[0], []int32{0, 1, 2, 3, 0, 1, 0, 1, 2}) {
		t.Errorf("batch ids %v pos %v", b.IDs, b.Pos)
	}
	errb.Reset()
	if code := run([]string{"data", "cat", p, "--format", "tokens", "--column", "text"}, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), `no column "text"`) {
		t.Errorf("missing column: exit %d, %s", code, errb.String())
	}
}
