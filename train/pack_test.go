package train

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/data"
	"github.com/gwen-ml/gwen/data/tokenizer"
	"github.com/gwen-ml/gwen/internal/testenv"
	"github.com/gwen-ml/gwen/layers"
)

// A packed row (several documents, attention kept inside each, positions restarting) gives
// the same summed loss as running each document on its own.
func TestPackedRowEqualsDocumentsOneByOne(t *testing.T) {
	m := tinyModel(t, 3, 0.1)
	cfg := &m.Config
	tok, err := tokenizer.Load(byteTokenizer())
	if err != nil {
		t.Fatal(err)
	}
	src, err := data.Open([]string{filepath.Join(testenv.RepoRoot(), "data", "testdata", "parquet", "math_prompts.parquet")}, data.Spec{Format: data.FormatText, Column: "problem"})
	if err != nil {
		t.Fatal(err)
	}
	mix, err := data.NewMixture([]*data.Stream{data.NewStream(src, false, 0)}, []float64{1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := data.NewPipeline(mix, tok, data.PipelineConfig{Task: data.TaskPretrain, Rows: 2, SeqLen: 96})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	b, err := p.Next()
	if err != nil {
		t.Fatal(err)
	}
	V := cfg.VocabSize
	ce := func(ids, pos, docStart, labels []int32, rows, T int) (float64, int) {
		out := m.Forward(nil, layers.Input{IDs: ids, B: rows, T: T, Pos: pos, DocStart: docStart})
		_, sum, n := autograd.CrossEntropy(nil, out.Logits.Reshape(rows*T, V), layers.CausalTargets(labels, rows, T), 0)
		return sum, n
	}
	packed, nPacked := ce(b.IDs, b.Pos, b.DocStart, b.Labels, b.B, b.T)

	var alone float64
	var nAlone, docs int
	for r := 0; r < b.B; r++ {
		row := func(v []int32) []int32 { return v[r*b.T : (r+1)*b.T] }
		ids, pos, ds, labels := row(b.IDs), row(b.Pos), row(b.DocStart), row(b.Labels)
		for s := 0; s < b.T; {
			e := s + 1
			for e < b.T && ds[e] == ds[s] {
				e++
			}
			if pos[s] != 0 && s != 0 {
				t.Fatalf("row %d: a document starts at column %d with position %d", r, s, pos[s])
			}
			sum, n := ce(ids[s:e], pos[s:e], nil, labels[s:e], 1, e-s)
			alone += sum
			nAlone += n
			docs++
			s = e
		}
	}
	if docs <= b.B {
		t.Fatalf("the rows hold %d documents: the test needs packed rows", docs)
	}
	if nPacked != nAlone || math.Abs(packed-alone) > 1e-4*math.Abs(alone) {
		t.Errorf("packed: %v over %d targets; one by one: %v over %d", packed, nPacked, alone, nAlone)
	}
}

// The tape's final-gradient hook fires for every parameter of a forward and backward (tied
// embedding, norms, every projection), once each, and only when its gradient is final: the
// gradient seen by the hook equals the gradient after Backward.
func TestGradFinalHookSeesFinalGradients(t *testing.T) {
	m := tinyModel(t, 5, 0.1)
	cfg := &m.Config
	B, T := 2, 16
	ids := make([]int32, B*T)
	for i := range ids {
		ids[i] = int32((i*37 + 11) % cfg.VocabSize)
	}
	tp := autograd.NewTape()
	seen := map[*autograd.Tensor][]float32{}
	tp.OnGradFinal(func(p *autograd.Tensor) {
		if _, dup := seen[p]; dup {
			t.Errorf("%s: hook called twice", p.Name)
		}
		seen[p] = append([]float32(nil), p.Grad()...)
	})
	out := m.Forward(tp, layers.Input{IDs: ids, B: B, T: T})
	loss, _, _ := autograd.CrossEntropy(tp, out.Logits.Reshape(B*T, cfg.VocabSize), layers.CausalTargets(ids, B, T), 0)
	tp.Backward(loss)
	for _, p := range m.Params() {
		g, ok := seen[p]
		if !ok {
			t.Errorf("%s: the hook never fired", p.Name)
			continue
		}
		for i, v := range p.Grad() {
			if g[i] != v {
				t.Fatalf("%s[%d]: %v when the hook fired, %v after Backward", p.Name, i, g[i], v)
			}
		}
	}
}
