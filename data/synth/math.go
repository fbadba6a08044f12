// Package synth owns the built-in synthetic data: seeded math problems (arithmetic, linear
// equations, quadratics with integer roots, fractions) with worked steps in <think>…</think> and
// a final \boxed{} answer, written as Parquet. It knows nothing of tokenizers or models.
package synth

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// Kind is a family of problems.
type Kind string

const (
	// Arithmetic: an integer expression of 2 to 4 operations (+ - × ÷) with parentheses,
	// every division exact, reduced one operation per step.
	Arithmetic Kind = "arithmetic"
	// Linear: ax + b = c, a(x + b) = c or ax + b = cx + d, with an integer solution.
	Linear Kind = "linear"
	// Quadratic: (x + p)^2 = 0, its expanded form, or x^2 + bx + c = 0 with two integer roots,
	// solved by factoring.
	Quadratic Kind = "quadratic"
	// Fraction: a/b op c/d (op one of + - × ÷) in lowest terms.
	Fraction Kind = "fraction"
)

// Kinds lists every kind, in the order Math cycles through them by default.
var Kinds = []Kind{Arithmetic, Linear, Quadratic, Fraction}

// ParseKind accepts a kind's name.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown problem kind %q (want arithmetic, linear, quadratic or fraction)", s)
}

// Message is one turn of a conversation.
type Message struct {
	Role, Content string
}

// Row is one problem. Answer is the reference answer as the rewards package's answer rule reads
// it: an integer, a fraction a/b, or the roots of a quadratic "r1, r2" in increasing order.
// Messages are the user's Prompt and the assistant's "<think>\n…\n</think>\n\n…\boxed{…}…"
// (the text the Qwen3 chat template renders for a reply with reasoning); Text is the Prompt,
// a blank line and the same reply, for pretraining.
type Row struct {
	Kind     Kind
	Prompt   string
	Answer   string
	Messages []Message
	Text     string
}

// Option changes what Math generates.
type Option func(*config)

type config struct {
	kinds []Kind
}

// WithKinds restricts Math to these kinds (each row's kind is drawn uniformly among them).
func WithKinds(kinds ...Kind) Option {
	return func(c *config) { c.kinds = append([]Kind(nil), kinds...) }
}

// Math generates n problems from seed. The same seed, n and options give the same rows on
// every machine and Go version (the generator is splitmix64, written here); row i depends
// only on the seed and i, so Math(s, n) is a prefix of Math(s, n+k).
func Math(seed uint64, n int, opts ...Option) []Row {
	cfg := config{kinds: Kinds}
	for _, o := range opts {
		o(&cfg)
	}
	if len(cfg.kinds) == 0 {
		cfg.kinds = Kinds
	}
	rows := make([]Row, 0, max(n, 0))
	for i := 0; i < n; i++ {
		r := &rng{state: seed ^ 0x9e3779b97f4a7c15*uint64(i+1)}
		r.next() // decorrelate neighbouring rows
		kind := cfg.kinds[r.intn(len(cfg.kinds))]
		var p problem
		switch kind {
		case Arithmetic:
			p = arithmetic(r)
		case Linear:
			p = linear(r)
		case Quadratic:
			p = quadratic(r)
		case Fraction:
			p = fraction(r)
		default:
			panic(fmt.Sprintf("synth: unknown kind %q", kind))
		}
		rows = append(rows, p.row(kind))
	}
	return rows
}

// problem is a generated problem before it is laid out as a row.
type problem struct {
	prompt string
	steps  []string
	final  string // the sentence holding \boxed{…}
	answer string
}

func (p problem) row(k Kind) Row {
	reply := "<think>\n" + strings.Join(p.steps, "\n") + "\n</think>\n\n" + p.final
	return Row{
		Kind:     k,
		Prompt:   p.prompt,
		Answer:   p.answer,
		Messages: []Message{{"user", p.prompt}, {"assistant", reply}},
		Text:     p.prompt + "\n\n" + reply,
	}
}

// rng is splitmix64 (Steele, Lea, Flood 2014): tiny, fast and fixed forever.
type rng struct{ state uint64 }

func (r *rng) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// intn is uniform in [0, n) (rejection sampling, so no modulo bias).
func (r *rng) intn(n int) int {
	if n <= 0 {
		panic("synth: intn of a non-positive bound")
	}
	bound := uint64(n)
	limit := ^uint64(0) - (^uint64(0)%bound+1)%bound
	for {
		if v := r.next(); v <= limit {
			return int(v % bound)
		}
	}
}

// between is uniform in [lo, hi].
func (r *rng) between(lo, hi int) int { return lo + r.intn(hi-lo+1) }

// nonzero is uniform in [-m, -1] ∪ [1, m].
func (r *rng) nonzero(m int) int {
	v := r.between(1, m)
	if r.intn(2) == 0 {
		return -v
	}
	return v
}

func itoa(v int) string { return strconv.Itoa(v) }

// paren renders v, in parentheses when negative: "3", "(-3)".
func paren(v int) string {
	if v < 0 {
		return "(" + itoa(v) + ")"
	}
	return itoa(v)
}

func boxed(s string) string { return `\boxed{` + s + `}` }

// ---- arithmetic ----

// expr is an expression tree; a leaf has op 0.
type expr struct {
	op   byte // '+', '-', '*', '/'
	l, r *expr
	val  int
}

func prec(op byte) int {
	if op == '*' || op == '/' {
		return 2
	}
	return 1
}

var opText = map[byte]string{'+': "+", '-': "-", '*': "×", '/': "÷"}

func (e *expr) leaf() bool { return e.op == 0 }

// String renders e with the parentheses it needs and no more, where a right operand of the
// same precedence counts as needing them (a - (b - c), a × (b ÷ c), a + (b + c)), so that the
// usual order of operations always evaluates the tree as built. Negative leaves (intermediate
// results) are parenthesised unless they open the expression.
func (e *expr) String() string { return e.render(true) }

// grouped says whether child, the left or right operand of e, is written in parentheses.
func (e *expr) grouped(child *expr, right bool) bool {
	if child.leaf() {
		return false
	}
	if right {
		return prec(child.op) <= prec(e.op)
	}
	return prec(child.op) < prec(e.op)
}

func (e *expr) render(first bool) string {
	if e.leaf() {
		if e.val < 0 && !first {
			return "(" + itoa(e.val) + ")"
		}
		return itoa(e.val)
	}
	l := e.l.render(first)
	if e.grouped(e.l, false) {
		l = "(" + e.l.render(true) + ")"
	}
	r := e.r.render(false)
	if e.grouped(e.r, true) {
		r = "(" + e.r.render(true) + ")"
	}
	return l + " " + opText[e.op] + " " + r
}

func apply(op byte, a, b int) int {
	switch op {
	case '+':
		return a + b
	case '-':
		return a - b
	case '*':
		return a * b
	}
	return a / b
}

// gen builds a tree of ops operations.
func gen(r *rng, ops int) *expr {
	if ops == 0 {
		return &expr{val: r.between(1, 20)}
	}
	op := "+-*/"[r.intn(4)]
	left := r.intn(ops) // operations in the left subtree
	switch op {
	case '*':
		// Keep products small: one side is a leaf from 2 to 9.
		a := gen(r, ops-1)
		b := &expr{val: r.between(2, 9)}
		if r.intn(2) == 0 {
			a, b = b, a
		}
		return &expr{op: op, l: a, r: b, val: a.val * b.val}
	case '/':
		// An exact division: the divisor is a leaf that divides the dividend; a dividend with no
		// small divisor is replaced by a multiple of one.
		a := gen(r, ops-1)
		var ds []int
		for d := 2; d <= 9; d++ {
			if a.val != 0 && a.val%d == 0 {
				ds = append(ds, d)
			}
		}
		if len(ds) == 0 {
			d := r.between(2, 9)
			a = &expr{val: d * r.between(2, 12)}
			ds = []int{d}
		}
		d := ds[r.intn(len(ds))]
		return &expr{op: op, l: a, r: &expr{val: d}, val: a.val / d}
	}
	a, b := gen(r, left), gen(r, ops-1-left)
	return &expr{op: op, l: a, r: b, val: apply(op, a.val, b.val)}
}

// reduce replaces the operation the usual order of operations does next by its value and
// describes the step: among the operations whose operands are both numbers, the one inside the
// most parentheses, then × and ÷ before + and -, then the leftmost.
func reduce(e *expr) string {
	var best *expr
	bestDepth := -1
	var walk func(n *expr, depth int)
	walk = func(n *expr, depth int) {
		if n.leaf() {
			return
		}
		dl, dr := depth, depth
		if n.grouped(n.l, false) {
			dl++
		}
		if n.grouped(n.r, true) {
			dr++
		}
		walk(n.l, dl)
		if n.l.leaf() && n.r.leaf() {
			if best == nil || depth > bestDepth || depth == bestDepth && prec(n.op) > prec(best.op) {
				best, bestDepth = n, depth
			}
		}
		walk(n.r, dr)
	}
	walk(e, 0)
	step := fmt.Sprintf("%s = %d", (&expr{op: best.op, l: best.l, r: best.r}).String(), best.val)
	*best = expr{val: best.val}
	return step
}

func arithmetic(r *rng) problem {
	e := gen(r, r.between(2, 4))
	shown := e.String()
	p := problem{
		prompt: "Compute " + shown + ".",
		steps:  []string{"Parentheses first, then × and ÷, then + and - from left to right."},
	}
	for !e.leaf() {
		step := reduce(e)
		if e.leaf() {
			p.steps = append(p.steps, step+".")
		} else {
			p.steps = append(p.steps, step+", so the expression is "+e.String()+".")
		}
	}
	p.answer = itoa(e.val)
	p.final = fmt.Sprintf("%s = %d, so the answer is %s.", shown, e.val, boxed(p.answer))
	return p
}

// ---- linear equations ----

// term renders c·x: "3x", "-x", "x".
func term(c int, v string) string {
	switch c {
	case 1:
		return v
	case -1:
		return "-" + v
	}
	return itoa(c) + v
}

// plus renders "a + b" or "a - |b|" (nothing when b is 0).
func plus(a string, b int) string {
	switch {
	case b > 0:
		return a + " + " + itoa(b)
	case b < 0:
		return a + " - " + itoa(-b)
	}
	return a
}

// moveConstant is the step that takes b off the left side of "left = right".
func moveConstant(b int) string {
	if b > 0 {
		return "Subtract " + itoa(b) + " from both sides"
	}
	return "Add " + itoa(-b) + " to both sides"
}

func linear(r *rng) problem {
	x := r.between(-10, 10)
	var p problem
	switch r.intn(3) {
	case 0: // ax + b = c
		a, b := r.nonzero(9), r.nonzero(20)
		if a == 1 || a == -1 {
			a *= r.between(2, 9)
		}
		c := a*x + b
		p.prompt = fmt.Sprintf("Solve for x: %s = %d.", plus(term(a, "x"), b), c)
		p.steps = []string{
			fmt.Sprintf("%s: %s = %d.", moveConstant(b), term(a, "x"), c-b),
			fmt.Sprintf("Divide both sides by %d: x = %d.", a, x),
		}
	case 1: // a(x + b) = c
		a, b := r.nonzero(9), r.nonzero(12)
		if a == 1 || a == -1 {
			a *= r.between(2, 9)
		}
		c := a * (x + b)
		p.prompt = fmt.Sprintf("Solve for x: %d(%s) = %d.", a, plus("x", b), c)
		p.steps = []string{
			fmt.Sprintf("Divide both sides by %d: %s = %d.", a, plus("x", b), x+b),
			fmt.Sprintf("%s: x = %d.", moveConstant(b), x),
		}
	default: // ax + b = cx + d
		a, c := r.nonzero(9), r.nonzero(9)
		for c == a {
			c = r.nonzero(9)
		}
		b := r.nonzero(20)
		d := (a-c)*x + b
		p.prompt = fmt.Sprintf("Solve for x: %s = %s.", plus(term(a, "x"), b), plus(term(c, "x"), d))
		move := fmt.Sprintf("Subtract %s from both sides", term(c, "x"))
		if c < 0 {
			move = fmt.Sprintf("Add %s to both sides", term(-c, "x"))
		}
		p.steps = []string{fmt.Sprintf("%s: %s = %d.", move, plus(term(a-c, "x"), b), d)}
		if b != 0 {
			p.steps = append(p.steps, fmt.Sprintf("%s: %s = %d.", moveConstant(b), term(a-c, "x"), d-b))
		}
		if a-c != 1 {
			p.steps = append(p.steps, fmt.Sprintf("Divide both sides by %d: x = %d.", a-c, x))
		}
	}
	p.steps = append(p.steps, fmt.Sprintf("Check: x = %d makes both sides equal.", x))
	p.answer = itoa(x)
	p.final = fmt.Sprintf("x = %d, so the answer is %s.", x, boxed(p.answer))
	return p
}

// ---- quadratics ----

// poly renders kx^2 + bx + c with zero terms left out.
func poly(k, b, c int) string {
	s := term(k, "x^2")
	switch {
	case b > 0:
		s += " + " + term(b, "x")
	case b < 0:
		s += " - " + term(-b, "x")
	}
	return plus(s, c)
}

// leading is the coefficient of x^2: mostly 1, sometimes 2, 3 or -1.
func leading(r *rng) int { return [...]int{1, 1, 1, 2, 3, -1}[r.intn(6)] }

// divideLeading is the step that makes the equation monic (none when k is 1).
func divideLeading(k int, monic string) []string {
	if k == 1 {
		return nil
	}
	return []string{fmt.Sprintf("Divide both sides by %d: %s = 0.", k, monic)}
}

// factor renders (x - root).
func factor(root int) string { return "(" + plus("x", -root) + ")" }

func quadratic(r *rng) problem {
	var p problem
	const ask = " Give every solution, in increasing order, separated by commas."
	switch r.intn(3) {
	case 0: // (x + q)^2 = 0
		root := r.nonzero(12)
		p.prompt = fmt.Sprintf("Solve for x: %s^2 = 0.%s", factor(root), ask)
		p.steps = []string{
			"A square is 0 only when the number squared is 0.",
			fmt.Sprintf("So %s = 0, and x = %d.", plus("x", -root), root),
			"There is one solution (a double root).",
		}
		p.answer = itoa(root)
	case 1: // k(x^2 + 2qx + q^2) = 0
		root, k := r.nonzero(12), leading(r)
		p.prompt = fmt.Sprintf("Solve for x: %s = 0.%s", poly(k, -2*k*root, k*root*root), ask)
		p.steps = divideLeading(k, poly(1, -2*root, root*root))
		p.steps = append(p.steps,
			fmt.Sprintf("%d = %s^2 and %d = 2 × %s, so the left side is a perfect square: %s^2.", root*root, paren(-root), -2*root, paren(-root), factor(root)),
			fmt.Sprintf("%s^2 = 0 means %s = 0, so x = %d.", factor(root), plus("x", -root), root),
			"There is one solution (a double root).",
		)
		p.answer = itoa(root)
	default: // k(x - r1)(x - r2) = 0
		r1 := r.between(-12, 12)
		r2 := r.between(-12, 11)
		if r2 >= r1 {
			r2++
		}
		if r1 > r2 {
			r1, r2 = r2, r1
		}
		k := leading(r)
		b, c := -(r1 + r2), r1*r2
		p.prompt = fmt.Sprintf("Solve for x: %s = 0.%s", poly(k, k*b, k*c), ask)
		p.steps = divideLeading(k, poly(1, b, c))
		p.steps = append(p.steps,
			fmt.Sprintf("Look for two numbers whose product is %d and whose sum is %d: %d and %d.", c, b, -r1, -r2),
			fmt.Sprintf("So %s = %s%s.", poly(1, b, c), factor(r1), factor(r2)),
			fmt.Sprintf("A product is 0 when a factor is 0: %s = 0 or %s = 0.", plus("x", -r1), plus("x", -r2)),
			fmt.Sprintf("So x = %d or x = %d.", r1, r2),
		)
		p.answer = itoa(r1) + ", " + itoa(r2)
	}
	p.final = fmt.Sprintf("The solutions are %s.", boxed(p.answer))
	if !strings.Contains(p.answer, ",") {
		p.final = fmt.Sprintf("The only solution is x = %s, so the answer is %s.", p.answer, boxed(p.answer))
	}
	return p
}

// ---- fractions ----

// ratText is a rational as the answer column holds it: "3", "-1/2".
func ratText(q *big.Rat) string {
	if q.IsInt() {
		return q.Num().String()
	}
	return q.Num().String() + "/" + q.Denom().String()
}

// ratTeX is a rational in TeX: "3", "\frac{1}{2}", "-\frac{1}{2}".
func ratTeX(q *big.Rat) string {
	if q.IsInt() {
		return q.Num().String()
	}
	sign := ""
	num := new(big.Int).Set(q.Num())
	if num.Sign() < 0 {
		sign = "-"
		num.Neg(num)
	}
	return fmt.Sprintf(`%s\frac{%s}{%s}`, sign, num, q.Denom())
}

func gcd(a, b int) int {
	if a < 0 {
		a = -a
	}
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func fraction(r *rng) problem {
	b, d := r.between(2, 12), r.between(2, 12)
	a, c := r.between(1, b-1+b/2), r.between(1, d-1+d/2)
	if a >= b { // skip a/b = 1
		a++
	}
	if c >= d {
		c++
	}
	op := "+-*/"[r.intn(4)]
	x, y := big.NewRat(int64(a), int64(b)), big.NewRat(int64(c), int64(d))
	q := new(big.Rat)
	var p problem
	p.prompt = fmt.Sprintf("Compute %d/%d %s %d/%d. Give the answer as a fraction in lowest terms.", a, b, opText[op], c, d)
	var num, den int
	switch op {
	case '+', '-':
		l := b / gcd(b, d) * d
		num = a*(l/b) + c*(l/d)
		verb := "Add"
		if op == '-' {
			num = a*(l/b) - c*(l/d)
			verb = "Subtract"
			q.Sub(x, y)
		} else {
			q.Add(x, y)
		}
		den = l
		p.steps = []string{fmt.Sprintf("The least common denominator of %d and %d is %d.", b, d, l)}
		var scaled []string
		if l != b {
			scaled = append(scaled, fmt.Sprintf("%d/%d = %d/%d", a, b, a*(l/b), l))
		}
		if l != d {
			scaled = append(scaled, fmt.Sprintf("%d/%d = %d/%d", c, d, c*(l/d), l))
		}
		if len(scaled) > 0 {
			p.steps = append(p.steps, strings.Join(scaled, " and ")+".")
		}
		p.steps = append(p.steps, fmt.Sprintf("%s the numerators: %d %s %d = %d, giving %d/%d.", verb, a*(l/b), opText[op], c*(l/d), num, num, l))
	case '*':
		num, den = a*c, b*d
		q.Mul(x, y)
		p.steps = []string{fmt.Sprintf("Multiply numerators and denominators: (%d × %d)/(%d × %d) = %d/%d.", a, c, b, d, num, den)}
	default:
		num, den = a*d, b*c
		q.Quo(x, y)
		p.steps = []string{
			fmt.Sprintf("Dividing by %d/%d is multiplying by %d/%d.", c, d, d, c),
			fmt.Sprintf("(%d × %d)/(%d × %d) = %d/%d.", a, d, b, c, num, den),
		}
	}
	if g := gcd(num, den); g > 1 {
		p.steps = append(p.steps, fmt.Sprintf("Divide numerator and denominator by %d: %s.", g, ratText(q)))
	} else {
		p.steps = append(p.steps, fmt.Sprintf("%d/%d is already in lowest terms.", num, den))
	}
	p.answer = ratText(q)
	p.final = fmt.Sprintf("%d/%d %s %d/%d = %s, so the answer is %s.", a, b, opText[op], c, d, p.answer, boxed(ratTeX(q)))
	return p
}
