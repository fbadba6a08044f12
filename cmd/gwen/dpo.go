package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/gwen-ml/gwen/data"
	"github.com/gwen-ml/gwen/data/tokenizer"
	"github.com/gwen-ml/gwen/dpo"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/layers/safetensors"
)

// dpoPairJSON is one pair of gwen dpo eval's output (a contract).
type dpoPairJSON struct {
	PolicyChosen      float64 `json:"policy_chosen_logp"`
	PolicyRejected    float64 `json:"policy_rejected_logp"`
	ReferenceChosen   float64 `json:"reference_chosen_logp"`
	ReferenceRejected float64 `json:"reference_rejected_logp"`
	ChosenReward      float64 `json:"chosen_reward"`
	RejectedReward    float64 `json:"rejected_reward"`
}

// dpoEvalJSON is the last line gwen dpo eval writes to stdout (a contract).
type dpoEvalJSON struct {
	Loss           float64       `json:"loss"`
	RewardAccuracy float64       `json:"reward_accuracy"`
	Pairs          []dpoPairJSON `json:"pairs"`
}

// cmdDPO is `gwen dpo eval --model DIR [--adapter DIR | --reference DIR] --data PAIRS [--beta
// 0.1] [--loss sigmoid|ipo|hinge|robust] [--label-smoothing LS] [--length-normalize]
// [--tokenizer DIR] [--seq-len T] [--truncate] [--batch N]`: DPO's numbers for every pair of
// PAIRS, the policy being the model (with the adapter, unmerged) and the reference the model
// without it (or --reference, a frozen copy, or else the model itself).
//
// PAIRS is a safetensors file with prompt_ids, chosen_ids and rejected_ids (integer [pairs,
// length], one pair per row, no padding), or Parquet in the preference format (one file, a
// glob or a folder), tokenized as data's preference pipeline does with the model's tokenizer
// and the chat template. The last line of stdout is one JSON object {"loss",
// "reward_accuracy", "pairs": [{"policy_chosen_logp", "policy_rejected_logp",
// "reference_chosen_logp", "reference_rejected_logp", "chosen_reward", "rejected_reward"}]}.
func cmdDPO(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "eval" {
		return fmt.Errorf("%w: gwen dpo eval --model DIR [--adapter DIR] --data PAIRS [--beta 0.1] [--loss sigmoid|ipo|hinge|robust]", errUsage)
	}
	fs := flag.NewFlagSet("dpo eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	modelDir := fs.String("model", "", "Hugging Face model folder: the policy (and, without --adapter or --reference, the reference)")
	adapter := fs.String("adapter", "", "PEFT LoRA adapter folder: the policy is the model with it, the reference the model without it")
	refDir := fs.String("reference", "", "reference model folder (a frozen copy, for a fully fine-tuned policy)")
	pairsPath := fs.String("data", "", "pairs: a .safetensors file (prompt_ids, chosen_ids, rejected_ids) or Parquet (format: preference)")
	tokDir := fs.String("tokenizer", "", "folder with tokenizer.json, for Parquet pairs (default: the model folder)")
	beta := fs.Float64("beta", 0.1, "β")
	loss := fs.String("loss", "sigmoid", "sigmoid, ipo, hinge or robust")
	ls := fs.Float64("label-smoothing", 0, "label smoothing (sigmoid, robust)")
	norm := fs.Bool("length-normalize", false, "divide each response's log-prob by its length (TRL's ipo)")
	seqLen := fs.Int("seq-len", 4096, "Parquet pairs: longest prompt+response in tokens; longer pairs are dropped unless --truncate")
	truncate := fs.Bool("truncate", false, "Parquet pairs: cut over-long pairs to --seq-len instead of dropping them")
	perBatch := fs.Int("batch", 4, "pairs per forward")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *modelDir == "" || *pairsPath == "" || len(pos) > 0 {
		return fmt.Errorf("%w: need gwen dpo eval --model DIR --data PAIRS", errUsage)
	}
	if *adapter != "" && *refDir != "" {
		return fmt.Errorf("%w: --adapter and --reference exclude each other (with an adapter the reference is the model without it)", errUsage)
	}
	if *perBatch < 1 || *seqLen < 1 {
		return fmt.Errorf("%w: --batch and --seq-len must be >= 1", errUsage)
	}
	cfg := dpo.Config{Beta: *beta, Loss: *loss, LabelSmoothing: *ls, LengthNormalize: *norm}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}

	m, err := layers.Load(*modelDir)
	if err != nil {
		return err
	}
	set, err := attachAdapter(m, *adapter)
	if err != nil {
		return err
	}
	ref := m
	if *refDir != "" {
		if ref, err = layers.Load(*refDir); err != nil {
			return err
		}
		if ref.Config.VocabSize != m.Config.VocabSize {
			return fmt.Errorf("reference %s has vocab_size %d, the model %d", *refDir, ref.Config.VocabSize, m.Config.VocabSize)
		}
	} else if set == nil {
		fmt.Fprintln(stderr, "gwen dpo eval: no --adapter or --reference: the reference is the model itself, so every reward is 0")
	}

	var pairs [][2]data.Sequence
	var pad int32
	dropped := 0
	if strings.HasSuffix(*pairsPath, ".safetensors") {
		pairs, err = readPairTensors(*pairsPath, m.Config.VocabSize)
	} else {
		dir := *tokDir
		if dir == "" {
			dir = *modelDir
		}
		pairs, pad, dropped, err = readPairParquet(*pairsPath, dir, m.Config.VocabSize, *seqLen, *truncate)
	}
	if err != nil {
		return err
	}
	if len(pairs) == 0 {
		return fmt.Errorf("%s: no pairs to evaluate (%d dropped)", *pairsPath, dropped)
	}

	obj := dpo.NewObjective(m, set, ref, cfg)
	var stats []dpo.PairStats
	for lo := 0; lo < len(pairs); lo += *perBatch {
		bs, d, err := dpo.SequenceBatches(pairs[lo:min(lo+*perBatch, len(pairs))], *perBatch, 0, pad)
		if err != nil {
			return err
		}
		dropped += d
		for _, b := range bs {
			st, err := obj.Evaluate(b)
			if err != nil {
				return err
			}
			stats = append(stats, st...)
		}
	}
	if len(stats) == 0 {
		return fmt.Errorf("%s: no pair has a response token to score (%d dropped)", *pairsPath, dropped)
	}
	met := dpo.Metrics(stats)
	out := dpoEvalJSON{Loss: met["loss"], RewardAccuracy: met["dpo/reward_accuracy"], Pairs: make([]dpoPairJSON, len(stats))}
	for i, s := range stats {
		out.Pairs[i] = dpoPairJSON{s.PolicyChosen, s.PolicyRejected, s.ReferenceChosen, s.ReferenceRejected, s.ChosenReward, s.RejectedReward}
		for _, v := range []float64{s.PolicyChosen, s.PolicyRejected, s.ReferenceChosen, s.ReferenceRejected, s.Loss} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("pair %d: a log-prob or the loss is %v: the model's numbers are not finite", i, v)
			}
		}
	}
	fmt.Fprintf(stderr, "gwen dpo eval: %d pairs (%d dropped), %s loss %.6f (β %g), reward accuracy %.3f, margin %.6f\n",
		len(stats), dropped, cfg.Loss, out.Loss, cfg.Beta, out.RewardAccuracy, met["dpo/margin"])
	return json.NewEncoder(stdout).Encode(out)
}

// readPairTensors reads prompt_ids, chosen_ids and rejected_ids ([pairs, length] each, one pair
// per row) as (prompt+chosen, prompt+rejected) sequences with the responses labelled.
func readPairTensors(path string, vocab int) ([][2]data.Sequence, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows [3][][]int32
	for k, name := range []string{"prompt_ids", "chosen_ids", "rejected_ids"} {
		ids, n, t, err := readTokens(f, name)
		if err != nil {
			return nil, err
		}
		if k > 0 && n != len(rows[0]) {
			return nil, fmt.Errorf("%s: %s has %d rows, prompt_ids %d: one pair per row", path, name, n, len(rows[0]))
		}
		for i, id := range ids {
			if id < 0 || int(id) >= vocab {
				return nil, fmt.Errorf("%s: %s[%d][%d] = %d is outside the vocabulary [0, %d)", path, name, i/t, i%t, id, vocab)
			}
		}
		for i := range n {
			rows[k] = append(rows[k], ids[i*t:(i+1)*t])
		}
	}
	pairs := make([][2]data.Sequence, len(rows[0]))
	for i := range pairs {
		p := dpo.Pair{Prompt: rows[0][i], Chosen: rows[1][i], Rejected: rows[2][i]}
		pairs[i][0], pairs[i][1] = p.Sequences()
	}
	return pairs, nil
}

// readPairParquet reads every row of preference Parquet once and encodes it as data's
// preference pipeline does (data.Encoder with the tokenizer's EOS; the chat template for
// message lists). It returns the pairs, the pad token and how many rows gave no pair.
func readPairParquet(path, tokDir string, vocab, seqLen int, truncate bool) (pairs [][2]data.Sequence, pad int32, dropped int, err error) {
	tok, err := tokenizer.Load(tokDir)
	if err != nil {
		return nil, 0, 0, err
	}
	if tok.VocabSize() > vocab {
		return nil, 0, 0, fmt.Errorf("tokenizer in %s has %d tokens, more than the model's vocab_size %d", tokDir, tok.VocabSize(), vocab)
	}
	eos := tok.EOS()
	if eos < 0 {
		return nil, 0, 0, fmt.Errorf("tokenizer in %s has no eos_token, which ends every string response", tokDir)
	}
	if pad = tok.Pad(); pad < 0 {
		pad = eos
	}
	src, err := data.Open([]string{path}, data.Spec{Format: data.FormatPreference})
	if err != nil {
		return nil, 0, 0, err
	}
	defer src.Close()
	enc := data.Encoder{Task: data.TaskPreference, Tok: tok, EOS: eos, SeqLen: seqLen, Truncate: truncate}
	for {
		ex, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, 0, err
		}
		e, err := enc.Encode(ex)
		if err != nil {
			return nil, 0, 0, err
		}
		if e.Drop != "" {
			dropped++
			continue
		}
		pairs = append(pairs, [2]data.Sequence{e.Seq, e.Rejected})
	}
	return pairs, pad, dropped, nil
}
