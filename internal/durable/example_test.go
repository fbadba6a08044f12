package durable_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/gwen-ml/gwen/internal/durable"
)

// A checkpoint folder written as a whole: readers see the old folder or the new one, never a
// half of either; CleanTemps, at start-up, removes what a crashed writer left.
func ExampleWriteDir() {
	runs, _ := os.MkdirTemp("", "runs")
	defer os.RemoveAll(runs)
	ckpt := filepath.Join(runs, "step-100")
	err := durable.WriteDir(ckpt, func(tmp string) error {
		if err := os.WriteFile(filepath.Join(tmp, "model.safetensors"), []byte("weights"), 0o644); err != nil {
			return err
		}
		return durable.WriteFile(filepath.Join(tmp, "trainer_state.json"), []byte(`{"step":100}`), 0o644)
	})
	fmt.Println(err)
	if err := durable.CleanTemps(runs); err != nil {
		fmt.Println(err)
	}
	names, _ := os.ReadDir(ckpt)
	for _, n := range names {
		fmt.Println(n.Name())
	}
	// Output:
	// <nil>
	// model.safetensors
	// trainer_state.json
}
