// Package dpo owns Direct Preference Optimization: sequence log-probs on the tape, TRL's DPO
// losses with their statistics, the reference log-probs, and building pairs online by sampling.
//
// It follows TRL's DPOTrainer (trl/trainer/dpo_trainer.py, dpo_loss). A pair's log-prob of a
// response is the sum, over the response's tokens t, of log_softmax(logits[t-1])[token t]:
// prompt and padding tokens are excluded (LengthNormalize divides the sum by the response's
// length, TRL's IPO). With h = (π_c − π_r) − (ref_c − ref_r) and ls the label smoothing:
//
//	sigmoid: −logσ(β·h)·(1−ls) − logσ(−β·h)·ls                (the default, β = 0.1)
//	ipo:     (h − 1/(2β))²
//	hinge:   max(0, 1 − β·h)
//	robust:  (−logσ(β·h)·(1−ls) + logσ(−β·h)·ls) / (1 − 2·ls)
//
// rewards are β·(π − ref) per response; the loss of a batch is the mean over its pairs.
//
// The reference is the same model with its LoRA adapters disabled (no second copy in memory),
// or a frozen copy for full fine-tuning, run without a tape.
//
// Training (data's preference batches: rows [0, P) chosen, [P, 2P) rejected):
//
//	obj := dpo.NewObjective(model, set, nil, recipe.DPO) // LoRA: reference = adapters off
//	obj := dpo.NewObjective(model, nil, frozen, cfg)     // full fine-tuning: a frozen copy
//	set.Train(step, micro)                                // as for SFT
//	scalars, err := obj.Step(tape, batch, 1/gradAccum)    // forward, loss·scale, backward
//	ref, _ := obj.Reference(batch)                        // or: cache the reference once,
//	scalars, err = obj.StepWithReference(tape, batch, ref, 1/gradAccum)
//
// Online DPO, every M steps (set.Eval() first, seed derived from the round so a resumed run
// regenerates the same pairs):
//
//	pairs, meanReward, err := dpo.SamplePairs(model, tok, prompts, k, temperature, maxNew, seed, score)
//	batches, dropped, err := dpo.PairBatches(pairs, pairsPerBatch, seqLen, pad)
//
// It knows nothing of file formats (Parquet, safetensors, recipes) or of the training loop.
package dpo
