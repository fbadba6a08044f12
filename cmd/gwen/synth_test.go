package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/data/synth"
)

// TestDataSynth: `gwen data synth math` writes synth.Math's rows, `gwen data cat` reads them
// back as chat and as answers, and `gwen reward` scores every reply 1 on format and answer.
func TestDataSynth(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "math.parquet")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"data", "synth", "math", "--n", "60", "--seed", "3", "--out", out}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "wrote 60 problems") {
		t.Errorf("stderr %q", stderr.String())
	}
	rows := synth.Math(3, 60)
	cat := func(args ...string) []any {
		t.Helper()
		var o, e bytes.Buffer
		if code := run(append([]string{"data", "cat", out}, args...), nil, &o, &e); code != 0 {
			t.Fatalf("data cat %v: exit %d: %s", args, code, e.String())
		}
		return jsonLines(t, o.Bytes())
	}
	convs, answers := cat("--format", "chat"), cat("--column", "answer")
	if len(convs) != 60 || len(answers) != 60 {
		t.Fatalf("%d conversations and %d answers", len(convs), len(answers))
	}
	var in bytes.Buffer
	for i, c := range convs {
		msgs := c.(map[string]any)["messages"].([]any)
		reply := msgs[1].(map[string]any)["content"].(string)
		answer := answers[i].(map[string]any)["text"].(string)
		if msgs[0].(map[string]any)["content"] != rows[i].Prompt || reply != rows[i].Messages[1].Content || answer != rows[i].Answer {
			t.Fatalf("row %d: %v / %q, want %+v", i, msgs, answer, rows[i])
		}
		b, _ := json.Marshal(map[string]string{"completion": reply, "answer": answer})
		in.Write(append(b, '\n'))
	}
	var scored bytes.Buffer
	if code := run([]string{"reward", "--rules", "format,answer"}, &in, &scored, &stderr); code != 0 {
		t.Fatalf("reward: exit %d: %s", code, stderr.String())
	}
	want := strings.Repeat(`{"format":1,"answer":1,"reward":2}`+"\n", 60)
	if scored.String() != want {
		t.Fatalf("rewards:\n%s", scored.String())
	}

	// The same seed gives the same bytes; --format text leaves out the messages.
	again := filepath.Join(dir, "again.parquet")
	if code := run([]string{"data", "synth", "math", "--out", again, "--seed", "3", "--n", "60"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	b1, _ := os.ReadFile(out)
	b2, _ := os.ReadFile(again)
	if !bytes.Equal(b1, b2) {
		t.Error("the same seed gave different files")
	}
	text := filepath.Join(dir, "text.parquet")
	if code := run([]string{"data", "synth", "math", "--out", text, "--format", "text", "--kinds", "linear"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var o, e bytes.Buffer
	if code := run([]string{"data", "cat", text, "--format", "chat"}, nil, &o, &e); code != 1 || !strings.Contains(e.String(), `no column "messages"`) {
		t.Errorf("text-only file as chat: exit %d, %s", code, e.String())
	}
	if code := run([]string{"data", "cat", text}, nil, &o, &e); code != 0 || !strings.Contains(o.String(), "Solve for x:") {
		t.Errorf("text-only file as text: exit %d, %s", code, e.String())
	}
}

func TestDataSynthErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"data", "synth"}, "gwen data synth math"},
		{[]string{"data", "synth", "poems", "--out", "x.parquet"}, "gwen data synth math"},
		{[]string{"data", "synth", "math"}, "--out"},
		{[]string{"data", "synth", "math", "--out", "x.parquet", "--n", "0"}, "--n 0"},
		{[]string{"data", "synth", "math", "--out", "x.parquet", "--format", "yaml"}, `unknown format "yaml"`},
		{[]string{"data", "synth", "math", "--out", "x.parquet", "--kinds", "linear,calculus"}, `unknown problem kind "calculus"`},
	}
	for _, c := range cases {
		var o, e bytes.Buffer
		if code := run(c.args, nil, &o, &e); code != 2 || !strings.Contains(e.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want exit 2 and %q", c.args, code, e.String(), c.want)
		}
	}
	var o, e bytes.Buffer
	if code := run([]string{"data", "synth", "math", "--out", "/nonexistent/dir/x.parquet"}, nil, &o, &e); code != 1 || !strings.Contains(e.String(), "/nonexistent/dir") {
		t.Errorf("unwritable path: exit %d, %q", code, e.String())
	}
}
