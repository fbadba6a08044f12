package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/gwen-ml/gwen/data/chat"
	"github.com/gwen-ml/gwen/data/tokenizer"
	"github.com/gwen-ml/gwen/generate"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/lora"
)

// genFlags are the flags gwen generate and gwen chat share. Sampling flags left at -1 take
// Qwen3's recommended values for the mode: thinking T=0.6, top_p=0.95, top_k=20; non-thinking
// T=0.7, top_p=0.8, top_k=20; min_p 0 and no repetition penalty in both.
type genFlags struct {
	model, adapter, tokDir, draft   *string
	dtype                           *string
	draftK, maxNew, topK, budget    *int
	think, noThink                  *bool
	temperature, topP, minP, repPen *float64
	seed                            *uint64
	stops                           stringList
	promptIDs                       *string
	m, draftModel                   *layers.Model
	tok                             *tokenizer.Tokenizer
	stopIDs                         []int32
	thinkStart, thinkEnd            int32
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func newGenFlags(fs *flag.FlagSet, withPromptIDs bool) *genFlags {
	g := &genFlags{
		model:       fs.String("model", "", "Hugging Face model folder"),
		adapter:     fs.String("adapter", "", "PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors), merged into the model"),
		tokDir:      fs.String("tokenizer", "", "folder with tokenizer.json (default: the model folder)"),
		draft:       fs.String("draft", "", "draft model folder for speculative decoding (same tokenizer)"),
		dtype:       fs.String("dtype", "f32", "f32, or bf16: bfloat16 weight copies, mixed-precision numbers (faster decoding)"),
		draftK:      fs.Int("draft-tokens", 4, "draft tokens proposed per speculative round"),
		maxNew:      fs.Int("max-new-tokens", 1024, "most tokens to generate"),
		topK:        fs.Int("top-k", -1, "top-k (0 = off; -1 = the mode's default)"),
		budget:      fs.Int("thinking-budget", 0, "force </think> after this many thinking tokens (0 = no cap)"),
		think:       fs.Bool("think", false, "enable_thinking=true (the default)"),
		noThink:     fs.Bool("no-think", false, "enable_thinking=false: the template writes an empty think block"),
		temperature: fs.Float64("temperature", -1, "sampling temperature; 0 = greedy (-1 = the mode's default)"),
		topP:        fs.Float64("top-p", -1, "nucleus probability (1 = off; -1 = the mode's default)"),
		minP:        fs.Float64("min-p", 0, "min-p (0 = off)"),
		repPen:      fs.Float64("repetition-penalty", 1, "repetition penalty (1 = off)"),
		seed:        fs.Uint64("seed", 0, "sampling seed"),
	}
	fs.Var(&g.stops, "stop", "stop string (repeatable)")
	if withPromptIDs {
		g.promptIDs = fs.String("prompt-ids", "", "comma-separated token ids: no template, prints {\"new_ids\": […]} as JSON")
	}
	return g
}

// load checks the flags and opens the model, the draft and (when text is involved) the
// tokenizer.
func (g *genFlags) load(needTokenizer bool) error {
	if *g.model == "" {
		return fmt.Errorf("%w: --model DIR is required", errUsage)
	}
	if *g.think && *g.noThink {
		return fmt.Errorf("%w: --think and --no-think exclude each other", errUsage)
	}
	if *g.dtype != "f32" && *g.dtype != "bf16" {
		return fmt.Errorf("%w: --dtype %q: f32 or bf16", errUsage, *g.dtype)
	}
	if *g.maxNew < 0 || *g.draftK < 1 || *g.budget < 0 {
		return fmt.Errorf("%w: --max-new-tokens and --thinking-budget must be >= 0, --draft-tokens >= 1", errUsage)
	}
	var err error
	if g.m, err = layers.Load(*g.model); err != nil {
		return err
	}
	if *g.adapter != "" {
		// Folded into the weights once: the adapted model then decodes at the base model's speed.
		if err := lora.MergeDir(g.m, *g.adapter); err != nil {
			return err
		}
	}
	if *g.draft != "" {
		if g.draftModel, err = layers.Load(*g.draft); err != nil {
			return fmt.Errorf("draft: %w", err)
		}
		if g.draftModel.Config.VocabSize != g.m.Config.VocabSize {
			return fmt.Errorf("draft %s has vocab_size %d, the model %d: they must share the tokenizer", *g.draft, g.draftModel.Config.VocabSize, g.m.Config.VocabSize)
		}
	}
	if *g.dtype == "bf16" {
		g.m.UseBF16Weights()
		if g.draftModel != nil {
			g.draftModel.UseBF16Weights()
		}
	}
	g.stopIDs = configEOS(&g.m.Config)
	if needTokenizer || len(g.stops) > 0 || *g.budget > 0 {
		dir := *g.tokDir
		if dir == "" {
			dir = *g.model
		}
		if g.tok, err = tokenizer.Load(dir); err != nil {
			return err
		}
		if g.tok.VocabSize() > g.m.Config.VocabSize {
			return fmt.Errorf("tokenizer in %s has %d tokens, more than the model's vocab_size %d", dir, g.tok.VocabSize(), g.m.Config.VocabSize)
		}
		for _, s := range []string{"<|im_end|>", "<|endoftext|>"} {
			if id, ok := g.tok.TokenID(s); ok {
				g.stopIDs = append(g.stopIDs, id)
			}
		}
		if id := g.tok.EOS(); id >= 0 {
			g.stopIDs = append(g.stopIDs, id)
		}
		ts, ok1 := g.tok.TokenID("<think>")
		te, ok2 := g.tok.TokenID("</think>")
		if *g.budget > 0 && (!ok1 || !ok2) {
			return fmt.Errorf("--thinking-budget: the tokenizer in %s has no <think> and </think> tokens", dir)
		}
		g.thinkStart, g.thinkEnd = ts, te
	}
	return nil
}

// configEOS reads config.json's eos_token_id (an int or a list of ints).
func configEOS(c *layers.Config) []int32 {
	var ids []int32
	switch v := c.EOSTokenID.(type) {
	case float64:
		ids = append(ids, int32(v))
	case int:
		ids = append(ids, int32(v))
	case []any:
		for _, x := range v {
			if f, ok := x.(float64); ok {
				ids = append(ids, int32(f))
			}
		}
	}
	return ids
}

// options builds generation options for a turn in thinking mode or not.
func (g *genFlags) options(thinking bool) generate.Options {
	s := generate.Sampling{Temperature: 0.7, TopP: 0.8, TopK: 20, MinP: *g.minP, RepetitionPenalty: *g.repPen}
	if thinking {
		s.Temperature, s.TopP = 0.6, 0.95
	}
	if *g.temperature >= 0 {
		s.Temperature = *g.temperature
	}
	if *g.topP >= 0 {
		s.TopP = *g.topP
	}
	if *g.topK >= 0 {
		s.TopK = *g.topK
	}
	o := generate.Options{Sampling: s, MaxNewTokens: *g.maxNew, Seed: *g.seed, StopIDs: g.stopIDs,
		StopStrings: g.stops, ThinkingBudget: *g.budget, ThinkStart: g.thinkStart, ThinkEnd: g.thinkEnd}
	if g.tok != nil {
		o.Decode = func(ids []int32) string { return g.tok.Decode(ids, false) }
		if pad := g.tok.Pad(); pad >= 0 {
			o.Pad = pad
		}
	}
	return o
}

// run generates from one prompt, with the draft when one is given; stats go to stderr.
func (g *genFlags) run(prompt []int32, o generate.Options, stderr io.Writer) (generate.Result, error) {
	if g.draftModel == nil {
		res, err := generate.Generate(g.m, [][]int32{prompt}, o)
		if err != nil {
			return generate.Result{}, err
		}
		return res[0], nil
	}
	res, st, err := generate.Speculative(g.m, g.draftModel, prompt, *g.draftK, o)
	if err == nil {
		fmt.Fprintf(stderr, "speculative: acceptance %.2f (%d of %d draft tokens), %d target forwards for %d tokens\n",
			st.AcceptanceRate(), st.Accepted, st.Proposed, st.TargetForwards, len(res.IDs))
	}
	return res, err
}

// thinkingMode is the mode a conversation asks for: --no-think is the hard switch
// (enable_thinking=false); otherwise the latest /think or /no_think in a user or system
// message, as Qwen3 documents its soft switch; thinking by default. The text is left as it is:
// the model itself follows the soft switch.
func (g *genFlags) thinkingMode(msgs []chat.Message) (enable *bool, thinking bool) {
	if *g.noThink {
		f := false
		return &f, false
	}
	if *g.think {
		tr := true
		enable = &tr
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if m.Role != "user" && m.Role != "system" {
			continue
		}
		t, n := strings.LastIndex(m.Content, "/think"), strings.LastIndex(m.Content, "/no_think")
		if t >= 0 || n >= 0 {
			return enable, t > n
		}
	}
	return enable, true
}

// streamer writes decoded text as tokens arrive, holding back an incomplete UTF-8 tail.
type streamer struct {
	tok     *tokenizer.Tokenizer
	w       io.Writer
	ids     []int32
	printed int
}

func (s *streamer) add(id int32) {
	s.ids = append(s.ids, id)
	text := s.tok.Decode(s.ids, true)
	if strings.HasSuffix(text, "\uFFFD") || len(text) < s.printed {
		return
	}
	io.WriteString(s.w, text[s.printed:])
	s.printed = len(text)
}

// turn renders the conversation, generates the assistant's reply (streamed to w) and returns
// its text (special tokens dropped).
func (g *genFlags) turn(msgs []chat.Message, w, stderr io.Writer) (string, error) {
	enable, thinking := g.thinkingMode(msgs)
	prompt, _, err := chat.Encode(g.tok, msgs, chat.Options{AddGenerationPrompt: true, EnableThinking: enable})
	if err != nil {
		return "", err
	}
	o := g.options(thinking)
	st := &streamer{tok: g.tok, w: w}
	o.OnToken = func(_ int, id int32) { st.add(id) }
	res, err := g.run(prompt, o, stderr)
	if err != nil {
		return "", err
	}
	fmt.Fprintln(w)
	return g.tok.Decode(res.IDs, true), nil
}

// cmdGenerate is `gwen generate --model DIR [flags] "prompt"`, or with --prompt-ids the raw
// ids-in, ids-out form for scripts.
func cmdGenerate(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	g := newGenFlags(fs, true)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	ids := *g.promptIDs != ""
	if ids == (len(pos) == 1) || len(pos) > 1 {
		return fmt.Errorf("%w: gwen generate --model DIR [flags] \"prompt\"  or  --prompt-ids 1,2,3", errUsage)
	}
	if err := g.load(!ids); err != nil {
		return err
	}
	if !ids {
		_, err := g.turn([]chat.Message{{Role: "user", Content: pos[0]}}, stdout, stderr)
		return err
	}
	var prompt []int32
	for _, f := range strings.Split(*g.promptIDs, ",") {
		v, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil {
			return fmt.Errorf("%w: --prompt-ids: %q is not a token id", errUsage, f)
		}
		prompt = append(prompt, int32(v))
	}
	_, thinking := g.thinkingMode(nil)
	res, err := g.run(prompt, g.options(thinking), stderr)
	if err != nil {
		return err
	}
	newIDs := res.IDs
	if newIDs == nil {
		newIDs = []int32{}
	}
	return json.NewEncoder(stdout).Encode(map[string][]int32{"new_ids": newIDs})
}

// parseInterspersed parses flags before and after positional arguments ("prompt" --flag v).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// cmdChat is `gwen chat --model DIR [flags]`: each stdin line is a user turn; the replies
// stream to stdout and join the history.
func cmdChat(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	g := newGenFlags(fs, false)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: gwen chat --model DIR [flags] < lines", errUsage)
	}
	if err := g.load(true); err != nil {
		return err
	}
	var msgs []chat.Message
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		msgs = append(msgs, chat.Message{Role: "user", Content: line})
		reply, err := g.turn(msgs, stdout, stderr)
		if err != nil {
			return err
		}
		msgs = append(msgs, chat.Message{Role: "assistant", Content: reply})
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading stdin: %w", err)
	}
	return nil
}
