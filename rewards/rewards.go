// Package rewards owns rule-based rewards: the format rule (one think block, then an answer),
// the answer rule (the final answer against a reference, numbers compared as exact rationals),
// and their weighted sum. It knows nothing of models: completions and answers are strings.
package rewards

import (
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Rule scores one completion against a reference answer, in [0, 1].
type Rule interface {
	Name() string
	Score(completion, answer string) float64
}

type ruleFunc struct {
	name string
	f    func(completion, answer string) float64
}

func (r ruleFunc) Name() string                         { return r.name }
func (r ruleFunc) Score(completion, ref string) float64 { return r.f(completion, ref) }

var (
	// Format is the rule "format": see FormatScore.
	Format Rule = ruleFunc{"format", func(c, _ string) float64 { return b2f(FormatOK(c)) }}
	// Answer is the rule "answer": see AnswerOK.
	Answer Rule = ruleFunc{"answer", func(c, ref string) float64 { return b2f(AnswerOK(c, ref)) }}
)

// registry is the explicit list of rules by name, in the order errors list them.
var registry = []Rule{Format, Answer}

// Lookup finds a rule by name.
func Lookup(name string) (Rule, error) {
	for _, r := range registry {
		if r.Name() == name {
			return r, nil
		}
	}
	return nil, fmt.Errorf("unknown reward rule %q (want one of %s)", name, strings.Join(Names(), ", "))
}

// Names lists the known rules.
func Names() []string {
	out := make([]string, len(registry))
	for i, r := range registry {
		out[i] = r.Name()
	}
	return out
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// FormatOK is the format rule: after leading whitespace the completion starts with <think>, it
// holds exactly one <think> and exactly one </think>, and non-blank text follows </think>.
func FormatOK(completion string) bool {
	s := strings.TrimLeftFunc(completion, unicode.IsSpace)
	if !strings.HasPrefix(s, "<think>") || strings.Count(s, "<think>") != 1 || strings.Count(s, "</think>") != 1 {
		return false
	}
	_, after, _ := strings.Cut(s, "</think>")
	return strings.TrimFunc(after, unicode.IsSpace) != ""
}

// Candidate is the final answer a completion gives, before normalisation, and false when the
// completion opens a think block it never closes. The answer is looked for only after the last
// </think> (in the whole completion when there is none): the content of the last balanced
// \boxed{…}; else the rest of the line after the last "answer is" or "answer:" (any case);
// else the whole region.
func Candidate(completion string) (string, bool) {
	region := completion
	if i := strings.LastIndex(completion, "</think>"); i >= 0 {
		region = completion[i+len("</think>"):]
	} else if strings.Contains(completion, "<think>") {
		return "", false
	}
	if box, ok := lastBoxed(region); ok {
		return box, true
	}
	lower := asciiLower(region)
	at := -1
	for _, key := range []string{"answer is", "answer:"} {
		if i := strings.LastIndex(lower, key); i >= 0 && i+len(key) > at {
			at = i + len(key)
		}
	}
	if at >= 0 {
		rest, _, _ := strings.Cut(region[at:], "\n")
		return rest, true
	}
	return region, true
}

// lastBoxed is the content of the last \boxed{…} whose braces close. A box nested in another is
// part of the outer one's content.
func lastBoxed(s string) (string, bool) {
	const open = `\boxed{`
	var last string
	found := false
	for i := 0; ; {
		j := strings.Index(s[i:], open)
		if j < 0 {
			break
		}
		start := i + j + len(open)
		end := matchBrace(s, start)
		if end < 0 { // unbalanced: look for a later box inside it
			i = start
			continue
		}
		last, found = s[start:end], true
		i = end + 1
	}
	return last, found
}

// matchBrace returns the index of the '}' closing the group whose content starts at start (just
// after its '{'), or -1.
func matchBrace(s string, start int) int {
	depth := 1
	for k := start; k < len(s); k++ {
		switch s[k] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return k
			}
		}
	}
	return -1
}

// asciiLower lowers ASCII letters only, so byte offsets stay those of s.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

var dropped = strings.NewReplacer("$", "", "**", "", `\left`, "", `\right`, "", `\!`, "", `\,`, "", `\;`, "")

// Normalize rewrites an answer for comparison, in this order: U+2212 → '-'; drop $, **, \left,
// \right, \!, \, \; and all whitespace; \dfrac and \tfrac → \frac; \frac{a}{b} → a/b (an
// argument is a braced group, a control word or one character: \frac12 → 1/2); drop thousands
// commas (1,000 → 1000); drop one trailing '.'; drop a leading one-letter variable and '='
// (x=-2 → -2).
func Normalize(s string) string {
	s = strings.ReplaceAll(s, "\u2212", "-")
	s = dropped.Replace(s)
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
	s = strings.ReplaceAll(s, `\dfrac`, `\frac`)
	s = strings.ReplaceAll(s, `\tfrac`, `\frac`)
	s = fracs(s)
	s = thousands(s)
	s = strings.TrimSuffix(s, ".")
	if r, n := utf8.DecodeRuneInString(s); n > 0 && unicode.IsLetter(r) && len(s) > n && s[n] == '=' {
		s = s[n+1:]
	}
	return s
}

// fracs rewrites every \frac with two arguments as a/b, nested ones included. A \frac
// without two arguments (or a longer control word such as \fraction) stays as it is.
func fracs(s string) string {
	for from := 0; ; {
		j := strings.Index(s[from:], `\frac`)
		if j < 0 {
			return s
		}
		i := from + j
		p := i + len(`\frac`)
		if p < len(s) && isLetter(s[p]) {
			from = p
			continue
		}
		a, p1, ok1 := arg(s, p)
		b, p2, ok2 := arg(s, p1)
		if !ok1 || !ok2 {
			from = p
			continue
		}
		// Rewrite and look again from the same place: a or b may hold a \frac.
		s = s[:i] + a + "/" + b + s[p2:]
		from = i
	}
}

// arg reads one TeX argument at p: a braced group (its content), a control word, or one rune.
func arg(s string, p int) (string, int, bool) {
	if p >= len(s) {
		return "", p, false
	}
	switch s[p] {
	case '{':
		end := matchBrace(s, p+1)
		if end < 0 {
			return "", p, false
		}
		return s[p+1 : end], end + 1, true
	case '}':
		return "", p, false
	case '\\':
		q := p + 1
		for q < len(s) && isLetter(s[q]) {
			q++
		}
		if q == p+1 && q < len(s) {
			q++
		}
		return s[p:q], q, true
	}
	_, n := utf8.DecodeRuneInString(s[p:])
	return s[p : p+n], p + n, true
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }

// thousands drops each comma between a digit and a group of exactly three digits.
func thousands(s string) string {
	if !strings.Contains(s, ",") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == ',' && i > 0 && isDigit(s[i-1]) && i+3 < len(s) &&
			isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) && (i+4 == len(s) || !isDigit(s[i+4])) {
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// number is a number as the answer rule reads it: an optional sign, digits, optional decimals,
// optionally '/' and a second such number.
var (
	numberRE    = regexp.MustCompile(`[+-]?[0-9]+(?:\.[0-9]+)?(?:/[+-]?[0-9]+(?:\.[0-9]+)?)?`)
	numberExact = regexp.MustCompile(`^` + numberRE.String() + `$`)
)

// Rational parses a number as an exact rational; false when s is not a number (or divides by
// zero).
func Rational(s string) (*big.Rat, bool) {
	if !numberExact.MatchString(s) {
		return nil, false
	}
	num, den, frac := strings.Cut(s, "/")
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return nil, false
	}
	if frac {
		d, ok := new(big.Rat).SetString(den)
		if !ok || d.Sign() == 0 {
			return nil, false
		}
		r.Quo(r, d)
	}
	return r, true
}

// Equivalent compares a candidate answer with a reference, both normalised. When the reference
// is a number, the candidate — or else the last number in it — must equal it exactly as a
// rational (0.5 = 1/2, 0.333 ≠ 1/3); otherwise the two strings must be equal.
func Equivalent(candidate, reference string) bool {
	c, ref := Normalize(candidate), Normalize(reference)
	want, ok := Rational(ref)
	if !ok {
		return c == ref
	}
	if !numberExact.MatchString(c) {
		all := numberRE.FindAllString(c, -1)
		if len(all) == 0 {
			return false
		}
		c = all[len(all)-1]
	}
	got, ok := Rational(c)
	return ok && got.Cmp(want) == 0
}

// AnswerOK is the answer rule: the completion's Candidate is Equivalent to the reference.
func AnswerOK(completion, reference string) bool {
	c, ok := Candidate(completion)
	return ok && Equivalent(c, reference)
}

// Set is a weighted list of rules.
type Set struct {
	rules   []Rule
	weights []float64
}

// NewSet weighs rules; nil weights mean 1 each.
func NewSet(rules []Rule, weights []float64) (*Set, error) {
	if weights == nil {
		weights = make([]float64, len(rules))
		for i := range weights {
			weights[i] = 1
		}
	}
	if len(rules) == 0 {
		return nil, fmt.Errorf("no reward rules (want some of %s)", strings.Join(Names(), ", "))
	}
	if len(weights) != len(rules) {
		return nil, fmt.Errorf("%d weights for %d rules", len(weights), len(rules))
	}
	seen := map[string]bool{}
	for i, r := range rules {
		if seen[r.Name()] {
			return nil, fmt.Errorf("reward rule %q given twice", r.Name())
		}
		seen[r.Name()] = true
		if math.IsNaN(weights[i]) || math.IsInf(weights[i], 0) {
			return nil, fmt.Errorf("weight %d (%s) is %v, want a finite number", i+1, r.Name(), weights[i])
		}
	}
	return &Set{rules: rules, weights: weights}, nil
}

// Parse reads a comma-separated list of rule names ("format,answer") and, unless weights is
// empty, as many comma-separated weights ("1,0.5"; default 1 each).
func Parse(rules, weights string) (*Set, error) {
	var rs []Rule
	for _, name := range strings.Split(rules, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, fmt.Errorf("rules %q: an empty rule name", rules)
		}
		r, err := Lookup(name)
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	var ws []float64
	if strings.TrimSpace(weights) != "" {
		for i, w := range strings.Split(weights, ",") {
			v, err := strconv.ParseFloat(strings.TrimSpace(w), 64)
			if err != nil {
				return nil, fmt.Errorf("weights %q: weight %d (%q) is not a number", weights, i+1, strings.TrimSpace(w))
			}
			ws = append(ws, v)
		}
		if len(ws) != len(rs) {
			return nil, fmt.Errorf("weights %q: %d weights for %d rules (%s)", weights, len(ws), len(rs), rules)
		}
	}
	return NewSet(rs, ws)
}

// Rules lists the set's rules in order.
func (s *Set) Rules() []Rule { return s.rules }

// Weights lists the set's weights in rule order.
func (s *Set) Weights() []float64 { return s.weights }

// Score is each rule's score by name and their weighted sum.
func (s *Set) Score(completion, answer string) (map[string]float64, float64) {
	scores := make(map[string]float64, len(s.rules))
	total := 0.0
	for i, r := range s.rules {
		v := r.Score(completion, answer)
		scores[r.Name()] = v
		total += s.weights[i] * v
	}
	return scores, total
}
