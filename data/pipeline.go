package data

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/gwen-ml/gwen/data/tokenizer"
)

// PipelineConfig says how a Pipeline turns examples into batches.
type PipelineConfig struct {
	Task Task
	// Rows is the number of rows per batch (B); for preference, the number of pairs (the batch
	// then has 2·Rows rows). SeqLen is the row length (T).
	Rows, SeqLen int
	// Pack (SFT): several whole conversations per row (LayoutPacked); default one per row,
	// padded (LayoutPadded). Pretraining always packs (LayoutStream); preference never packs.
	Pack bool
	// Truncate (SFT, preference): cut over-long examples to SeqLen instead of dropping them.
	Truncate bool
	// TrainEmptyThink (SFT, preference): train the template's empty think block.
	TrainEmptyThink bool
	// EOSToken is the token appended to each pretraining text and string preference response;
	// "" means the tokenizer's eos_token (Qwen3 instruct: "<|im_end|>", Qwen3 base:
	// "<|endoftext|>"). Padding uses the tokenizer's pad_token, else the EOS token.
	EOSToken string
	// Workers tokenizing in parallel (0: min(2, GOMAXPROCS): one worker already gives about
	// 4 M tokens/s, far more than a CPU trainer consumes, and more would only take cores from
	// BLAS). Ahead bounds how many examples are read and tokenized ahead of the packer (0:
	// 256, about a batch of 8×2048 tokens of typical web text twice over). Neither changes
	// the batches.
	Workers, Ahead int
}

// PipelineCounts are running totals of what became of the examples read.
type PipelineCounts struct {
	Examples  int64            `json:"examples"`  // examples put into batches
	Truncated int64            `json:"truncated"` // of those, cut to SeqLen
	Dropped   map[string]int64 `json:"dropped,omitempty"`
}

func (c PipelineCounts) clone() PipelineCounts {
	d := c
	d.Dropped = nil
	for k, v := range c.Dropped {
		if d.Dropped == nil {
			d.Dropped = map[string]int64{}
		}
		d.Dropped[k] = v
	}
	return d
}

// PipelineState is an exact place in a Pipeline, for a checkpoint. Mixture is the mixture's
// state before the example the packer carries into the next batch (Offset of whose tokens the
// batches so far already hold), or after the last example used when none is carried. It
// marshals to JSON.
type PipelineState struct {
	Mixture MixtureState   `json:"mixture"`
	Offset  int            `json:"offset"`
	Counts  PipelineCounts `json:"counts"`
}

// Pipeline reads examples from a Mixture, tokenizes them on a pool of goroutines running ahead
// of training, and packs them into batches. The batches depend only on the mixture, the
// tokenizer and the config, never on Workers or Ahead or timing; at most Ahead examples are
// held between the reader and the packer, so memory stays flat however large the data.
// Next, State, Restore and Close must be called from one goroutine.
type Pipeline struct {
	cfg    PipelineConfig
	enc    Encoder
	mix    *Mixture
	packer *Packer

	started bool
	quit    chan struct{}
	order   chan *job
	wg      sync.WaitGroup
	err     error // sticky

	base   PipelineState // the state before the first pull since creation or Restore
	last   *job          // the last example pulled
	skip   int           // tokens to skip of the first example pulled after Restore
	counts PipelineCounts
}

// job is one example on its way through the pool. The reader fills ex, before and after, the
// worker enc (or err), then closes done.
type job struct {
	ex            Example
	before, after MixtureState
	enc           Encoded
	err           error
	done          chan struct{}
}

// NewPipeline makes a pipeline over mix (which it owns from now on).
func NewPipeline(mix *Mixture, tok *tokenizer.Tokenizer, cfg PipelineConfig) (*Pipeline, error) {
	if cfg.Rows <= 0 || cfg.SeqLen <= 0 {
		return nil, fmt.Errorf("pipeline: %d rows of %d tokens, want both > 0", cfg.Rows, cfg.SeqLen)
	}
	eos := tok.EOS()
	if cfg.EOSToken != "" {
		id, ok := tok.TokenID(cfg.EOSToken)
		if !ok {
			return nil, fmt.Errorf("pipeline: EOS token %q is not in the vocabulary", cfg.EOSToken)
		}
		eos = id
	}
	pad := tok.Pad()
	if pad < 0 {
		pad = eos
	}
	if (cfg.Task == TaskPretrain || cfg.Task == TaskPreference) && eos < 0 {
		return nil, errors.New("pipeline: the tokenizer has no eos_token; set EOSToken")
	}
	if pad < 0 {
		return nil, errors.New("pipeline: the tokenizer has neither pad_token nor eos_token; set EOSToken")
	}
	var layout Layout
	rows := cfg.Rows
	switch cfg.Task {
	case TaskPretrain:
		layout = LayoutStream
	case TaskSFT:
		layout = LayoutPadded
		if cfg.Pack {
			layout = LayoutPacked
		}
	case TaskPreference:
		layout, rows = LayoutPadded, 2*cfg.Rows
	default:
		return nil, fmt.Errorf("pipeline: unknown task %q", cfg.Task)
	}
	packer, err := NewPacker(layout, rows, cfg.SeqLen, pad)
	if err != nil {
		return nil, err
	}
	if cfg.Workers <= 0 {
		cfg.Workers = min(2, runtime.GOMAXPROCS(0))
	}
	if cfg.Ahead <= 0 {
		cfg.Ahead = 256
	}
	p := &Pipeline{
		cfg: cfg, mix: mix, packer: packer,
		enc: Encoder{Task: cfg.Task, Tok: tok, EOS: eos, SeqLen: cfg.SeqLen, Truncate: cfg.Truncate, TrainEmptyThink: cfg.TrainEmptyThink},
	}
	st, err := mix.State()
	if err != nil {
		return nil, err
	}
	p.base = PipelineState{Mixture: st}
	return p, nil
}

// start launches the reader and the workers at the mixture's current state.
func (p *Pipeline) start() {
	p.started = true
	p.quit = make(chan struct{})
	p.order = make(chan *job, p.cfg.Ahead)
	work := make(chan *job, p.cfg.Workers)
	quit, order := p.quit, p.order
	p.wg.Add(1 + p.cfg.Workers)
	go func() {
		defer p.wg.Done()
		defer close(work)
		before, err := p.mix.State()
		for {
			j := &job{before: before, done: make(chan struct{})}
			if err == nil {
				j.ex, _, err = p.mix.Next()
			}
			if err == nil {
				j.after, err = p.mix.State()
				before = j.after
			}
			if err != nil {
				j.err = err
				close(j.done)
				select {
				case order <- j:
				case <-quit:
				}
				return
			}
			select {
			case order <- j:
			case <-quit:
				return
			}
			select {
			case work <- j:
			case <-quit:
				return
			}
		}
	}()
	for range p.cfg.Workers {
		go func() {
			defer p.wg.Done()
			for j := range work {
				j.enc, j.err = p.enc.Encode(j.ex)
				j.ex = Example{} // the text is no longer needed
				close(j.done)
			}
		}()
	}
}

// stop ends the reader and the workers; examples read ahead are forgotten.
func (p *Pipeline) stop() {
	if !p.started {
		return
	}
	close(p.quit)
	p.wg.Wait()
	p.started = false
}

// pull returns the next example's encoding that is not dropped.
func (p *Pipeline) pull() (*job, error) {
	if !p.started {
		p.start()
	}
	for {
		j := <-p.order
		<-j.done
		if j.err != nil {
			return nil, j.err
		}
		p.last = j
		if d := j.enc.Drop; d != "" {
			if p.counts.Dropped == nil {
				p.counts.Dropped = map[string]int64{}
			}
			p.counts.Dropped[d]++
			continue
		}
		p.counts.Examples++
		if j.enc.Truncated {
			p.counts.Truncated++
		}
		return j, nil
	}
}

// Next returns the next batch. An error is sticky: every later call returns it.
func (p *Pipeline) Next() (Batch, error) {
	if p.err != nil {
		return Batch{}, p.err
	}
	var b Batch
	var err error
	if p.skip > 0 {
		var j *job
		if j, err = p.pull(); err == nil {
			if p.skip >= len(j.enc.Seq.IDs) {
				err = fmt.Errorf("pipeline: restored offset %d is past the example's %d tokens (did the data or tokenizer change?)", p.skip, len(j.enc.Seq.IDs))
			} else {
				p.packer.resume(j.enc.Seq, p.skip)
			}
		}
		p.skip = 0
	}
	if err == nil {
		if p.cfg.Task == TaskPreference {
			b, err = p.packer.NextPairs(func() (Sequence, Sequence, error) {
				j, err := p.pull()
				if err != nil {
					return Sequence{}, Sequence{}, err
				}
				return j.enc.Seq, j.enc.Rejected, nil
			})
		} else {
			b, err = p.packer.Next(func() (Sequence, error) {
				j, err := p.pull()
				if err != nil {
					return Sequence{}, err
				}
				return j.enc.Seq, nil
			})
		}
	}
	if err != nil {
		p.err = fmt.Errorf("pipeline: %w", err)
		p.stop()
		return Batch{}, p.err
	}
	return b, nil
}

// State is the pipeline's position after the batches returned so far.
func (p *Pipeline) State() PipelineState {
	if p.last == nil {
		st := p.base
		st.Counts = p.counts.clone()
		return st
	}
	c := p.counts.clone()
	if _, off, ok := p.packer.Pending(); ok {
		// The carried example is read again after a restore and counted then.
		c.Examples--
		if p.last.enc.Truncated {
			c.Truncated--
		}
		return PipelineState{Mixture: p.last.before, Offset: off, Counts: c}
	}
	return PipelineState{Mixture: p.last.after, Counts: c}
}

// Restore continues from st, as returned by State of a pipeline over the same data,
// tokenizer and config.
func (p *Pipeline) Restore(st PipelineState) error {
	p.stop()
	if st.Offset < 0 {
		return fmt.Errorf("pipeline state: offset %d", st.Offset)
	}
	if err := p.mix.Restore(st.Mixture); err != nil {
		return err
	}
	p.packer.carry, p.packer.off, p.packer.pending = Sequence{}, 0, false
	p.base = PipelineState{Mixture: st.Mixture, Offset: st.Offset}
	p.last, p.skip, p.err = nil, st.Offset, nil
	p.counts = st.Counts.clone()
	return nil
}

// Counts are the running totals (examples carried into the next batch included).
func (p *Pipeline) Counts() PipelineCounts { return p.counts.clone() }

// Close stops the goroutines and closes the mixture.
func (p *Pipeline) Close() error {
	p.stop()
	return p.mix.Close()
}
