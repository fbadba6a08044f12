// Command gen-corpus writes the quickstart's general-text corpus: the English doc comments of
// the Go standard library, one document per package doc and per exported declaration's doc,
// as Parquet files with one string column, text.
//
//	go run ./dev/gen-corpus                       # from the repository root
//	go run ./dev/gen-corpus -goroot DIR -out F.parquet -eval E.parquet
//
// It walks GOROOT/src in lexical order, skipping cmd/, internal/, vendor/ and testdata/
// folders and main packages, selects each package's files as a linux/amd64 build without cgo
// would (so the output does not depend on the host), and renders each doc comment as plain
// text: paragraphs unwrapped, lists kept, code blocks dropped. Documents are the package doc
// and the doc of every declaration, exported or not, and of every documented struct field and
// interface method; a declaration's document starts with its name ("strings.Builder.WriteString:
// WriteString appends …"). Every eval-every-th document goes to the eval file instead of the
// training file, as a held-out slice.
//
// The output depends only on the Go release whose sources it reads, so it is committed and not
// regenerated in CI (a new Go release changes a few documents).
//
// A third file holds the training documents joined per package (blank lines between them):
// few, long rows for the long-context stage, where packing short documents would leave every
// attention span short.
package main

import (
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/build"
	"go/doc"
	"go/doc/comment"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// row is one document of the corpus.
type row struct {
	Text string `parquet:"text"`
}

func main() {
	goroot := flag.String("goroot", "", "Go installation to read (default: `go env GOROOT`)")
	out := flag.String("out", "assets/corpus/go-doc.parquet", "training documents, one per doc comment")
	evalOut := flag.String("eval", "assets/corpus/go-doc-eval.parquet", "held-out documents (empty: none)")
	longOut := flag.String("long", "assets/corpus/go-doc-long.parquet", "the training documents joined per package, for long-context training (empty: none)")
	evalEvery := flag.Int("eval-every", 50, "every Nth document goes to -eval")
	groupRows := flag.Int64("row-group", 2048, "rows per Parquet row group")
	flag.Parse()
	if err := run(*goroot, *out, *evalOut, *longOut, *evalEvery, *groupRows); err != nil {
		fmt.Fprintln(os.Stderr, "gen-corpus:", err)
		os.Exit(1)
	}
}

func run(goroot, out, evalOut, longOut string, evalEvery int, groupRows int64) error {
	if goroot == "" {
		b, err := exec.Command("go", "env", "GOROOT").Output()
		if err != nil {
			return fmt.Errorf("go env GOROOT: %w", err)
		}
		goroot = strings.TrimSpace(string(b))
	}
	pkgs, err := corpus(filepath.Join(goroot, "src"))
	if err != nil {
		return err
	}
	var train, eval, long []row
	var n, bytes int
	for _, docs := range pkgs {
		var kept []string
		for _, d := range docs {
			n++
			bytes += len(d)
			if evalOut != "" && evalEvery > 0 && n%evalEvery == 0 {
				eval = append(eval, row{d})
			} else {
				train = append(train, row{d})
				kept = append(kept, d)
			}
		}
		if len(kept) > 0 {
			long = append(long, row{strings.Join(kept, "\n\n")})
		}
	}
	for _, f := range []struct {
		path string
		rows []row
		per  int64
	}{{out, train, groupRows}, {evalOut, eval, groupRows}, {longOut, long, max(groupRows/16, 1)}} {
		if f.path == "" {
			continue
		}
		if err := write(f.path, f.rows, f.per); err != nil {
			return err
		}
		fmt.Printf("%s: %d rows\n", f.path, len(f.rows))
	}
	ver, _ := os.ReadFile(filepath.Join(goroot, "VERSION"))
	v, _, _ := strings.Cut(string(ver), "\n")
	fmt.Printf("%s: %d packages, %d documents, %d bytes of text\n", v, len(pkgs), n, bytes)
	return nil
}

// corpus returns the documents of every standard-library package under src, in order, one
// list per package that has any.
func corpus(src string) ([][]string, error) {
	ctx := build.Default
	ctx.GOROOT, ctx.GOOS, ctx.GOARCH, ctx.CgoEnabled = filepath.Dir(src), "linux", "amd64", false
	ctx.BuildTags, ctx.ToolTags, ctx.GOPATH = nil, nil, ""
	var docs [][]string
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(src, path)
		rel = filepath.ToSlash(rel)
		switch name := d.Name(); {
		case rel == ".":
			return nil
		case rel == "cmd", name == "internal", name == "vendor", name == "testdata",
			strings.HasPrefix(name, "."), strings.HasPrefix(name, "_"):
			return filepath.SkipDir
		}
		p, err := ctx.ImportDir(path, 0)
		if err != nil {
			var none *build.NoGoError
			if errors.As(err, &none) {
				return nil
			}
			return fmt.Errorf("%s: %w", rel, err)
		}
		if p.Name == "main" {
			return nil
		}
		pd, err := packageDocs(path, rel, p.GoFiles)
		if err != nil {
			return err
		}
		if len(pd) > 0 {
			docs = append(docs, pd)
		}
		return nil
	})
	return docs, err
}

// packageDocs parses one package's files and returns its documents: the package doc, then
// each exported constant group, variable group, function, type and the type's constants,
// variables, constructors and methods, in go/doc's (sorted) order.
func packageDocs(dir, importPath string, names []string) ([]string, error) {
	fset := token.NewFileSet()
	var files []*ast.File
	for _, n := range names {
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	pkg, err := doc.NewFromFiles(fset, files, importPath, doc.AllDecls)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", importPath, err)
	}
	var docs []string
	add := func(name, text string) {
		t := render(pkg, text)
		if t == "" {
			return
		}
		if name != "" {
			t = importPath + "." + name + ": " + t
		}
		docs = append(docs, t)
	}
	add("", pkg.Doc)
	values := func(prefix string, vs []*doc.Value) {
		for _, v := range vs {
			add(prefix+v.Names[0], v.Doc)
		}
	}
	funcs := func(prefix string, fs []*doc.Func) {
		for _, f := range fs {
			add(prefix+f.Name, f.Doc)
		}
	}
	values("", pkg.Consts)
	values("", pkg.Vars)
	funcs("", pkg.Funcs)
	for _, t := range pkg.Types {
		add(t.Name, t.Doc)
		for _, f := range fieldDocs(t) {
			add(t.Name+"."+f[0], f[1])
		}
		values("", t.Consts)
		values("", t.Vars)
		funcs("", t.Funcs)
		funcs(t.Name+".", t.Methods)
	}
	return docs, nil
}

// fieldDocs returns the documented fields of a struct type, or methods of an interface type,
// as (name, doc) pairs in source order.
func fieldDocs(t *doc.Type) [][2]string {
	var out [][2]string
	for _, s := range t.Decl.Specs {
		ts, ok := s.(*ast.TypeSpec)
		if !ok || ts.Name.Name != t.Name {
			continue
		}
		var list *ast.FieldList
		switch x := ts.Type.(type) {
		case *ast.StructType:
			list = x.Fields
		case *ast.InterfaceType:
			list = x.Methods
		}
		if list == nil {
			continue
		}
		for _, f := range list.List {
			if f.Doc == nil || len(f.Names) == 0 {
				continue
			}
			out = append(out, [2]string{f.Names[0].Name, f.Doc.Text()})
		}
	}
	return out
}

// render turns a doc comment into plain text: paragraphs on one line each, headings and
// list items kept as lines, code blocks dropped, blocks separated by blank lines.
func render(pkg *doc.Package, text string) string {
	d := pkg.Parser().Parse(text)
	var keep []comment.Block
	for _, b := range d.Content {
		if _, code := b.(*comment.Code); !code {
			keep = append(keep, b)
		}
	}
	d.Content = keep
	pr := pkg.Printer()
	pr.TextWidth = -1
	return strings.TrimSpace(string(pr.Text(d)))
}

// write stores rows as Parquet with ZSTD compression, groupRows rows per row group.
func write(path string, rows []row, groupRows int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := parquet.NewGenericWriter[row](f, parquet.Compression(&parquet.Zstd), parquet.MaxRowsPerRowGroup(groupRows))
	if _, err := w.Write(rows); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := w.Close(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
