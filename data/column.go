package data

import (
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
)

// cursor walks the values of one BYTE_ARRAY (or, made by newIntCursor, INT32 or INT64) leaf
// column chunk page by page: for every level slot it gives the repetition level, the
// definition level and, when the value is present (def == maxDef), its bytes (next) or its
// integer (nextInt). Pages are decoded one at a time and released when done, so a cursor holds
// at most one decoded page. Dictionary pages are looked up in place.
type cursor struct {
	pages          parquet.Pages
	page           parquet.Page
	maxDef, maxRep int

	rep, def []byte // levels of the current page (nil when the column has none)
	n, i     int    // level slots in the page, next slot
	k        int    // next present value

	data    []byte   // plain values, or the dictionary's values
	offsets []uint32 // data[offsets[j]:offsets[j+1]] is value j
	indexes []int32  // dictionary indexes of the present values, nil for plain pages

	ints parquet.Kind // Int32 or Int64 for an integer column; 0 (Boolean) for BYTE_ARRAY
	v32  []int32      // INT32 values (or the dictionary's)
	v64  []int64      // INT64 values (or the dictionary's)
}

func newCursor(chunk parquet.ColumnChunk, maxDef, maxRep int) *cursor {
	return &cursor{pages: chunk.Pages(), maxDef: maxDef, maxRep: maxRep}
}

// newIntCursor is a cursor over an INT32 or INT64 column.
func newIntCursor(chunk parquet.ColumnChunk, maxDef, maxRep int, kind parquet.Kind) *cursor {
	return &cursor{pages: chunk.Pages(), maxDef: maxDef, maxRep: maxRep, ints: kind}
}

// load makes sure a slot is available; it returns io.EOF at the end of the chunk.
func (c *cursor) load() error {
	for c.i >= c.n {
		if c.page != nil {
			parquet.Release(c.page)
			c.page = nil
		}
		p, err := c.pages.ReadPage()
		if err != nil {
			return err
		}
		c.page = p
		c.n, c.i, c.k = int(p.NumValues()), 0, 0
		c.rep, c.def = nil, nil
		if c.maxRep > 0 {
			c.rep = p.RepetitionLevels()
		}
		if c.maxDef > 0 {
			c.def = p.DefinitionLevels()
		}
		if (c.rep != nil && len(c.rep) < c.n) || (c.maxRep > 0 && c.rep == nil && c.n > 0) ||
			(c.def != nil && len(c.def) < c.n) || (c.maxDef > 0 && c.def == nil && c.n > 0) {
			return errors.New("page levels do not match its value count")
		}
		vals := p.Data()
		c.indexes = nil
		if d := p.Dictionary(); d != nil {
			c.indexes = vals.Int32()
			vals = d.Page().Data()
		}
		switch c.ints {
		case parquet.Int32:
			c.v32 = vals.Int32()
		case parquet.Int64:
			c.v64 = vals.Int64()
		default:
			c.data, c.offsets = vals.ByteArray()
		}
	}
	return nil
}

// peekRep returns the repetition level of the next slot, or io.EOF.
func (c *cursor) peekRep() (int, error) {
	if err := c.load(); err != nil {
		return 0, err
	}
	if c.rep == nil {
		return 0, nil
	}
	return int(c.rep[c.i]), nil
}

// next consumes one slot. val is only valid until the next call and is nil unless the value
// is present (def == maxDef).
func (c *cursor) next() (def int, val []byte, err error) {
	if err := c.load(); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // a row was expected here
		}
		return 0, nil, err
	}
	def = c.maxDef
	if c.def != nil {
		def = int(c.def[c.i])
	}
	c.i++
	if def < c.maxDef {
		return def, nil, nil
	}
	j := c.k
	c.k++
	if c.indexes != nil {
		if j >= len(c.indexes) {
			return 0, nil, errors.New("page has fewer values than its levels say")
		}
		j = int(c.indexes[j])
	}
	if j+1 >= len(c.offsets) || j < 0 {
		return 0, nil, fmt.Errorf("value %d out of range (%d values)", j, len(c.offsets)-1)
	}
	lo, hi := c.offsets[j], c.offsets[j+1]
	if lo > hi || int(hi) > len(c.data) {
		return 0, nil, errors.New("corrupt value offsets")
	}
	return def, c.data[lo:hi:hi], nil
}

// nextInt consumes one slot of an integer cursor; v is 0 unless the value is present.
func (c *cursor) nextInt() (def int, v int64, err error) {
	if err := c.load(); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // a row was expected here
		}
		return 0, 0, err
	}
	def = c.maxDef
	if c.def != nil {
		def = int(c.def[c.i])
	}
	c.i++
	if def < c.maxDef {
		return def, 0, nil
	}
	j := c.k
	c.k++
	if c.indexes != nil {
		if j >= len(c.indexes) {
			return 0, 0, errors.New("page has fewer values than its levels say")
		}
		j = int(c.indexes[j])
	}
	n := len(c.v64)
	if c.ints == parquet.Int32 {
		n = len(c.v32)
	}
	if j < 0 || j >= n {
		return 0, 0, fmt.Errorf("value %d out of range (%d values)", j, n)
	}
	if c.ints == parquet.Int32 {
		return def, int64(c.v32[j]), nil
	}
	return def, c.v64[j], nil
}

func (c *cursor) close() {
	if c.page != nil {
		parquet.Release(c.page)
		c.page = nil
	}
	c.pages.Close()
}
