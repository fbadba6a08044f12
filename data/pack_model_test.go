package data_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/gwen-ml/gwen/data"
	"github.com/gwen-ml/gwen/internal/golden"
	"github.com/gwen-ml/gwen/layers"
)

// docIDs is a document of n token ids below the tiny model's vocabulary of 512.
func docIDs(seed, n int) []int32 {
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32((seed*131 + i*37 + i*i*7) % 500)
	}
	return ids
}

// aloneLogits runs one document by itself (B=1, T=len, positions 0…, no DocStart).
func aloneLogits(m *layers.Model, ids []int32) []float32 {
	out := m.Forward(nil, layers.Input{IDs: ids, B: 1, T: len(ids)})
	return out.Logits.Data
}

// TestPackedLogitsEqualAlone: a packed batch's logits, for each document, equal that document
// run alone through the tiny-dense model, both for whole documents packed with padding
// (LayoutPacked) and for a document split across rows (LayoutStream: the tail is its own
// document from column 0).
func TestPackedLogitsEqualAlone(t *testing.T) {
	m, err := layers.Load(golden.Dir("tiny-dense"))
	if err != nil {
		t.Fatal(err)
	}
	V := m.Config.VocabSize
	docs := [][]int32{docIDs(1, 5), docIDs(2, 7), docIDs(3, 3), docIDs(4, 9)}
	for _, c := range []struct {
		layout data.Layout
		rows   int
		t      int
		// want: for each row, the documents (as index into docs, and the token range of it)
		// expected at which column.
		want [][]piece
	}{
		{data.LayoutPacked, 1, 27, [][]piece{{{0, 0, 5, 0}, {1, 0, 7, 5}, {2, 0, 3, 12}, {3, 0, 9, 15}}}},
		{data.LayoutStream, 2, 12, [][]piece{{{0, 0, 5, 0}, {1, 0, 7, 5}}, {{2, 0, 3, 0}, {3, 0, 9, 3}}}},
		{data.LayoutStream, 3, 8, [][]piece{{{0, 0, 5, 0}, {1, 0, 3, 5}}, {{1, 3, 7, 0}, {2, 0, 3, 4}, {3, 0, 1, 7}}, {{3, 1, 9, 0}}}},
	} {
		t.Run(fmt.Sprintf("%v-%dx%d", c.layout, c.rows, c.t), func(t *testing.T) {
			p, err := data.NewPacker(c.layout, c.rows, c.t, 511)
			if err != nil {
				t.Fatal(err)
			}
			k := 0
			b, err := p.Next(func() (data.Sequence, error) {
				d := docs[k%len(docs)]
				k++
				return data.Sequence{IDs: d, Labels: d}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			out := m.Forward(nil, layers.Input{IDs: b.IDs, B: b.B, T: b.T, Pos: b.Pos, DocStart: b.DocStart})
			logits := out.Logits.Data
			for r, pieces := range c.want {
				for _, pc := range pieces {
					ids := docs[pc.doc][pc.from:pc.to]
					for j, id := range ids {
						if got := b.IDs[r*b.T+pc.col+j]; got != id {
							t.Fatalf("row %d column %d: id %d, want %d (doc %d token %d)", r, pc.col+j, got, id, pc.doc, pc.from+j)
						}
					}
					alone := aloneLogits(m, ids)
					packed := logits[(r*b.T+pc.col)*V : (r*b.T+pc.col+len(ids))*V]
					d := maxDiff(packed, alone)
					if d > 1e-5 {
						t.Errorf("row %d, doc %d tokens [%d,%d) at column %d: max |packed − alone| = %.3g", r, pc.doc, pc.from, pc.to, pc.col, d)
					}
				}
			}
			// Sanity: without DocStart and Pos the same row gives different logits for a
			// document that does not start the row, so the comparison above can fail.
			plain := m.Forward(nil, layers.Input{IDs: b.IDs, B: b.B, T: b.T}).Logits.Data
			pc := c.want[0][1]
			ids := docs[pc.doc][pc.from:pc.to]
			if d := maxDiff(plain[pc.col*V:(pc.col+len(ids))*V], aloneLogits(m, ids)); d < 1e-3 {
				t.Errorf("unpacked row matches the document alone (%.3g): the test cannot tell", d)
			}
		})
	}
}

type piece struct{ doc, from, to, col int }

func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}
