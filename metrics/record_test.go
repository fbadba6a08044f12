package metrics

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRecordMarshal(t *testing.T) {
	for _, c := range []struct {
		r    Record
		want string
	}{
		{Record{Step: 3, Values: map[string]float64{"loss": 2.5, "lr": 3e-4, "grad_norm": 1, "tokens": 1e6}},
			`{"step":3,"grad_norm":1,"loss":2.5,"lr":0.0003,"tokens":1000000}`},
		{Record{Step: 10, Stage: "sft", Eval: true, Values: map[string]float64{"ppl": 7.25, "loss": 1.98}},
			`{"step":10,"stage":"sft","eval":true,"loss":1.98,"ppl":7.25}`},
		{Record{Step: 0}, `{"step":0}`},
		{Record{Step: 1, Values: map[string]float64{"moe/layer3/load_max": 0.5, "dpo/margin": -1e-7}},
			`{"step":1,"dpo/margin":-1e-7,"moe/layer3/load_max":0.5}`},
		{Record{Step: 2, Values: map[string]float64{"loss": math.NaN(), "a": math.Inf(1), "b": math.Inf(-1)}},
			`{"step":2,"a":"Infinity","b":"-Infinity","loss":"NaN"}`},
		{Record{Step: 4, Stage: `a"b`}, `{"step":4,"stage":"a\"b"}`},
	} {
		b, err := json.Marshal(c.r) // through encoding/json, as the trainer may call it
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != c.want {
			t.Errorf("Marshal(%+v)\n have %s\n want %s", c.r, b, c.want)
		}
		var back Record
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if back.Step != c.r.Step || back.Stage != c.r.Stage || back.Eval != c.r.Eval || len(back.Values) != len(c.r.Values) {
			t.Errorf("round trip of %s gave %+v", b, back)
		}
		for k, v := range c.r.Values {
			if w := back.Values[k]; !(w == v || math.IsNaN(w) && math.IsNaN(v)) {
				t.Errorf("round trip of %s: %s = %v, want %v", b, k, w, v)
			}
		}
	}
	if _, err := json.Marshal(Record{Values: map[string]float64{"step": 1}}); err == nil {
		t.Error(`a value named "step" was accepted`)
	}
}

func TestRecordUnmarshalErrors(t *testing.T) {
	for _, in := range []string{`[]`, `null`, `{"loss":1}`, `{"step":1.5}`, `{"step":1,"stage":3}`,
		`{"step":1,"eval":"yes"}`, `{"step":1,"loss":"high"}`, `{"step":1,"loss":null}`, `{"step":null}`, `{"step":1,"x":{}}`} {
		var r Record
		if err := json.Unmarshal([]byte(in), &r); err == nil {
			t.Errorf("Unmarshal(%s) gave %+v, want an error", in, r)
		}
	}
}

func TestReadJSONL(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "metrics.jsonl")
	good := "{\"step\":1,\"loss\":3}\n\n{\"step\":2,\"stage\":\"s2\",\"eval\":true,\"loss\":2.5}\n"
	for _, c := range []struct{ name, tail string }{
		{"complete", ""},
		{"torn", `{"step":3,"lo`},
		{"torn in a number", `{"step":3,"loss":2.`},
	} {
		os.WriteFile(path, []byte(good+c.tail), 0o644)
		rs, err := ReadJSONL(path)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(rs) != 2 || rs[0].Step != 1 || rs[0].Values["loss"] != 3 || rs[1].Stage != "s2" || !rs[1].Eval || rs[1].Values["loss"] != 2.5 {
			t.Errorf("%s: read %+v", c.name, rs)
		}
	}
	// A complete last line without its newline is kept.
	os.WriteFile(path, []byte(good+`{"step":3,"loss":2}`), 0o644)
	if rs, err := ReadJSONL(path); err != nil || len(rs) != 3 || rs[2].Values["loss"] != 2 {
		t.Errorf("last line without newline: %+v, %v", rs, err)
	}
	// A bad line that ends in a newline is an error naming file:line (line 4: blank lines count).
	os.WriteFile(path, []byte(good+"{\"step\":3,\"lo\n{\"step\":4}\n"), 0o644)
	_, err := ReadJSONL(path)
	if err == nil || !strings.Contains(err.Error(), path+":4:") {
		t.Errorf("bad middle line: error %v, want one naming %s:4", err, path)
	}
	os.WriteFile(path, []byte("{\"step\":1}\n{\"step\":\"x\"}\n"), 0o644)
	if _, err := ReadJSONL(path); err == nil || !strings.Contains(err.Error(), path+":2:") {
		t.Errorf("bad step: error %v, want one naming %s:2", err, path)
	}
	if _, err := ReadJSONL(filepath.Join(dir, "missing.jsonl")); err == nil {
		t.Error("a missing file read without error")
	}
}
