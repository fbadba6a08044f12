package metrics

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/gwen-ml/gwen/internal/durable"
	"io"
	"io/fs"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// WandBConfig says where the W&B sink sends: recipe log.wandb {project, entity, name, tags}
// plus the environment (FromEnv). Entity "" is the key's default entity; Name "" lets W&B
// name the run.
type WandBConfig struct {
	Project, Entity, Name string
	Tags                  []string
	BaseURL, APIKey       string // BaseURL "" is https://api.wandb.ai

	// Warn receives the sink's warning lines (nil: os.Stderr). The key never appears in them.
	Warn io.Writer

	// Timing; zero values take the defaults in withDefaults. Tests shorten them.
	flushEvery, heartbeat, closeWait, backoff, maxBackoff, requestTimeout, warnAfter time.Duration
	maxRows                                                                          int
}

// FromEnv fills APIKey from WANDB_API_KEY and BaseURL from WANDB_BASE_URL where they are
// empty (getenv is os.Getenv, or a map lookup in tests).
func (c WandBConfig) FromEnv(getenv func(string) string) WandBConfig {
	if c.APIKey == "" {
		c.APIKey = getenv("WANDB_API_KEY")
	}
	if c.BaseURL == "" {
		c.BaseURL = getenv("WANDB_BASE_URL")
	}
	return c
}

func (c WandBConfig) withDefaults() WandBConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.flushEvery, 10*time.Second) // the official client batches every 15 s
	def(&c.heartbeat, 30*time.Second)
	def(&c.closeWait, 5*time.Second)
	def(&c.backoff, time.Second)
	def(&c.maxBackoff, time.Minute)
	def(&c.requestTimeout, 30*time.Second)
	def(&c.warnAfter, time.Minute)
	if c.maxRows <= 0 {
		c.maxRows = 20000
	}
	if c.BaseURL == "" {
		c.BaseURL = "https://api.wandb.ai"
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.Warn == nil {
		c.Warn = os.Stderr
	}
	return c
}

// wandbStateFile, in OUT, holds what a resumed run needs to continue the same W&B run.
const wandbStateFile = "wandb-run.json"

// wandbState is OUT/wandb-run.json. The counts are those the server has acknowledged;
// Pending holds the counts after the post in flight, which the server may have applied
// even though its answer was lost (a kill, a timeout): on resume, a historyLineCount equal
// to Pending's says it did.
type wandbState struct {
	RunID   string       `json:"run_id"`
	Entity  string       `json:"entity"`
	Project string       `json:"project"`
	Counts  wandbCounts  `json:"sent"`
	Pending *wandbCounts `json:"pending,omitempty"`
}

type wandbCounts struct {
	HistoryLines int     `json:"history_lines"`
	LogLines     int     `json:"log_lines"`
	LastStep     int     `json:"last_step"` // -1: none
	Runtime      float64 `json:"runtime"`   // seconds, for _runtime
}

// NewWandB streams the records to a W&B run. runDir is OUT: the run id and the line counts
// the server has acknowledged are kept in OUT/wandb-run.json (never the key), so that a
// resumed run (resumeStep >= 0, as in OpenJSONL) continues the same W&B run at its
// historyLineCount; steps the run already holds are not sent again, and steps <= resumeStep
// it lacks (W&B lagged behind when the run was killed) are sent from OUT/metrics.jsonl.
// config (the resolved recipe; any JSON object) becomes the run's config.
//
// Nothing is sent on the caller's goroutine: NewWandB returns at once and a goroutine
// creates the run (upsertBucket), then posts history rows (one per step: train values as
// "train/<key>", eval values as "eval/<key>"), the summary (last values) and output.log
// (the plain progress line of each record and every Log line) through file_stream in
// batches. 429, 5xx and network errors are retried with backoff while rows wait in a
// bounded buffer; other refusals (a bad key, a missing project) turn the sink off with
// one warning line. Close sends what is left and complete with the exit code, waiting at
// most a few seconds, then gives up with one warning line. Values that are not finite
// are left out (JSON has no numbers for them; metrics.jsonl keeps them).
func NewWandB(cfg WandBConfig, runDir string, config any, resumeStep int) (Sink, error) {
	cfg = cfg.withDefaults()
	if cfg.APIKey == "" {
		return nil, errors.New("wandb: no API key (set WANDB_API_KEY)")
	}
	if cfg.Project == "" {
		return nil, errors.New("wandb: no project (log.wandb.project)")
	}
	conf, err := wandbConfigJSON(config, cfg.APIKey)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, err
	}
	w := &wandb{
		cfg:       cfg,
		client:    &http.Client{Timeout: cfg.requestTimeout},
		statePath: filepath.Join(runDir, wandbStateFile),
		config:    conf,
		start:     time.Now(),
		summary:   map[string]float64{},
		closeCh:   make(chan struct{}),
		done:      make(chan struct{}),
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())

	if resumeStep >= 0 {
		st, err := readWandBState(w.statePath)
		if err != nil {
			return nil, err
		}
		if st != nil && st.Project == cfg.Project && (cfg.Entity == "" || cfg.Entity == st.Entity) {
			w.st, w.resumed = *st, true
		}
	}
	if !w.resumed {
		w.st = wandbState{RunID: newRunID(), Entity: cfg.Entity, Project: cfg.Project, Counts: wandbCounts{LastStep: -1}}
	}
	w.runtime0 = w.st.Counts.Runtime
	if err := w.saveState(); err != nil {
		return nil, err
	}
	if resumeStep >= 0 {
		// Steps the W&B run may lack: from what it acknowledged up to resumeStep.
		rs, err := ReadJSONL(filepath.Join(runDir, "metrics.jsonl"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, r := range rs {
			if r.Step > w.st.Counts.LastStep && r.Step <= resumeStep {
				w.add(r, w.start)
			}
		}
	}
	go w.run()
	return w, nil
}

// wandbConfigJSON marshals the recipe into W&B's config string, each top-level value
// wrapped as {"value": v}, refusing one that holds the key.
func wandbConfigJSON(config any, key string) (string, error) {
	b, err := json.Marshal(config)
	if err != nil {
		return "", fmt.Errorf("wandb: config: %v", err)
	}
	var m map[string]json.RawMessage
	if string(b) != "null" {
		if err := json.Unmarshal(b, &m); err != nil {
			return "", fmt.Errorf("wandb: config must marshal to a JSON object, not %.40s", b)
		}
	}
	wrapped := make(map[string]map[string]json.RawMessage, len(m))
	for k, v := range m {
		wrapped[k] = map[string]json.RawMessage{"value": v}
	}
	out, _ := json.Marshal(wrapped)
	if bytes.Contains(out, []byte(key)) {
		return "", errors.New("wandb: the config holds the W&B API key; it must not be sent or saved")
	}
	return string(out), nil
}

func readWandBState(path string) (*wandbState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st wandbState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if st.RunID == "" {
		return nil, fmt.Errorf("%s: no run_id", path)
	}
	return &st, nil
}

func (w *wandb) saveState() error {
	b, _ := json.MarshalIndent(w.st, "", "  ")
	return durable.WriteFile(w.statePath, append(b, '\n'), 0o644)
}

// newRunID is 8 random lowercase alphanumerics, as W&B's clients choose them.
func newRunID() string {
	const abc = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 8)
	rand.Read(b)
	for i := range b {
		b[i] = abc[int(b[i])%len(abc)]
	}
	return string(b)
}

type wandb struct {
	cfg       WandBConfig
	client    *http.Client
	statePath string
	config    string
	start     time.Time
	runtime0  float64
	ctx       context.Context
	cancel    context.CancelFunc

	// Owned by the sender goroutine once it runs.
	st      wandbState
	resumed bool
	entity  string // as the server names it

	mu          sync.Mutex
	row         *wandbRow   // the current step's row, still open to its eval record
	rows        []*wandbRow // closed rows waiting to be sent
	logs        []wandbLog
	logSeq      uint64
	summary     map[string]float64
	sumStep     int
	sumDirty    bool
	dropped     int // rows dropped when the buffer was full
	closing     bool
	exitCode    int
	warnMu      sync.Mutex
	lastWarn    string
	closeCh     chan struct{}
	done        chan struct{}
	stopped     bool // turned off by a refusal
	warnedOrder bool
}

type wandbRow struct {
	step   int
	at     time.Time
	values map[string]float64
}

type wandbLog struct {
	step int // the record's step, or -1 for a Log line
	seq  uint64
	line string
}

func (w *wandb) Write(r Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closing || w.stopped {
		return nil
	}
	w.add(r, time.Now())
	return nil
}

// add puts r into the current row (w.mu held, or before the sender starts).
func (w *wandb) add(r Record, now time.Time) {
	if w.row != nil && r.Step < w.row.step {
		if !w.warnedOrder {
			w.warnf("step %d came after step %d; W&B keeps steps in order, so such records are left out (metrics.jsonl has them)", r.Step, w.row.step)
			w.warnedOrder = true
		}
		return
	}
	if w.row != nil && r.Step > w.row.step {
		w.queue(w.row)
		w.row = nil
	}
	if w.row == nil {
		w.row = &wandbRow{step: r.Step, at: now, values: map[string]float64{}}
	}
	prefix := "train/"
	if r.Eval {
		prefix = "eval/"
	}
	for k, v := range r.Values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		w.row.values[prefix+k] = v
		w.summary[prefix+k] = v
	}
	w.sumStep, w.sumDirty = r.Step, true
	w.addLog(r.Step, formatLine(r, 0, -1))
}

func (w *wandb) addLog(step int, line string) {
	w.logSeq++
	w.logs = append(w.logs, wandbLog{step, w.logSeq, line})
	if len(w.logs) > w.cfg.maxRows {
		w.logs = w.logs[len(w.logs)-w.cfg.maxRows:]
	}
}

func (w *wandb) queue(row *wandbRow) {
	w.rows = append(w.rows, row)
	if n := len(w.rows) - w.cfg.maxRows; n > 0 {
		w.rows = w.rows[n:]
		w.dropped += n
	}
}

// Log appends line to the run's output.log.
func (w *wandb) Log(line string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closing || w.stopped {
		return
	}
	w.addLog(-1, line)
}

// warnf prints one warning line, not the same one twice in a row.
func (w *wandb) warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	w.warnMu.Lock()
	defer w.warnMu.Unlock()
	if msg == w.lastWarn {
		return
	}
	w.lastWarn = msg
	fmt.Fprintf(w.cfg.Warn, "wandb: %s\n", msg)
}

// Close sends what is left and marks the run complete with exitCode, giving up after
// closeWait (5 s) with one warning line. It returns nil: W&B trouble never fails a run.
func (w *wandb) Close(exitCode int) error {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		<-w.done
		return nil
	}
	w.closing, w.exitCode = true, exitCode
	if w.row != nil {
		w.queue(w.row)
		w.row = nil
	}
	w.mu.Unlock()
	close(w.closeCh)
	t := time.NewTimer(w.cfg.closeWait)
	defer t.Stop()
	select {
	case <-w.done:
		return nil
	case <-t.C:
	}
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		n := len(w.rows)
		w.warnf("the server at %s did not take the run's end within %v; %d steps not sent (metrics.jsonl has them all)", w.cfg.BaseURL, w.cfg.closeWait, n)
	}
	return nil
}

// abort stops the sender as a kill would: no flush, no complete (tests).
func (w *wandb) abort() {
	w.cancel()
	<-w.done
}

// run is the sender goroutine.
func (w *wandb) run() {
	defer close(w.done)
	if err := w.retry(w.upsert); err != nil {
		w.stop(err)
		return
	}
	tick := time.NewTicker(w.cfg.flushEvery)
	defer tick.Stop()
	last := time.Now()
	for {
		closing := false
		select {
		case <-w.ctx.Done():
			return
		case <-w.closeCh:
			closing = true
		case <-tick.C:
		}
		for { // until nothing is left: a backlog goes in batches of maxBatch
			sent, err := w.sendBatch()
			if err != nil {
				w.stop(err)
				return
			}
			if !sent {
				break
			}
			last = time.Now()
		}
		if closing {
			w.mu.Lock()
			code := w.exitCode
			w.mu.Unlock()
			body, _ := json.Marshal(map[string]any{"complete": true, "exitcode": code})
			if err := w.retry(func() error { return w.post(w.streamURL(), body, nil) }); err != nil {
				w.stop(err)
			}
			return
		}
		if time.Since(last) >= w.cfg.heartbeat {
			if err := w.retry(func() error { return w.post(w.streamURL(), []byte("{}"), nil) }); err != nil {
				w.stop(err)
				return
			}
			last = time.Now()
		}
	}
}

// stop turns the sink off after a refusal or a cancel, with one warning for a refusal.
func (w *wandb) stop(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx.Err() != nil {
		return // Close gave up, or a test killed the sender; Close warns
	}
	w.stopped = true
	w.rows, w.logs, w.row = nil, nil, nil
	w.warnf("%v; W&B logging is off for this run (metrics.jsonl has every step)", err)
}

const upsertBucketQuery = `mutation UpsertBucket($id: String, $name: String, $project: String, $entity: String,
  $groupName: String, $displayName: String, $notes: String, $config: JSONString,
  $jobType: String, $tags: [String!], $summaryMetrics: JSONString) {
  upsertBucket(input: {id: $id, name: $name, modelName: $project, entityName: $entity,
    groupName: $groupName, displayName: $displayName, notes: $notes, config: $config,
    jobType: $jobType, tags: $tags, summaryMetrics: $summaryMetrics}) {
    bucket { id name displayName historyLineCount project { name entity { name } } }
    inserted } }`

// upsert creates or resumes the run and settles where its history continues.
func (w *wandb) upsert() error {
	vars := map[string]any{"name": w.st.RunID, "project": w.cfg.Project, "config": w.config}
	if w.st.Entity != "" {
		vars["entity"] = w.st.Entity
	}
	if w.cfg.Name != "" {
		vars["displayName"] = w.cfg.Name
	}
	if w.cfg.Tags != nil {
		vars["tags"] = w.cfg.Tags
	}
	body, _ := json.Marshal(map[string]any{"query": upsertBucketQuery, "variables": vars})
	var reply struct {
		Data struct {
			UpsertBucket struct {
				Bucket struct {
					Name             string
					HistoryLineCount int
					Project          struct {
						Name   string
						Entity struct{ Name string }
					}
				}
			}
		}
	}
	if err := w.post(w.cfg.BaseURL+"/graphql", body, &reply); err != nil {
		return err
	}
	b := reply.Data.UpsertBucket.Bucket
	if b.Project.Entity.Name == "" {
		return permanent(errors.New("upsertBucket: the reply names no entity"))
	}
	w.entity, w.st.Entity = b.Project.Entity.Name, b.Project.Entity.Name
	h := b.HistoryLineCount
	switch {
	case !w.resumed:
		w.st.Counts.HistoryLines = h // 0 for a new run
	case w.st.Pending != nil && h == w.st.Pending.HistoryLines:
		w.st.Counts = *w.st.Pending // the post in flight at the kill had arrived
	case h != w.st.Counts.HistoryLines:
		// The server holds another count than this folder knows: continue at its count
		// and keep skipping the steps this folder knows were sent.
		w.warnf("run %s has %d history lines, %s says %d; continuing at %d", w.st.RunID, h, wandbStateFile, w.st.Counts.HistoryLines, h)
		w.st.Counts.HistoryLines = h
	}
	w.st.Pending = nil
	w.runtime0 = w.st.Counts.Runtime
	return w.saveState()
}

func (w *wandb) streamURL() string {
	return w.cfg.BaseURL + "/files/" + url.PathEscape(w.entity) + "/" + url.PathEscape(w.cfg.Project) + "/" + url.PathEscape(w.st.RunID) + "/file_stream"
}

type streamFile struct {
	Offset  int      `json:"offset"`
	Content []string `json:"content"`
}

const maxBatch = 1000

// sendBatch posts the waiting rows and log lines (up to maxBatch each) and the summary;
// sent is false when there was nothing to send.
func (w *wandb) sendBatch() (sent bool, err error) {
	w.mu.Lock()
	last := w.st.Counts.LastStep
	i := 0
	for i < len(w.rows) && w.rows[i].step <= last { // already in the run (resumed)
		i++
	}
	w.rows = w.rows[i:]
	kept := w.logs[:0]
	for _, l := range w.logs {
		if l.step < 0 || l.step > last {
			kept = append(kept, l)
		}
	}
	w.logs = kept
	rows := append([]*wandbRow(nil), w.rows[:min(len(w.rows), maxBatch)]...)
	// Log lines go with their rows: none from the open row's step on, so that the lines
	// the server acknowledged are those of steps <= LastStep, which a resume skips.
	nLogs := 0
	for nLogs < min(len(w.logs), maxBatch) && (w.row == nil || w.logs[nLogs].step < w.row.step) {
		nLogs++
	}
	logs := append([]wandbLog(nil), w.logs[:nLogs]...)
	var summary []byte
	if w.sumDirty {
		m := map[string]any{"_step": w.sumStep}
		for k, v := range w.summary {
			m[k] = v
		}
		summary, _ = json.Marshal(m)
		w.sumDirty = false
	}
	w.mu.Unlock()

	next := w.st.Counts
	files := map[string]streamFile{}
	if len(rows) > 0 {
		lines := make([]string, len(rows))
		for i, r := range rows {
			runtime := w.runtime0 + r.at.Sub(w.start).Seconds()
			m := map[string]any{"_step": r.step, "_runtime": runtime, "_timestamp": float64(r.at.UnixNano()) / 1e9}
			for k, v := range r.values {
				m[k] = v
			}
			b, _ := json.Marshal(m)
			lines[i] = string(b)
			next.Runtime = runtime
		}
		files["wandb-history.jsonl"] = streamFile{w.st.Counts.HistoryLines, lines}
		next.HistoryLines += len(lines)
		next.LastStep = rows[len(rows)-1].step
	}
	if len(logs) > 0 {
		lines := make([]string, len(logs))
		for i, l := range logs {
			lines[i] = l.line
		}
		files["output.log"] = streamFile{w.st.Counts.LogLines, lines}
		next.LogLines += len(lines)
	}
	if summary != nil {
		files["wandb-summary.json"] = streamFile{0, []string{string(summary)}}
	}
	if len(files) == 0 {
		return false, nil
	}
	body, _ := json.Marshal(map[string]any{"files": files})
	w.st.Pending = &next
	if err := w.saveState(); err != nil {
		w.warnf("%v", err)
	}
	if err := w.retry(func() error { return w.post(w.streamURL(), body, nil) }); err != nil {
		if summary != nil {
			w.mu.Lock()
			w.sumDirty = true
			w.mu.Unlock()
		}
		return false, err
	}
	w.st.Counts, w.st.Pending = next, nil
	if err := w.saveState(); err != nil {
		w.warnf("%v", err)
	}
	w.mu.Lock()
	// Rows up to next.LastStep go at the next call; log lines by sequence number (a full
	// buffer may have dropped some from the front meanwhile).
	if len(logs) > 0 {
		seq := logs[len(logs)-1].seq
		i := 0
		for i < len(w.logs) && w.logs[i].seq <= seq {
			i++
		}
		w.logs = w.logs[i:]
	}
	if w.dropped > 0 {
		w.warnf("the buffer was full: %d steps were not sent (metrics.jsonl has them)", w.dropped)
		w.dropped = 0
	}
	w.mu.Unlock()
	return true, nil
}

// permanentError is a refusal that retrying will not change.
type permanentError struct{ error }

func permanent(err error) error { return permanentError{err} }

// retry calls f until it succeeds, fails permanently, or the sink is cancelled, sleeping
// with exponential backoff and jitter between tries; once Close has begun it retries
// without growing the wait, since Close bounds the time. A long outage gets one warning.
func (w *wandb) retry(f func() error) error {
	wait := w.cfg.backoff
	var first time.Time
	warned := false
	for {
		err := f()
		if err == nil {
			return nil
		}
		var p permanentError
		if errors.As(err, &p) {
			return err
		}
		if w.ctx.Err() != nil {
			return w.ctx.Err()
		}
		if first.IsZero() {
			first = time.Now()
		}
		if !warned && time.Since(first) >= w.cfg.warnAfter {
			w.warnf("%v; retrying in the background (metrics.jsonl keeps every step)", err)
			warned = true
		}
		sleep := wait/2 + time.Duration(mrand.Int64N(int64(wait)))
		wake := w.closeCh
		select {
		case <-w.closeCh: // Close has begun: short waits, bounded by Close
			sleep, wake = min(sleep, w.cfg.backoff), nil
		default:
			wait = min(2*wait, w.cfg.maxBackoff)
		}
		t := time.NewTimer(sleep)
		select {
		case <-w.ctx.Done():
			t.Stop()
			return w.ctx.Err()
		case <-t.C:
		case <-wake: // Close began during a long wait: try again now
			t.Stop()
		}
	}
}

// post sends one JSON request with the key as basic auth; into, if not nil, receives a
// GraphQL reply, whose errors array is checked. 429 and 5xx are temporary, other
// statuses permanent.
func (w *wandb) post(url string, body []byte, into any) error {
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return permanent(err)
	}
	req.SetBasicAuth("api", w.cfg.APIKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gwen")
	resp, err := w.client.Do(req)
	if err != nil {
		return err // network: temporary
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	what := url[strings.LastIndexByte(url, '/')+1:]
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("%s: %s: %.200s", what, resp.Status, bytes.TrimSpace(b))
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			return err
		}
		return permanent(err)
	}
	if into == nil {
		return nil
	}
	var gql struct {
		Errors []struct{ Message string }
	}
	if err := json.Unmarshal(b, &gql); err != nil {
		return fmt.Errorf("%s: reply is not JSON: %.200s", what, b)
	}
	if len(gql.Errors) > 0 {
		return permanent(fmt.Errorf("%s: %s", what, gql.Errors[0].Message))
	}
	if err := json.Unmarshal(b, into); err != nil {
		return permanent(fmt.Errorf("%s: %v", what, err))
	}
	return nil
}
