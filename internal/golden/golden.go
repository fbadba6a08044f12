// Package golden loads the reference outputs of the independent PyTorch implementation
// (testdata/golden, copied from ../shared/golden) and compares Gwen's numbers with them,
// printing the largest differences and the first mismatches. Test support only.
package golden

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/gwen-ml/gwen/internal/testenv"
	"github.com/gwen-ml/gwen/layers/safetensors"
)

// Dir returns the absolute path of testdata/golden/<name> in this repository.
func Dir(name string) string {
	return filepath.Join(testenv.RepoRoot(), "testdata", "golden", name)
}

// Case is one golden folder: its tensors and its scalars.
type Case struct {
	Dir     string
	Tensors *safetensors.File
	Scalars map[string]any
}

// Open opens testdata/golden/<name>.
func Open(name string) (*Case, error) {
	dir := Dir(name)
	f, err := safetensors.Open(filepath.Join(dir, "golden.safetensors"))
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "golden.json"))
	if err != nil {
		return nil, err
	}
	var j struct {
		Scalars map[string]any `json:"scalars"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "golden.json"), err)
	}
	return &Case{Dir: dir, Tensors: f, Scalars: j.Scalars}, nil
}

// F32 returns a float tensor of the golden file, panicking if absent (a broken fixture).
func (c *Case) F32(name string) []float32 {
	v, err := c.Tensors.Float32(name)
	if err != nil {
		panic(err)
	}
	return v
}

// I32 returns an integer tensor of the golden file as int32 token ids.
func (c *Case) I32(name string) []int32 {
	v, err := c.Tensors.Int64(name)
	if err != nil {
		panic(err)
	}
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

// Shape returns a golden tensor's shape.
func (c *Case) Shape(name string) []int {
	info, ok := c.Tensors.Info(name)
	if !ok {
		panic("golden tensor " + name + " missing")
	}
	return info.Shape
}

// Scalar returns a float scalar of golden.json.
func (c *Case) Scalar(name string) float64 {
	v, ok := c.Scalars[name].(float64)
	if !ok {
		panic("golden scalar " + name + " missing")
	}
	return v
}

// Diff summarises |got - want| over two equally long slices.
type Diff struct {
	Max, Mean, MaxRef float64
	ArgMax            int
	first             []string
}

// Compare measures the differences and remembers the first few elements over tol.
func Compare(got, want []float32, tol float64) Diff {
	var d Diff
	if len(got) != len(want) {
		d.Max = math.Inf(1)
		d.first = []string{fmt.Sprintf("length %d, want %d", len(got), len(want))}
		return d
	}
	for i := range got {
		e := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(e) {
			e = math.Inf(1)
		}
		d.Mean += e
		d.MaxRef = max(d.MaxRef, math.Abs(float64(want[i])))
		if e > d.Max {
			d.Max, d.ArgMax = e, i
		}
		if e > tol && len(d.first) < 5 {
			d.first = append(d.first, fmt.Sprintf("[%d] got %.8g want %.8g", i, got[i], want[i]))
		}
	}
	if len(got) > 0 {
		d.Mean /= float64(len(got))
	}
	return d
}

func (d Diff) String() string {
	s := fmt.Sprintf("max |diff| %.3g at [%d] (mean %.3g, max |ref| %.3g)", d.Max, d.ArgMax, d.Mean, d.MaxRef)
	if len(d.first) > 0 {
		s += "; first mismatches: " + strings.Join(d.first, ", ")
	}
	return s
}

// GradTol is the golden README's per-gradient tolerance: 1e-5 + 1e-4·max|g|.
func GradTol(want []float32) float64 {
	m := 0.0
	for _, v := range want {
		m = max(m, math.Abs(float64(v)))
	}
	return 1e-5 + 1e-4*m
}

// ReadAll returns every tensor of the safetensors file at path as float32 tensors ready to
// write back (for tests that copy a fixture with edits).
func ReadAll(path string) ([]safetensors.Tensor, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ts []safetensors.Tensor
	for _, name := range f.Names() {
		info, _ := f.Info(name)
		v, err := f.Float32(name)
		if err != nil {
			return nil, err
		}
		ts = append(ts, safetensors.Tensor{Name: name, DType: "F32", Shape: info.Shape, F32: v})
	}
	return ts, nil
}
