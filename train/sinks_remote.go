package train

import (
	"path/filepath"

	"github.com/gwen-ml/gwen/metrics"
	"github.com/gwen-ml/gwen/recipes"
)

// remoteSinks are the recipe's optional sinks: TensorBoard (W&B arrives with its sink).
func remoteSinks(plan *recipes.Plan, out string, resumeStep int, opt Options) ([]metrics.Sink, error) {
	var sinks []metrics.Sink
	if plan.Stages[0].Recipe.Log.TensorBoard {
		tb, err := metrics.NewTensorBoard(filepath.Join(out, "tb"))
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, tb)
	}
	return sinks, nil
}
