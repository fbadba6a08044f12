// Package metrics owns where training records go — metrics.jsonl, the progress bar,
// TensorBoard event files, Weights & Biases — and the `gwen plot` pictures drawn from them.
//
// It knows nothing of models or recipes: a Record is a step, a stage name, an eval flag and
// named float64 values. Every Sink is safe for use by several goroutines, and none blocks the
// training loop for long: the W&B sink sends from its own goroutine and drops nothing the
// JSONL file has not already kept. Wire formats follow ../shared/notes/metrics-protocols.md:
// TFRecord framing with masked CRC-32C and the Event/Summary protobufs of TensorBoard, and
// the upsertBucket and file_stream endpoints of W&B.
//
// Steps are assumed to be global across a recipe's stages (they never go back), so that a
// resumed run can be cut at one step.
package metrics
