package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestRewardCLI: the contract's cases, line for line and byte for byte (0 and 1 as JSON
// integers, rules in the order given, the weighted sum last).
func TestRewardCLI(t *testing.T) {
	in := strings.Join([]string{
		`{"completion": "<think>x+2=0</think>The answer is \\boxed{-2}", "answer": "-2"}`,
		`{"completion": "x = 3, so \\boxed{3}", "answer": "3"}`,
		``, // blank lines are skipped
		`{"completion": "<think>so \\boxed{5}", "answer": 5, "prompt": "ignored"}`,
		`{"completion": "<think>t</think>\\boxed{0.5}", "answer": "\\frac12"}`,
	}, "\n")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"reward", "--rules", "format,answer"},
			`{"format":1,"answer":1,"reward":2}` + "\n" +
				`{"format":0,"answer":1,"reward":1}` + "\n" +
				`{"format":0,"answer":0,"reward":0}` + "\n" +
				`{"format":1,"answer":1,"reward":2}` + "\n"},
		{[]string{"reward", "--rules", "answer,format", "--weights", "1,0.25"},
			`{"answer":1,"format":1,"reward":1.25}` + "\n" +
				`{"answer":1,"format":0,"reward":1}` + "\n" +
				`{"answer":0,"format":0,"reward":0}` + "\n" +
				`{"answer":1,"format":1,"reward":1.25}` + "\n"},
		{[]string{"reward", "--rules=format"},
			`{"format":1,"reward":1}` + "\n" + `{"format":0,"reward":0}` + "\n" +
				`{"format":0,"reward":0}` + "\n" + `{"format":1,"reward":1}` + "\n"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		if code := run(c.args, strings.NewReader(in), &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", c.args, code, errb.String())
		}
		if out.String() != c.want {
			t.Errorf("%v:\n%s\nwant\n%s", c.args, out.String(), c.want)
		}
	}
}

func TestRewardCLIErrors(t *testing.T) {
	good := `{"completion": "\\boxed{1}", "answer": "1"}` + "\n"
	cases := []struct {
		args   []string
		in     string
		code   int
		want   string
		output string // what was written before the error
	}{
		{[]string{"reward"}, good + good + "{not json\n", 1, "line 3:", `{"format":0,"answer":1,"reward":1}` + "\n" + `{"format":0,"answer":1,"reward":1}` + "\n"},
		{[]string{"reward"}, good + "\n" + `{"answer": "1"}` + "\n", 1, `line 3: no "completion"`, `{"format":0,"answer":1,"reward":1}` + "\n"},
		{[]string{"reward"}, `{"completion": "x"}`, 1, `line 1: no "answer"`, ""},
		{[]string{"reward"}, `{"completion": "x", "answer": [1]}`, 1, `line 1: "answer" is [1]`, ""},
		{[]string{"reward", "--rules", "format,style"}, good, 2, `unknown reward rule "style"`, ""},
		{[]string{"reward", "--weights", "1"}, good, 2, "1 weights for 2 rules", ""},
		{[]string{"reward", "extra"}, good, 2, "usage", ""},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(c.args, strings.NewReader(c.in), &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.want) || out.String() != c.output {
			t.Errorf("%v < %q: exit %d, stdout %q, stderr %q; want exit %d, stdout %q and %q", c.args, c.in, code, out.String(), errb.String(), c.code, c.output, c.want)
		}
	}
}
