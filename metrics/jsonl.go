package metrics

import (
	"errors"
	"fmt"
	"github.com/gwen-ml/gwen/internal/durable"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// OpenJSONL opens OUT/metrics.jsonl for appending. resumeStep >= 0 means a resumed run:
// first every record with step > resumeStep is dropped (the file is rewritten to a temporary
// file that is synced and renamed over it, keeping the other lines byte for byte, and a
// torn last line is dropped too); resumeStep < 0 is a new run, which truncates the file.
// Each Write appends one line with a single write call (the file is always complete up to
// the last step, whatever kills the process); Close syncs the file.
func OpenJSONL(path string, resumeStep int) (Sink, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	flag := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if resumeStep < 0 {
		flag |= os.O_TRUNC
	} else if err := cutJSONL(path, resumeStep); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, err
	}
	return &jsonl{f: f, path: path}, nil
}

// cutJSONL keeps the lines of path whose step is <= last, atomically.
func cutJSONL(path string, last int) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	kept := make([]byte, 0, len(b))
	err = scanLines(path, b, func(line []byte, r Record) {
		if r.Step <= last {
			kept = append(kept, line...)
			if line[len(line)-1] != '\n' { // a complete last line that lacked its newline
				kept = append(kept, '\n')
			}
		}
	})
	if err != nil {
		return err
	}
	if len(kept) == len(b) {
		return nil
	}
	return durable.WriteFile(path, kept, 0o644)
}

type jsonl struct {
	mu   sync.Mutex
	f    *os.File
	path string
	buf  []byte
}

func (j *jsonl) Write(r Record) error {
	b, err := r.MarshalJSON()
	if err != nil {
		return fmt.Errorf("%s: %v", j.path, err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return fmt.Errorf("%s: write after close", j.path)
	}
	j.buf = append(append(j.buf[:0], b...), '\n')
	_, err = j.f.Write(j.buf)
	return err
}

func (j *jsonl) Close(int) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Sync()
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	j.f = nil
	return err
}
