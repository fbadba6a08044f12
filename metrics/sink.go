package metrics

import "errors"

// Sink receives the training records.
type Sink interface {
	Write(r Record) error     // must not block training for long
	Close(exitCode int) error // flush; exitCode 0 = success
}

// Logger is implemented by sinks that also take free-form log lines (a stage starting, a
// checkpoint saved): the progress output prints them, W&B appends them to output.log.
type Logger interface {
	Log(line string)
}

// Log sends line to s if s takes log lines (a Logger), and does nothing otherwise.
func Log(s Sink, line string) {
	if l, ok := s.(Logger); ok {
		l.Log(line)
	}
}

// Tee returns a Sink that writes each record to every sink in order, and forwards Log lines
// to those that are Loggers. Write and Close go on after an error and return them all joined.
func Tee(sinks ...Sink) Sink { return tee(sinks) }

type tee []Sink

func (t tee) Write(r Record) error {
	var errs []error
	for _, s := range t {
		if err := s.Write(r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (t tee) Close(exitCode int) error {
	var errs []error
	for _, s := range t {
		if err := s.Close(exitCode); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (t tee) Log(line string) {
	for _, s := range t {
		Log(s, line)
	}
}
