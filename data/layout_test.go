package data

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"
)

type layoutMsg struct {
	Role             string  `parquet:"role"`
	Content          string  `parquet:"content"`
	ReasoningContent *string `parquet:"reasoning_content,optional"`
}

type bareRow struct {
	Messages []layoutMsg `parquet:"messages"` // repeated group messages {role, content, reasoning_content}
}

type listRow struct {
	Messages []layoutMsg `parquet:"messages,list"` // messages (LIST) → repeated group list → element
}

// TestMessageLayouts: a bare repeated group and a 3-level LIST written by parquet-go's own
// writer (not DuckDB or arrow-rs), with the optional reasoning_content field, read back as the
// hand-written rows.
func TestMessageLayouts(t *testing.T) {
	think := "2+2 is 4"
	convs := [][]layoutMsg{
		{{Role: "user", Content: "2+2?"}, {Role: "assistant", Content: "4", ReasoningContent: &think}},
		{},
		{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hi"}},
	}
	want := []Counts{{Rows: 3, Examples: 2, EmptyLists: 1}}
	dir := t.TempDir()
	write := func(name string, rows any) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		switch r := rows.(type) {
		case []bareRow:
			err = parquet.Write(f, r)
		case []listRow:
			err = parquet.Write(f, r)
		}
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		return p
	}
	var bare []bareRow
	var list []listRow
	for _, c := range convs {
		bare = append(bare, bareRow{c})
		list = append(list, listRow{c})
	}
	for _, p := range []string{write("bare.parquet", bare), write("list.parquet", list)} {
		src, err := Open([]string{p}, Spec{Format: FormatChat})
		if err != nil {
			t.Fatal(err)
		}
		got := allExamples(t, src)
		if src.Counts() != want[0] {
			t.Errorf("%s: counts %+v, want %+v", p, src.Counts(), want[0])
		}
		for _, r := range []int64{0, 2} {
			var w []Message
			for _, m := range convs[r] {
				mm := Message{Role: m.Role, Content: m.Content}
				if m.ReasoningContent != nil {
					mm.ReasoningContent = *m.ReasoningContent
				}
				w = append(w, mm)
			}
			if !sameMessages(got[r].Messages, w) {
				t.Errorf("%s row %d: %+v, want %+v", p, r, got[r].Messages, w)
			}
		}
		src.Close()
	}
}
