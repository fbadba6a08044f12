package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/gwen-ml/gwen/data"
	"github.com/gwen-ml/gwen/data/tokenizer"
)

// TestDataBatches: `gwen data batches` on pretraining text gives rows that, read in order, are
// the texts' tokens each followed by <|im_end|>, with every document's first label ignored
// and positions restarting at each document start; the summary counts the tokens.
func TestDataBatches(t *testing.T) {
	const tokDir = "../../assets/qwen3-tokenizer"
	file := parquetTestdata + "regen/pretrain_v2.parquet"
	var out, errb bytes.Buffer
	args := []string{"data", "batches", file, "--tokenizer", tokDir, "--rows", "2", "--seq-len", "64", "--batches", "3", "--workers", "2"}
	if code := run(args, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 3 batches and a summary", len(lines))
	}
	tok, err := tokenizer.Load(tokDir)
	if err != nil {
		t.Fatal(err)
	}
	src, err := data.Open([]string{file}, data.Spec{Format: data.FormatText})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var stream []int32 // the texts' tokens with EOS, in order
	var starts []bool  // a document starts at this token
	for len(stream) < 3*2*64 {
		ex, err := src.Next()
		if err != nil {
			t.Fatal(err)
		}
		ids := append(tok.Encode(ex.Text), tok.EOS())
		stream = append(stream, ids...)
		starts = append(starts, true)
		starts = append(starts, make([]bool, len(ids)-1)...)
	}
	k := 0
	for _, line := range lines[:3] {
		var b struct{ IDs, Labels, Pos, DocStart [][]int32 }
		if err := json.Unmarshal(bytes.ReplaceAll(line, []byte(`"doc_start"`), []byte(`"DocStart"`)), &b); err != nil {
			t.Fatal(err)
		}
		if len(b.IDs) != 2 || len(b.IDs[0]) != 64 {
			t.Fatalf("batch of %d rows of %d", len(b.IDs), len(b.IDs[0]))
		}
		for r := range b.IDs {
			if !slices.Equal(b.IDs[r], stream[k:k+64]) {
				t.Fatalf("row at token %d: %v, want %v", k, b.IDs[r], stream[k:k+64])
			}
			pos := int32(0)
			for c := range b.IDs[r] {
				newDoc := c == 0 || starts[k+c]
				if newDoc {
					pos = 0
				}
				wantLabel := b.IDs[r][c]
				if newDoc {
					wantLabel = data.Ignore
				}
				if b.Labels[r][c] != wantLabel || b.Pos[r][c] != pos || (newDoc && b.DocStart[r][c] != int32(c)) {
					t.Fatalf("token %d: label %d pos %d doc %d; want label %d pos %d", k+c, b.Labels[r][c], b.Pos[r][c], b.DocStart[r][c], wantLabel, pos)
				}
				pos++
			}
			k += 64
		}
	}
	var s struct{ Summary struct{ Tokens, Padding int } }
	if err := json.Unmarshal(lines[3], &s); err != nil || s.Summary.Tokens != 3*2*64 || s.Summary.Padding != 0 {
		t.Errorf("summary %s (%v)", lines[3], err)
	}
}
