package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/gwen-ml/gwen/data/chat"
	"github.com/gwen-ml/gwen/data/tokenizer"
)

// cmdTokenize is `gwen tokenize --tokenizer DIR [--decode [--skip-special]]`: JSON lines
// {"text": …} → {"ids": […]}, or with --decode {"ids": […]} → {"text": …}.
func cmdTokenize(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tokenize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("tokenizer", "", "model folder with tokenizer.json and tokenizer_config.json")
	decode := fs.Bool("decode", false, `read {"ids": […]} lines and write {"text": …}`)
	skip := fs.Bool("skip-special", false, "with --decode, leave out special tokens (<|im_start|>, …)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *dir == "" || fs.NArg() > 0 {
		return fmt.Errorf("%w: gwen tokenize --tokenizer DIR [--decode [--skip-special]] < lines.jsonl", errUsage)
	}
	if *skip && !*decode {
		return fmt.Errorf("%w: --skip-special needs --decode", errUsage)
	}
	tok, err := tokenizer.Load(*dir)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(stdout, 1<<16)
	if *decode {
		err = eachLine(stdin, func(n int, line []byte) error {
			var in struct{ IDs *[]int32 }
			if err := json.Unmarshal(line, &in); err != nil {
				return fmt.Errorf("line %d: %w", n, err)
			}
			if in.IDs == nil {
				return fmt.Errorf(`line %d: no "ids"`, n)
			}
			return writeJSONLine(w, struct {
				Text string `json:"text"`
			}{tok.Decode(*in.IDs, *skip)})
		})
	} else {
		err = tokenizeLines(tok, stdin, w)
	}
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	return err
}

// tokenizeLines encodes {"text"} lines in batches on all cores, writing them in order.
func tokenizeLines(tok *tokenizer.Tokenizer, stdin io.Reader, w *bufio.Writer) error {
	var texts []string
	flush := func() error {
		var buf []byte
		for _, ids := range tok.EncodeBatch(texts) {
			buf = append(buf[:0], `{"ids":[`...)
			for i, id := range ids {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = strconv.AppendInt(buf, int64(id), 10)
			}
			buf = append(buf, "]}\n"...)
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		texts = texts[:0]
		return nil
	}
	err := eachLine(stdin, func(n int, line []byte) error {
		var in struct{ Text *string }
		if err := json.Unmarshal(line, &in); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		if in.Text == nil {
			return fmt.Errorf(`line %d: no "text"`, n)
		}
		texts = append(texts, *in.Text)
		if len(texts) == 1024 {
			return flush()
		}
		return nil
	})
	if ferr := flush(); err == nil {
		err = ferr
	}
	return err
}

// cmdTemplate is `gwen template --tokenizer DIR [--spans]`: JSON lines {"messages": […],
// "tools": […]?, "add_generation_prompt": bool, "enable_thinking": bool?} → {"text", "ids"}.
func cmdTemplate(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("template", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("tokenizer", "", "model folder with tokenizer.json and tokenizer_config.json")
	withSpans := fs.Bool("spans", false, "also write the token spans of the assistant turns")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *dir == "" || fs.NArg() > 0 {
		return fmt.Errorf("%w: gwen template --tokenizer DIR [--spans] < conversations.jsonl", errUsage)
	}
	tok, err := tokenizer.Load(*dir)
	if err != nil {
		return err
	}
	type span struct {
		Message    int  `json:"message"`
		Start      int  `json:"start"`
		End        int  `json:"end"`
		ThinkStart int  `json:"think_start"`
		ThinkEnd   int  `json:"think_end"`
		EmptyThink bool `json:"empty_think"`
	}
	type output struct {
		Text  string  `json:"text"`
		IDs   []int32 `json:"ids"`
		Spans *[]span `json:"spans,omitempty"`
	}
	w := bufio.NewWriterSize(stdout, 1<<16)
	err = eachLine(stdin, func(n int, line []byte) error {
		var in struct {
			Messages            []chat.Message    `json:"messages"`
			Tools               []json.RawMessage `json:"tools"`
			AddGenerationPrompt bool              `json:"add_generation_prompt"`
			EnableThinking      *bool             `json:"enable_thinking"`
		}
		if err := json.Unmarshal(line, &in); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		o := chat.Options{Tools: in.Tools, AddGenerationPrompt: in.AddGenerationPrompt, EnableThinking: in.EnableThinking}
		text, err := chat.Render(in.Messages, o)
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		ids, spans, err := chat.Encode(tok, in.Messages, o)
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		out := output{Text: text, IDs: ids}
		if *withSpans {
			list := []span{}
			for _, s := range spans {
				list = append(list, span(s))
			}
			out.Spans = &list
		}
		return writeJSONLine(w, out)
	})
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	return err
}

// eachLine calls fn with each non-blank line of r and its 1-based number.
func eachLine(r io.Reader, fn func(n int, line []byte) error) error {
	br := bufio.NewReaderSize(r, 1<<20)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			if ferr := fn(n, line); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
}

// writeJSONLine writes v as one JSON line, leaving <, > and & unescaped.
func writeJSONLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
