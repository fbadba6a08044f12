package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/data/tokenizer"
)

const parquetTestdata = "../../data/testdata/parquet/"

// jsonLines decodes every line of b (or of a file) as a generic JSON value.
func jsonLines(t *testing.T, b []byte) []any {
	t.Helper()
	var out []any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var v any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%v: %s", err, sc.Bytes())
		}
		out = append(out, v)
	}
	return out
}

// TestDataCat: `gwen data cat` prints the rows DuckDB/hyparquet recorded in expected/*.jsonl.
func TestDataCat(t *testing.T) {
	cases := []struct {
		args     []string
		expected string
		keep     []string // the expected keys gwen prints
	}{
		{[]string{"dpo_pairs.parquet", "--format", "preference"}, "dpo_pairs.jsonl", []string{"prompt", "chosen", "rejected"}},
		{[]string{"--format=preference", "dpo_messages_ultrafeedback.parquet"}, "dpo_messages_ultrafeedback.jsonl", []string{"prompt", "chosen", "rejected"}},
		{[]string{"math_prompts.parquet", "--column", "answer"}, "math_prompts.jsonl", []string{"answer"}},
		{[]string{"sft_messages_alt.parquet", "--format", "chat"}, "sft_messages.jsonl", []string{"messages"}},
	}
	for _, c := range cases {
		args := []string{"data", "cat"}
		for _, a := range c.args {
			if strings.HasSuffix(a, ".parquet") {
				a = parquetTestdata + a
			}
			args = append(args, a)
		}
		var out, errb bytes.Buffer
		if code := run(args, nil, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		b, err := os.ReadFile(parquetTestdata + "expected/" + c.expected)
		if err != nil {
			t.Fatal(err)
		}
		want := jsonLines(t, b)
		got := jsonLines(t, out.Bytes())
		if len(got) != len(want) {
			t.Fatalf("%v: %d lines, want %d", args, len(got), len(want))
		}
		for i := range want {
			w := map[string]any{}
			for _, k := range c.keep {
				w[k] = want[i].(map[string]any)[k]
			}
			if c.keep[0] == "answer" { // --column answer prints it as "text"
				w = map[string]any{"text": w["answer"]}
			}
			if !reflect.DeepEqual(got[i], w) {
				t.Fatalf("%v: line %d\n%v\nwant\n%v", args, i, got[i], w)
			}
		}
	}
}

func TestDataErrors(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"data", "cat", parquetTestdata + "dpo_pairs.parquet", "--format", "chat", "--column", "prompt"}, 1, `column "prompt" is BYTE_ARRAY (STRING), want LIST<`},
		{[]string{"data", "cat", parquetTestdata + "nulls.parquet", "--column", "nope"}, 1, `nulls.parquet: no column "nope"`},
		{[]string{"data", "cat", parquetTestdata + "nulls.parquet", "--format", "poem"}, 2, "unknown format"},
		{[]string{"data", "stats"}, 2, "no Parquet files"},
		{[]string{"data", "cat", "--nope", "x.parquet"}, 2, "-nope"},
		{[]string{"data", "frobnicate"}, 2, "unknown data subcommand"},
		{[]string{"data", "cat", "/nonexistent/x.parquet"}, 1, "/nonexistent/x.parquet"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(c.args, nil, &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, code, errb.String(), c.code, c.want)
		}
	}
}

// TestDataStats: the totals are the manifest's code_points and the NULL counts its nulls.
func TestDataStats(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"data", "stats", parquetTestdata + "nulls.parquet"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	// manifest.json, nulls.parquet text: 60 rows, 24 NULL, 20204 code points, 5000-char maximum.
	for _, want := range []string{"rows        60\n", "examples    36\n", "NULL rows 24,", "text                    20204 "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stats output lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(out.String(), " 5000 ") {
		t.Errorf("stats output lacks the 5000-char maximum:\n%s", out.String())
	}
}

// TestDataStatsTokens: with --tokenizer, the token total of each field is the sum of the
// tokenizer's counts over the expected rows (the tokenizer itself is checked against Hugging
// Face in data/tokenizer; this checks the rows and fields counted).
func TestDataStatsTokens(t *testing.T) {
	dir := "../../../shared/qwen3-tokenizer"
	if _, err := os.Stat(dir + "/tokenizer.json"); err != nil {
		t.Skip("../shared/qwen3-tokenizer not found")
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(parquetTestdata + "expected/dpo_pairs.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	totals := map[string]int{}
	for _, row := range jsonLines(t, b) {
		for _, k := range []string{"prompt", "chosen", "rejected"} {
			totals[k] += len(tok.Encode(row.(map[string]any)[k].(string)))
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"data", "stats", parquetTestdata + "dpo_pairs.parquet", "--format", "preference", "--tokenizer", dir}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	_, tokens, ok := strings.Cut(out.String(), "length (tokens)")
	if !ok {
		t.Fatalf("no token table:\n%s", out.String())
	}
	for k, n := range totals {
		if want := fmt.Sprintf("\n%-18s %10d ", k, n); !strings.Contains(tokens, want) {
			t.Errorf("token table lacks %q:\n%s", want, tokens)
		}
	}
}
