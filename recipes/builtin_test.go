package recipes_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"go.yaml.in/yaml/v3"

	"github.com/gwen-ml/gwen/recipes"
)

// TestBuiltinRecipes loads every recipe shipped under recipes/ as a user would, from the
// repository root, so that renaming a key or moving a bundled file breaks a test and not the
// README's first command. A data path that does not exist (the placeholders of
// recipes/pretrain/, or files generated later such as assets/corpus/math.parquet) must fail the
// load with an error naming the recipe's line and that source's path; the recipe must then
// load with the path pointed at a real Parquet file by a command-line override.
func TestBuiltinRecipes(t *testing.T) {
	var files []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, filepath.Join("recipes", p))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"recipes/quickstart.yaml", "recipes/pretrain/qwen3-0.6b.yaml"} {
		if !slices.Contains(files, want) {
			t.Errorf("%s is missing (found %v)", want, files)
		}
	}
	stand := filepath.Join(t.TempDir(), "text.parquet")
	writeText(t, stand, 3)
	t.Chdir("..") // recipes name files relative to the repository root, as the README runs them

	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			missing := missingSources(t, file)
			var overrides []string
			for _, m := range missing {
				overrides = append(overrides, m.key+"="+stand)
			}
			if len(missing) > 0 {
				t.Logf("missing data (pointed at a stand-in): %v", overrides)
				_, err := recipes.Load(file, nil)
				var re *recipes.Error
				if !errors.As(err, &re) {
					t.Fatalf("loading with %s missing: got %v, want a *recipes.Error", missing[0].path, err)
				}
				if re.File != file || re.Line == 0 || !strings.HasSuffix(re.Key, ".path") || !strings.Contains(re.Msg, missing[0].path) {
					t.Errorf("loading with %s missing: %q (file %q line %d key %q), want %s:LINE naming a .path and %s",
						missing[0].path, err, re.File, re.Line, re.Key, file, missing[0].path)
				}
			}
			plan, err := recipes.Load(file, overrides)
			if err != nil {
				t.Fatal(err)
			}
			checkPretrainStages(t, plan)
		})
	}
}

// checkPretrainStages holds the recipes to the three stages of the Qwen3 report: general,
// reasoning, long-context, the last one longer, with a higher RoPE base and a passkey check.
func checkPretrainStages(t *testing.T, plan *recipes.Plan) {
	var names []string
	for _, s := range plan.Stages {
		names = append(names, s.Name)
	}
	if want := []string{"general", "reasoning", "long-context"}; !slices.Equal(names, want) {
		t.Fatalf("stages %v, want %v", names, want)
	}
	s1, s2, s3 := plan.Stages[0].Recipe, plan.Stages[1].Recipe, plan.Stages[2].Recipe
	if s1.OutDir != s3.OutDir {
		t.Errorf("out_dir differs between stages: %s, %s", s1.OutDir, s3.OutDir)
	}
	if len(s2.Data.Train) < 2 {
		t.Errorf("reasoning: %d training sources, want reasoning data mixed with general text", len(s2.Data.Train))
	}
	if s3.Data.SeqLen <= s1.Data.SeqLen {
		t.Errorf("long-context seq_len %d is not longer than general's %d", s3.Data.SeqLen, s1.Data.SeqLen)
	}
	c1, err := s1.ModelConfig()
	if err != nil {
		t.Fatal(err)
	}
	c3, err := s3.ModelConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c3.RopeTheta <= c1.RopeTheta || c3.MaxPositionEmbeddings < s3.Data.SeqLen {
		t.Errorf("long-context: rope_theta %v (general %v), max_position_embeddings %d for seq_len %d; want the base raised and room for seq_len",
			c3.RopeTheta, c1.RopeTheta, c3.MaxPositionEmbeddings, s3.Data.SeqLen)
	}
	if s3.Eval.Passkey == 0 {
		t.Errorf("long-context: no eval.passkey trials")
	}
	for _, s := range plan.Stages {
		if s.Recipe.Train.MaxSteps <= 0 {
			t.Errorf("%s: %d steps", s.Name, s.Recipe.Train.MaxSteps)
		}
	}
}

type source struct{ key, path string }

// missingSources returns, for every data source in the recipe file whose path matches no file,
// the override key that addresses it (data.train.0.path, stages.NAME.data.eval.1.path, …).
func missingSources(t *testing.T, file string) []source {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Data   dataPaths `yaml:"data"`
		Stages []struct {
			Name string    `yaml:"name"`
			Data dataPaths `yaml:"data"`
		} `yaml:"stages"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var out []source
	add := func(prefix string, d dataPaths) {
		for _, part := range []struct {
			name string
			list []struct{ Path string }
		}{{"train", d.Train}, {"eval", d.Eval}} {
			for i, s := range part.list {
				if m, _ := filepath.Glob(s.Path); len(m) == 0 {
					out = append(out, source{fmt.Sprintf("%sdata.%s.%d.path", prefix, part.name, i), s.Path})
				}
			}
		}
	}
	add("", doc.Data)
	for _, s := range doc.Stages {
		add("stages."+s.Name+".", s.Data)
	}
	return out
}

type dataPaths struct {
	Train []struct{ Path string } `yaml:"train"`
	Eval  []struct{ Path string } `yaml:"eval"`
}

func writeText(t *testing.T, path string, n int) {
	type row struct {
		Text string `parquet:"text"`
	}
	rows := make([]row, n)
	for i := range rows {
		rows[i].Text = fmt.Sprintf("document %d", i)
	}
	if err := parquet.WriteFile(path, rows); err != nil {
		t.Fatal(err)
	}
}
