package generate_test

import (
	"os"
	"slices"
	"testing"

	"github.com/gwen-ml/gwen/generate"
	"github.com/gwen-ml/gwen/internal/golden"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/moe"
)

func loadGolden(t testing.TB, name string) (*layers.Model, *golden.Case) {
	t.Helper()
	moe.Register() // tiny-moe's sparse layers
	dir := golden.Dir(name)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("golden folder %s is absent: %v", dir, err)
	}
	m, err := layers.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	g, err := golden.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	return m, g
}

// testdata/golden gen.*: 20 greedy steps of the independent float64 PyTorch implementation
// (KV-cached, no EOS stop): the same tokens, and each step's logits within 1e-4.
func TestGoldenGreedy(t *testing.T) {
	for _, name := range []string{"tiny-dense", "tiny-moe"} {
		t.Run(name, func(t *testing.T) {
			m, g := loadGolden(t, name)
			prompt, want := g.I32("gen.prompt_ids"), g.I32("gen.output_ids")
			stepLogits := g.F32("gen.step_logits")
			V := m.Config.VocabSize
			steps := len(stepLogits) / V
			var got []float32
			res, err := generate.Generate(m, [][]int32{prompt}, generate.Options{
				MaxNewTokens: steps,
				OnLogits:     func(_ int, l []float32) { got = append(got, l...) },
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res[0].IDs, want[len(prompt):]) {
				t.Errorf("greedy ids %v, want %v", res[0].IDs, want[len(prompt):])
			}
			if d := golden.Compare(got, stepLogits, 1e-4); d.Max > 1e-4 {
				t.Errorf("step logits: %v", d)
			} else {
				t.Logf("step logits: %v", d)
			}
		})
	}
}

// greedyNoCache is the reference: at every step the training forward (no cache, no tape)
// over the whole sequence, argmax of the last position.
func greedyNoCache(m *layers.Model, prompt []int32, n int) []int32 {
	seq := slices.Clone(prompt)
	V := m.Config.VocabSize
	for i := 0; i < n; i++ {
		l := m.Forward(nil, layers.Input{IDs: seq, B: 1, T: len(seq)}).Logits.Data
		row := l[(len(seq)-1)*V:]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		seq = append(seq, int32(best))
	}
	return seq[len(prompt):]
}

// Prompts of different lengths in one left-padded batch give each prompt's own greedy
// continuation, as recomputed without a cache.
func TestBatchedPromptsOfDifferentLengths(t *testing.T) {
	m, _ := loadGolden(t, "tiny-dense")
	m.InitRandom(11, 0.2) // spread-out logits: the golden weights repeat one token
	prompts := [][]int32{{5, 77, 300, 12}, {9}, {400, 401, 2, 3, 99, 100, 101, 7, 8}}
	res, err := generate.Generate(m, prompts, generate.Options{MaxNewTokens: 12, Pad: 0})
	if err != nil {
		t.Fatal(err)
	}
	for r, p := range prompts {
		want := greedyNoCache(m, p, 12)
		if !slices.Equal(res[r].IDs, want) {
			t.Errorf("row %d: %v, want %v", r, res[r].IDs, want)
		}
		if res[r].Reason != "length" {
			t.Errorf("row %d stopped for %q", r, res[r].Reason)
		}
	}
	distinct := map[int32]bool{}
	for _, id := range res[2].IDs {
		distinct[id] = true
	}
	if len(distinct) < 3 {
		t.Errorf("row 2 repeats %v: the test would not see a wrong position", res[2].IDs)
	}
}

func TestStopRules(t *testing.T) {
	m, _ := loadGolden(t, "tiny-dense")
	m.InitRandom(11, 0.2)
	prompt := []int32{400, 401, 2, 3}
	free := greedyNoCache(m, prompt, 10)

	// A stop id ends the row after that token; the other row runs to its length.
	res, err := generate.Generate(m, [][]int32{prompt, {9}}, generate.Options{MaxNewTokens: 10, StopIDs: []int32{free[3]}})
	if err != nil {
		t.Fatal(err)
	}
	at := slices.Index(free, free[3])
	if !slices.Equal(res[0].IDs, free[:at+1]) || res[0].Reason != "stop_id" {
		t.Errorf("stop id %d: %v (%s), want %v", free[3], res[0].IDs, res[0].Reason, free[:at+1])
	}
	if len(res[1].IDs) != 10 || res[1].Reason != "length" {
		t.Errorf("other row: %d tokens (%s), want 10 (length)", len(res[1].IDs), res[1].Reason)
	}

	// A stop string spanning two tokens (ids spelled as letters by a toy decoder).
	decode := func(ids []int32) string {
		b := make([]byte, len(ids))
		for i, id := range ids {
			b[i] = byte('a' + id%26)
		}
		return string(b)
	}
	stop := decode(free[5:7])
	res, err = generate.Generate(m, [][]int32{prompt}, generate.Options{MaxNewTokens: 10, StopStrings: []string{stop}, Decode: decode})
	if err != nil {
		t.Fatal(err)
	}
	end := len(res[0].IDs)
	if res[0].Reason != "stop_string" || end > 7 || !slices.Equal(res[0].IDs, free[:end]) {
		t.Errorf("stop string %q: %v (%s), free run %v", stop, res[0].IDs, res[0].Reason, free)
	}

	// Refusals.
	if _, err := generate.Generate(m, [][]int32{{}}, generate.Options{MaxNewTokens: 1}); err == nil {
		t.Error("empty prompt accepted")
	}
	if _, err := generate.Generate(m, [][]int32{{512}}, generate.Options{MaxNewTokens: 1}); err == nil {
		t.Error("token outside the vocabulary accepted")
	}
	if _, err := generate.Generate(m, [][]int32{{1}}, generate.Options{MaxNewTokens: 1, StopStrings: []string{"x"}}); err == nil {
		t.Error("stop strings without Decode accepted")
	}
}

// After ThinkingBudget tokens inside <think>, </think> is forced; then decoding is free again.
func TestThinkingBudget(t *testing.T) {
	m, _ := loadGolden(t, "tiny-dense")
	m.InitRandom(11, 0.2)
	const think, endThink = 500, 501
	o := generate.Options{MaxNewTokens: 12, ThinkingBudget: 4, ThinkStart: think, ThinkEnd: endThink}
	// The prompt opens the block (as Qwen3 prompts may end in "<think>\n").
	res, err := generate.Generate(m, [][]int32{{5, 6, think, 7}}, o)
	if err != nil {
		t.Fatal(err)
	}
	got := res[0].IDs
	if len(got) < 6 || got[4] != endThink || slices.Contains(got[:4], endThink) {
		t.Fatalf("budget 4 from an open prompt block: %v, want </think> at index 4", got)
	}
	// The rest equals free decoding after the forced token.
	want := greedyNoCache(m, append([]int32{5, 6, think, 7}, got[:5]...), 7)
	if !slices.Equal(got[5:], want) {
		t.Errorf("after </think>: %v, want %v", got[5:], want)
	}
	// A closed block in the prompt: no forcing at all.
	res, err = generate.Generate(m, [][]int32{{think, 7, endThink, 5}}, o)
	if err != nil {
		t.Fatal(err)
	}
	if want := greedyNoCache(m, []int32{think, 7, endThink, 5}, 12); !slices.Equal(res[0].IDs, want) {
		t.Errorf("closed block: %v, want %v", res[0].IDs, want)
	}
}

// Seeded sampling repeats itself, and a row's tokens do not depend on its batch neighbours.
func TestSeededSampling(t *testing.T) {
	m, _ := loadGolden(t, "tiny-dense")
	m.InitRandom(11, 0.2)
	o := generate.Options{MaxNewTokens: 10, Seed: 42, Sampling: generate.Sampling{Temperature: 1.5, TopK: 50, TopP: 0.95}}
	a, err := generate.Generate(m, [][]int32{{5, 6, 7}, {9, 10}}, o)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := generate.Generate(m, [][]int32{{5, 6, 7}, {1, 2, 3, 4, 5, 6}}, o)
	if !slices.Equal(a[0].IDs, b[0].IDs) {
		t.Errorf("same seed, same prompt: %v then %v", a[0].IDs, b[0].IDs)
	}
	o.Seed = 43
	c, _ := generate.Generate(m, [][]int32{{5, 6, 7}}, o)
	if slices.Equal(a[0].IDs, c[0].IDs) {
		t.Errorf("seeds 42 and 43 sampled the same %v", a[0].IDs)
	}
	if slices.Equal(a[0].IDs, greedyNoCache(m, []int32{5, 6, 7}, 10)) {
		t.Errorf("temperature 1.5 sampled the greedy sequence %v", a[0].IDs)
	}
}
