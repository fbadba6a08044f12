package data

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// Expand turns arguments into a list of Parquet files: a file is taken as is, a folder gives
// every *.parquet below it (recursively), a pattern with * ? or [ is globbed. Each argument's
// files are sorted by path; an argument that matches nothing is an error.
func Expand(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		var files []string
		if st, err := os.Stat(a); err == nil && st.IsDir() {
			err := filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if !d.IsDir() && strings.HasSuffix(p, ".parquet") {
					files = append(files, p)
				}
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("listing %s: %w", a, err)
			}
		} else if strings.ContainsAny(a, "*?[") {
			m, err := filepath.Glob(a)
			if err != nil {
				return nil, fmt.Errorf("pattern %s: %w", a, err)
			}
			files = m
		} else {
			if err != nil {
				return nil, err
			}
			files = []string{a}
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("%s: no Parquet files", a)
		}
		sort.Strings(files)
		out = append(out, files...)
	}
	return out, nil
}

// Position is an exact place in a Source: the next row to read is row Row of row group
// RowGroup of file File (indexes into the source's file list, all 0-based). It counts rows,
// not examples, so skipped NULL rows are never read twice or lost.
type Position struct {
	File     int   `json:"file"`
	RowGroup int   `json:"row_group"`
	Row      int64 `json:"row"`
}

// fileInfo is what a Source learns from a file's footer when it opens.
type fileInfo struct {
	path    string
	groups  []int64 // rows per row group
	first   []int64 // row index in the file of each group's first row
	layout  layout
	numRows int64
}

// openParquet opens a Parquet file for lazy reading: only the footer is read here; row groups
// are read page by page when their rows are asked for.
func openParquet(path string) (*os.File, *parquet.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: not a readable Parquet file: %w", path, err)
	}
	return f, pf, nil
}

func inspect(path string, spec Spec) (fileInfo, error) {
	f, pf, err := openParquet(path)
	if err != nil {
		return fileInfo{}, err
	}
	defer f.Close()
	l, err := resolve(path, pf.Root(), spec)
	if err != nil {
		return fileInfo{}, err
	}
	info := fileInfo{path: path, layout: l}
	for _, rg := range pf.RowGroups() {
		info.first = append(info.first, info.numRows)
		info.groups = append(info.groups, rg.NumRows())
		info.numRows += rg.NumRows()
	}
	return info, nil
}

// Source streams the examples of a list of Parquet files in order: file by file, row group by
// row group, row by row. Every file's schema is checked when the source opens; after that at
// most one row group's current pages are held in memory.
type Source struct {
	spec   Spec
	files  []fileInfo
	pos    Position
	counts Counts

	f     *os.File
	pf    *parquet.File
	open  int // index of the open file, -1 when none
	group *groupReader
}

// Open opens the files (see Expand for what args may be) and checks each one against spec.
func Open(args []string, spec Spec) (*Source, error) {
	if _, err := ParseFormat(string(spec.Format)); err != nil {
		return nil, err
	}
	paths, err := Expand(args)
	if err != nil {
		return nil, err
	}
	s := &Source{spec: spec, open: -1}
	for _, p := range paths {
		info, err := inspect(p, spec)
		if err != nil {
			return nil, err
		}
		s.files = append(s.files, info)
	}
	return s, nil
}

// Files lists the source's files in reading order.
func (s *Source) Files() []string {
	out := make([]string, len(s.files))
	for i, f := range s.files {
		out[i] = f.path
	}
	return out
}

// NumRows is the total number of rows in all files (examples plus rows that will be skipped).
func (s *Source) NumRows() int64 {
	var n int64
	for _, f := range s.files {
		n += f.numRows
	}
	return n
}

// Counts says how many rows were read, turned into examples, or skipped and why.
func (s *Source) Counts() Counts { return s.counts }

// Position is where the next Next starts reading.
func (s *Source) Position() Position { return s.pos }

// Seek moves to p, as returned by Position; the next Next continues there exactly.
func (s *Source) Seek(p Position) error {
	if p.File < 0 || p.File > len(s.files) || p.RowGroup < 0 || p.Row < 0 {
		return fmt.Errorf("position %+v out of range (%d files)", p, len(s.files))
	}
	if p.File < len(s.files) {
		info := s.files[p.File]
		if p.RowGroup > len(info.groups) || (p.RowGroup < len(info.groups) && p.Row > info.groups[p.RowGroup]) ||
			(p.RowGroup == len(info.groups) && p.Row != 0) {
			return fmt.Errorf("%s: position %+v out of range (row groups %v)", info.path, p, info.groups)
		}
	}
	s.closeGroup()
	s.pos = p
	return nil
}

// Next returns the next example, skipping (and counting) rows that give none; io.EOF after
// the last row of the last file.
func (s *Source) Next() (Example, error) {
	for {
		ex, st, err := s.nextRow(true)
		if err != nil {
			return Example{}, err
		}
		s.counts.add(st)
		if st == rowOK {
			return ex, nil
		}
	}
}

// nextRow reads the row at the current position and advances past it. A panic inside the
// Parquet decoder on corrupt data becomes an error naming the file and row.
func (s *Source) nextRow(keep bool) (ex Example, st rowStatus, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.closeFile()
			err = fmt.Errorf("%s: row group %d, row %d: corrupt data: %v", s.path(), s.pos.RowGroup, s.pos.Row, r)
		}
	}()
	for {
		if s.pos.File >= len(s.files) {
			return Example{}, 0, io.EOF
		}
		info := &s.files[s.pos.File]
		if s.pos.RowGroup >= len(info.groups) {
			s.pos = Position{File: s.pos.File + 1}
			s.closeGroup()
			continue
		}
		if s.pos.Row >= info.groups[s.pos.RowGroup] {
			s.pos = Position{File: s.pos.File, RowGroup: s.pos.RowGroup + 1}
			s.closeGroup()
			continue
		}
		if s.group == nil {
			if err := s.openGroup(); err != nil {
				return Example{}, 0, err
			}
		}
		var ex Example
		var exp *Example
		if keep {
			exp = &ex
		}
		st, err := s.group.read(exp)
		if err != nil {
			return Example{}, 0, fmt.Errorf("%s: row group %d, row %d: %w", info.path, s.pos.RowGroup, s.pos.Row, err)
		}
		ex.File = info.path
		ex.Row = info.first[s.pos.RowGroup] + s.pos.Row
		s.pos.Row++
		return ex, st, nil
	}
}

func (s *Source) path() string {
	if s.pos.File < len(s.files) {
		return s.files[s.pos.File].path
	}
	return "?"
}

// openGroup opens the row group at s.pos and skips to s.pos.Row.
func (s *Source) openGroup() error {
	info := &s.files[s.pos.File]
	if s.open != s.pos.File {
		s.closeFile()
		f, pf, err := openParquet(info.path)
		if err != nil {
			return err
		}
		if len(pf.RowGroups()) != len(info.groups) {
			f.Close()
			return fmt.Errorf("%s: changed since it was opened", info.path)
		}
		s.f, s.pf, s.open = f, pf, s.pos.File
	}
	s.group = newGroupReader(info.path, s.pf.RowGroups()[s.pos.RowGroup], info.layout)
	for r := int64(0); r < s.pos.Row; r++ {
		if _, err := s.group.read(nil); err != nil {
			return fmt.Errorf("%s: row group %d, skipping to row %d: %w", info.path, s.pos.RowGroup, s.pos.Row, err)
		}
	}
	return nil
}

func (s *Source) closeGroup() {
	if s.group != nil {
		s.group.close()
		s.group = nil
	}
}

func (s *Source) closeFile() {
	s.closeGroup()
	if s.f != nil {
		s.f.Close()
		s.f, s.pf, s.open = nil, nil, -1
	}
}

// Close releases the open file.
func (s *Source) Close() error {
	s.closeFile()
	return nil
}

var errNoExamples = errors.New("no examples")
