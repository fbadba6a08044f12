package data

import (
	"fmt"
	"io"
	"math"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
)

// rowStatus says what became of one row.
type rowStatus int

const (
	rowOK          rowStatus = iota
	rowNull                  // a NULL value in a column the example needs (text, prompt, a whole list)
	rowNullMessage           // a NULL list element, or a NULL role or content inside one
	rowEmpty                 // an empty message (or token id) list
	rowUnpaired              // preference lists that share no prompt or leave one side without a reply
)

// Counts says what a reader saw. Rows = Examples + every skipped row.
type Counts struct {
	Rows         int64 `json:"rows"`
	Examples     int64 `json:"examples"`
	NullRows     int64 `json:"null_rows"`     // NULL text / prompt / chosen / rejected / list
	NullMessages int64 `json:"null_messages"` // a NULL list element, role or content: the whole example dropped
	EmptyLists   int64 `json:"empty_lists"`   // a conversation with no message, or no token ids
	Unpaired     int64 `json:"unpaired"`      // chosen/rejected lists with no shared prompt or no reply
}

// Skipped is the number of rows that gave no example.
func (c Counts) Skipped() int64 { return c.Rows - c.Examples }

func (c *Counts) add(s rowStatus) {
	c.Rows++
	switch s {
	case rowOK:
		c.Examples++
	case rowNull:
		c.NullRows++
	case rowNullMessage:
		c.NullMessages++
	case rowEmpty:
		c.EmptyLists++
	case rowUnpaired:
		c.Unpaired++
	}
}

// Add sums two counts.
func (c *Counts) Add(o Counts) {
	c.Rows += o.Rows
	c.Examples += o.Examples
	c.NullRows += o.NullRows
	c.NullMessages += o.NullMessages
	c.EmptyLists += o.EmptyLists
	c.Unpaired += o.Unpaired
}

// layout is what a Spec resolves to in one file's schema.
type layout struct {
	format           Format
	text             leafSpec // text, or the prompt of a string preference
	chosen, rejected leafSpec // string preference
	msgs             listSpec // chat
	chosenL, rejL    listSpec // list preference
	lists            bool     // preference given as message lists
	ids              idsSpec  // tokens
}

// resolve checks a file's schema against spec and names the file and column on a mismatch.
func resolve(file string, root *parquet.Column, spec Spec) (layout, error) {
	l := layout{format: spec.Format}
	var err error
	switch spec.Format {
	case FormatText:
		l.text, err = resolveString(file, root, spec.column())
	case FormatChat:
		l.msgs, err = resolveMessages(file, root, spec.column())
	case FormatTokens:
		l.ids, err = resolveIDs(file, root, spec.column())
	case FormatPreference:
		c := root.Column("chosen")
		if c != nil && !c.Leaf() {
			l.lists = true
			if l.chosenL, err = resolveMessages(file, root, "chosen"); err == nil {
				l.rejL, err = resolveMessages(file, root, "rejected")
			}
			break
		}
		if l.text, err = resolveString(file, root, "prompt"); err != nil {
			break
		}
		if l.chosen, err = resolveString(file, root, "chosen"); err != nil {
			break
		}
		l.rejected, err = resolveString(file, root, "rejected")
	default:
		err = fmt.Errorf("%s: unknown format %q", file, spec.Format)
	}
	return l, err
}

// listCursors reads one message list column.
type listCursors struct {
	spec                  listSpec
	role, content, reason *cursor
}

// groupReader assembles examples from one row group, one row at a time.
type groupReader struct {
	l                      layout
	file                   string
	text, chosen, rejected *cursor
	msgs, chosenL, rejL    *listCursors
	ids                    *cursor
	all                    []*cursor
}

func newGroupReader(file string, rg parquet.RowGroup, l layout) *groupReader {
	chunks := rg.ColumnChunks()
	g := &groupReader{l: l, file: file}
	leaf := func(s leafSpec, maxRep int) *cursor {
		if s.index < 0 {
			return nil
		}
		c := newCursor(chunks[s.index], s.maxDef, maxRep)
		g.all = append(g.all, c)
		return c
	}
	list := func(s listSpec) *listCursors {
		return &listCursors{spec: s, role: leaf(s.role, 1), content: leaf(s.content, 1), reason: leaf(s.reason, 1)}
	}
	switch l.format {
	case FormatText:
		g.text = leaf(l.text, 0)
	case FormatChat:
		g.msgs = list(l.msgs)
	case FormatTokens:
		g.ids = newIntCursor(chunks[l.ids.leaf.index], l.ids.leaf.maxDef, l.ids.maxRep, l.ids.kind)
		g.all = append(g.all, g.ids)
	case FormatPreference:
		if l.lists {
			g.chosenL, g.rejL = list(l.chosenL), list(l.rejL)
		} else {
			g.text, g.chosen, g.rejected = leaf(l.text, 0), leaf(l.chosen, 0), leaf(l.rejected, 0)
		}
	}
	return g
}

func (g *groupReader) close() {
	for _, c := range g.all {
		c.close()
	}
}

// str reads one flat string column; keep=false skips the copy.
func str(c *cursor, keep bool) (string, bool, error) {
	def, v, err := c.next()
	if err != nil || def < c.maxDef {
		return "", false, err
	}
	if !keep {
		return "", true, nil
	}
	return string(v), true, nil
}

// read consumes one row. With ex == nil the row is only skipped over (no strings copied).
func (g *groupReader) read(ex *Example) (rowStatus, error) {
	keep := ex != nil
	switch {
	case g.ids != nil: // tokens
		ids, status, err := readIDs(g.ids, g.l.ids, keep)
		if err != nil {
			return 0, g.err(err, g.l.ids.leaf)
		}
		if keep && status == rowOK {
			ex.IDs = ids
		}
		return status, nil
	case g.text != nil && g.chosen == nil: // text
		s, ok, err := str(g.text, keep)
		if err != nil {
			return 0, g.err(err, g.l.text)
		}
		if !ok {
			return rowNull, nil
		}
		if keep {
			ex.Text = s
		}
		return rowOK, nil
	case g.chosen != nil: // preference strings: all three columns are consumed whatever is NULL
		status := rowOK
		var out [3]string
		for i, c := range []*cursor{g.text, g.chosen, g.rejected} {
			s, ok, err := str(c, keep)
			if err != nil {
				return 0, g.err(err, [3]leafSpec{g.l.text, g.l.chosen, g.l.rejected}[i])
			}
			if !ok {
				status = rowNull
			}
			out[i] = s
		}
		if keep && status == rowOK {
			ex.Prompt, ex.Chosen, ex.Rejected = out[0], out[1], out[2]
		}
		return status, nil
	case g.msgs != nil:
		msgs, status, err := g.msgs.read(keep)
		if err != nil {
			return 0, g.err(err, g.l.msgs.role)
		}
		if keep && status == rowOK {
			ex.Messages = msgs
		}
		return status, nil
	default: // preference lists
		c, s1, err := g.chosenL.read(keep)
		if err != nil {
			return 0, g.err(err, g.l.chosenL.role)
		}
		r, s2, err := g.rejL.read(keep)
		if err != nil {
			return 0, g.err(err, g.l.rejL.role)
		}
		if s1 != rowOK {
			return s1, nil
		}
		if s2 != rowOK {
			return s2, nil
		}
		if !keep {
			// Pairing is decided from the contents, so a skipped row cannot tell; seeking never
			// needs it because positions count rows, not examples.
			return rowOK, nil
		}
		ex.ChosenMessages, ex.RejectedMessages = c, r
		if !ex.splitPreference() {
			return rowUnpaired, nil
		}
		return rowOK, nil
	}
}

func (g *groupReader) err(err error, s leafSpec) error {
	if err == io.ErrUnexpectedEOF {
		err = fmt.Errorf("column chunk ended before the row group did: %w", err)
	}
	return fmt.Errorf("column %q: %w", s.name, err)
}

// read consumes one row of a message list. The role cursor's levels drive the structure; the
// other fields of the same struct have identical repetition and definition levels above the leaf.
func (lc *listCursors) read(keep bool) ([]Message, rowStatus, error) {
	s := lc.spec
	var msgs []Message
	status := rowOK
	first := true
	for {
		if !first {
			rep, err := lc.role.peekRep()
			if err == io.EOF || (err == nil && rep == 0) {
				break
			}
			if err != nil {
				return nil, 0, err
			}
		}
		def, role, err := lc.role.next()
		if err != nil {
			return nil, 0, err
		}
		cdef, content, err := lc.content.next()
		if err != nil {
			return nil, 0, err
		}
		var rdef int
		var reason []byte
		if lc.reason != nil {
			if rdef, reason, err = lc.reason.next(); err != nil {
				return nil, 0, err
			}
		}
		if first {
			first = false
			if def < s.defTop {
				status = rowNull
				continue
			}
			if def < s.defRep {
				status = rowEmpty
				continue
			}
		}
		if def < s.defElem || def < s.role.maxDef || cdef < s.content.maxDef {
			status = rowNullMessage
			continue
		}
		if keep && status == rowOK {
			m := Message{Role: string(role), Content: string(content)}
			if lc.reason != nil && rdef == s.reason.maxDef {
				m.ReasoningContent = string(reason)
			}
			msgs = append(msgs, m)
		}
	}
	return msgs, status, nil
}

// readIDs consumes one row of a token id list: NULL row, empty list and NULL element are
// told apart by the definition levels as for message lists. An id outside [0, 2³¹) is an error
// naming its position in the list.
func readIDs(c *cursor, s idsSpec, keep bool) ([]int32, rowStatus, error) {
	var ids []int32
	status := rowOK
	for k := 0; ; k++ {
		if k > 0 {
			rep, err := c.peekRep()
			if err == io.EOF || (err == nil && rep == 0) {
				break
			}
			if err != nil {
				return nil, 0, err
			}
		}
		def, v, err := c.nextInt()
		if err != nil {
			return nil, 0, err
		}
		if k == 0 {
			if def < s.defTop {
				status = rowNull
				continue
			}
			if def < s.defRep {
				status = rowEmpty
				continue
			}
		}
		if def < s.defElem {
			status = rowNullMessage
			continue
		}
		if !keep || status != rowOK {
			continue
		}
		if v < 0 || v > math.MaxInt32 {
			return nil, 0, fmt.Errorf("token id %d at list position %d is not in [0, 2^31)", v, k)
		}
		ids = append(ids, int32(v))
	}
	return ids, status, nil
}

// runeLen is the length of s in characters (code points).
func runeLen(s string) int { return utf8.RuneCountInString(s) }
