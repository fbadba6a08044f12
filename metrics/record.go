package metrics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
)

// Record is one line of OUT/metrics.jsonl: a flat JSON object
//
//	{"step":N, "stage":"s1" (omitted when ""), "eval":true (omitted when false), <each value by name>...}
//
// Values hold e.g. loss, lr, grad_norm, tokens, tokens_per_s (train) or loss, ppl (eval),
// moe/aux_loss, dpo/…; keys are written sorted after step/stage/eval. A value that is not
// finite is written as the JSON string "NaN", "Infinity" or "-Infinity" (JSON has no such
// numbers) and read back as the float.
type Record struct {
	Step   int
	Stage  string
	Eval   bool
	Values map[string]float64
}

// reserved keys cannot be value names.
func reserved(k string) bool { return k == "step" || k == "stage" || k == "eval" }

// MarshalJSON writes the flat object described on Record.
func (r Record) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 32+24*len(r.Values))
	b = append(b, `{"step":`...)
	b = strconv.AppendInt(b, int64(r.Step), 10)
	if r.Stage != "" {
		s, _ := json.Marshal(r.Stage)
		b = append(b, `,"stage":`...)
		b = append(b, s...)
	}
	if r.Eval {
		b = append(b, `,"eval":true`...)
	}
	for _, k := range sortedKeys(r.Values) {
		if reserved(k) {
			return nil, fmt.Errorf("metrics: value name %q is reserved", k)
		}
		name, _ := json.Marshal(k)
		b = append(b, ',')
		b = append(b, name...)
		b = append(b, ':')
		b = appendFloat(b, r.Values[k])
	}
	return append(b, '}'), nil
}

// appendFloat writes v as encoding/json does, or as a string when it is not finite.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, `"NaN"`...)
	case math.IsInf(v, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(v, -1):
		return append(b, `"-Infinity"`...)
	}
	s, _ := json.Marshal(v) // cannot fail for a finite float
	return append(b, s...)
}

// UnmarshalJSON reads the flat object described on Record. "step" is required and must be
// an integer; every other key except "stage" and "eval" must hold a number (or one of the
// non-finite strings).
func (r *Record) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw == nil {
		return errors.New("not a JSON object")
	}
	*r = Record{}
	st, ok := raw["step"]
	if !ok {
		return errors.New(`no "step"`)
	}
	if err := json.Unmarshal(st, &r.Step); err != nil || string(st) == "null" {
		return fmt.Errorf(`"step": want an integer, have %s`, st)
	}
	if s, ok := raw["stage"]; ok {
		if err := json.Unmarshal(s, &r.Stage); err != nil {
			return fmt.Errorf(`"stage": want a string, have %s`, s)
		}
	}
	if e, ok := raw["eval"]; ok {
		if err := json.Unmarshal(e, &r.Eval); err != nil {
			return fmt.Errorf(`"eval": want a boolean, have %s`, e)
		}
	}
	for k, v := range raw {
		if reserved(k) {
			continue
		}
		f, err := parseValue(v)
		if err != nil {
			return fmt.Errorf("%q: %v", k, err)
		}
		if r.Values == nil {
			r.Values = make(map[string]float64, len(raw))
		}
		r.Values[k] = f
	}
	return nil
}

func parseValue(v json.RawMessage) (float64, error) {
	if len(v) > 0 && v[0] == '"' {
		var s string
		_ = json.Unmarshal(v, &s)
		switch s {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
		return 0, fmt.Errorf("want a number, have %s", v)
	}
	var f float64
	if err := json.Unmarshal(v, &f); err != nil || string(v) == "null" {
		return 0, fmt.Errorf("want a number, have %s", v)
	}
	return f, nil
}

// ReadJSONL reads every record of a metrics.jsonl file. A last line without its newline
// that does not parse is a write torn by a kill and is skipped; any other bad line is an
// error naming file:line. Blank lines are skipped.
func ReadJSONL(path string) ([]Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Record
	err = scanLines(path, b, func(_ []byte, r Record) { out = append(out, r) })
	return out, err
}

// scanLines parses each line of b, calling f with the line (newline included) and its
// record; a torn last line is dropped, as ReadJSONL says.
func scanLines(path string, b []byte, f func(line []byte, r Record)) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, len(b)+1)
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			return i + 1, data[:i+1], nil
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	})
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		complete := line[len(line)-1] == '\n'
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r Record
		if err := r.UnmarshalJSON(line); err != nil {
			if !complete {
				return nil // torn by a kill mid-write
			}
			return fmt.Errorf("%s:%d: %v", path, n, err)
		}
		f(line, r)
	}
	return sc.Err()
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
