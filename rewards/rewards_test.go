package rewards

import (
	"strings"
	"testing"
)

// TestVerdicts: each case's verdicts are worked out by hand from the rules in issue 17.
func TestVerdicts(t *testing.T) {
	cases := []struct {
		name, completion, answer string
		format, correct          bool
	}{
		// The contract's three cases.
		{"contract: think, then boxed", `<think>x+2=0</think>The answer is \boxed{-2}`, "-2", true, true},
		{"contract: no think block", `x = 3, so \boxed{3}`, "3", false, true},
		{"contract: think never closed", `<think>so \boxed{5}`, "5", false, false},

		// Signs.
		{"U+2212 minus in the completion", "<think>t</think>\\boxed{\u22122}", "-2", true, true},
		{"U+2212 minus in the reference", `<think>t</think>\boxed{-2}`, "\u22122", true, true},
		{"sign matters", `<think>t</think>\boxed{2}`, "-2", true, false},
		{"explicit plus", `<think>t</think>\boxed{+2}`, "2", true, true},

		// Fractions and decimals as rationals.
		{"1/2 vs 0.5", `\boxed{1/2}`, "0.5", false, true},
		{"0.5 vs 1/2", `\boxed{0.5}`, "1/2", false, true},
		{`\frac12 vs 0.5`, `\boxed{\frac12}`, "0.5", false, true},
		{`\frac12 vs 1/2`, `\boxed{\frac12}`, "1/2", false, true},
		{`\dfrac{1}{2} vs \frac12`, `\boxed{\dfrac{1}{2}}`, `\frac12`, false, true},
		{`\tfrac{2}{4} vs 1/2`, `\boxed{\tfrac{2}{4}}`, "1/2", false, true},
		{`-\frac{1}{2} vs -0.5`, `\boxed{-\frac{1}{2}}`, "-0.5", false, true},
		{`\frac{1}{-2} vs -1/2`, `\boxed{\frac{1}{-2}}`, "-1/2", false, true},
		{"0.333 is not 1/3", `\boxed{0.333}`, "1/3", false, false},
		{"1/3 is not 0.333", `\boxed{1/3}`, "0.333", false, false},
		{"0.50 equals 1/2", `\boxed{0.50}`, "1/2", false, true},
		{"reference from MATH", `<think>1/3+1/6</think>So \boxed{\frac{1}{2}}.`, `\frac{1}{2}`, true, true},

		// Boxes.
		{`\boxed{x=-2}`, `<think>2x+4=0</think>\boxed{x=-2}`, "-2", true, true},
		{"last of two boxes", `<think>t</think>first \boxed{3}, corrected: \boxed{4}`, "4", true, true},
		{"not the first of two boxes", `<think>t</think>first \boxed{3}, corrected: \boxed{4}`, "3", true, false},
		{"braces inside a box", `<think>t</think>\boxed{\frac{3}{4}}`, "0.75", true, true},
		{"an unclosed box after a closed one", `<think>t</think>\boxed{7} and \boxed{8`, "7", true, true},
		{"a box beats 'answer is'", `<think>t</think>The answer is 6, i.e. \boxed{7}`, "7", true, true},

		// The think block.
		{"answer only inside the think block", `<think>the answer is \boxed{4}</think>I am not sure.`, "4", true, false},
		{"answer after the think block", `<think>maybe \boxed{5}</think>\boxed{4}`, "4", true, true},
		{"think block's box does not count", `<think>maybe \boxed{5}</think>\boxed{4}`, "5", true, false},
		{"missing </think>", `<think>x=4 so \boxed{4}`, "4", false, false},
		{"two think blocks: after the last </think>", `<think>a</think>\boxed{1}<think>b</think>\boxed{2}`, "2", false, true},
		{"leading whitespace before <think>", " \n<think>t</think>\n\\boxed{1}", "1", true, true},
		{"text before <think>", "Sure. <think>t</think>\\boxed{1}", "1", false, true},
		{"nothing after </think>", "<think>\\boxed{1}</think>  \n", "1", false, false},

		// Thousands, trailing dots, words.
		{"1,000", `<think>t</think>\boxed{1,000}`, "1000", true, true},
		{"1,000,000 vs 1000000", `<think>t</think>The answer is 1,000,000.`, "1000000", true, true},
		{"a comma that is not a thousands separator", `<think>t</think>\boxed{1,00}`, "100", true, false},
		{"The answer is 5 apples", "<think>2+3</think>The answer is 5 apples", "5", true, true},
		{"answer: any case", "<think>t</think>ANSWER: 12\nCheck: 3*4=12, not 13", "12", true, true},
		{"the last 'answer is' wins", "<think>t</think>The answer is 3. No, the answer is 4.", "4", true, true},
		{"rest of the line only", "<think>t</think>The answer is\n7 or 8", "8", true, false},
		{"whole region: last number", "<think>t</think>2x + 4 = 0, so x = -2", "-2", true, true},
		{"trailing dot", `<think>t</think>\boxed{9.}`, "9", true, true},
		{"dollars and bold", "<think>t</think>**The answer is $42$**", "42", true, true},
		{"spacing commands", `<think>t</think>\boxed{\left( 1 \right)}`, "(1)", true, true},

		// Division by zero is no number.
		{"1/0 is no number", `<think>t</think>\boxed{1/0}`, "1", true, false},
		{`\frac{1}{0} against 0`, `<think>t</think>\boxed{\frac{1}{0}}`, "0", true, false},
		{"1/0 against 1/0: equal strings", `<think>t</think>\boxed{\frac{1}{0}}`, "1/0", true, true},

		// Non-numeric references compare as strings.
		{"string answer", `<think>t</think>\boxed{\pi}`, `\pi`, true, true},
		{"string answer, x= stripped", `<think>t</think>\boxed{y = 2x+1}`, "2x+1", true, true},
		{"string answer differs", `<think>t</think>\boxed{(1,2)}`, "(2,1)", true, false},
		{"no number at all", `<think>t</think>I give up`, "3", true, false},
	}
	set, err := Parse("format,answer", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		f, a := FormatOK(c.completion), AnswerOK(c.completion, c.answer)
		if f != c.format || a != c.correct {
			cand, ok := Candidate(c.completion)
			t.Errorf("%s: %q vs %q: format %v answer %v, want %v %v (candidate %q %v → %q, reference → %q)",
				c.name, c.completion, c.answer, f, a, c.format, c.correct, cand, ok, Normalize(cand), Normalize(c.answer))
		}
		scores, total := set.Score(c.completion, c.answer)
		if scores["format"] != b2f(c.format) || scores["answer"] != b2f(c.correct) || total != b2f(c.format)+b2f(c.correct) {
			t.Errorf("%s: Set.Score %v %v", c.name, scores, total)
		}
	}
}

func TestNormalize(t *testing.T) {
	cases := map[string]string{
		"\u22122":                "-2",
		"$1,234$":                "1234",
		`\frac{a}{b}`:            "a/b",
		`\frac12`:                "1/2",
		`\dfrac{\frac{1}{2}}{3}`: "1/2/3",
		`\frac{\sqrt{2}}{2}`:     `\sqrt{2}/2`,
		`\frac\pi2`:              `\pi/2`,
		`x = -2.`:                "-2",
		`\left( 1 ,\, 2 \right)`: "(1,2)",
		"**7**":                  "7",
		`3\!000`:                 "3000",
		"1,2345":                 "1,2345",
		"12,345,678":             "12345678",
		`\frac{1}`:               `\frac{1}`,
		"ab=3":                   "ab=3",
		"\t x\n=\u00a05 ":        "5",
	}
	for in, want := range cases {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	s, err := Parse("answer, format", "2,0.5")
	if err != nil {
		t.Fatal(err)
	}
	scores, total := s.Score("<think>t</think>\\boxed{3}", "3")
	if scores["answer"] != 1 || scores["format"] != 1 || total != 2.5 {
		t.Fatalf("scores %v total %v, want 1, 1 and 2.5", scores, total)
	}
	_, total = s.Score("\\boxed{3}", "4")
	if total != 0 {
		t.Fatalf("total %v, want 0", total)
	}
	for _, c := range []struct{ rules, weights, want string }{
		{"format,length", "", `unknown reward rule "length"`},
		{"format,,answer", "", "empty rule name"},
		{"format,answer", "1", "1 weights for 2 rules"},
		{"format,answer", "1,x", `weight 2 ("x") is not a number`},
		{"format,format", "", `"format" given twice`},
		{"format", "NaN", "finite"},
	} {
		_, err := Parse(c.rules, c.weights)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q, %q): %v, want an error with %q", c.rules, c.weights, err, c.want)
		}
	}
}
