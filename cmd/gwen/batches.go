package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/gwen-ml/gwen/data"
	"github.com/gwen-ml/gwen/data/tokenizer"
)

// dataBatches is `gwen data batches FILES… --tokenizer DIR [--task pretrain|sft|preference]
// [--format tokens] [--rows B] [--seq-len T] [--batches N] [--pack] [--truncate]
// [--shuffle --seed S] [--workers W] [--quiet]`: it runs the training data pipeline over the files (one stream) and
// prints each batch as a JSON line {"ids", "labels", "pos", "doc_start"[, "response"]} of B
// rows, then a summary line {"summary": …} with tokens/s and the pipeline state.
func dataBatches(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("data batches", flag.ContinueOnError)
	fs.SetOutput(stderr)
	task := fs.String("task", "pretrain", "pretrain, sft or preference")
	column := fs.String("column", "", "text or messages column (default by task)")
	format := fs.String("format", "", "example kind (default by task: text, chat or preference); tokens for pre-tokenized pretraining ids")
	tokDir := fs.String("tokenizer", "", "model folder with tokenizer.json (required)")
	rows := fs.Int("rows", 1, "rows per batch (preference: pairs per batch)")
	seqLen := fs.Int("seq-len", 512, "tokens per row")
	batches := fs.Int("batches", 1, "batches to produce")
	pack := fs.Bool("pack", false, "sft: pack several conversations per row")
	truncate := fs.Bool("truncate", false, "sft, preference: cut over-long examples instead of dropping them")
	think := fs.Bool("train-empty-think", false, "sft, preference: train the template's empty think block")
	shuffle := fs.Bool("shuffle", false, "shuffle row groups and rows each epoch")
	seed := fs.Uint64("seed", 0, "shuffle seed")
	workers := fs.Int("workers", 0, "tokenizer goroutines (0: the pipeline default, min(2, cores))")
	quiet := fs.Bool("quiet", false, "print only the summary")
	files, err := parseFilesAndFlags(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 || *tokDir == "" {
		return fmt.Errorf("%w: gwen data batches FILES… --tokenizer DIR [--task pretrain|sft|preference] [--rows B] [--seq-len T] [--batches N]", errUsage)
	}
	t, err := data.ParseTask(*task)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	f := map[data.Task]data.Format{data.TaskPretrain: data.FormatText, data.TaskSFT: data.FormatChat, data.TaskPreference: data.FormatPreference}[t]
	if *format != "" {
		if f, err = data.ParseFormat(*format); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	tok, err := tokenizer.Load(*tokDir)
	if err != nil {
		return err
	}
	src, err := data.Open(files, data.Spec{Format: f, Column: *column})
	if err != nil {
		return err
	}
	mix, err := data.NewMixture([]*data.Stream{data.NewStream(src, *shuffle, *seed)}, []float64{1}, *seed)
	if err != nil {
		return err
	}
	p, err := data.NewPipeline(mix, tok, data.PipelineConfig{
		Task: t, Rows: *rows, SeqLen: *seqLen, Pack: *pack, Truncate: *truncate, TrainEmptyThink: *think, Workers: *workers,
	})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	defer p.Close()

	w := bufio.NewWriterSize(stdout, 1<<16)
	defer w.Flush()
	enc := json.NewEncoder(w)
	start := time.Now()
	tokens, padding := 0, 0
	for range *batches {
		b, err := p.Next()
		if err != nil {
			return err
		}
		tokens += b.B * b.T
		padding += b.Padding
		if *quiet {
			continue
		}
		line := map[string]any{"ids": split(b.IDs, b.T), "labels": split(b.Labels, b.T), "pos": split(b.Pos, b.T), "doc_start": split(b.DocStart, b.T)}
		if b.Pairs > 0 {
			line["pairs"] = b.Pairs
			resp := make([][]bool, b.B)
			for r := range resp {
				resp[r] = b.Response[r*b.T : (r+1)*b.T]
			}
			line["response"] = resp
		}
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	secs := time.Since(start).Seconds()
	return enc.Encode(map[string]any{"summary": map[string]any{
		"batches": *batches, "tokens": tokens, "padding": padding, "seconds": secs,
		"tokens_per_s": float64(tokens) / secs, "counts": p.Counts(), "state": p.State(),
	}})
}

// split cuts a [B·T] buffer into B rows.
func split(v []int32, t int) [][]int32 {
	out := make([][]int32, len(v)/t)
	for r := range out {
		out[r] = v[r*t : (r+1)*t]
	}
	return out
}
