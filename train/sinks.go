package train

import (
	"path/filepath"

	"github.com/gwen-ml/gwen/metrics"
	"github.com/gwen-ml/gwen/recipes"
)

// openSinks opens every metrics destination the recipe asks for: OUT/metrics.jsonl always,
// the progress display, TensorBoard and Weights & Biases.
func openSinks(plan *recipes.Plan, out string, resumeStep int, opt Options) (metrics.Sink, error) {
	total := 0
	for _, s := range plan.Stages {
		total += s.Recipe.Train.MaxSteps
	}
	jsonl, err := metrics.OpenJSONL(filepath.Join(out, "metrics.jsonl"), resumeStep)
	if err != nil {
		return nil, err
	}
	sinks := []metrics.Sink{jsonl, metrics.NewProgress(opt.Log, total, opt.Terminal)}
	remote, err := remoteSinks(plan, out, resumeStep, opt)
	if err != nil {
		return nil, err
	}
	sinks = append(sinks, remote...)
	return metrics.Tee(sinks...), nil
}
