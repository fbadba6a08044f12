package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// fakeClock advances by step each time it is read.
func fakeClock(step time.Duration) func() time.Time {
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time { t = t.Add(step); return t }
}

func TestProgressPlain(t *testing.T) {
	var out strings.Builder
	p := NewProgress(&out, 100, false).(*progress)
	p.now = fakeClock(2 * time.Second)
	p.Write(Record{Step: 0, Stage: "pretrain", Values: map[string]float64{"loss": 10.5, "lr": 3e-4, "tokens_per_s": 12345, "tokens": 4096}})
	p.Write(Record{Step: 10, Stage: "pretrain", Values: map[string]float64{"loss": 3.21234, "lr": 2.5e-4, "grad_norm": 0.75, "tokens_per_s": 900, "moe/aux_loss": 0.01, "moe/layer0/load_max": 0.3}})
	p.Write(Record{Step: 10, Stage: "pretrain", Eval: true, Values: map[string]float64{"loss": 3.5, "ppl": 33.12}})
	p.Log("saved checkpoint step-10")
	p.Close(0)
	want := "pretrain step 0/100 loss 10.5 lr 0.0003 tok/s 12.3k tokens 4096\n" +
		// 10 steps in 2 s (the clock moves 2 s per read) leave 90 steps: 18 s.
		"pretrain step 10/100 loss 3.212 lr 0.00025 grad_norm 0.75 tok/s 900 moe/aux_loss 0.01 ETA 18s\n" +
		"eval pretrain step 10/100 loss 3.5 ppl 33.12\n" +
		"saved checkpoint step-10\n"
	if out.String() != want {
		t.Errorf("plain output\n have %q\n want %q", out.String(), want)
	}
}

func TestProgressTerminal(t *testing.T) {
	var out strings.Builder
	p := NewProgress(&out, 40, true).(*progress)
	p.now = fakeClock(time.Second)
	p.Write(Record{Step: 0, Values: map[string]float64{"loss": 4}})
	p.Write(Record{Step: 10, Values: map[string]float64{"loss": 3, "tokens_per_s": 2e6}})
	want := "\r[>                   ] 0/40   0% loss 4\x1b[K" +
		"\r[=====>              ] 10/40  25% loss 3 tok/s 2.00M ETA 3s\x1b[K"
	if out.String() != want {
		t.Fatalf("bar\n have %q\n want %q", out.String(), want)
	}
	out.Reset()
	p.Write(Record{Step: 10, Eval: true, Values: map[string]float64{"loss": 3.25}})
	// The eval line replaces the bar on its line, and the bar comes back below it.
	if want := "\r\x1b[Keval step 10/40 loss 3.25\n[=====>              ] 10/40  25% loss 3 tok/s 2.00M ETA 3s"; out.String() != want {
		t.Errorf("eval line\n have %q\n want %q", out.String(), want)
	}
	out.Reset()
	p.now = func() time.Time { return time.Date(2026, 1, 1, 0, 0, 2, 0, time.UTC) } // frozen: throttled
	p.Write(Record{Step: 20, Values: map[string]float64{"loss": 2}})
	if out.Len() != 0 {
		t.Errorf("a redraw within 100 ms was not throttled: %q", out.String())
	}
	p.Close(0)
	if !strings.HasPrefix(out.String(), "\r[==========>         ] 20/40  50% loss 2") || !strings.HasSuffix(out.String(), "\n") {
		t.Errorf("Close did not draw the last bar and end its line: %q", out.String())
	}
}

func TestFormatETA(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", 59 * time.Second: "59s", 61 * time.Second: "1m01s", 3*time.Hour + 5*time.Minute: "3h05m"} {
		if got := formatETA(d); got != want {
			t.Errorf("formatETA(%v) = %q, want %q", d, got, want)
		}
	}
}

type recSink struct {
	recs   []Record
	lines  []string
	closed int
	err    error
}

func (s *recSink) Write(r Record) error { s.recs = append(s.recs, r); return s.err }
func (s *recSink) Close(c int) error    { s.closed = c; return s.err }
func (s *recSink) Log(l string)         { s.lines = append(s.lines, l) }

type plainSink struct{ n int }

func (s *plainSink) Write(Record) error { s.n++; return nil }
func (s *plainSink) Close(int) error    { return nil }

func TestTee(t *testing.T) {
	a, b, c := &recSink{err: errors.New("disk full")}, &plainSink{}, &recSink{}
	s := Tee(a, b, c)
	if err := s.Write(Record{Step: 1}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Write error %v", err)
	}
	Log(s, "hello")
	if err := s.Close(3); err == nil {
		t.Error("Close lost the error")
	}
	if len(c.recs) != 1 || b.n != 1 || c.closed != 3 || len(a.lines) != 1 || c.lines[0] != "hello" {
		t.Errorf("a later sink missed something after an earlier one failed: %+v %+v %+v", a, b, c)
	}
	Log(b, "ignored") // not a Logger: nothing happens
}
