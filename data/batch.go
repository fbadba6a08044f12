package data

import "fmt"

// Ignore is the label of a token that takes no loss (transformers' ignore_index).
const Ignore = -100

// Sequence is one tokenized example before packing. Labels are aligned with IDs, as in
// transformers (the model shifts them: position t is scored on Labels[t+1]); Ignore where no
// loss is taken.
type Sequence struct {
	IDs, Labels []int32
}

// Batch is B rows of T tokens, flattened row-major: the model's input (layers.Input's IDs, B,
// T, Pos, DocStart) and its targets.
//
// Every row is cut into documents: a document is a whole sequence, a piece of one cut at a
// row end, or the padding that ends a row. Pos restarts at 0 at every document's first token;
// DocStart holds, for each token, the column of its document's first token, so attention never
// crosses documents. The first token of every document is labelled Ignore (as transformers'
// DataCollatorWithFlattening does), so no token is trained to predict the next document, and
// padding is labelled Ignore.
type Batch struct {
	B, T     int
	IDs      []int32 // [B·T]; padding is the pad token
	Labels   []int32 // [B·T] aligned with IDs; Ignore: no loss
	Pos      []int32 // [B·T] position ids
	DocStart []int32 // [B·T] column within its row of the first token of each token's document

	// Preference batches only. Rows [0, Pairs) hold prompt+chosen, rows [Pairs, 2·Pairs)
	// prompt+rejected; rows i and Pairs+i are one pair. Response is true on the tokens of the
	// chosen or rejected reply whose log-probabilities DPO sums (Labels is IDs there and
	// Ignore elsewhere).
	Pairs    int
	Response []bool // [B·T]

	Padding int // pad tokens in the batch
}

func newBatch(b, t int, pad int32) Batch {
	n := b * t
	bt := Batch{B: b, T: t, IDs: make([]int32, n), Labels: make([]int32, n), Pos: make([]int32, n), DocStart: make([]int32, n)}
	for i := range bt.IDs {
		bt.IDs[i], bt.Labels[i] = pad, Ignore
	}
	return bt
}

// place writes seq's tokens [off, off+n) as one document at column col of row r.
func (b *Batch) place(r, col int, seq Sequence, off, n int) {
	base := r*b.T + col
	copy(b.IDs[base:base+n], seq.IDs[off:off+n])
	copy(b.Labels[base:base+n], seq.Labels[off:off+n])
	b.Labels[base] = Ignore
	for k := 0; k < n; k++ {
		b.Pos[base+k] = int32(k)
		b.DocStart[base+k] = int32(col)
	}
}

// padRow marks columns [col, T) of row r as one padding document.
func (b *Batch) padRow(r, col int) {
	base := r * b.T
	for c := col; c < b.T; c++ {
		b.Pos[base+c] = int32(c - col)
		b.DocStart[base+c] = int32(col)
	}
	b.Padding += b.T - col
}

// Layout is how a Packer lays sequences into rows.
type Layout int

const (
	// LayoutStream (pretraining) treats the sequences as one token stream cut into full rows:
	// a sequence longer than what is left of a row is split, and its tail starts the next row
	// as a new document (column 0, positions from 0 again), as torchtune's and transformers'
	// packers do for a split sample. Rows are never padded.
	LayoutStream Layout = iota
	// LayoutPacked (SFT with packing) puts as many whole sequences in a row as fit, in order,
	// and pads the rest of the row; a sequence that does not fit starts the next row.
	LayoutPacked
	// LayoutPadded puts one sequence per row and pads the rest.
	LayoutPadded
)

func (l Layout) String() string {
	switch l {
	case LayoutStream:
		return "stream"
	case LayoutPacked:
		return "packed"
	case LayoutPadded:
		return "padded"
	}
	return fmt.Sprintf("Layout(%d)", int(l))
}

// Packer fills batches of rows×seqLen tokens from a sequence of Sequences. It carries the
// sequence it could not finish (LayoutStream: the rest of a split one; LayoutPacked: one that
// did not fit) into the next batch, so no token is lost or repeated between batches.
type Packer struct {
	layout  Layout
	rows, t int
	pad     int32

	carry   Sequence
	off     int // tokens of carry already placed
	pending bool
}

// NewPacker makes a packer of batches with rows rows of seqLen tokens, padding with pad.
func NewPacker(layout Layout, rows, seqLen int, pad int32) (*Packer, error) {
	if rows <= 0 || seqLen <= 0 {
		return nil, fmt.Errorf("packer: %d rows of %d tokens, want both > 0", rows, seqLen)
	}
	if layout < LayoutStream || layout > LayoutPadded {
		return nil, fmt.Errorf("packer: unknown layout %d", int(layout))
	}
	return &Packer{layout: layout, rows: rows, t: seqLen, pad: pad}, nil
}

// Pending reports the sequence carried into the next batch and how many of its tokens earlier
// batches already hold (0 unless LayoutStream split it).
func (p *Packer) Pending() (seq Sequence, off int, ok bool) {
	return p.carry, p.off, p.pending
}

// resume makes seq, of which off tokens are already placed, the carried sequence.
func (p *Packer) resume(seq Sequence, off int) {
	p.carry, p.off, p.pending = seq, off, true
}

// Next fills one batch, calling next for each new sequence. An error from next is returned as
// is, and the batch is lost. Sequences longer than a row are an error in LayoutPacked and
// LayoutPadded (truncate or drop them first); empty ones are skipped.
func (p *Packer) Next(next func() (Sequence, error)) (Batch, error) {
	b := newBatch(p.rows, p.t, p.pad)
	for r := 0; r < p.rows; r++ {
		col := 0
		for col < p.t {
			if !p.pending {
				seq, err := next()
				if err != nil {
					return Batch{}, err
				}
				if len(seq.IDs) != len(seq.Labels) {
					return Batch{}, fmt.Errorf("packer: sequence has %d ids and %d labels", len(seq.IDs), len(seq.Labels))
				}
				if len(seq.IDs) == 0 {
					continue
				}
				p.resume(seq, 0)
			}
			rem := len(p.carry.IDs) - p.off
			if p.layout != LayoutStream && rem > p.t {
				return Batch{}, fmt.Errorf("packer: a sequence of %d tokens does not fit a row of %d", rem, p.t)
			}
			if p.layout == LayoutStream || rem <= p.t-col && (p.layout == LayoutPacked || col == 0) {
				n := min(rem, p.t-col)
				b.place(r, col, p.carry, p.off, n)
				col += n
				p.off += n
				if p.off == len(p.carry.IDs) {
					p.carry, p.off, p.pending = Sequence{}, 0, false
				}
				if p.layout == LayoutPadded {
					break
				}
				continue
			}
			break // it does not fit: it starts the next row
		}
		if col < p.t {
			b.padRow(r, col)
		}
	}
	return b, nil
}

// NextPairs fills one preference batch of rows/2 pairs (rows must be even): the chosen
// sequence of pair i in row i, the rejected one in row rows/2+i, each padded. Response marks
// the tokens whose labels are not Ignore.
func (p *Packer) NextPairs(next func() (chosen, rejected Sequence, err error)) (Batch, error) {
	if p.rows%2 != 0 {
		return Batch{}, fmt.Errorf("packer: %d rows cannot hold pairs", p.rows)
	}
	P := p.rows / 2
	b := newBatch(p.rows, p.t, p.pad)
	b.Pairs = P
	for i := 0; i < P; i++ {
		c, r, err := next()
		if err != nil {
			return Batch{}, err
		}
		for k, s := range []Sequence{c, r} {
			row := i + k*P
			if len(s.IDs) != len(s.Labels) || len(s.IDs) > p.t || len(s.IDs) == 0 {
				return Batch{}, fmt.Errorf("packer: pair %d: a sequence of %d ids and %d labels for a row of %d", i, len(s.IDs), len(s.Labels), p.t)
			}
			b.place(row, 0, s, 0, len(s.IDs))
			b.padRow(row, len(s.IDs))
		}
	}
	b.Response = make([]bool, len(b.IDs))
	for i, l := range b.Labels {
		b.Response[i] = l != Ignore
	}
	return b, nil
}
