package synth_test

import (
	"bytes"
	"errors"
	"go/constant"
	"go/token"
	"go/types"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/gwen-ml/gwen/data"
	"github.com/gwen-ml/gwen/data/synth"
	"github.com/gwen-ml/gwen/rewards"
)

// eval is an independent evaluator: the expression is rewritten as Go (× → *, ÷ → /, t^2 → t*t,
// 3x → 3*x, x → the value, integers → untyped floats) and evaluated exactly by go/types.
func eval(t *testing.T, expr string, x *big.Rat) *big.Rat {
	t.Helper()
	s := strings.NewReplacer("×", "*", "÷", "/").Replace(expr)
	s = regexp.MustCompile(`(\([^()]*\))\^2`).ReplaceAllString(s, "($1*$1)")
	s = strings.ReplaceAll(s, "x^2", "(x*x)")
	s = regexp.MustCompile(`([0-9)])([x(])`).ReplaceAllString(s, "$1*$2")
	if x != nil {
		s = strings.ReplaceAll(s, "x", "("+x.RatString()+")")
	}
	s = regexp.MustCompile(`[0-9]+`).ReplaceAllString(s, "$0.0")
	tv, err := types.Eval(token.NewFileSet(), nil, token.NoPos, s)
	if err != nil || tv.Value == nil {
		t.Fatalf("evaluating %q (from %q): %v", s, expr, err)
	}
	r, ok := new(big.Rat).SetString(tv.Value.ExactString())
	if !ok {
		n, _ := constant.Float64Val(tv.Value)
		t.Fatalf("%q = %v is not exact", s, n)
	}
	return r
}

func ratOf(t *testing.T, s string) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		t.Fatalf("%q is not a number", s)
	}
	return r
}

// TestMathAnswers: every row's answer is right by an independent evaluation of its prompt, its
// reply scores 1 on the format and answer rules, and the worked steps of arithmetic hold.
func TestMathAnswers(t *testing.T) {
	rows := synth.Math(7, 2000)
	if len(rows) != 2000 {
		t.Fatalf("%d rows", len(rows))
	}
	kinds := map[synth.Kind]int{}
	stepRE := regexp.MustCompile(`^(.+) = (-?[0-9]+)(?:, so the expression is (.+))?\.$`)
	for i, r := range rows {
		kinds[r.Kind]++
		if len(r.Messages) != 2 || r.Messages[0] != (synth.Message{Role: "user", Content: r.Prompt}) || r.Messages[1].Role != "assistant" {
			t.Fatalf("row %d: messages %+v", i, r.Messages)
		}
		reply := r.Messages[1].Content
		if r.Text != r.Prompt+"\n\n"+reply {
			t.Fatalf("row %d: text %q", i, r.Text)
		}
		if !rewards.FormatOK(reply) || !rewards.AnswerOK(reply, r.Answer) {
			t.Fatalf("row %d: %q scores format %v answer %v against %q", i, reply, rewards.FormatOK(reply), rewards.AnswerOK(reply, r.Answer), r.Answer)
		}
		// (A list of roots "2, 7" does score 1 against "7": the rule takes the last number of a
		// candidate that is not one, so lists are left out of this check.)
		if other := rows[(i+1)%len(rows)].Answer; other != r.Answer && !strings.Contains(r.Answer, ",") && rewards.AnswerOK(reply, other) {
			t.Fatalf("row %d: %q also scores 1 against %q", i, reply, other)
		}
		switch r.Kind {
		case synth.Arithmetic:
			e := strings.TrimSuffix(strings.TrimPrefix(r.Prompt, "Compute "), ".")
			want := eval(t, e, nil)
			if want.Cmp(ratOf(t, r.Answer)) != 0 || !want.IsInt() {
				t.Fatalf("row %d: %s = %s, answer %s", i, e, want.RatString(), r.Answer)
			}
			think := reply[len("<think>\n"):strings.Index(reply, "\n</think>")]
			for _, line := range strings.Split(think, "\n")[1:] {
				m := stepRE.FindStringSubmatch(line)
				if m == nil {
					t.Fatalf("row %d: step %q", i, line)
				}
				if eval(t, m[1], nil).Cmp(ratOf(t, m[2])) != 0 || (m[3] != "" && eval(t, m[3], nil).Cmp(want) != 0) {
					t.Fatalf("row %d: step %q does not hold", i, line)
				}
			}
		case synth.Fraction:
			e, _, _ := strings.Cut(strings.TrimPrefix(r.Prompt, "Compute "), ". ")
			e = regexp.MustCompile(`[0-9]+/[0-9]+`).ReplaceAllString(e, "($0)")
			want := eval(t, e, nil)
			if want.RatString() != r.Answer { // equal and in lowest terms
				t.Fatalf("row %d: %s = %s, answer %s", i, e, want.RatString(), r.Answer)
			}
		case synth.Linear, synth.Quadratic:
			eq, _, _ := strings.Cut(strings.TrimPrefix(r.Prompt, "Solve for x: "), ". ")
			eq = strings.TrimSuffix(eq, ".")
			lhs, rhs, ok := strings.Cut(eq, " = ")
			if !ok {
				t.Fatalf("row %d: prompt %q", i, r.Prompt)
			}
			f := func(x int64) *big.Rat {
				v := big.NewRat(x, 1)
				return new(big.Rat).Sub(eval(t, lhs, v), eval(t, rhs, v))
			}
			// f is a polynomial of degree ≤ 2: a x^2 + b x + c from f(-1), f(0), f(1).
			fm, f0, f1 := f(-1), f(0), f(1)
			half := big.NewRat(1, 2)
			b := new(big.Rat).Mul(new(big.Rat).Sub(f1, fm), half)
			a := new(big.Rat).Sub(new(big.Rat).Mul(new(big.Rat).Add(f1, fm), half), f0)
			var roots []string
			if r.Kind == synth.Linear {
				if a.Sign() != 0 || b.Sign() == 0 {
					t.Fatalf("row %d: %q is not linear", i, eq)
				}
				roots = []string{new(big.Rat).Quo(new(big.Rat).Neg(f0), b).RatString()}
			} else {
				if a.Sign() == 0 || !a.IsInt() || !b.IsInt() || !f0.IsInt() {
					t.Fatalf("row %d: %q is not a quadratic with integer coefficients", i, eq)
				}
				ai, bi, ci := a.Num().Int64(), b.Num().Int64(), f0.Num().Int64()
				d := bi*bi - 4*ai*ci
				s := int64(0)
				for s*s < d {
					s++
				}
				if s*s != d || (-bi-s)%(2*ai) != 0 || (-bi+s)%(2*ai) != 0 {
					t.Fatalf("row %d: %q has no integer roots (discriminant %d)", i, eq, d)
				}
				x1, x2 := (-bi-s)/(2*ai), (-bi+s)/(2*ai)
				roots = []string{strconv.FormatInt(min(x1, x2), 10)}
				if s != 0 {
					roots = append(roots, strconv.FormatInt(max(x1, x2), 10))
				}
			}
			if got := strings.Join(roots, ", "); got != r.Answer {
				t.Fatalf("row %d: %q solves to %s, answer %s", i, eq, got, r.Answer)
			}
		default:
			t.Fatalf("row %d: kind %q", i, r.Kind)
		}
	}
	for _, k := range synth.Kinds {
		if kinds[k] < 400 { // 500 expected of each
			t.Errorf("%d rows of %s in 2000", kinds[k], k)
		}
	}
}

func TestMathDeterminism(t *testing.T) {
	a, b := synth.Math(1, 300), synth.Math(1, 300)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave different rows")
	}
	if !reflect.DeepEqual(synth.Math(1, 100), a[:100]) {
		t.Fatal("Math(1, 100) is not a prefix of Math(1, 300)")
	}
	c := synth.Math(2, 300)
	same := 0
	for i := range a {
		if a[i].Prompt == c[i].Prompt {
			same++
		}
	}
	if same > 30 {
		t.Fatalf("seeds 1 and 2 share %d of 300 prompts", same)
	}
	// Hand-checked: the first rows of seed 1 (changing the generator changes every dataset
	// made from a seed; do it knowingly).
	if a[0].Prompt != "Solve for x: 2x - 17 = -25." || a[0].Answer != "-4" {
		t.Fatalf("seed 1 row 0: %q, answer %q", a[0].Prompt, a[0].Answer)
	}
	for _, r := range synth.Math(3, 200, synth.WithKinds(synth.Quadratic)) {
		if r.Kind != synth.Quadratic {
			t.Fatalf("WithKinds(quadratic) gave %s", r.Kind)
		}
	}
	dir := t.TempDir()
	p1, p2 := filepath.Join(dir, "a.parquet"), filepath.Join(dir, "b.parquet")
	if err := synth.WriteParquet(p1, a, synth.AllColumns); err != nil {
		t.Fatal(err)
	}
	if err := synth.WriteParquet(p2, b, synth.AllColumns); err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(p1)
	b2, _ := os.ReadFile(p2)
	if len(b1) == 0 || !bytes.Equal(b1, b2) {
		t.Fatalf("the same rows gave different files (%d and %d bytes)", len(b1), len(b2))
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
}

func readAll(t *testing.T, path string, spec data.Spec) []data.Example {
	t.Helper()
	src, err := data.Open([]string{path}, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var out []data.Example
	for {
		ex, err := src.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ex)
	}
}

// TestParquetReadBack: the file reads back through data.Open as chat (messages), as text
// (text), and its prompt and answer columns as strings, row for row, across row groups.
func TestParquetReadBack(t *testing.T) {
	rows := synth.Math(5, 5000)
	dir := t.TempDir()
	all := filepath.Join(dir, "all.parquet")
	if err := synth.WriteParquet(all, rows, synth.AllColumns); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(all)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(pf.RowGroups()); n != 2 {
		t.Errorf("%d row groups for 5000 rows, want 2", n)
	}
	f.Close()
	check := func(path string, spec data.Spec, want func(synth.Row, data.Example) bool) {
		t.Helper()
		got := readAll(t, path, spec)
		if len(got) != len(rows) {
			t.Fatalf("%s %+v: %d examples, want %d", path, spec, len(got), len(rows))
		}
		for i := range rows {
			if !want(rows[i], got[i]) {
				t.Fatalf("%s %+v: row %d: %+v, want %+v", path, spec, i, got[i], rows[i])
			}
		}
	}
	chat := func(r synth.Row, ex data.Example) bool {
		return reflect.DeepEqual(ex.Messages, []data.Message{{Role: "user", Content: r.Prompt}, {Role: "assistant", Content: r.Messages[1].Content}})
	}
	text := func(r synth.Row, ex data.Example) bool { return ex.Text == r.Text }
	check(all, data.Spec{Format: data.FormatChat}, chat)
	check(all, data.Spec{Format: data.FormatText}, text)
	check(all, data.Spec{Format: data.FormatText, Column: "prompt"}, func(r synth.Row, ex data.Example) bool { return ex.Text == r.Prompt })
	check(all, data.Spec{Format: data.FormatText, Column: "answer"}, func(r synth.Row, ex data.Example) bool { return ex.Text == r.Answer })

	chatOnly, textOnly := filepath.Join(dir, "chat.parquet"), filepath.Join(dir, "text.parquet")
	if err := synth.WriteParquet(chatOnly, rows, synth.ChatColumns); err != nil {
		t.Fatal(err)
	}
	if err := synth.WriteParquet(textOnly, rows, synth.TextColumns); err != nil {
		t.Fatal(err)
	}
	check(chatOnly, data.Spec{Format: data.FormatChat}, chat)
	check(textOnly, data.Spec{Format: data.FormatText}, text)
	var se *data.SchemaError
	if _, err := data.Open([]string{chatOnly}, data.Spec{Format: data.FormatText}); !errors.As(err, &se) || se.Column != "text" {
		t.Errorf("chat-only file read as text: %v", err)
	}
	if _, err := data.Open([]string{textOnly}, data.Spec{Format: data.FormatChat}); !errors.As(err, &se) || se.Column != "messages" {
		t.Errorf("text-only file read as chat: %v", err)
	}
}
