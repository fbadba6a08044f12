package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/gwen-ml/gwen/rewards"
)

// cmdReward is `gwen reward --rules format,answer [--weights 1,1] < IN.jsonl`: each input line
// {"completion", "answer"} gives one line {"<rule>": score, …, "reward": weighted sum}, rules in
// the order given, lines in input order. "answer" may be a JSON string or number; blank lines
// are skipped.
func cmdReward(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reward", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rules := fs.String("rules", "format,answer", "comma-separated rules: format, answer")
	weights := fs.String("weights", "", "comma-separated weights, one per rule (default 1 each)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: gwen reward --rules format,answer [--weights 1,1] < lines.jsonl", errUsage)
	}
	set, err := rewards.Parse(*rules, *weights)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	w := bufio.NewWriterSize(stdout, 1<<16)
	err = eachLine(stdin, func(n int, line []byte) error {
		var in struct {
			Completion *string         `json:"completion"`
			Answer     json.RawMessage `json:"answer"`
		}
		if err := json.Unmarshal(line, &in); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		if in.Completion == nil {
			return fmt.Errorf(`line %d: no "completion" string`, n)
		}
		answer, err := answerText(in.Answer)
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		scores, total := set.Score(*in.Completion, answer)
		var b bytes.Buffer
		b.WriteByte('{')
		for _, r := range set.Rules() {
			fmt.Fprintf(&b, "%q:%s,", r.Name(), jsonNumber(scores[r.Name()]))
		}
		fmt.Fprintf(&b, "\"reward\":%s}\n", jsonNumber(total))
		_, err = w.Write(b.Bytes())
		return err
	})
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	return err
}

// answerText is the reference answer of one line: a JSON string, or a JSON number as written.
func answerText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", fmt.Errorf(`no "answer"`)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var num json.Number
	if err := json.Unmarshal(raw, &num); err == nil {
		return num.String(), nil
	}
	return "", fmt.Errorf(`"answer" is %s, want a string or a number`, raw)
}

// jsonNumber writes v as the shortest JSON number that reads back as v (0 and 1 as 0 and 1).
func jsonNumber(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
