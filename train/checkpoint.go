package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gwen-ml/gwen/data"
	"github.com/gwen-ml/gwen/internal/durable"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/layers/safetensors"
	"github.com/gwen-ml/gwen/lora"
	"github.com/gwen-ml/gwen/optim"
)

// File names inside a checkpoint folder. The folder is a Hugging Face model folder
// (config.json, model.safetensors, tokenizer files) plus these.
const (
	stateFile     = "trainer_state.json"
	optimizerFile = "optimizer.safetensors"
	recipeFile    = "recipe.json"
)

// State is everything besides weights and optimizer moments that a run needs to continue
// exactly: it is trainer_state.json.
type State struct {
	Step      int    `json:"step"`       // optimizer steps done, over all stages
	Stage     int    `json:"stage"`      // index of the stage the last step belongs to
	StageName string `json:"stage_name"` // its name ("" without stages)
	StageStep int    `json:"stage_step"` // steps done within that stage
	StageDone bool   `json:"stage_done"` // the stage ran all its steps
	Tokens    int64  `json:"tokens"`     // input tokens seen (padding excluded), over all stages
	// Data is the training data pipeline's exact position (its mixture's PCG state included).
	Data data.PipelineState `json:"data"`
	// RNG lists every source of randomness and its state: the data mixture's generator is in
	// Data; initialisation draws from the seed once; nothing else draws during training.
	RNG        map[string]string `json:"rng"`
	Seed       uint64            `json:"seed"`
	RecipeHash string            `json:"recipe_hash"`
	// Base is set for LoRA checkpoints, which hold adapters, not the model: the folder of the
	// frozen base weights (the recipe's model.path, or an earlier stage's final checkpoint).
	Base string `json:"base,omitempty"`
	// Reference is the folder full fine-tuning DPO loads its frozen reference from on resume.
	Reference string `json:"reference,omitempty"`
	// Online is online DPO's round (its sampled pairs and how far it got), when the stage runs it.
	Online *OnlineState `json:"online,omitempty"`
}

// checkpoint is one complete checkpoint folder.
type checkpoint struct {
	Dir   string
	State State
}

// checkpoints lists the complete checkpoints under root, oldest first. Temporary folders of
// a write in progress (or killed) start with "." and are never listed.
func checkpoints(root string) ([]checkpoint, error) {
	ents, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []checkpoint
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		dir := filepath.Join(root, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, stateFile))
		if err != nil {
			continue // not a checkpoint
		}
		var st State
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
		}
		out = append(out, checkpoint{Dir: dir, State: st})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].State.Step < out[j].State.Step })
	return out, nil
}

// checkpointName is the folder name of the checkpoint after a step.
func checkpointName(step int) string { return "step-" + strconv.Itoa(step) }

// saveCheckpoint writes a complete checkpoint folder atomically (a temporary folder, synced,
// then renamed), then removes the oldest complete ones beyond keep.
//
// A full-training checkpoint is a Hugging Face model folder; a LoRA checkpoint (adapters not
// nil) is a PEFT adapter folder instead (adapter_model.safetensors, adapter_config.json naming
// base), which `gwen export` and PEFT read as it is.
func saveCheckpoint(root string, st State, m *layers.Model, adapters *lora.Set, base string, opt *optim.AdamW, tokenizerDir string, recipe []byte, keep int, reference string) (string, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	dir := filepath.Join(root, checkpointName(st.Step))
	err := durable.WriteDir(dir, func(tmp string) error {
		if adapters != nil {
			if err := adapters.Save(tmp, base); err != nil {
				return err
			}
		} else if err := m.Save(tmp, "F32", 0); err != nil {
			return err
		}
		if testHook != nil {
			testHook("checkpoint", st.Step)
		}
		if err := saveOptimizer(filepath.Join(tmp, optimizerFile), opt); err != nil {
			return err
		}
		if err := copyTokenizer(tmp, tokenizerDir); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(tmp, recipeFile), recipe, 0o644); err != nil {
			return err
		}
		b, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(tmp, stateFile), append(b, '\n'), 0o644)
	})
	if err != nil {
		return "", fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	return dir, prune(root, keep, base, reference)
}

// prune removes the oldest complete checkpoints until keep remain, never the folder a LoRA
// stage's base or a DPO stage's reference loads from (protect). durable.RemoveDir renames a
// folder aside before deleting it, so a kill during the removal never leaves a half folder
// that looks complete.
func prune(root string, keep int, protect ...string) error {
	all, err := checkpoints(root)
	if err != nil {
		return err
	}
	var cks []checkpoint
	for _, c := range all {
		if !slices.Contains(protect, c.Dir) {
			cks = append(cks, c)
		}
	}
	for len(cks) > keep {
		if err := durable.RemoveDir(cks[0].Dir); err != nil {
			return err
		}
		cks = cks[1:]
	}
	return nil
}

// tokenizerFiles are copied into each checkpoint so that it loads as it is.
var tokenizerFiles = []string{"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
	"special_tokens_map.json", "added_tokens.json", "generation_config.json"}

func copyTokenizer(dst, src string) error {
	for _, name := range tokenizerFiles {
		in, err := os.Open(filepath.Join(src, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		out, err := os.Create(filepath.Join(dst, name))
		if err != nil {
			in.Close()
			return err
		}
		_, err = io.Copy(out, in)
		in.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("copying %s: %w", name, err)
		}
	}
	return nil
}

// saveOptimizer writes AdamW's moments as <param>.exp_avg and <param>.exp_avg_sq (torch's
// names) and the step count in the metadata.
func saveOptimizer(path string, opt *optim.AdamW) error {
	names := make([]string, 0, len(opt.State))
	for n := range opt.State {
		names = append(names, n)
	}
	sort.Strings(names)
	var ts []safetensors.Tensor
	for _, n := range names {
		mo := opt.State[n]
		ts = append(ts,
			safetensors.Tensor{Name: n + ".exp_avg", DType: "F32", Shape: []int{len(mo.M)}, F32: mo.M},
			safetensors.Tensor{Name: n + ".exp_avg_sq", DType: "F32", Shape: []int{len(mo.V)}, F32: mo.V})
	}
	return safetensors.Write(path, ts, map[string]string{"format": "gwen-adamw", "step": strconv.Itoa(opt.Step)})
}

// loadOptimizer restores moments saved by saveOptimizer into opt.
func loadOptimizer(path string, opt *optim.AdamW) error {
	f, err := safetensors.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	step, err := strconv.Atoi(f.Metadata()["step"])
	if err != nil {
		return fmt.Errorf("%s: metadata has no step count", path)
	}
	opt.Step = step
	opt.State = map[string]*optim.Moments{}
	for _, n := range f.Names() {
		name, ok := strings.CutSuffix(n, ".exp_avg")
		if !ok {
			continue
		}
		m, err := f.Float32(n)
		if err != nil {
			return err
		}
		v, err := f.Float32(name + ".exp_avg_sq")
		if err != nil {
			return err
		}
		opt.State[name] = &optim.Moments{M: m, V: v}
	}
	return nil
}
