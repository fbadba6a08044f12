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
// README's first command. A path that does not exist (the placeholders of recipes/pretrain/, or
// a model folder the user brings) must fail the load with an error naming the recipe's line
// and that key; the recipe must then load with the path pointed at a stand-in of the right kind
// by a command-line override. The pretraining recipes must hold the three stages of Qwen3.
func TestBuiltinRecipes(t *testing.T) {
	var files []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
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
	t.Chdir("..") // recipes name files relative to the repository root, as the README runs them
	stand := standIns(t)

	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			missing := missingPaths(t, file)
			var overrides []string
			for _, m := range missing {
				sub, ok := stand[m.kind]
				if !ok {
					t.Fatalf("%s: %s is missing and this test has no stand-in for %q; add one", file, m.key, m.kind)
				}
				overrides = append(overrides, m.key+"="+sub)
			}
			if len(missing) > 0 {
				t.Logf("missing (pointed at stand-ins): %v", overrides)
				_, err := recipes.Load(file, nil)
				var re *recipes.Error
				if !errors.As(err, &re) {
					t.Fatalf("loading with %s missing: got %v, want a *recipes.Error", missing[0].path, err)
				}
				if re.File != file || re.Line == 0 || !strings.HasSuffix(re.Key, ".path") || !strings.Contains(err.Error(), missing[0].path) {
					t.Errorf("loading with %s missing: %q (file %q line %d key %q), want %s:LINE naming a .path and %s",
						missing[0].path, err, re.File, re.Line, re.Key, file, missing[0].path)
				}
			}
			plan, err := recipes.Load(file, overrides)
			if err != nil {
				t.Fatal(err)
			}
			if file == "recipes/quickstart.yaml" || strings.HasPrefix(file, "recipes/pretrain/") {
				checkPretrainStages(t, plan)
			}
		})
	}
}

// checkPretrainStages holds the recipes to the three stages of the Qwen3 report: general,
// reasoning, long-context (the quickstart goes on with SFT and DPO), the third longer, with a
// higher RoPE base and a passkey check.
func checkPretrainStages(t *testing.T, plan *recipes.Plan) {
	var names []string
	for _, s := range plan.Stages {
		names = append(names, s.Name)
	}
	if want := []string{"general", "reasoning", "long-context"}; len(names) < 3 || !slices.Equal(names[:3], want) {
		t.Fatalf("stages %v, want %v first", names, want)
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

// missingPath is a path in a recipe file that names nothing, and the override key that
// addresses it (model.path, data.train.0.path, stages.NAME.data.eval.1.path, …).
type missingPath struct{ key, path, kind string }

type sourceDoc struct {
	Path   string `yaml:"path"`
	Format string `yaml:"format"`
}

type dataDoc struct {
	Train []sourceDoc `yaml:"train"`
	Eval  []sourceDoc `yaml:"eval"`
}

type stageDoc struct {
	Name  string                `yaml:"name"`
	Model struct{ Path string } `yaml:"model"`
	Data  dataDoc               `yaml:"data"`
}

// missingPaths reads the recipe file's model folders and data sources, at the top level and in
// every stage, and returns those that match no file.
func missingPaths(t *testing.T, file string) []missingPath {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		stageDoc `yaml:",inline"`
		Stages   []stageDoc `yaml:"stages"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var out []missingPath
	add := func(prefix string, s stageDoc) {
		if p := s.Model.Path; p != "" {
			if _, err := os.Stat(p); err != nil {
				out = append(out, missingPath{prefix + "model.path", p, "model"})
			}
		}
		for _, part := range []struct {
			name string
			list []sourceDoc
		}{{"train", s.Data.Train}, {"eval", s.Data.Eval}} {
			for i, src := range part.list {
				if m, _ := filepath.Glob(src.Path); len(m) == 0 {
					kind := src.Format
					if kind == "" {
						kind = "text"
					}
					out = append(out, missingPath{fmt.Sprintf("%sdata.%s.%d.path", prefix, part.name, i), src.Path, kind})
				}
			}
		}
	}
	add("", doc.stageDoc)
	for _, s := range doc.Stages {
		add("stages."+s.Name+".", s)
	}
	return out
}

// standIns writes, in a temporary folder, one small stand-in for each kind of path a recipe
// names: a model folder (Qwen3-0.6B's config, no weights, and the bundled tokenizer) and a Parquet file per data
// format, with its default columns.
func standIns(t *testing.T) map[string]string {
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	if err := os.Mkdir(model, 0o755); err != nil {
		t.Fatal(err)
	}
	for dst, src := range map[string]string{
		"config.json":           "recipes/models/qwen3-0.6b.json", // the recipes are written for Qwen3-0.6B
		"tokenizer.json":        "assets/qwen3-tokenizer/tokenizer.json",
		"tokenizer_config.json": "assets/qwen3-tokenizer/tokenizer_config.json",
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(model, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	type text struct {
		Text string `parquet:"text"`
	}
	type message struct {
		Role    string `parquet:"role"`
		Content string `parquet:"content"`
	}
	type chat struct {
		Messages []message `parquet:"messages,list"`
	}
	type pair struct {
		Prompt   string `parquet:"prompt"`
		Chosen   string `parquet:"chosen"`
		Rejected string `parquet:"rejected"`
	}
	out := map[string]string{"model": model}
	write := func(kind string, err error) {
		if err != nil {
			t.Fatalf("stand-in %s: %v", kind, err)
		}
	}
	out["text"] = filepath.Join(dir, "text.parquet")
	write("text", parquet.WriteFile(out["text"], []text{{"one document"}, {"another document"}}))
	out["chat"] = filepath.Join(dir, "chat.parquet")
	write("chat", parquet.WriteFile(out["chat"], []chat{{[]message{{"user", "2+2?"}, {"assistant", "4"}}}}))
	out["preference"] = filepath.Join(dir, "pairs.parquet")
	write("preference", parquet.WriteFile(out["preference"], []pair{{"2+2?", "4", "5"}}))
	return out
}
