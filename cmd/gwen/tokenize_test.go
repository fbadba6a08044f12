package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/internal/testenv"
)

// TestTokenizeCLI: ids and decoded texts are the Hugging Face ones from the bundled cases.
func TestTokenizeCLI(t *testing.T) {
	dir := testenv.Tokenizer()
	root := filepath.Dir(filepath.Dir(dir))
	f, err := os.Open(filepath.Join(root, "data", "tokenizer", "testdata", "cases.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type tc struct {
		Text               string  `json:"text"`
		IDs                []int32 `json:"ids"`
		DecodedSkipSpecial string  `json:"decoded_skip_special"`
	}
	var cases []tc
	var in, decIn bytes.Buffer
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() && len(cases) < 300 {
		var c tc
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
		b, _ := json.Marshal(map[string]string{"text": c.Text})
		in.Write(append(b, '\n'))
		b, _ = json.Marshal(map[string][]int32{"ids": c.IDs})
		decIn.Write(append(b, '\n'))
	}
	var out, errb bytes.Buffer
	if code := run([]string{"tokenize", "--tokenizer", dir}, &in, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(cases) {
		t.Fatalf("%d output lines for %d inputs", len(lines), len(cases))
	}
	for i, l := range lines {
		var got struct{ IDs []int32 }
		if err := json.Unmarshal([]byte(l), &got); err != nil || !slices.Equal(got.IDs, cases[i].IDs) {
			t.Fatalf("line %d: %s (%v), want %v", i+1, l, err, cases[i].IDs)
		}
	}
	out.Reset()
	if code := run([]string{"tokenize", "--tokenizer", dir, "--decode", "--skip-special"}, &decIn, &out, &errb); code != 0 {
		t.Fatalf("decode exit %d: %s", code, errb.String())
	}
	lines = strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	for i, l := range lines {
		var got struct{ Text string }
		if err := json.Unmarshal([]byte(l), &got); err != nil || got.Text != cases[i].DecodedSkipSpecial {
			t.Fatalf("decode line %d: %s, want %q", i+1, l, cases[i].DecodedSkipSpecial)
		}
	}
}

func TestTemplateCLI(t *testing.T) {
	dir := testenv.Tokenizer()
	root := filepath.Dir(filepath.Dir(dir))
	data, err := os.ReadFile(filepath.Join(root, "data", "chat", "testdata", "chat_cases.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"template", "--tokenizer", dir}, bytes.NewReader(data), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("%d lines out for %d in", len(got), len(want))
	}
	for i := range want {
		var w, g struct {
			Text string
			IDs  []int32
		}
		json.Unmarshal([]byte(want[i]), &w)
		if err := json.Unmarshal([]byte(got[i]), &g); err != nil || g.Text != w.Text || !slices.Equal(g.IDs, w.IDs) {
			t.Errorf("line %d: got %.200s", i+1, got[i])
		}
	}
}

func TestTokenizeCLIErrors(t *testing.T) {
	dir := testenv.Tokenizer()
	for _, c := range []struct {
		args  []string
		stdin string
		code  int
		msg   string
	}{
		{[]string{"tokenize"}, "", 2, "usage"},
		{[]string{"tokenize", "--tokenizer", dir, "--bogus"}, "", 2, "bogus"},
		{[]string{"tokenize", "--tokenizer", dir}, "{\"text\":\"a\"}\n\n{\"txt\":\"b\"}\n", 1, `line 3: no "text"`},
		{[]string{"tokenize", "--tokenizer", dir, "--decode"}, "{\"ids\":[1]}\n{\"ids\":\"x\"}\n", 1, "line 2:"},
		{[]string{"template", "--tokenizer", dir}, `{"messages":[{"role":"user","content":null}]}` + "\n", 1, "line 1: user message: content is missing"},
		{[]string{"template", "--tokenizer", t.TempDir()}, "", 1, "tokenizer.json"},
	} {
		var out, errb bytes.Buffer
		code := run(c.args, strings.NewReader(c.stdin), &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", c.args, code, errb.String(), c.code, c.msg)
		}
	}
}
