package data

import (
	"errors"
	"slices"
	"testing"
)

const P = 99 // pad id in these tests
const X = Ignore

// feed returns a next function over seqs, then an error.
func feed(seqs ...Sequence) func() (Sequence, error) {
	k := 0
	return func() (Sequence, error) {
		if k == len(seqs) {
			return Sequence{}, errors.New("out of sequences")
		}
		k++
		return seqs[k-1], nil
	}
}

func plain(ids ...int32) Sequence { return Sequence{IDs: ids, Labels: ids} }

type wantRows struct{ ids, labels, pos, doc []int32 }

func checkBatch(t *testing.T, name string, b Batch, w wantRows, padding int) {
	t.Helper()
	for _, c := range []struct {
		field     string
		got, want []int32
	}{{"IDs", b.IDs, w.ids}, {"Labels", b.Labels, w.labels}, {"Pos", b.Pos, w.pos}, {"DocStart", b.DocStart, w.doc}} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s: %s\n got %v\nwant %v", name, c.field, c.got, c.want)
		}
	}
	if b.Padding != padding {
		t.Errorf("%s: padding %d, want %d", name, b.Padding, padding)
	}
}

// TestPackStream: documents of 3, 6, 2 and 6 tokens cut into rows of 5, worked by hand. The
// 6-token document is split 2|4: its tail starts row 1 as a new document (position 0, first
// label ignored); the first token of every document is ignored, all others trained.
func TestPackStream(t *testing.T) {
	p, err := NewPacker(LayoutStream, 2, 5, P)
	if err != nil {
		t.Fatal(err)
	}
	next := feed(plain(1, 2, 3), plain(4, 5, 6, 7, 8, 9), plain(10, 11), plain(12, 13, 14, 15, 16, 17))
	b, err := p.Next(next)
	if err != nil {
		t.Fatal(err)
	}
	checkBatch(t, "batch 1", b, wantRows{
		ids:    []int32{1, 2, 3, 4, 5 /**/, 6, 7, 8, 9, 10},
		labels: []int32{X, 2, 3, X, 5 /**/, X, 7, 8, 9, X},
		pos:    []int32{0, 1, 2, 0, 1 /**/, 0, 1, 2, 3, 0},
		doc:    []int32{0, 0, 0, 3, 3 /**/, 0, 0, 0, 0, 4},
	}, 0)
	if s, off, ok := p.Pending(); !ok || off != 1 || !slices.Equal(s.IDs, []int32{10, 11}) {
		t.Errorf("pending %v offset %d %v, want [10 11] at 1", s.IDs, off, ok)
	}
	if _, err := p.Next(next); err == nil {
		t.Error("no error when the sequences run out")
	}
	// Continue a fresh packer from the pending sequence, as a restored pipeline does.
	q, _ := NewPacker(LayoutStream, 1, 5, P)
	q.resume(plain(10, 11), 1)
	b, err = q.Next(feed(plain(12, 13, 14, 15, 16, 17)))
	if err != nil {
		t.Fatal(err)
	}
	checkBatch(t, "resumed", b, wantRows{
		ids:    []int32{11, 12, 13, 14, 15},
		labels: []int32{X, X, 13, 14, 15},
		pos:    []int32{0, 0, 1, 2, 3},
		doc:    []int32{0, 1, 1, 1, 1},
	}, 0)
}

// TestPackPacked: whole sequences per row; one that does not fit moves to the next row, the
// rest of the row is one padding document.
func TestPackPacked(t *testing.T) {
	p, _ := NewPacker(LayoutPacked, 2, 6, P)
	a := Sequence{IDs: []int32{1, 2, 3}, Labels: []int32{X, X, 3}}
	bb := Sequence{IDs: []int32{4, 5, 6, 7}, Labels: []int32{X, 5, 6, 7}}
	c := Sequence{IDs: []int32{8, 9}, Labels: []int32{8, 9}}
	long := plain(1, 2, 3, 4, 5, 6, 7)
	next := feed(a, bb, c, Sequence{}, plain(20), long)
	b, err := p.Next(next)
	if err != nil {
		t.Fatal(err)
	}
	checkBatch(t, "packed", b, wantRows{
		ids:    []int32{1, 2, 3, P, P, P /**/, 4, 5, 6, 7, 8, 9},
		labels: []int32{X, X, 3, X, X, X /**/, X, 5, 6, 7, X, 9},
		pos:    []int32{0, 1, 2, 0, 1, 2 /**/, 0, 1, 2, 3, 0, 1},
		doc:    []int32{0, 0, 0, 3, 3, 3 /**/, 0, 0, 0, 0, 4, 4},
	}, 3)
	if _, err := p.Next(next); err == nil {
		t.Error("a 7-token sequence in rows of 6: no error")
	}
}

// TestPackPadded: one sequence per row.
func TestPackPadded(t *testing.T) {
	p, _ := NewPacker(LayoutPadded, 2, 4, P)
	b, err := p.Next(feed(plain(1, 2, 3), plain(4)))
	if err != nil {
		t.Fatal(err)
	}
	checkBatch(t, "padded", b, wantRows{
		ids:    []int32{1, 2, 3, P /**/, 4, P, P, P},
		labels: []int32{X, 2, 3, X /**/, X, X, X, X},
		pos:    []int32{0, 1, 2, 0 /**/, 0, 0, 1, 2},
		doc:    []int32{0, 0, 0, 3 /**/, 0, 1, 1, 1},
	}, 4)
}

// TestPackPairs: chosen rows first, rejected rows after, Response where labels are kept.
func TestPackPairs(t *testing.T) {
	p, _ := NewPacker(LayoutPadded, 4, 4, P)
	pairs := [][2]Sequence{
		{{IDs: []int32{1, 2, 3}, Labels: []int32{X, 2, 3}}, {IDs: []int32{1, 5}, Labels: []int32{X, 5}}},
		{{IDs: []int32{7, 8, 9, 10}, Labels: []int32{X, X, 9, 10}}, {IDs: []int32{7, 8, 11}, Labels: []int32{X, X, 11}}},
	}
	k := 0
	b, err := p.NextPairs(func() (Sequence, Sequence, error) {
		k++
		return pairs[k-1][0], pairs[k-1][1], nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkBatch(t, "pairs", b, wantRows{
		ids:    []int32{1, 2, 3, P /**/, 7, 8, 9, 10 /**/, 1, 5, P, P /**/, 7, 8, 11, P},
		labels: []int32{X, 2, 3, X /**/, X, X, 9, 10 /**/, X, 5, X, X /**/, X, X, 11, X},
		pos:    []int32{0, 1, 2, 0 /**/, 0, 1, 2, 3 /**/, 0, 1, 0, 1 /**/, 0, 1, 2, 0},
		doc:    []int32{0, 0, 0, 3 /**/, 0, 0, 0, 0 /**/, 0, 0, 2, 2 /**/, 0, 0, 0, 3},
	}, 4)
	want := []bool{false, true, true, false, false, false, true, true, false, true, false, false, false, false, true, false}
	if b.Pairs != 2 || !slices.Equal(b.Response, want) {
		t.Errorf("pairs %d response %v, want 2 %v", b.Pairs, b.Response, want)
	}
}
