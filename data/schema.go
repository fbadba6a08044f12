package data

import (
	"fmt"
	"sort"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"
)

// SchemaError is a column that is missing or has the wrong type.
type SchemaError struct {
	File, Column string
	Found        string // "" when the column is missing
	Want         string
	Available    []string // top-level columns of the file, for a missing column
}

func (e *SchemaError) Error() string {
	if e.Found == "" {
		return fmt.Sprintf("%s: no column %q (want %s; the file has %s)", e.File, e.Column, e.Want, strings.Join(e.Available, ", "))
	}
	return fmt.Sprintf("%s: column %q is %s, want %s", e.File, e.Column, e.Found, e.Want)
}

const (
	wantString   = "BYTE_ARRAY (STRING)"
	wantMessages = "LIST<STRUCT<role STRING, content STRING>>"
	wantIDs      = "LIST<INT32> or LIST<INT64>"
)

// leafSpec is a string leaf column and the definition level at which its value is present.
type leafSpec struct {
	index  int // leaf column index in the row group
	maxDef int
	name   string // dotted path, for errors
}

// listSpec is a message list: the definition levels that tell a NULL row, an empty list and a
// NULL element apart, and the role/content/reasoning_content leaves of the element struct.
type listSpec struct {
	defTop  int // def < defTop: the row is NULL
	defRep  int // def < defRep: the list is empty
	defElem int // def < defElem: the element is NULL
	role    leafSpec
	content leafSpec
	reason  leafSpec // index -1 when the struct has no reasoning_content field
}

func topNames(root *parquet.Column) []string {
	var names []string
	for _, c := range root.Columns() {
		names = append(names, c.Name())
	}
	sort.Strings(names)
	return names
}

// describe writes a column's type the way errors show it: BYTE_ARRAY (STRING), DOUBLE,
// LIST<STRUCT<role STRING, ...>>, STRUCT<...>.
func describe(c *parquet.Column) string {
	if c.Leaf() {
		s := c.Type().Kind().String()
		if isString(c) {
			s += " (STRING)"
		}
		if c.Repeated() {
			s = "repeated " + s
		}
		return s
	}
	kids := c.Columns()
	if c.Repeated() { // a bare repeated group is a list of its struct
		return "LIST<" + describeStruct(kids) + ">"
	}
	if len(kids) == 1 && kids[0].Repeated() {
		rep := kids[0]
		if rep.Leaf() {
			return "LIST<" + strings.TrimPrefix(describe(rep), "repeated ") + ">"
		}
		if k := rep.Columns(); len(k) == 1 && rep.Column("role") == nil && rep.Column("content") == nil {
			return "LIST<" + describe(k[0]) + ">"
		}
		return "LIST<" + describeStruct(rep.Columns()) + ">"
	}
	return describeStruct(kids)
}

func describeStruct(kids []*parquet.Column) string {
	parts := make([]string, len(kids))
	for i, k := range kids {
		d := describe(k)
		if k.Leaf() && isString(k) && !k.Repeated() {
			d = "STRING"
		}
		parts[i] = k.Name() + " " + d
	}
	return "STRUCT<" + strings.Join(parts, ", ") + ">"
}

func isString(c *parquet.Column) bool {
	t := c.Type()
	if t.Kind() != parquet.ByteArray {
		return false
	}
	if lt := t.LogicalType(); lt != nil && (isStringLogical(lt)) {
		return true
	}
	if ct := t.ConvertedType(); ct != nil && (*ct == deprecated.UTF8 || *ct == deprecated.Json || *ct == deprecated.Enum) {
		return true
	}
	return false
}

// nonRequired is 1 when the column adds a definition level (optional or repeated).
func nonRequired(c *parquet.Column) int {
	if c.Required() {
		return 0
	}
	return 1
}

// resolveString finds a top-level string column. Any non-repeated BYTE_ARRAY leaf is accepted
// (some writers leave text unannotated).
func resolveString(file string, root *parquet.Column, name string) (leafSpec, error) {
	c := root.Column(name)
	if c == nil {
		return leafSpec{}, &SchemaError{File: file, Column: name, Want: wantString, Available: topNames(root)}
	}
	if !c.Leaf() || c.Repeated() || c.Type().Kind() != parquet.ByteArray {
		return leafSpec{}, &SchemaError{File: file, Column: name, Found: describe(c), Want: wantString}
	}
	return leafSpec{index: c.Index(), maxDef: c.MaxDefinitionLevel(), name: strings.Join(c.Path(), ".")}, nil
}

// resolveMessages finds a top-level message list in any of the layouts writers use:
//   - 3-level LIST: <name> (LIST) → repeated group (list) → element group (element, item, ...);
//   - 2-level legacy LIST: <name> (LIST) → repeated group {role, content};
//   - a bare repeated group <name> {role, content}.
//
// The list child is taken by position, the struct fields by name (in any order).
func resolveMessages(file string, root *parquet.Column, name string) (listSpec, error) {
	top := root.Column(name)
	if top == nil {
		return listSpec{}, &SchemaError{File: file, Column: name, Want: wantMessages, Available: topNames(root)}
	}
	bad := func() (listSpec, error) {
		return listSpec{}, &SchemaError{File: file, Column: name, Found: describe(top), Want: wantMessages}
	}
	if top.Leaf() {
		return bad()
	}
	var s listSpec
	rep, elem := top, top
	s.defTop = 0
	if !top.Repeated() {
		kids := top.Columns()
		if len(kids) != 1 || !kids[0].Repeated() || kids[0].Leaf() {
			return bad()
		}
		s.defTop = nonRequired(top)
		rep, elem = kids[0], kids[0]
	}
	s.defRep = s.defTop + 1
	s.defElem = s.defRep
	if rep.Column("role") == nil && rep.Column("content") == nil {
		kids := rep.Columns()
		if len(kids) != 1 || kids[0].Leaf() {
			return bad()
		}
		elem = kids[0]
		s.defElem = s.defRep + nonRequired(elem)
	}
	field := func(n string) (leafSpec, bool) {
		c := elem.Column(n)
		if c == nil || !c.Leaf() || c.Repeated() || c.Type().Kind() != parquet.ByteArray {
			return leafSpec{index: -1}, false
		}
		return leafSpec{index: c.Index(), maxDef: c.MaxDefinitionLevel(), name: strings.Join(c.Path(), ".")}, true
	}
	var ok1, ok2 bool
	s.role, ok1 = field("role")
	s.content, ok2 = field("content")
	if !ok1 || !ok2 {
		return bad()
	}
	s.reason, _ = field("reasoning_content")
	return s, nil
}

// idsSpec is a list of integers: the definition levels that tell a NULL row, an empty list and
// a NULL element apart (as in listSpec), and the INT32 or INT64 leaf.
type idsSpec struct {
	defTop, defRep, defElem int
	leaf                    leafSpec
	maxRep                  int
	kind                    parquet.Kind
}

// resolveIDs finds a top-level list of INT32 or INT64 in any of the layouts writers use: a
// 3-level LIST (<name> → repeated group → element), a 2-level LIST (<name> → repeated leaf),
// or a bare repeated leaf.
func resolveIDs(file string, root *parquet.Column, name string) (idsSpec, error) {
	top := root.Column(name)
	if top == nil {
		return idsSpec{}, &SchemaError{File: file, Column: name, Want: wantIDs, Available: topNames(root)}
	}
	var s idsSpec
	elem := top
	switch {
	case top.Leaf() && top.Repeated(): // bare repeated leaf
		s.defRep, s.defElem = 1, 1
	case !top.Leaf() && len(top.Columns()) == 1 && top.Columns()[0].Repeated():
		rep := top.Columns()[0]
		s.defTop = nonRequired(top)
		s.defRep = s.defTop + 1
		s.defElem = s.defRep
		elem = rep
		if !rep.Leaf() {
			if kids := rep.Columns(); len(kids) == 1 && kids[0].Leaf() {
				elem = kids[0]
				s.defElem = s.defRep + nonRequired(elem)
			} else {
				elem = nil
			}
		}
	default:
		elem = nil
	}
	if elem == nil || !elem.Leaf() {
		return idsSpec{}, &SchemaError{File: file, Column: name, Found: describe(top), Want: wantIDs}
	}
	switch k := elem.Type().Kind(); k {
	case parquet.Int32, parquet.Int64:
		s.kind = k
	default:
		return idsSpec{}, &SchemaError{File: file, Column: name, Found: describe(top), Want: wantIDs}
	}
	s.leaf = leafSpec{index: elem.Index(), maxDef: elem.MaxDefinitionLevel(), name: strings.Join(elem.Path(), ".")}
	s.maxRep = elem.MaxRepetitionLevel()
	if s.maxRep != 1 || s.leaf.maxDef != s.defElem {
		return idsSpec{}, &SchemaError{File: file, Column: name, Found: describe(top), Want: wantIDs}
	}
	return s, nil
}

func isStringLogical(lt *format.LogicalType) bool {
	switch lt.Value.(type) {
	case *format.StringType, *format.JsonType, *format.EnumType:
		return true
	}
	return false
}
