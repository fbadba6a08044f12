// Package lora owns LoRA adapters: trainable adapters on a model's Linears, freezing the base,
// the PEFT adapter format (adapter_config.json and adapter_model.safetensors, as PEFT writes
// them) in and out, and folding an adapter into a model. It follows PEFT's LoraLayer
// (peft/tuners/lora/layer.py): y = x·Wᵀ + scale·(dropout(x)·Aᵀ)·Bᵀ, scale = lora_alpha/r (or /√r with
// rsLoRA), A initialised kaiming-uniform with a=√5 and B zero. It knows nothing of the
// training loop.
//
// Vocabulary: an Adapter is the LoRA pair on one Linear (it implements layers.Adapter); a Set
// is the adapters attached to one model; a PEFT is an adapter folder as loaded from disk.
//
// Training:
//
//	set, err := lora.Attach(model, recipe.LoRA, seed) // wraps the targets, freezes the base
//	opt := ... set.Params()                           // lora_A/lora_B, named by PEFT keys
//	set.Train(step, micro); model.Forward(tape, in)   // dropout keyed by (seed, step, micro)
//	set.SetDisabled(true)                             // the base alone: DPO's reference
//	set.Save(checkpointDir, modelPath)                // PEFT files; set.LoadDir(dir) to resume
//
// Running or shipping an adapter: Load reads a PEFT folder; AttachPEFT runs it unmerged;
// PEFT.Merge folds it into a model; FindAdapter, ExportLoRA and Merged serve `gwen export`.
package lora
