package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/gwen-ml/gwen/data"
	"github.com/gwen-ml/gwen/data/tokenizer"
)

// cmdData is `gwen data cat|stats FILES… [--format text|chat|preference|tokens] [--column NAME]
// [--tokenizer DIR]` (the tokenizer only for stats), `gwen data batches …` (batches.go), or
// `gwen data synth math …` (synth.go).
func cmdData(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: gwen data cat|stats|batches FILES… [--format text|chat|preference] [--column NAME], or gwen data synth math --out FILE.parquet", errUsage)
	}
	sub, rest := args[0], args[1:]
	if sub == "batches" {
		return dataBatches(rest, stdout, stderr)
	}
	if sub == "synth" {
		return dataSynth(rest, stdout, stderr)
	}
	if sub != "cat" && sub != "stats" {
		return fmt.Errorf("%w: unknown data subcommand %q (want cat, stats, batches or synth)", errUsage, sub)
	}
	fs := flag.NewFlagSet("data "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "text", "example kind: text, chat, preference or tokens")
	column := fs.String("column", "", `text column (default "text"), messages column (default "messages") or token ids column (default "input_ids")`)
	tokDir := fs.String("tokenizer", "", "stats: also count tokens with the tokenizer.json of this model folder")
	files, err := parseFilesAndFlags(fs, rest)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("%w: no Parquet files given", errUsage)
	}
	f, err := data.ParseFormat(*format)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *tokDir != "" && sub != "stats" {
		return fmt.Errorf("%w: --tokenizer is for stats", errUsage)
	}
	var tok *tokenizer.Tokenizer
	if *tokDir != "" {
		if tok, err = tokenizer.Load(*tokDir); err != nil {
			return err
		}
	}
	src, err := data.Open(files, data.Spec{Format: f, Column: *column})
	if err != nil {
		return err
	}
	defer src.Close()
	if sub == "cat" {
		return dataCat(src, f, stdout)
	}
	return dataStats(src, f, tok, stdout)
}

type jsonMessage struct {
	Role             string `json:"role"`
	Content          string `json:"content"`
	ReasoningContent string `json:"reasoning_content,omitempty"`
}

func jsonMessages(ms []data.Message) []jsonMessage {
	out := make([]jsonMessage, len(ms))
	for i, m := range ms {
		out[i] = jsonMessage(m)
	}
	return out
}

// dataCat prints every example as one JSON line, in file order.
func dataCat(src *data.Source, f data.Format, stdout io.Writer) error {
	w := bufio.NewWriterSize(stdout, 1<<16)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for {
		ex, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			w.Flush()
			return err
		}
		var v any
		switch {
		case f == data.FormatText:
			v = struct {
				Text string `json:"text"`
			}{ex.Text}
		case f == data.FormatChat:
			v = struct {
				Messages []jsonMessage `json:"messages"`
			}{jsonMessages(ex.Messages)}
		case f == data.FormatTokens:
			v = struct {
				IDs []int32 `json:"ids"`
			}{ex.IDs}
		case ex.ChosenMessages != nil:
			v = struct {
				Prompt   string        `json:"prompt"`
				Chosen   []jsonMessage `json:"chosen"`
				Rejected []jsonMessage `json:"rejected"`
			}{ex.Prompt, jsonMessages(ex.ChosenMessages), jsonMessages(ex.RejectedMessages)}
		default:
			v = struct {
				Prompt   string `json:"prompt"`
				Chosen   string `json:"chosen"`
				Rejected string `json:"rejected"`
			}{ex.Prompt, ex.Chosen, ex.Rejected}
		}
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return w.Flush()
}

// dataStats prints row counts, what was skipped and length percentiles in characters and, with
// a tokenizer, in tokens (of the contents alone: no chat template, no special tokens).
func dataStats(src *data.Source, f data.Format, tok *tokenizer.Tokenizer, stdout io.Writer) error {
	fields := map[data.Format][]string{
		data.FormatText:       {"text"},
		data.FormatChat:       {"conversation", "messages (count)"},
		data.FormatPreference: {"prompt", "chosen", "rejected"},
		data.FormatTokens:     {"ids"},
	}[f]
	lens := make([][]int, len(fields))
	toks := make([][]int, len(fields))
	chars := func(ms []data.Message) int {
		n := 0
		for _, m := range ms {
			n += utf8.RuneCountInString(m.Content) + utf8.RuneCountInString(m.ReasoningContent)
		}
		return n
	}
	count := func(i int, texts ...string) {
		if tok == nil {
			return
		}
		n := 0
		for _, t := range texts {
			if t != "" {
				n += len(tok.Encode(t))
			}
		}
		toks[i] = append(toks[i], n)
	}
	for {
		ex, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		switch f {
		case data.FormatText:
			lens[0] = append(lens[0], utf8.RuneCountInString(ex.Text))
			count(0, ex.Text)
		case data.FormatChat:
			lens[0] = append(lens[0], chars(ex.Messages))
			lens[1] = append(lens[1], len(ex.Messages))
			var texts []string
			for _, m := range ex.Messages {
				texts = append(texts, m.Content, m.ReasoningContent)
			}
			count(0, texts...)
		case data.FormatPreference:
			lens[0] = append(lens[0], utf8.RuneCountInString(ex.Prompt))
			lens[1] = append(lens[1], utf8.RuneCountInString(ex.Chosen))
			lens[2] = append(lens[2], utf8.RuneCountInString(ex.Rejected))
			count(0, ex.Prompt)
			count(1, ex.Chosen)
			count(2, ex.Rejected)
		case data.FormatTokens:
			lens[0] = append(lens[0], len(ex.IDs))
		}
	}
	c := src.Counts()
	var b strings.Builder
	fmt.Fprintf(&b, "files       %d\n", len(src.Files()))
	fmt.Fprintf(&b, "rows        %d\n", c.Rows)
	fmt.Fprintf(&b, "examples    %d\n", c.Examples)
	fmt.Fprintf(&b, "skipped     %d (NULL rows %d, NULL messages %d, empty lists %d, unpaired %d)\n",
		c.Skipped(), c.NullRows, c.NullMessages, c.EmptyLists, c.Unpaired)
	title := "length (chars)"
	if f == data.FormatTokens {
		title = "length (ids)"
	}
	table(&b, title, fields, lens)
	if tok != nil {
		table(&b, "length (tokens)", fields, toks)
	}
	_, err := io.WriteString(stdout, b.String())
	return err
}

// table prints one line of length percentiles per field; fields without values are left out.
func table(b *strings.Builder, title string, fields []string, lens [][]int) {
	fmt.Fprintf(b, "\n%-18s %10s %8s %8s %8s %8s %8s %8s\n", title, "total", "min", "p50", "p90", "p99", "max", "mean")
	for i, name := range fields {
		v := lens[i]
		if v == nil {
			continue
		}
		sort.Ints(v)
		total := 0
		for _, x := range v {
			total += x
		}
		mean := 0.0
		if len(v) > 0 {
			mean = float64(total) / float64(len(v))
		}
		fmt.Fprintf(b, "%-18s %10d %8d %8d %8d %8d %8d %8.1f\n", name, total,
			percentile(v, 0), percentile(v, 50), percentile(v, 90), percentile(v, 99), percentile(v, 100), mean)
	}
}

// percentile is the nearest-rank percentile of sorted v (0 for no values).
func percentile(v []int, p float64) int {
	if len(v) == 0 {
		return 0
	}
	k := int(float64(len(v))*p/100+0.999999) - 1
	if k < 0 {
		k = 0
	}
	if k >= len(v) {
		k = len(v) - 1
	}
	return v[k]
}

// parseFilesAndFlags parses args with fs, files and flags in any order (flag.Parse stops at
// the first non-flag); it returns the files.
func parseFilesAndFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			return files, nil
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
