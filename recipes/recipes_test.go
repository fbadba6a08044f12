package recipes

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/internal/testenv"
)

// base is a valid recipe over files inside the repository; each test breaks one thing.
func base(t *testing.T) string {
	root := testenv.RepoRoot()
	return `name: t
model:
  init:
    config: ` + filepath.Join(root, "recipes", "testdata", "tiny.json") + `
tokenizer: ` + testenv.Tokenizer() + `
data:
  train:
    - path: ` + filepath.Join(root, "data", "testdata", "parquet", "math_prompts.parquet") + `
      format: text
      column: problem
  seq_len: 64
optim:
  lr: 0.002
  schedule:
    name: cosine
    warmup_steps: 2
train:
  batch_size: 2
  max_steps: 6
  seed: 7
out_dir: ` + t.TempDir() + `
`
}

func parse(t *testing.T, src string, overrides ...string) (*Plan, error) {
	t.Helper()
	return Parse("r.yaml", []byte(src), overrides)
}

func TestLoadDefaultsAndOverrides(t *testing.T) {
	p, err := parse(t, base(t), "train.max_steps=100", "optim.lr=1e-4", "out_dir=/tmp/x", "optim.betas=[0.8, 0.9]", "log.tensorboard=true")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Stages) != 1 || p.Stages[0].Name != "" {
		t.Fatalf("stages %+v", p.Stages)
	}
	r := p.Stages[0].Recipe
	if r.Train.MaxSteps != 100 || r.Optim.LR != 1e-4 || r.OutDir != "/tmp/x" || r.Optim.Betas[0] != 0.8 || !r.Log.TensorBoard {
		t.Errorf("overrides not applied: %+v", r)
	}
	if r.Model.Dtype != "f32" || r.Train.GradAccum != 1 || *r.Optim.GradClip != 1 || *r.Optim.WeightDecay != 0.1 || !*r.Data.Packing || r.Log.Every != 1 {
		t.Errorf("defaults not filled: %+v", r)
	}
	q, err := parse(t, base(t), "train.max_steps=101")
	if err != nil {
		t.Fatal(err)
	}
	if q.Hash == p.Hash {
		t.Error("different recipes hash the same")
	}
}

// Each bad recipe fails with one line naming the file's line (or the override) and the key.
func TestBadRecipes(t *testing.T) {
	root := testenv.RepoRoot()
	cases := []struct {
		name, from, to string
		overrides      []string
		want           []string
	}{
		{"unknown key", "  seed: 7", "  sede: 7", nil, []string{"r.yaml:20:", `"sede"`, `did you mean "seed"`}},
		{"unknown top key", "out_dir:", "outdir:", nil, []string{"r.yaml:21:", `"outdir"`, `"out_dir"`}},
		{"wrong type", "  batch_size: 2", "  batch_size: two", nil, []string{"r.yaml:18:", "train.batch_size", "integer", `"two"`}},
		{"wrong shape", "  seq_len: 64", "  seq_len: [64]", nil, []string{"r.yaml:11:", "data.seq_len", "got a list"}},
		{"missing file", "math_prompts.parquet", "nope.parquet", nil, []string{"r.yaml:8:", "data.train[0].path", "nope.parquet"}},
		{"missing column", "column: problem", "column: body", nil, []string{"r.yaml:10:", "data.train[0].column", `"body"`, "problem"}},
		{"bad format", "format: text", "format: txt", nil, []string{"r.yaml:9:", "data.train[0].format", `"txt"`}},
		{"seq_len over the limit", "  seq_len: 64", "  seq_len: 8192", nil, []string{"r.yaml:11:", "data.seq_len", "8192", "4096"}},
		{"missing config", "tiny.json", "none.json", nil, []string{"r.yaml:4:", "model.init.config", "none.json"}},
		{"missing tokenizer", testenv.Tokenizer(), filepath.Join(root, "recipes"), nil, []string{"r.yaml:5:", "tokenizer", "tokenizer.json"}},
		{"bad schedule", "name: cosine", "name: cosin", nil, []string{"r.yaml:15:", "optim.schedule.name", `"cosin"`}},
		{"override type", "", "", []string{"train.max_steps=lots"}, []string{`override "train.max_steps=lots"`, "train.max_steps", "integer"}},
		{"override unknown key", "", "", []string{"train.max_step=3"}, []string{`override "train.max_step=3"`, `did you mean "max_steps"`}},
		{"no steps", "  max_steps: 6", "  max_steps: 0", nil, []string{"r.yaml:", "train.max_steps or train.max_tokens"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(base(t), c.from, c.to, 1)
			_, err := parse(t, src, c.overrides...)
			var re *Error
			if !errors.As(err, &re) {
				t.Fatalf("got %v, want a recipes.Error", err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestStages(t *testing.T) {
	src := base(t) + `stages:
  - name: s1
  - name: s2
    data:
      seq_len: 128
    model:
      rope_theta: 5000000
    optim:
      lr: 0.001
  - name: s3
    train:
      max_steps: 2
`
	p, err := parse(t, src, "stages.s3.train.batch_size=4", "train.seed=9")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Stages) != 3 {
		t.Fatalf("%d stages", len(p.Stages))
	}
	s1, s2, s3 := p.Stages[0].Recipe, p.Stages[1].Recipe, p.Stages[2].Recipe
	if p.Stages[1].Name != "s2" || s1.Data.SeqLen != 64 || s2.Data.SeqLen != 128 || s2.Optim.LR != 0.001 || s1.Optim.LR != 0.002 {
		t.Errorf("stage keys not merged: %+v / %+v", s1, s2)
	}
	if s2.Optim.Schedule.WarmupSteps != 2 || s2.Train.BatchSize != 2 {
		t.Error("a stage lost the base's keys it does not override")
	}
	cfg, err := s2.ModelConfig()
	if err != nil || cfg.RopeTheta != 5e6 {
		t.Errorf("rope_theta override: %v %v", cfg, err)
	}
	if s3.Train.MaxSteps != 2 || s3.Train.BatchSize != 4 || s1.Train.BatchSize != 2 || s1.Train.Seed != 9 || s3.Train.Seed != 9 {
		t.Errorf("stage overrides: s1 %+v s3 %+v", s1.Train, s3.Train)
	}
	_, err = parse(t, src+"    out_dir: /tmp/y\n")
	if err == nil || !strings.Contains(err.Error(), "stages[2].out_dir") {
		t.Errorf("out_dir per stage: %v", err)
	}
	_, err = parse(t, strings.Replace(src, "      lr: 0.001", "      lrr: 0.001", 1))
	if err == nil || !strings.Contains(err.Error(), `did you mean "lr"`) || !strings.Contains(err.Error(), "r.yaml:30:") {
		t.Errorf("unknown key inside a stage: %v", err)
	}
}

func TestLoadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.yaml")
	if err := os.WriteFile(p, []byte(strings.Replace(base(t), "  seed: 7", "  sede: 7", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p, nil)
	if err == nil || !strings.HasPrefix(err.Error(), p+":20:") {
		t.Errorf("got %v", err)
	}
}
