package recipes

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Stage is one resolved run of a plan: the recipe with the stage's keys applied and defaults
// filled in.
type Stage struct {
	Name   string // "" for a recipe without stages
	Recipe Recipe
}

// Plan is a loaded recipe: its stages in order, and a hash of what they resolve to (kept in
// checkpoints, so a resumed run can tell it continues the same plan).
type Plan struct {
	File   string
	Stages []Stage
	Hash   string
}

// Error is a problem at a place in a recipe: file:line, or an override given on the command
// line. Its message is one line.
type Error struct {
	File     string
	Line     int    // 0: not from the file
	Override string // the key=value the value came from, when not from the file
	Key      string // dotted path, e.g. train.seed
	Msg      string
}

func (e *Error) Error() string {
	where := e.File
	if e.Override != "" {
		where = fmt.Sprintf("override %q", e.Override)
	} else if e.Line > 0 {
		where = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Key == "" {
		return where + ": " + e.Msg
	}
	return fmt.Sprintf("%s: %s: %s", where, e.Key, e.Msg)
}

// loader carries the file name and where each node came from, for errors.
type loader struct {
	file      string
	overrides map[*yaml.Node]string // nodes made from command-line overrides
	lines     map[string]*yaml.Node // dotted key path → the node of its value, per stage
}

func (l *loader) errAt(n *yaml.Node, key, format string, args ...any) *Error {
	e := &Error{File: l.file, Key: key, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		if o, ok := l.overrides[n]; ok {
			e.Override = o
		} else {
			e.Line = n.Line
		}
	}
	return e
}

// Load reads a recipe file, applies key.path=value overrides (typed as in the file; a key may
// address one stage as stages.NAME.key or stages.INDEX.key), resolves its stages, fills in
// defaults and validates everything that can be checked before training: unknown keys (with
// the nearest valid one), types, missing files and columns, values out of range, seq_len over
// the model's limit. The first problem is returned as an *Error.
func Load(path string, overrides []string) (*Plan, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, src, overrides)
}

// Parse is Load on the file's contents; relative paths in the recipe are taken relative to
// the working directory, as the command line takes them.
func Parse(file string, src []byte, overrides []string) (*Plan, error) {
	l := &loader{file: file, overrides: map[*yaml.Node]string{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, &Error{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, l.errAt(root, "", "a recipe is a mapping of keys (name, model, data, optim, train, …)")
	}
	for _, o := range overrides {
		if err := l.override(root, o); err != nil {
			return nil, err
		}
	}
	stagesNode := takeKey(root, "stages")
	if err := l.check(root, reflect.TypeOf(Recipe{}), ""); err != nil {
		return nil, err
	}
	var bases []*yaml.Node
	var names []string
	if stagesNode == nil {
		bases, names = []*yaml.Node{root}, []string{""}
	} else {
		if stagesNode.Kind != yaml.SequenceNode || len(stagesNode.Content) == 0 {
			return nil, l.errAt(stagesNode, "stages", "want a non-empty list of stages, each a mapping with a name")
		}
		seen := map[string]bool{}
		for i, st := range stagesNode.Content {
			key := fmt.Sprintf("stages[%d]", i)
			if st.Kind != yaml.MappingNode {
				return nil, l.errAt(st, key, "a stage is a mapping with a name and the keys it overrides")
			}
			st = cloneNode(st)
			nameNode := takeKey(st, "name")
			if nameNode == nil || nameNode.Value == "" {
				return nil, l.errAt(st, key, "a stage needs a name")
			}
			if seen[nameNode.Value] {
				return nil, l.errAt(nameNode, key+".name", "two stages are named %q", nameNode.Value)
			}
			seen[nameNode.Value] = true
			for _, bad := range []string{"stages", "out_dir"} {
				if n := takeKey(st, bad); n != nil {
					return nil, l.errAt(n, key+"."+bad, "cannot be set per stage")
				}
			}
			if err := l.check(st, reflect.TypeOf(Recipe{}), "stages."+nameNode.Value+"."); err != nil {
				return nil, err
			}
			bases = append(bases, merge(root, st))
			names = append(names, nameNode.Value)
		}
	}
	plan := &Plan{File: file}
	for i, n := range bases {
		l.lines = map[string]*yaml.Node{}
		l.index(n, "")
		var r Recipe
		if err := n.Decode(&r); err != nil {
			return nil, &Error{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
		}
		defaults(&r, file)
		if err := l.validate(&r); err != nil {
			return nil, err
		}
		plan.Stages = append(plan.Stages, Stage{Name: names[i], Recipe: r})
	}
	b, err := json.Marshal(plan.Stages)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	plan.Hash = hex.EncodeToString(sum[:])
	return plan, nil
}

// takeKey removes key from a mapping node and returns its value node (nil if absent).
func takeKey(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			v := m.Content[i+1]
			m.Content = slices.Delete(m.Content, i, i+2)
			return v
		}
	}
	return nil
}

func getKey(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func cloneNode(n *yaml.Node) *yaml.Node {
	c := *n
	c.Content = slices.Clone(n.Content)
	return &c
}

// merge returns base with over's keys applied: mappings merge key by key, anything else is
// replaced. Nodes keep their positions, so errors still point into the file.
func merge(base, over *yaml.Node) *yaml.Node {
	if base == nil || base.Kind != yaml.MappingNode || over.Kind != yaml.MappingNode {
		return over
	}
	out := cloneNode(base)
	for i := 0; i+1 < len(over.Content); i += 2 {
		k, v := over.Content[i], over.Content[i+1]
		found := false
		for j := 0; j+1 < len(out.Content); j += 2 {
			if out.Content[j].Value == k.Value {
				out.Content[j+1] = merge(out.Content[j+1], v)
				found = true
				break
			}
		}
		if !found {
			out.Content = append(out.Content, k, v)
		}
	}
	return out
}

// override applies one key.path=value to the document.
func (l *loader) override(root *yaml.Node, o string) error {
	key, val, ok := strings.Cut(o, "=")
	if !ok || key == "" {
		return &Error{File: l.file, Override: o, Msg: "want key.path=value"}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(val), &doc); err != nil {
		return &Error{File: l.file, Override: o, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: ""}
	if len(doc.Content) > 0 {
		v = doc.Content[0]
	}
	l.mark(v, o)
	parts := strings.Split(key, ".")
	cur := root
	for i, p := range parts {
		if cur.Kind == yaml.SequenceNode { // stages.NAME or stages.INDEX
			var next *yaml.Node
			if idx, err := strconv.Atoi(p); err == nil && idx >= 0 && idx < len(cur.Content) {
				next = cur.Content[idx]
			} else {
				for _, st := range cur.Content {
					if n := getKey(st, "name"); n != nil && n.Value == p {
						next = st
					}
				}
			}
			if next == nil {
				what := "no such list item"
				if i > 0 && parts[i-1] == "stages" {
					what = "no such stage"
				}
				return &Error{File: l.file, Override: o, Key: strings.Join(parts[:i+1], "."), Msg: what}
			}
			cur = next
			continue
		}
		if cur.Kind != yaml.MappingNode {
			return &Error{File: l.file, Override: o, Key: strings.Join(parts[:i], "."), Msg: "is not a mapping"}
		}
		next := getKey(cur, p)
		if i == len(parts)-1 {
			if next != nil {
				for j := 0; j+1 < len(cur.Content); j += 2 {
					if cur.Content[j].Value == p {
						cur.Content[j+1] = v
					}
				}
			} else {
				k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: p}
				l.mark(k, o)
				cur.Content = append(cur.Content, k, v)
			}
			return nil
		}
		if next == nil {
			k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: p}
			next = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			l.mark(k, o)
			l.mark(next, o)
			cur.Content = append(cur.Content, k, next)
		}
		cur = next
	}
	return nil
}

func (l *loader) mark(n *yaml.Node, o string) {
	l.overrides[n] = o
	for _, c := range n.Content {
		l.mark(c, o)
	}
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// check walks a node against the Go type it decodes into: every mapping key must be a field
// (else the error names the nearest one), every scalar must decode into its field's type.
func (l *loader) check(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			return l.errAt(n, strings.TrimSuffix(path, "."), "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return nil
	}
	key := strings.TrimSuffix(path, ".")
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return l.errAt(n, key, "want a mapping with keys %s, got %s", strings.Join(fieldNames(t), ", "), describe(n))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fieldByTag(t, k.Value)
			if !ok {
				if path == "" && k.Value == "stages" {
					continue
				}
				msg := fmt.Sprintf("unknown key %q", k.Value)
				if near := nearest(k.Value, fieldNames(t)); near != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", near)
				}
				where := "the recipe"
				if key != "" {
					where = key
				}
				return l.errAt(k, "", "%s in %s", msg, where)
			}
			if err := l.check(v, f.Type, path+k.Value+"."); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return l.errAt(n, key, "want a list, got %s", describe(n))
		}
		for i, c := range n.Content {
			if err := l.check(c, t.Elem(), fmt.Sprintf("%s[%d].", key, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return l.errAt(n, key, "want a mapping, got %s", describe(n))
		}
	default:
		if n.Kind != yaml.ScalarNode {
			return l.errAt(n, key, "want %s, got %s", kindName(t), describe(n))
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			return l.errAt(n, key, "want %s, got %q", kindName(t), n.Value)
		}
	}
	return nil
}

// index records the node of every key path, so validation can point at lines.
func (l *loader) index(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := path + n.Content[i].Value
			l.lines[p] = n.Content[i+1]
			l.index(n.Content[i+1], p+".")
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", strings.TrimSuffix(path, "."), i)
			l.lines[p] = c
			l.index(c, p+".")
		}
	}
}

// at returns an error at the node of a key path (or of its nearest recorded parent).
func (l *loader) at(key, format string, args ...any) *Error {
	for p := key; p != ""; {
		if n, ok := l.lines[p]; ok {
			return l.errAt(n, key, format, args...)
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return l.errAt(nil, key, format, args...)
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); tag == name && tag != "-" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func fieldNames(t reflect.Type) []string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag != "" && tag != "-" {
			names = append(names, tag)
		}
	}
	if t == reflect.TypeOf(Recipe{}) {
		names = append(names, "stages")
	}
	return names
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

// nearest is the candidate closest to s by edit distance, if it is close enough to be a typo.
func nearest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	if bestD <= max(2, len(s)/3) {
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// JSON is the resolved stages, for checkpoints and W&B.
func (p *Plan) JSON() []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	_ = enc.Encode(p.Stages)
	return buf.Bytes()
}

var errNoModel = errors.New("set model.path (a Hugging Face model folder) or model.init.config (a config.json)")

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func dirHas(dir, name string) bool { return fileExists(filepath.Join(dir, name)) }
