package lora

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/layers/safetensors"
)

// IsPEFTDir reports whether dir holds a PEFT adapter's two files.
func IsPEFTDir(dir string) bool {
	for _, f := range []string{ConfigFile, WeightsFile} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || !st.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// FindAdapter returns the PEFT adapter folder that src names: src itself when it holds
// adapter_config.json and adapter_model.safetensors (a PEFT folder, or a checkpoint, which
// holds the adapter files at its root), else the newest complete checkpoint of a run folder,
// src/checkpoints/<name>/ — newest by trainer_state.json's "step", then by the number in the
// name (step-<N>); folders whose names start with "." or contain ".tmp" (a checkpoint being
// written) and folders without both adapter files are passed over.
func FindAdapter(src string) (string, error) {
	if IsPEFTDir(src) {
		return src, nil
	}
	ckDir := filepath.Join(src, "checkpoints")
	entries, err := os.ReadDir(ckDir)
	if err != nil {
		if _, serr := os.Stat(src); serr != nil {
			return "", fmt.Errorf("lora: %w", serr)
		}
		return "", fmt.Errorf("lora: %s is neither a PEFT adapter folder (%s + %s) nor a run folder with checkpoints/", src, ConfigFile, WeightsFile)
	}
	best, bestStep := "", int64(-1)
	for _, e := range entries {
		name := e.Name()
		dir := filepath.Join(ckDir, name)
		if !e.IsDir() || strings.HasPrefix(name, ".") || strings.Contains(name, ".tmp") || !IsPEFTDir(dir) {
			continue
		}
		step := checkpointStep(dir, name)
		if step > bestStep || (step == bestStep && name > filepath.Base(best)) {
			best, bestStep = dir, step
		}
	}
	if best == "" {
		return "", fmt.Errorf("lora: %s holds no complete checkpoint with %s and %s", ckDir, ConfigFile, WeightsFile)
	}
	return best, nil
}

var stepInName = regexp.MustCompile(`(\d+)$`)

// checkpointStep is a checkpoint's step: trainer_state.json's "step", else the number that ends
// its name, else 0.
func checkpointStep(dir, name string) int64 {
	if b, err := os.ReadFile(filepath.Join(dir, "trainer_state.json")); err == nil {
		var st struct {
			Step *int64 `json:"step"`
		}
		if json.Unmarshal(b, &st) == nil && st.Step != nil {
			return *st.Step
		}
	}
	if m := stepInName.FindStringSubmatch(name); m != nil {
		if n, err := strconv.ParseInt(m[1], 10, 64); err == nil {
			return n
		}
	}
	return 0
}

// ExportLoRA copies the adapter that src names (FindAdapter) to out as a PEFT folder, after
// checking that it loads (Load). It returns the folder it copied from.
func ExportLoRA(src, out string) (string, error) {
	dir, err := FindAdapter(src)
	if err != nil {
		return "", err
	}
	if _, err := Load(dir); err != nil {
		return "", err
	}
	if same, _ := sameDir(dir, out); same {
		return "", fmt.Errorf("lora: exporting %s onto itself", dir)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", fmt.Errorf("lora: %w", err)
	}
	for _, f := range []string{WeightsFile, ConfigFile} {
		if err := copyFileAtomic(filepath.Join(dir, f), filepath.Join(out, f)); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// BaseModelDir is the base model folder of an adapter: base_model_name_or_path as a path (as
// given, then relative to the adapter folder), which must hold config.json.
func BaseModelDir(p *PEFT) (string, error) {
	bm := p.Config.BaseModel
	if bm == "" {
		return "", fmt.Errorf("lora: %s has no base_model_name_or_path; name the base model folder", filepath.Join(p.Dir, ConfigFile))
	}
	cands := []string{bm}
	if !filepath.IsAbs(bm) {
		cands = append(cands, filepath.Join(p.Dir, bm))
	}
	for _, c := range cands {
		if st, err := os.Stat(filepath.Join(c, "config.json")); err == nil && st.Mode().IsRegular() {
			return c, nil
		}
	}
	return "", fmt.Errorf("lora: %s: base_model_name_or_path %q is not a model folder here (looked in %s); name the base model folder",
		filepath.Join(p.Dir, ConfigFile), bm, strings.Join(cands, " and "))
}

// Merged folds the adapter that src names (FindAdapter) into its base model and writes the
// result to out as a Hugging Face folder: config.json, model.safetensors (sharded above 5 GB)
// with W + scale·B·A for every adapted module, and the base folder's tokenizer and generation
// files. base "" means the adapter's base_model_name_or_path (BaseModelDir). dtype is "F32" or
// "BF16"; "" keeps the base's (its first weight's dtype on disk; an F16 base needs an explicit
// dtype). It returns the adapter and base folders it used.
func Merged(src, base, out, dtype string) (adapterDir, baseDir string, err error) {
	if adapterDir, err = FindAdapter(src); err != nil {
		return "", "", err
	}
	p, err := Load(adapterDir)
	if err != nil {
		return "", "", err
	}
	if baseDir = base; baseDir == "" {
		if baseDir, err = BaseModelDir(p); err != nil {
			return "", "", err
		}
	}
	if same, _ := sameDir(baseDir, out); same {
		return "", "", fmt.Errorf("lora: merging into the base model's own folder %s; choose another --out", baseDir)
	}
	if dtype == "" {
		if dtype, err = weightDType(baseDir); err != nil {
			return "", "", err
		}
	}
	if dtype != "F32" && dtype != "BF16" {
		return "", "", fmt.Errorf("lora: merged dtype %q: F32 or BF16 (for a base stored in another dtype, name one)", dtype)
	}
	m, err := layers.Load(baseDir)
	if err != nil {
		return "", "", err
	}
	if err := p.Merge(m); err != nil {
		return "", "", err
	}
	if err := m.Save(out, dtype, 5<<30); err != nil {
		return "", "", err
	}
	for _, f := range baseSideFiles {
		from := filepath.Join(baseDir, f)
		if st, err := os.Stat(from); err != nil || !st.Mode().IsRegular() {
			continue
		}
		if err := copyFileAtomic(from, filepath.Join(out, f)); err != nil {
			return "", "", err
		}
	}
	return adapterDir, baseDir, nil
}

// baseSideFiles are the files of a model folder besides config and weights that a merged
// folder keeps: tokenizer, chat template, generation defaults.
var baseSideFiles = []string{
	"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json",
	"added_tokens.json", "chat_template.jinja", "generation_config.json",
}

// weightDType is the on-disk dtype of a model folder's weights (its first tensor's).
func weightDType(dir string) (string, error) {
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		return "", err
	}
	defer set.Close()
	names := set.Names()
	if len(names) == 0 {
		return "", fmt.Errorf("lora: %s holds no weights", dir)
	}
	info, _, _ := set.Info(names[0])
	return string(info.DType), nil
}

// sameDir reports whether a and b are the same existing folder.
func sameDir(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}

// copyFileAtomic copies a file through a temporary name and a rename.
func copyFileAtomic(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("lora: %w", err)
	}
	defer in.Close()
	b, err := io.ReadAll(in)
	if err != nil {
		return fmt.Errorf("lora: reading %s: %w", from, err)
	}
	return writeFileAtomic(to, b)
}
