package train

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/gwen-ml/gwen/metrics"
	"github.com/gwen-ml/gwen/recipes"
)

// remoteSinks are the recipe's optional sinks: TensorBoard event files and Weights & Biases
// (its API key from WANDB_API_KEY only, never from the recipe; WANDB_BASE_URL for a
// self-hosted server).
func remoteSinks(plan *recipes.Plan, out string, resumeStep int, opt Options) ([]metrics.Sink, error) {
	var sinks []metrics.Sink
	log := plan.Stages[0].Recipe.Log
	if log.TensorBoard {
		tb, err := metrics.NewTensorBoard(filepath.Join(out, "tb"))
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, tb)
	}
	if w := log.WandB; w != nil {
		key := os.Getenv("WANDB_API_KEY")
		if key == "" {
			fmt.Fprintln(opt.Log, "note: log.wandb is set but WANDB_API_KEY is not: not sending to Weights & Biases")
			return sinks, nil
		}
		wb, err := metrics.NewWandB(metrics.WandBConfig{Project: w.Project, Entity: w.Entity, Name: w.Name, Tags: w.Tags,
			BaseURL: os.Getenv("WANDB_BASE_URL"), APIKey: key, Warn: opt.Log}, out, plan.Stages, resumeStep)
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, wb)
	}
	return sinks, nil
}
