package data

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
)

// StreamState is an exact place in a Stream. Epoch counts completed passes over the source;
// Unit indexes the epoch's order of row groups (file order, or a permutation when shuffled);
// Row counts the rows of that unit already consumed, in the unit's row order.
type StreamState struct {
	Epoch int64 `json:"epoch"`
	Unit  int   `json:"unit"`
	Row   int64 `json:"row"`
}

// Stream reads a Source over and over: each pass is one epoch. With Shuffle, every epoch
// visits the row groups of all files in a permutation and the rows of each row group in a
// permutation, both drawn from PCG generators seeded by (Seed, epoch) and (Seed, epoch, unit),
// so a state of three numbers restores it exactly. A shuffled stream holds one row group's
// examples in memory; an unshuffled one streams rows.
type Stream struct {
	src     *Source
	shuffle bool
	seed    uint64
	units   []unitRef // all row groups in file order
	order   []int     // this epoch's order of units
	st      StreamState

	buf      []bufferedRow // the current unit's rows in shuffled order (shuffle only)
	bufUnit  int           // unit index buf holds, -1 when none
	empty    int64         // units in a row that gave no example, to stop on an empty source
	epochOut int64         // epoch whose order is in s.order
}

type unitRef struct {
	file, group int
	rows        int64
}

type bufferedRow struct {
	ex     Example
	status rowStatus
}

// NewStream wraps src (which it owns from now on) as an endless stream.
func NewStream(src *Source, shuffle bool, seed uint64) *Stream {
	s := &Stream{src: src, shuffle: shuffle, seed: seed, bufUnit: -1, epochOut: -1}
	for fi, f := range src.files {
		for gi, n := range f.groups {
			s.units = append(s.units, unitRef{fi, gi, n})
		}
	}
	return s
}

// State is where the next Next starts.
func (s *Stream) State() StreamState { return s.st }

// Epoch is the number of completed passes.
func (s *Stream) Epoch() int64 { return s.st.Epoch }

// Counts are the source's row counts so far (over all epochs).
func (s *Stream) Counts() Counts { return s.src.Counts() }

// Restore moves to st, as returned by State.
func (s *Stream) Restore(st StreamState) error {
	if st.Epoch < 0 || st.Unit < 0 || st.Unit > len(s.units) || st.Row < 0 ||
		(st.Unit < len(s.units) && st.Row > s.units[s.order0(st.Epoch, st.Unit)].rows) {
		return fmt.Errorf("stream state %+v out of range (%d row groups)", st, len(s.units))
	}
	s.st = st
	s.bufUnit = -1
	s.buf = nil
	if !s.shuffle && st.Unit < len(s.units) {
		u := s.units[st.Unit]
		return s.src.Seek(Position{File: u.file, RowGroup: u.group, Row: st.Row})
	}
	return nil
}

// order0 is the unit at position i of epoch e's order.
func (s *Stream) order0(e int64, i int) int {
	if !s.shuffle {
		return i
	}
	s.makeOrder(e)
	return s.order[i]
}

func (s *Stream) makeOrder(e int64) {
	if s.epochOut == e && s.order != nil {
		return
	}
	s.order = make([]int, len(s.units))
	for i := range s.order {
		s.order[i] = i
	}
	r := rand.New(rand.NewPCG(s.seed, mix(uint64(e), 0)))
	r.Shuffle(len(s.order), func(i, j int) { s.order[i], s.order[j] = s.order[j], s.order[i] })
	s.epochOut = e
}

// mix is SplitMix64's finaliser over a and b: distinct PCG streams per (epoch, unit).
func mix(a, b uint64) uint64 {
	z := a*0x9e3779b97f4a7c15 ^ (b + 0xbf58476d1ce4e5b9)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Next returns the next example; at the end of a pass it starts the next epoch.
func (s *Stream) Next() (Example, error) {
	if len(s.units) == 0 {
		return Example{}, fmt.Errorf("%v: %w", s.src.Files(), errNoExamples)
	}
	for {
		if s.st.Unit >= len(s.units) {
			s.st = StreamState{Epoch: s.st.Epoch + 1}
			s.bufUnit = -1
			if !s.shuffle {
				if err := s.src.Seek(Position{}); err != nil {
					return Example{}, err
				}
			}
		}
		if s.empty > int64(len(s.units)) {
			return Example{}, fmt.Errorf("%v: a whole pass gave %w", s.src.Files(), errNoExamples)
		}
		var ex Example
		var st rowStatus
		if s.shuffle {
			u := s.order0(s.st.Epoch, s.st.Unit)
			if s.st.Row >= s.units[u].rows {
				s.st.Unit++
				s.st.Row = 0
				s.empty++
				continue
			}
			if s.bufUnit != s.st.Unit {
				if err := s.fill(u); err != nil {
					return Example{}, err
				}
			}
			b := s.buf[s.st.Row]
			ex, st = b.ex, b.status
			s.src.counts.add(st)
		} else {
			u := s.units[s.st.Unit]
			if s.st.Row >= u.rows {
				s.st.Unit++
				s.st.Row = 0
				s.empty++
				continue
			}
			var err error
			ex, st, err = s.src.nextRow(true)
			if err != nil {
				if err == io.EOF {
					err = errors.New("source ended before its row groups did")
				}
				return Example{}, err
			}
			s.src.counts.add(st)
		}
		s.st.Row++
		if st == rowOK {
			s.empty = 0
			return ex, nil
		}
	}
}

// fill reads unit u whole and permutes its rows for this epoch.
func (s *Stream) fill(u int) error {
	ref := s.units[u]
	if err := s.src.Seek(Position{File: ref.file, RowGroup: ref.group}); err != nil {
		return err
	}
	s.buf = s.buf[:0]
	for r := int64(0); r < ref.rows; r++ {
		ex, st, err := s.src.nextRow(true)
		if err != nil {
			return err
		}
		s.buf = append(s.buf, bufferedRow{ex, st})
	}
	rng := rand.New(rand.NewPCG(s.seed, mix(uint64(s.st.Epoch), uint64(u)+1)))
	rng.Shuffle(len(s.buf), func(i, j int) { s.buf[i], s.buf[j] = s.buf[j], s.buf[i] })
	s.bufUnit = s.st.Unit
	return nil
}

// Close closes the source.
func (s *Stream) Close() error { return s.src.Close() }

// MixtureState is everything a Mixture needs to continue exactly: the generator that picks
// sources and each stream's state. It marshals to JSON.
type MixtureState struct {
	RNG     []byte        `json:"rng"` // math/rand/v2 PCG MarshalBinary
	Drawn   int64         `json:"drawn"`
	Streams []StreamState `json:"streams"`
}

// Mixture interleaves streams: each Next picks stream i with probability weights[i]/sum from
// a PCG generator seeded by seed. Sources that run out start their next epoch (Stream).
type Mixture struct {
	streams []*Stream
	cum     []float64
	pcg     *rand.PCG
	rng     *rand.Rand
	drawn   int64
	picks   []int64
}

// NewMixture mixes streams with the given positive weights.
func NewMixture(streams []*Stream, weights []float64, seed uint64) (*Mixture, error) {
	if len(streams) == 0 || len(streams) != len(weights) {
		return nil, fmt.Errorf("mixture: %d streams, %d weights", len(streams), len(weights))
	}
	m := &Mixture{streams: streams, pcg: rand.NewPCG(seed, 0x6777656e), picks: make([]int64, len(streams))}
	m.rng = rand.New(m.pcg)
	total := 0.0
	for i, w := range weights {
		if !(w > 0) {
			return nil, fmt.Errorf("mixture: weight %d is %v, want > 0", i, w)
		}
		total += w
		m.cum = append(m.cum, total)
	}
	for i := range m.cum {
		m.cum[i] /= total
	}
	return m, nil
}

// Next returns the next example and the index of the stream it came from.
func (m *Mixture) Next() (Example, int, error) {
	x := m.rng.Float64()
	i := 0
	for i < len(m.cum)-1 && x >= m.cum[i] {
		i++
	}
	m.drawn++
	m.picks[i]++
	ex, err := m.streams[i].Next()
	return ex, i, err
}

// Picks says how many examples came from each stream since the mixture was made or restored.
func (m *Mixture) Picks() []int64 { return append([]int64(nil), m.picks...) }

// Streams gives the mixed streams (for their epochs and counts).
func (m *Mixture) Streams() []*Stream { return m.streams }

// State captures the mixture for a checkpoint.
func (m *Mixture) State() (MixtureState, error) {
	b, err := m.pcg.MarshalBinary()
	if err != nil {
		return MixtureState{}, err
	}
	st := MixtureState{RNG: b, Drawn: m.drawn}
	for _, s := range m.streams {
		st.Streams = append(st.Streams, s.State())
	}
	return st, nil
}

// Restore continues from st, as returned by State of a mixture of the same sources.
func (m *Mixture) Restore(st MixtureState) error {
	if len(st.Streams) != len(m.streams) {
		return fmt.Errorf("mixture state has %d streams, the mixture %d", len(st.Streams), len(m.streams))
	}
	if err := m.pcg.UnmarshalBinary(st.RNG); err != nil {
		return fmt.Errorf("mixture state: %w", err)
	}
	for i, s := range m.streams {
		if err := s.Restore(st.Streams[i]); err != nil {
			return fmt.Errorf("mixture stream %d: %w", i, err)
		}
	}
	m.drawn = st.Drawn
	return nil
}

// Close closes every stream.
func (m *Mixture) Close() error {
	for _, s := range m.streams {
		s.Close()
	}
	return nil
}
