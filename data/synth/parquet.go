package synth

import (
	"fmt"
	"github.com/gwen-ml/gwen/internal/durable"
	"io"

	"github.com/parquet-go/parquet-go"
)

// Columns chooses which columns WriteParquet writes besides prompt and answer.
type Columns int

const (
	// AllColumns: prompt, answer, messages and text.
	AllColumns Columns = iota
	// ChatColumns: prompt, answer and messages (read with format chat).
	ChatColumns
	// TextColumns: prompt, answer and text (read with format text).
	TextColumns
)

// ParseColumns accepts "all" (or ""), "chat" or "text".
func ParseColumns(s string) (Columns, error) {
	switch s {
	case "", "all":
		return AllColumns, nil
	case "chat":
		return ChatColumns, nil
	case "text":
		return TextColumns, nil
	}
	return 0, fmt.Errorf("unknown format %q (want all, chat or text)", s)
}

type pqMessage struct {
	Role    string `parquet:"role"`
	Content string `parquet:"content"`
}

type pqAll struct {
	Prompt   string      `parquet:"prompt"`
	Answer   string      `parquet:"answer"`
	Messages []pqMessage `parquet:"messages,list"`
	Text     string      `parquet:"text"`
}

type pqChat struct {
	Prompt   string      `parquet:"prompt"`
	Answer   string      `parquet:"answer"`
	Messages []pqMessage `parquet:"messages,list"`
}

type pqText struct {
	Prompt string `parquet:"prompt"`
	Answer string `parquet:"answer"`
	Text   string `parquet:"text"`
}

// rowGroupRows bounds a row group, so a reader holds a few MB at a time however many rows.
const rowGroupRows = 4096

// WriteParquet writes rows to path as Parquet (Snappy, strings as STRING, messages as a
// 3-level LIST<STRUCT<role, content>>). The file is written beside path under a temporary name,
// synced and renamed (internal/durable), so path is either the old file or the whole new one.
func WriteParquet(path string, rows []Row, cols Columns) error {
	err := durable.Write(path, 0o644, func(w io.Writer) error {
		switch cols {
		case AllColumns:
			return write(w, rows, func(r Row) pqAll { return pqAll{r.Prompt, r.Answer, pqMessages(r), r.Text} })
		case ChatColumns:
			return write(w, rows, func(r Row) pqChat { return pqChat{r.Prompt, r.Answer, pqMessages(r)} })
		case TextColumns:
			return write(w, rows, func(r Row) pqText { return pqText{r.Prompt, r.Answer, r.Text} })
		}
		return fmt.Errorf("unknown columns %d", cols)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func pqMessages(r Row) []pqMessage {
	out := make([]pqMessage, len(r.Messages))
	for i, m := range r.Messages {
		out[i] = pqMessage{m.Role, m.Content}
	}
	return out
}

func write[T any](f io.Writer, rows []Row, conv func(Row) T) error {
	w := parquet.NewGenericWriter[T](f, parquet.Compression(&parquet.Snappy))
	buf := make([]T, 0, min(len(rows), rowGroupRows))
	for start := 0; start < len(rows); start += rowGroupRows {
		buf = buf[:0]
		for _, r := range rows[start:min(start+rowGroupRows, len(rows))] {
			buf = append(buf, conv(r))
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return w.Close()
}
