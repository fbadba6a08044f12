package metrics

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeWandB is a W&B server as ../shared/notes/metrics-protocols.md describes it: it checks
// every request (method, JSON, basic auth api:<key>, the upsertBucket mutation and its
// variables, file_stream paths and offsets) and keeps each run's files.
type fakeWandB struct {
	t      *testing.T
	key    string
	entity string // the key's default entity

	mu   sync.Mutex
	runs map[string]*fakeRun
	// fail, if set, is asked before each request (kind "graphql" or "file_stream", n counting
	// that kind from 1): a status other than 0 fails the request; apply says whether the
	// server applies the request first (its answer lost, as when a proxy times out).
	fail      func(kind string, n int) (status int, apply bool)
	count     map[string]int
	resends   int // file_stream posts at an offset below the file's length
	hang      chan struct{}
	requests  int
	authFails int
}

type fakeRun struct {
	entity, project, displayName string
	tags                         []string
	config                       map[string]any
	upserts                      int
	history, log                 []string
	summary                      string
	complete                     bool
	exitcode                     int
	heartbeats                   int
}

func newFakeWandB(t *testing.T, key string) (*fakeWandB, *httptest.Server) {
	f := &fakeWandB{t: t, key: key, entity: "team-x", runs: map[string]*fakeRun{}, count: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

var (
	runIDRe  = regexp.MustCompile(`^[a-z0-9]{8}$`)
	streamRe = regexp.MustCompile(`^/files/([^/]+)/([^/]+)/([^/]+)/file_stream$`)
)

func (f *fakeWandB) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.hang != nil {
		select { // a server that never answers
		case <-f.hang:
		case <-r.Context().Done():
		}
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	t := f.t
	user, pass, ok := r.BasicAuth()
	if r.Method != http.MethodPost || !ok || user != "api" || pass != f.key || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("%s %s: auth %q:%q (ok %v), content type %q", r.Method, r.URL.Path, user, pass, ok, r.Header.Get("Content-Type"))
		f.authFails++
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	kind := "graphql"
	if r.URL.Path != "/graphql" {
		kind = "file_stream"
	}
	f.count[kind]++
	status, apply := 0, false
	if f.fail != nil {
		status, apply = f.fail(kind, f.count[kind])
	}
	if status != 0 && !apply {
		http.Error(w, "unavailable", status)
		return
	}
	var reply any
	if kind == "graphql" {
		reply = f.graphql(r)
	} else {
		reply = f.stream(r)
	}
	if status != 0 {
		http.Error(w, "applied, but the answer is lost", status)
		return
	}
	json.NewEncoder(w).Encode(reply)
}

func (f *fakeWandB) graphql(r *http.Request) any {
	t := f.t
	var req struct {
		Query     string
		Variables map[string]any
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		t.Errorf("graphql body: %v", err)
		return nil
	}
	for _, s := range []string{"mutation UpsertBucket(", "upsertBucket(input: {", "name: $name", "modelName: $project", "entityName: $entity",
		"displayName: $displayName", "config: $config", "tags: $tags", "historyLineCount", "project { name entity { name } }"} {
		if !strings.Contains(req.Query, s) {
			t.Errorf("upsertBucket query lacks %q:\n%s", s, req.Query)
		}
	}
	v := req.Variables
	name, _ := v["name"].(string)
	if !runIDRe.MatchString(name) {
		t.Errorf("run name %q is not 8 lowercase alphanumerics", name)
	}
	entity := f.entity
	if e, ok := v["entity"]; ok {
		entity = e.(string)
	}
	cs, ok := v["config"].(string)
	var config map[string]any
	if err := json.Unmarshal([]byte(cs), &config); !ok || err != nil {
		t.Errorf("config is not a JSON string of an object: %#v", v["config"])
	}
	for k, c := range config {
		if m, ok := c.(map[string]any); !ok || len(m) != 1 || m["value"] == nil {
			t.Errorf("config %q is %v, want {\"value\": …}", k, c)
		}
	}
	run := f.runs[name]
	if run == nil {
		run = &fakeRun{entity: entity, project: v["project"].(string)}
		f.runs[name] = run
	} else if run.project != v["project"] || run.entity != entity {
		t.Errorf("run %s resumed in %v/%v, created in %s/%s", name, v["entity"], v["project"], run.entity, run.project)
	}
	run.upserts++
	run.config = config
	run.displayName, _ = v["displayName"].(string)
	run.tags = nil
	if tags, ok := v["tags"].([]any); ok {
		for _, x := range tags {
			run.tags = append(run.tags, x.(string))
		}
	}
	return map[string]any{"data": map[string]any{"upsertBucket": map[string]any{
		"bucket": map[string]any{"id": "QnVja2V0", "name": name, "displayName": run.displayName,
			"historyLineCount": len(run.history),
			"project":          map[string]any{"name": run.project, "entity": map[string]any{"name": run.entity}}},
		"inserted": run.upserts == 1}}}
}

func (f *fakeWandB) stream(r *http.Request) any {
	t := f.t
	m := streamRe.FindStringSubmatch(r.URL.Path)
	if m == nil {
		t.Errorf("unexpected path %s", r.URL.Path)
		return nil
	}
	run := f.runs[m[3]]
	if run == nil || run.entity != m[1] || run.project != m[2] {
		t.Errorf("file_stream for %s: no such run (entity %s, project %s)", r.URL.Path, m[1], m[2])
		return nil
	}
	var body struct {
		Files    map[string]streamFile
		Complete *bool
		Exitcode *int
	}
	raw := map[string]json.RawMessage{}
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := r.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if err := json.Unmarshal([]byte(b.String()), &raw); err != nil {
		t.Errorf("file_stream body %q: %v", b.String(), err)
		return nil
	}
	json.Unmarshal([]byte(b.String()), &body)
	if run.complete && body.Complete == nil {
		t.Errorf("%s: a request after complete: %s", r.URL.Path, b.String()) // a resent complete is fine
	}
	switch {
	case len(raw) == 0:
		run.heartbeats++
	case body.Complete != nil:
		if !*body.Complete || body.Exitcode == nil || len(raw) != 2 {
			t.Errorf("finish body %s", b.String())
		}
		run.complete, run.exitcode = true, *body.Exitcode
	case body.Files != nil && len(raw) == 1:
		for name, sf := range body.Files {
			var file *[]string
			switch name {
			case "wandb-history.jsonl":
				file = &run.history
			case "output.log":
				file = &run.log
			case "wandb-summary.json":
				if sf.Offset != 0 || len(sf.Content) != 1 {
					t.Errorf("summary at offset %d with %d lines", sf.Offset, len(sf.Content))
				}
				run.summary = sf.Content[0]
				continue
			default:
				t.Errorf("unexpected file %q", name)
				continue
			}
			if sf.Offset > len(*file) {
				t.Errorf("%s: offset %d past its %d lines: lines lost", name, sf.Offset, len(*file))
				continue
			}
			if sf.Offset < len(*file) {
				f.resends++
				for i, l := range sf.Content {
					if j := sf.Offset + i; j < len(*file) && (*file)[j] != l {
						t.Errorf("%s: a resend at offset %d changes line %d from %s to %s", name, sf.Offset, j, (*file)[j], l)
					}
				}
			}
			*file = append((*file)[:sf.Offset], sf.Content...)
		}
	default:
		t.Errorf("file_stream body %s", b.String())
	}
	return map[string]any{"exitcode": nil, "limits": map[string]any{}}
}

func (f *fakeWandB) run(t *testing.T) *fakeRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.runs) != 1 {
		t.Fatalf("%d runs on the server, want 1", len(f.runs))
	}
	for _, r := range f.runs {
		return r
	}
	return nil
}

func (f *fakeWandB) historyLen() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.runs {
		return len(r.history)
	}
	return 0
}

// fastConfig shortens every wait, so that a test takes well under a second.
func fastConfig(url, key string, warn *syncBuffer) WandBConfig {
	return WandBConfig{Project: "gwen-test", Name: "my run", Tags: []string{"sft", "tiny"}, BaseURL: url + "/", APIKey: key, Warn: warn,
		flushEvery: 5 * time.Millisecond, heartbeat: time.Hour, closeWait: 2 * time.Second,
		backoff: 2 * time.Millisecond, maxBackoff: 20 * time.Millisecond, requestTimeout: time.Second, warnAfter: time.Hour}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// trainRecords are steps from..to-1, with an eval record at every fifth step.
func trainRecords(from, to int) []Record {
	var rs []Record
	for s := from; s < to; s++ {
		stage := "pretrain"
		if s >= 30 {
			stage = "sft"
		}
		rs = append(rs, Record{Step: s, Stage: stage, Values: map[string]float64{"loss": 5 - float64(s)/100, "lr": float64(s) * 1e-5, "moe/layer1/load_max": 0.5}})
		if s%5 == 4 {
			rs = append(rs, Record{Step: s, Stage: stage, Eval: true, Values: map[string]float64{"loss": 6 - float64(s)/100, "ppl": float64(s)}})
		}
	}
	return rs
}

// checkHistory asserts that the run holds steps 0..n-1, each once, in order, with the
// values trainRecords gives, and that output.log has each step's line once, in order.
func checkHistory(t *testing.T, run *fakeRun, n int) {
	t.Helper()
	if len(run.history) != n {
		t.Errorf("history has %d lines, want %d", len(run.history), n)
	}
	want := map[int]map[string]float64{}
	for _, r := range trainRecords(0, n) {
		if want[r.Step] == nil {
			want[r.Step] = map[string]float64{}
		}
		prefix := "train/"
		if r.Eval {
			prefix = "eval/"
		}
		for k, v := range r.Values {
			want[r.Step][prefix+k] = v
		}
	}
	prevRuntime := -1.0
	for i, line := range run.history {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("history line %d %q: %v", i, line, err)
		}
		if step, _ := m["_step"].(float64); int(step) != i {
			t.Errorf("history line %d has _step %v, want %d", i, m["_step"], i)
			continue
		}
		rt, _ := m["_runtime"].(float64)
		ts, _ := m["_timestamp"].(float64)
		if rt < prevRuntime || ts < 1.7e9 {
			t.Errorf("history line %d: _runtime %v after %v, _timestamp %v", i, rt, prevRuntime, ts)
		}
		prevRuntime = rt
		if len(m) != 3+len(want[i]) {
			t.Errorf("history line %d has keys %v, want %v", i, m, want[i])
		}
		for k, v := range want[i] {
			if m[k] != v {
				t.Errorf("history line %d: %s = %v, want %v", i, k, m[k], v)
			}
		}
	}
	next := 0
	for _, l := range run.log {
		if strings.HasPrefix(l, "eval ") || !strings.Contains(l, " step ") {
			continue
		}
		if want := fmt.Sprintf("step %d ", next); !strings.Contains(l, want) {
			t.Errorf("output.log line %q, want one with %q", l, want)
		}
		next++
	}
	if next != n {
		t.Errorf("output.log has %d train lines, want %d:\n%s", next, n, strings.Join(run.log, "\n"))
	}
}

func writeAll(t *testing.T, s Sink, rs []Record) {
	t.Helper()
	for _, r := range rs {
		if err := s.Write(r); err != nil {
			t.Fatal(err)
		}
	}
}

const testKey = "0123456789abcdef0123456789abcdef01234567"

type recipe struct {
	Model struct {
		Path string `json:"path"`
	} `json:"model"`
	Train struct {
		LR       float64 `json:"lr"`
		MaxSteps int     `json:"max_steps"`
	} `json:"train"`
	OutDir string `json:"out_dir"`
}

func testRecipe() recipe {
	var r recipe
	r.Model.Path, r.Train.LR, r.Train.MaxSteps, r.OutDir = "./Qwen3-0.6B", 3e-4, 60, "runs/x"
	return r
}

func TestWandBStreams(t *testing.T) {
	f, srv := newFakeWandB(t, testKey)
	dir := t.TempDir()
	warn := &syncBuffer{}
	s, err := NewWandB(fastConfig(srv.URL, testKey, warn), dir, testRecipe(), -1)
	if err != nil {
		t.Fatal(err)
	}
	rs := trainRecords(0, 40)
	for i, r := range rs {
		s.Write(r)
		if i == 10 {
			Log(s, "stage sft starts")
			waitFor(t, func() bool { return f.historyLen() >= 8 }) // sent as it goes, not all at the end
		}
	}
	if err := s.Close(0); err != nil {
		t.Fatal(err)
	}
	run := f.run(t)
	checkHistory(t, run, 40)
	if !run.complete || run.exitcode != 0 {
		t.Errorf("complete %v exit code %d", run.complete, run.exitcode)
	}
	if run.entity != "team-x" || run.project != "gwen-test" || run.displayName != "my run" || strings.Join(run.tags, ",") != "sft,tiny" {
		t.Errorf("run %+v", run)
	}
	if m, _ := run.config["train"].(map[string]any)["value"].(map[string]any); m["lr"] != 3e-4 || m["max_steps"] != 60.0 {
		t.Errorf("config %v", run.config)
	}
	var sum map[string]any
	json.Unmarshal([]byte(run.summary), &sum)
	if sum["_step"] != 39.0 || sum["train/loss"] != 5-0.39 || sum["eval/loss"] != 6-0.39 || sum["eval/ppl"] != 39.0 {
		t.Errorf("summary %s", run.summary)
	}
	if !strings.Contains(strings.Join(run.log, "\n"), "\nstage sft starts\n") || !strings.Contains(strings.Join(run.log, "\n"), "eval pretrain step 4 loss 5.96 ppl 4") {
		t.Errorf("output.log:\n%s", strings.Join(run.log, "\n"))
	}
	if f.count["file_stream"] < 3 {
		t.Errorf("%d file_stream posts: not batched as it went", f.count["file_stream"])
	}
	if warn.String() != "" {
		t.Errorf("warnings: %s", warn)
	}
	checkNoKey(t, dir, warn)
}

// checkNoKey asserts the key is in no file of dir and no warning.
func checkNoKey(t *testing.T, dir string, warn *syncBuffer) {
	t.Helper()
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), testKey) {
				t.Errorf("%s holds the API key", p)
			}
		}
		return nil
	})
	if strings.Contains(warn.String(), testKey) {
		t.Errorf("a warning holds the API key: %s", warn)
	}
}

func TestWandBRetries(t *testing.T) {
	f, srv := newFakeWandB(t, testKey)
	f.fail = func(kind string, n int) (int, bool) {
		switch {
		case kind == "graphql" && n <= 2:
			return http.StatusServiceUnavailable, false
		case kind == "file_stream" && n == 1:
			return http.StatusTooManyRequests, false
		case kind == "file_stream" && n >= 3 && n <= 12:
			// 503 for a while; every other one after the server applied it.
			return http.StatusServiceUnavailable, n%2 == 0
		case kind == "file_stream" && n == 14:
			return http.StatusBadGateway, true
		}
		return 0, false
	}
	warn := &syncBuffer{}
	dir := t.TempDir()
	s, err := NewWandB(fastConfig(srv.URL, testKey, warn), dir, testRecipe(), -1)
	if err != nil {
		t.Fatal(err)
	}
	rs := trainRecords(0, 60)
	for i, r := range rs {
		s.Write(r)
		if i%7 == 0 {
			time.Sleep(3 * time.Millisecond)
		}
	}
	if err := s.Close(3); err != nil {
		t.Fatal(err)
	}
	run := f.run(t)
	checkHistory(t, run, 60)
	if !run.complete || run.exitcode != 3 {
		t.Errorf("complete %v exit code %d", run.complete, run.exitcode)
	}
	if f.resends == 0 || f.count["file_stream"] < 14 || f.count["graphql"] != 3 {
		t.Errorf("the failures were not exercised: %d resends, %v requests", f.resends, f.count)
	}
	if warn.String() != "" {
		t.Errorf("warnings for a short outage: %s", warn)
	}
}

// A run killed and resumed continues the same W&B run: every step once.
func TestWandBResume(t *testing.T) {
	for _, c := range []struct {
		name string
		// phase one's server fails every file_stream post after step 9 with 503, applying
		// each (its answer lost) when apply is true
		failing, apply bool
		resumeStep     int
	}{
		{"W&B ahead of the checkpoint", false, false, 19},
		{"W&B behind the checkpoint", true, false, 24},
		{"answer lost at the kill", true, true, 19},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, srv := newFakeWandB(t, testKey)
			failing := false
			f.fail = func(kind string, n int) (int, bool) {
				if failing && kind == "file_stream" {
					return http.StatusServiceUnavailable, c.apply
				}
				return 0, false
			}
			dir := t.TempDir()
			warn := &syncBuffer{}
			cfg := fastConfig(srv.URL, testKey, warn)
			jl, err := OpenJSONL(filepath.Join(dir, "metrics.jsonl"), -1)
			if err != nil {
				t.Fatal(err)
			}
			wb, err := NewWandB(cfg, dir, testRecipe(), -1)
			if err != nil {
				t.Fatal(err)
			}
			s := Tee(jl, wb)
			writeAll(t, s, trainRecords(0, 10))
			waitFor(t, func() bool { return f.historyLen() >= 9 }) // step 9's row waits for its eval
			f.mu.Lock()
			failing = c.failing
			n0 := f.count["file_stream"]
			f.mu.Unlock()
			writeAll(t, s, trainRecords(10, 30))
			if c.failing { // the client is retrying a batch (that the server applied if c.apply)
				waitFor(t, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.count["file_stream"] >= n0+3 })
				if h := f.historyLen(); c.apply && h <= 9 || !c.apply && h != 9 {
					t.Fatalf("history has %d lines", h)
				}
			} else {
				waitFor(t, func() bool { return f.historyLen() >= 29 })
			}
			wb.(*wandb).abort() // killed: no flush, no complete
			jl.Close(1)
			f.mu.Lock()
			failing = false
			had := len(f.runs)
			f.mu.Unlock()
			if had != 1 {
				t.Fatalf("%d runs", had)
			}

			// The resumed process: metrics.jsonl is cut to the checkpoint, and the trainer
			// writes from the step after it.
			jl, err = OpenJSONL(filepath.Join(dir, "metrics.jsonl"), c.resumeStep)
			if err != nil {
				t.Fatal(err)
			}
			wb, err = NewWandB(cfg, dir, testRecipe(), c.resumeStep)
			if err != nil {
				t.Fatal(err)
			}
			s = Tee(jl, wb)
			writeAll(t, s, trainRecords(c.resumeStep+1, 60))
			if err := s.Close(0); err != nil {
				t.Fatal(err)
			}
			run := f.run(t)
			checkHistory(t, run, 60)
			if !run.complete || run.upserts != 2 {
				t.Errorf("complete %v after %d upserts", run.complete, run.upserts)
			}
			checkNoKey(t, dir, warn)
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A server that never answers, or is not there, costs Close a bounded wait and one
// warning line; every step is in metrics.jsonl and no Write waits on it.
func TestWandBDeadServer(t *testing.T) {
	for _, c := range []string{"never answers", "refuses connections"} {
		t.Run(c, func(t *testing.T) {
			f, srv := newFakeWandB(t, testKey)
			if c == "never answers" {
				f.hang = make(chan struct{})
				t.Cleanup(func() { close(f.hang) })
			} else {
				srv.Close()
			}
			dir := t.TempDir()
			warn := &syncBuffer{}
			cfg := fastConfig(srv.URL, testKey, warn)
			cfg.closeWait = 300 * time.Millisecond
			cfg.requestTimeout = 10 * time.Second // longer than Close waits
			jl, err := OpenJSONL(filepath.Join(dir, "metrics.jsonl"), -1)
			if err != nil {
				t.Fatal(err)
			}
			wb, err := NewWandB(cfg, dir, testRecipe(), -1)
			if err != nil {
				t.Fatal(err)
			}
			s := Tee(jl, wb)
			rs := trainRecords(0, 100)
			t0 := time.Now()
			writeAll(t, s, rs)
			if d := time.Since(t0); d > 500*time.Millisecond {
				t.Errorf("writing %d records took %v", len(rs), d)
			}
			t0 = time.Now()
			if err := s.Close(0); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(t0); d > cfg.closeWait+time.Second {
				t.Errorf("Close took %v", d)
			}
			lines := strings.Split(strings.TrimSpace(warn.String()), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "wandb: ") || !strings.Contains(lines[0], "metrics.jsonl") {
				t.Errorf("warnings %q, want one line", warn.String())
			}
			got, err := ReadJSONL(filepath.Join(dir, "metrics.jsonl"))
			if err != nil || len(got) != len(rs) {
				t.Errorf("metrics.jsonl has %d records (%v), want %d", len(got), err, len(rs))
			}
			checkNoKey(t, dir, warn)
		})
	}
}

// A refusal (a bad key) turns the sink off with one warning; the run goes on.
func TestWandBRefused(t *testing.T) {
	warn := &syncBuffer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"errors":[{"message":"user is not logged in"}]}`, http.StatusUnauthorized)
	}))
	defer srv.Close()
	s, err := NewWandB(fastConfig(srv.URL, testKey, warn), t.TempDir(), nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, s, trainRecords(0, 5))
	waitFor(t, func() bool { return warn.String() != "" })
	writeAll(t, s, trainRecords(5, 10))
	if err := s.Close(0); err != nil {
		t.Fatal(err)
	}
	if w := warn.String(); strings.Count(w, "\n") != 1 || !strings.Contains(w, "401") || !strings.Contains(w, "logging is off") {
		t.Errorf("warnings %q", w)
	}
}

func TestWandBConfigErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewWandB(WandBConfig{Project: "p"}, dir, nil, -1); err == nil || !strings.Contains(err.Error(), "WANDB_API_KEY") {
		t.Errorf("no key: %v", err)
	}
	if _, err := NewWandB(WandBConfig{APIKey: "k"}, dir, nil, -1); err == nil {
		t.Error("no project accepted")
	}
	if _, err := NewWandB(WandBConfig{Project: "p", APIKey: testKey}, dir, map[string]string{"oops": testKey}, -1); err == nil {
		t.Error("a config holding the key was accepted")
	}
	if _, err := NewWandB(WandBConfig{Project: "p", APIKey: "k"}, dir, []int{1}, -1); err == nil {
		t.Error("a config that is not an object was accepted")
	}
	env := map[string]string{"WANDB_API_KEY": "k1", "WANDB_BASE_URL": "http://127.0.0.1:9"}
	c := WandBConfig{Project: "p"}.FromEnv(func(k string) string { return env[k] })
	if c.APIKey != "k1" || c.BaseURL != "http://127.0.0.1:9" {
		t.Errorf("FromEnv gave %+v", c)
	}
	if c := (WandBConfig{APIKey: "mine"}).FromEnv(func(k string) string { return env[k] }); c.APIKey != "mine" {
		t.Errorf("FromEnv replaced a key already set")
	}
}

// Silence gets heartbeats; a long outage fills the bounded buffer, which drops the oldest
// rows with one warning, and the rows kept still arrive once each, in order.
func TestWandBHeartbeatAndBuffer(t *testing.T) {
	f, srv := newFakeWandB(t, testKey)
	down := false
	f.fail = func(kind string, n int) (int, bool) {
		if down && kind == "file_stream" {
			return http.StatusServiceUnavailable, false
		}
		return 0, false
	}
	warn := &syncBuffer{}
	cfg := fastConfig(srv.URL, testKey, warn)
	cfg.heartbeat, cfg.maxRows = 20*time.Millisecond, 10
	s, err := NewWandB(cfg, t.TempDir(), nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, s, trainRecords(0, 3))
	waitFor(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, r := range f.runs {
			return r.heartbeats >= 2
		}
		return false
	})
	f.mu.Lock()
	down = true
	f.mu.Unlock()
	writeAll(t, s, trainRecords(3, 40)) // 37 rows into a buffer of 10
	time.Sleep(30 * time.Millisecond)
	f.mu.Lock()
	down = false
	f.mu.Unlock()
	if err := s.Close(0); err != nil {
		t.Fatal(err)
	}
	run := f.run(t)
	var steps []int
	for _, l := range run.history {
		var m struct {
			Step int `json:"_step"`
		}
		json.Unmarshal([]byte(l), &m)
		steps = append(steps, m.Step)
	}
	// Steps 0-1 went before the outage; the buffer then kept the last ten rows it had.
	if len(steps) < 12 || len(steps) > 14 || steps[0] != 0 || steps[1] != 1 || steps[len(steps)-1] != 39 {
		t.Errorf("history steps %v", steps)
	}
	for i := 1; i < len(steps); i++ {
		if steps[i] <= steps[i-1] {
			t.Errorf("history steps %v not increasing", steps)
		}
	}
	if w := warn.String(); strings.Count(w, "\n") != 1 || !strings.Contains(w, "buffer was full") {
		t.Errorf("warnings %q", w)
	}
}
