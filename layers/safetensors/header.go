package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"
)

// MaxHeaderBytes bounds the JSON header, as the reference implementation does (100 MB).
const MaxHeaderBytes = 100_000_000

// Info describes one tensor of a file: Begin and End are byte offsets into the data buffer
// that follows the header, End-Begin = product(Shape)·size(DType).
type Info struct {
	Name  string
	DType DType
	Shape []int
	Begin int64
	End   int64
}

// NumElements is the product of the shape (1 for a scalar).
func (in Info) NumElements() int64 {
	n := int64(1)
	for _, d := range in.Shape {
		n *= int64(d)
	}
	return n
}

// header is what parseHeader finds in a file's JSON header, fully validated.
type header struct {
	infos    map[string]Info
	names    []string // sorted
	metadata map[string]string
}

// parseHeader parses the JSON header hdr of the file at path (named in every error) and checks
// every tensor against dataLen, the size of the data buffer that follows the header.
func parseHeader(path string, hdr []byte, dataLen int64) (*header, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("safetensors %s: %s", path, fmt.Sprintf(format, args...))
	}
	if !utf8.Valid(hdr) {
		return nil, fail("header is not valid UTF-8")
	}
	if len(hdr) == 0 || hdr[0] != '{' {
		return nil, fail("header does not start with '{'")
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // '{', checked above
		return nil, fail("invalid header JSON: %v", err)
	}
	h := &header{infos: map[string]Info{}}
	seenMeta := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fail("invalid header JSON: %v", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, fail("invalid header JSON: key %v is not a string", tok)
		}
		if name == "__metadata__" {
			if seenMeta {
				return nil, fail("\"__metadata__\" listed twice in the header")
			}
			seenMeta = true
			if h.metadata, err = readMetadata(dec); err != nil {
				return nil, fail("__metadata__: %v", jsonErr(err))
			}
			continue
		}
		if _, dup := h.infos[name]; dup {
			return nil, fail("tensor %q: listed twice in the header", name)
		}
		info, err := readTensorEntry(dec, name)
		if err != nil {
			return nil, fail("tensor %q: %v", name, jsonErr(err))
		}
		if err := checkSize(info, dataLen); err != nil {
			return nil, fail("tensor %q: %v", name, err)
		}
		h.infos[name] = info
		h.names = append(h.names, name)
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, fail("invalid header JSON: %v", err)
	}
	// Only whitespace (HF pads with spaces) may follow the object.
	if tok, err := dec.Token(); err != io.EOF {
		if err != nil {
			return nil, fail("invalid header JSON after the top-level object: %v", err)
		}
		return nil, fail("invalid header JSON: unexpected %v after the top-level object", tok)
	}
	if err := checkTiling(h, dataLen); err != nil {
		return nil, fail("%v", err)
	}
	sort.Strings(h.names)
	return h, nil
}

// jsonErr marks the decoder's own errors (syntax, early end) as invalid JSON.
func jsonErr(err error) error {
	var syn *json.SyntaxError
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return errors.New("invalid header JSON: unexpected end of header")
	case errors.As(err, &syn):
		return fmt.Errorf("invalid header JSON: %w", err)
	}
	return err
}

// readMetadata reads the "__metadata__" value: an object of string values, or null.
func readMetadata(dec *json.Decoder) (map[string]string, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("want an object of strings, found %v", tokenText(tok))
	}
	m := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("key %v is not a string", tok)
		}
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("key %q listed twice", key)
		}
		tok, err = dec.Token()
		if err != nil {
			return nil, err
		}
		val, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("key %q: value %s is not a string", key, tokenText(tok))
		}
		m[key] = val
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return m, nil
}

// readTensorEntry reads one {"dtype": .., "shape": [..], "data_offsets": [b, e]} object.
// Unknown fields are skipped, as the reference implementation does; the known ones are required.
func readTensorEntry(dec *json.Decoder, name string) (Info, error) {
	info := Info{Name: name}
	tok, err := dec.Token()
	if err != nil {
		return info, err
	}
	if tok != json.Delim('{') {
		return info, fmt.Errorf("want an object {dtype, shape, data_offsets}, found %s", tokenText(tok))
	}
	var haveDType, haveShape, haveOffsets bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return info, err
		}
		key, ok := tok.(string)
		if !ok {
			return info, fmt.Errorf("key %v is not a string", tok)
		}
		switch key {
		case "dtype":
			if haveDType {
				return info, errors.New("field \"dtype\" listed twice")
			}
			haveDType = true
			tok, err := dec.Token()
			if err != nil {
				return info, err
			}
			s, ok := tok.(string)
			if !ok {
				return info, fmt.Errorf("dtype %s is not a string", tokenText(tok))
			}
			info.DType = DType(s)
			if !info.DType.Known() {
				return info, fmt.Errorf("unknown dtype %q", s)
			}
		case "shape":
			if haveShape {
				return info, errors.New("field \"shape\" listed twice")
			}
			haveShape = true
			dims, err := readInts(dec, "shape")
			if err != nil {
				return info, err
			}
			info.Shape = make([]int, len(dims))
			for i, d := range dims {
				if d > math.MaxInt {
					return info, fmt.Errorf("shape dimension %d too large", d)
				}
				info.Shape[i] = int(d)
			}
		case "data_offsets":
			if haveOffsets {
				return info, errors.New("field \"data_offsets\" listed twice")
			}
			haveOffsets = true
			offs, err := readInts(dec, "data_offsets")
			if err != nil {
				return info, err
			}
			if len(offs) != 2 {
				return info, fmt.Errorf("data_offsets has %d numbers, want [begin, end]", len(offs))
			}
			info.Begin, info.End = offs[0], offs[1]
		default:
			if err := skipValue(dec); err != nil {
				return info, err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return info, err
	}
	switch {
	case !haveDType:
		return info, errors.New("no dtype")
	case !haveShape:
		return info, errors.New("no shape")
	case !haveOffsets:
		return info, errors.New("no data_offsets")
	}
	return info, nil
}

// readInts reads a JSON array of non-negative integers that fit an int64.
func readInts(dec *json.Decoder, what string) ([]int64, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('[') {
		return nil, fmt.Errorf("%s: want an array of integers, found %s", what, tokenText(tok))
	}
	var out []int64
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%s: %s is not an integer", what, tokenText(tok))
		}
		v, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %s is not an integer within int64", what, num)
		}
		if v < 0 {
			return nil, fmt.Errorf("%s: %d is negative", what, v)
		}
		out = append(out, v)
	}
	if _, err := dec.Token(); err != nil { // ']'
		return nil, err
	}
	return out, nil
}

// skipValue consumes one JSON value of any depth.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

func tokenText(tok any) string {
	switch t := tok.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(t)
	case json.Delim:
		return "'" + t.String() + "'"
	}
	return fmt.Sprint(tok)
}

// byteLen returns product(shape)·bits/8, or an error on overflow or a fractional byte count.
func byteLen(dt DType, shape []int) (int64, error) {
	n := int64(1)
	zero := false
	for _, d := range shape {
		if d == 0 {
			zero = true
		}
	}
	if zero {
		return 0, nil
	}
	for _, d := range shape {
		if n > math.MaxInt64/int64(d) {
			return 0, fmt.Errorf("shape %v: element count overflows int64", shape)
		}
		n *= int64(d)
	}
	bits := int64(dt.Bits())
	if n > math.MaxInt64/bits {
		return 0, fmt.Errorf("shape %v of %s: byte size overflows int64", shape, dt)
	}
	if n*bits%8 != 0 {
		return 0, fmt.Errorf("shape %v of %s (%d bits each) is not a whole number of bytes", shape, dt, bits)
	}
	return n * bits / 8, nil
}

// checkSize checks one tensor's range on its own: ordered, inside the data, of the size that its
// dtype and shape give.
func checkSize(info Info, dataLen int64) error {
	want, err := byteLen(info.DType, info.Shape)
	if err != nil {
		return err
	}
	if info.Begin > info.End {
		return fmt.Errorf("data_offsets [%d, %d] are reversed", info.Begin, info.End)
	}
	if info.End > dataLen {
		return fmt.Errorf("data_offsets [%d, %d] run past the end of the data (%d bytes): file truncated?",
			info.Begin, info.End, dataLen)
	}
	if got := info.End - info.Begin; got != want {
		return fmt.Errorf("data_offsets [%d, %d] hold %d bytes, but %s%v needs %d",
			info.Begin, info.End, got, info.DType, info.Shape, want)
	}
	return nil
}

// checkTiling checks that the tensors' ranges cover the data buffer exactly: sorted by offset,
// each starts where the previous ends, and the last ends at the end of the data.
func checkTiling(h *header, dataLen int64) error {
	order := make([]Info, 0, len(h.names))
	for _, n := range h.names {
		order = append(order, h.infos[n])
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if a.Begin != b.Begin {
			return a.Begin < b.Begin
		}
		if a.End != b.End {
			return a.End < b.End
		}
		return a.Name < b.Name
	})
	var end int64
	prev := ""
	for _, in := range order {
		switch {
		case in.Begin < end:
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] overlap tensor %q (which ends at %d)",
				in.Name, in.Begin, in.End, prev, end)
		case in.Begin > end && prev == "":
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] leave a hole: bytes [0, %d) belong to no tensor",
				in.Name, in.Begin, in.End, in.Begin)
		case in.Begin > end:
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] leave a hole: bytes [%d, %d) after tensor %q belong to no tensor",
				in.Name, in.Begin, in.End, end, in.Begin, prev)
		}
		end, prev = in.End, in.Name
	}
	if end != dataLen {
		if prev == "" {
			return fmt.Errorf("the header lists no tensor but the data holds %d bytes", dataLen)
		}
		return fmt.Errorf("%d bytes of data after the last tensor %q (ends at %d of %d) belong to no tensor",
			dataLen-end, prev, end, dataLen)
	}
	return nil
}
