package metrics

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"sync"
	"time"
)

// NewProgress returns the progress output. With terminal true it is one bar (stage,
// step/total, loss, lr, tokens/s, ETA) redrawn in place with a carriage return at most ten
// times a second; with terminal false it prints one plain line per record (the form W&B's
// output.log also gets). Eval records and Log lines get a line of their own in both modes.
// totalSteps <= 0 means unknown (no percentage, no ETA).
func NewProgress(w io.Writer, totalSteps int, terminal bool) Sink {
	return &progress{w: w, total: totalSteps, terminal: terminal, now: time.Now}
}

type progress struct {
	mu       sync.Mutex
	w        io.Writer
	total    int
	terminal bool
	now      func() time.Time

	t0      time.Time // when the first train record came
	step0   int       // its step
	seen    bool
	bar     string // the bar last drawn ("" when none is on screen)
	drawn   time.Time
	pending string // a newer bar not drawn yet (throttled)
}

func (p *progress) Write(r Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if r.Eval {
		p.line(formatLine(r, p.total, -1))
		return nil
	}
	if !p.seen {
		p.seen, p.t0, p.step0 = true, now, r.Step
	}
	eta := time.Duration(-1)
	if p.total > 0 && r.Step > p.step0 {
		perStep := now.Sub(p.t0) / time.Duration(r.Step-p.step0)
		eta = perStep * time.Duration(max(p.total-r.Step, 0))
	}
	if !p.terminal {
		_, err := io.WriteString(p.w, formatLine(r, p.total, eta)+"\n")
		return err
	}
	bar := formatBar(r, p.total, eta)
	if p.bar != "" && now.Sub(p.drawn) < 100*time.Millisecond && r.Step < p.total {
		p.pending = bar
		return nil
	}
	p.bar, p.pending, p.drawn = bar, "", now
	_, err := io.WriteString(p.w, "\r"+p.bar+"\x1b[K")
	return err
}

// line prints s on a line of its own, above the bar in terminal mode.
func (p *progress) line(s string) {
	if p.terminal && p.bar != "" {
		if p.pending != "" {
			p.bar, p.pending = p.pending, ""
		}
		io.WriteString(p.w, "\r\x1b[K"+s+"\n"+p.bar)
		return
	}
	io.WriteString(p.w, s+"\n")
}

func (p *progress) Log(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.line(s)
}

func (p *progress) Close(int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.terminal && p.bar != "" {
		s := "\n"
		if p.pending != "" {
			s = "\r" + p.pending + "\x1b[K\n"
		}
		p.bar, p.pending = "", ""
		_, err := io.WriteString(p.w, s)
		return err
	}
	return nil
}

// mainKeys are shown first, in this order, and by the bar.
var mainKeys = []string{"loss", "ppl", "lr", "grad_norm", "tokens_per_s"}

// formatLine is the plain line of a record: "[stage] step N/total key value … ETA 1m02s"
// for training ("eval [stage] step N …" for eval). Keys: mainKeys first, then the others in
// order, leaving out those with two slashes or more (per-layer detail such as
// moe/layer3/load_max, which would drown the line). eta < 0 leaves the ETA out.
func formatLine(r Record, total int, eta time.Duration) string {
	var b strings.Builder
	if r.Eval {
		b.WriteString("eval ")
	}
	if r.Stage != "" {
		b.WriteString(r.Stage + " ")
	}
	fmt.Fprintf(&b, "step %d", r.Step)
	if total > 0 {
		fmt.Fprintf(&b, "/%d", total)
	}
	for _, k := range mainKeys {
		if v, ok := r.Values[k]; ok {
			b.WriteString(" " + showKey(k) + " " + formatValue(k, v))
		}
	}
	rest := make([]string, 0, len(r.Values))
	for k := range r.Values {
		if !isMain(k) && strings.Count(k, "/") < 2 {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		b.WriteString(" " + k + " " + formatValue(k, r.Values[k]))
	}
	if eta >= 0 {
		b.WriteString(" ETA " + formatETA(eta))
	}
	return b.String()
}

// formatBar is the terminal bar: "[stage] [=====>    ] 120/1000 12% loss 2.346 lr 0.0003 12.3k tok/s ETA 4m12s".
func formatBar(r Record, total int, eta time.Duration) string {
	var b strings.Builder
	if r.Stage != "" {
		b.WriteString(r.Stage + " ")
	}
	if total > 0 {
		const width = 20
		frac := math.Min(math.Max(float64(r.Step)/float64(total), 0), 1)
		n := int(frac * width)
		bar := strings.Repeat("=", n)
		if n < width {
			bar += ">" + strings.Repeat(" ", width-n-1)
		}
		fmt.Fprintf(&b, "[%s] %d/%d %3.0f%%", bar, r.Step, total, 100*frac)
	} else {
		fmt.Fprintf(&b, "step %d", r.Step)
	}
	for _, k := range []string{"loss", "lr", "tokens_per_s"} {
		if v, ok := r.Values[k]; ok {
			b.WriteString(" " + showKey(k) + " " + formatValue(k, v))
		}
	}
	if eta >= 0 {
		b.WriteString(" ETA " + formatETA(eta))
	}
	return b.String()
}

func isMain(k string) bool {
	for _, m := range mainKeys {
		if k == m {
			return true
		}
	}
	return false
}

func showKey(k string) string {
	if k == "tokens_per_s" {
		return "tok/s"
	}
	return k
}

func formatValue(k string, v float64) string {
	switch k {
	case "lr":
		return fmt.Sprintf("%.3g", v)
	case "tokens_per_s", "tokens":
		return human(v)
	}
	return fmt.Sprintf("%.4g", v)
}

// human writes 1234 as 1234, 12345 as 12.3k, 1.5e6 as 1.50M.
func human(v float64) string {
	a := math.Abs(v)
	switch {
	case a < 1e4:
		return fmt.Sprintf("%.0f", v)
	case a < 1e6:
		return fmt.Sprintf("%.1fk", v/1e3)
	case a < 1e9:
		return fmt.Sprintf("%.2fM", v/1e6)
	}
	return fmt.Sprintf("%.2fG", v/1e9)
}

func formatETA(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%dh%02dm", h, m)
	}
	if m > 0 {
		return fmt.Sprintf("%dm%02ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}
