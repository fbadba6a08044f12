package layers_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/layers"
)

// tinyConfig is a small dense model with GQA (4 query heads over 2 key/value heads).
func tinyConfig() layers.Config {
	return layers.Config{ModelType: "qwen3", VocabSize: 97, HiddenSize: 32, IntermediateSize: 48,
		NumHiddenLayers: 2, NumAttentionHeads: 4, NumKeyValueHeads: 2, HeadDim: 8,
		TieWordEmbeddings: true, RopeTheta: 10000, MaxPositionEmbeddings: 256, RMSNormEps: 1e-6}
}

func tokens(n int, seed int) []int32 {
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32((i*31 + seed*17 + 5) % 97)
	}
	return ids
}

func maxDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// The cached path must give, for every new token, the logits the training forward (no cache)
// gives at the same position of the unpadded sequence: two left-padded rows of different
// prompt lengths, a prefill, then chunks of 1 and 3 tokens.
func TestKVCacheMatchesTrainingForward(t *testing.T) {
	m, err := layers.New(tinyConfig())
	if err != nil {
		t.Fatal(err)
	}
	m.InitRandom(7, 0.3)
	V := m.Config.VocabSize
	lens := []int{9, 4} // prompt lengths
	chunks := []int{1, 3, 1, 2}
	total := 9 + 1 + 3 + 1 + 2
	full := [][]int32{tokens(total, 1), tokens(total-5, 2)} // row 1 is 5 shorter: 5 padding slots
	// Reference: each row alone, no cache, no padding.
	ref := make([][]float32, 2)
	for r, ids := range full {
		ref[r] = m.Forward(nil, layers.Input{IDs: ids, B: 1, T: len(ids)}).Logits.Data
	}

	cache := layers.NewKVCache(&m.Config, 2, total+3)
	cache.Start[1] = 5
	check := func(step string, out []float32, T int) {
		for r := 0; r < 2; r++ {
			for j := 0; j < T; j++ {
				slot := cache.Len - T + j
				p := slot - int(cache.Start[r])
				if p < 0 {
					continue // a padding slot: its logits mean nothing
				}
				got := out[(r*T+j)*V : (r*T+j+1)*V]
				want := ref[r][p*V : (p+1)*V]
				if d := maxDiff(got, want); d > 2e-5 {
					t.Errorf("%s: row %d position %d: max |logit diff| %.3g vs the training forward", step, r, p, d)
				}
			}
		}
	}
	// Prefill: row 1 is padded on the left with an arbitrary token.
	pre := make([]int32, 0, 2*lens[0])
	pre = append(pre, full[0][:9]...)
	pre = append(pre, 0, 0, 0, 0, 0)
	pre = append(pre, full[1][:4]...)
	out := m.Forward(nil, layers.Input{IDs: pre, B: 2, T: 9, Cache: cache})
	check("prefill", out.Logits.Data, 9)
	next := 9
	for _, n := range chunks {
		ids := append(append([]int32{}, full[0][next:next+n]...), full[1][next-5:next-5+n]...)
		out = m.Forward(nil, layers.Input{IDs: ids, B: 2, T: n, Cache: cache})
		check(fmt.Sprintf("chunk of %d at slot %d", n, next), out.Logits.Data, n)
		next += n
	}
	if cache.Len != total {
		t.Errorf("cache holds %d slots, want %d", cache.Len, total)
	}
	// Truncate and redo the last chunk: the same logits again.
	cache.Truncate(total - 2)
	ids := append(append([]int32{}, full[0][total-2:]...), full[1][total-7:]...)
	out = m.Forward(nil, layers.Input{IDs: ids, B: 2, T: 2, Cache: cache})
	check("after Truncate", out.Logits.Data, 2)
}

// Dynamic NTK as transformers runs it with a cache: the inverse frequencies follow the
// largest position of the current forward, and cached keys keep the rotation they were given.
// So once past max_position_embeddings a decode step equals a prefill of the same prefix only
// at its own slot (same table), while the earlier keys differ from that prefill's.
func TestKVCacheDynamicNTKDoesNotRerotate(t *testing.T) {
	cfg := tinyConfig()
	cfg.MaxPositionEmbeddings = 6
	cfg.RopeScaling = &layers.RopeScaling{RopeType: "dynamic", Factor: 4}
	m, err := layers.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.InitRandom(3, 0.3)
	ids := tokens(12, 4)
	inc := layers.NewKVCache(&m.Config, 1, 12)
	m.Forward(nil, layers.Input{IDs: ids[:4], B: 1, T: 4, Cache: inc})
	var last []float32
	for j := 4; j < 12; j++ {
		last = m.Forward(nil, layers.Input{IDs: ids[j : j+1], B: 1, T: 1, Cache: inc}).Logits.Data
	}
	pre := layers.NewKVCache(&m.Config, 1, 12)
	whole := m.Forward(nil, layers.Input{IDs: ids, B: 1, T: 12, Cache: pre}).Logits.Data
	kvRow := cfg.NumKeyValueHeads * cfg.HeadDim
	for layer := range inc.K {
		for slot := 0; slot < 12; slot++ {
			d := maxDiff(inc.K[layer][slot*kvRow:(slot+1)*kvRow], pre.K[layer][slot*kvRow:(slot+1)*kvRow])
			switch {
			case (slot == 0 || slot == 11 && layer == 0) && d > 1e-5: // same input and table (slot 0 is never rotated)
				t.Errorf("layer %d slot %d: cached key differs from the prefill's by %.3g", layer, slot, d)
			case slot > 0 && slot < 11 && d < 1e-4:
				t.Errorf("layer %d slot %d: cached key equals the prefill's (diff %.3g): it was re-rotated", layer, slot, d)
			}
		}
		if d := maxDiff(inc.V[layer][:12*kvRow], pre.V[layer][:12*kvRow]); layer == 0 && d > 1e-5 {
			t.Errorf("layer 0 values differ by %.3g (they carry no rotation)", d)
		}
	}
	// The whole-sequence prefill rotates every key with the 12-token table, so its last
	// logits differ from the incremental ones.
	V := cfg.VocabSize
	if d := maxDiff(last, whole[11*V:]); d < 1e-4 {
		t.Errorf("past max_position_embeddings the decode step equals the re-rotated prefill (diff %.3g)", d)
	}
}

func TestKVCacheRefusals(t *testing.T) {
	m, err := layers.New(tinyConfig())
	if err != nil {
		t.Fatal(err)
	}
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	c := layers.NewKVCache(&m.Config, 1, 4)
	mustPanic("overflow", func() { m.Forward(nil, layers.Input{IDs: tokens(5, 0), B: 1, T: 5, Cache: c}) })
	mustPanic("rows", func() { m.Forward(nil, layers.Input{IDs: tokens(2, 0), B: 2, T: 1, Cache: c}) })
	mustPanic("tape", func() { m.Forward(autograd.NewTape(), layers.Input{IDs: tokens(1, 0), B: 1, T: 1, Cache: c}) })
	mustPanic("docstart", func() {
		m.Forward(nil, layers.Input{IDs: tokens(2, 0), B: 1, T: 2, DocStart: []int32{0, 0}, Cache: c})
	})
}

// KeepLogits computes only each row's last k positions: those logits equal the rows of the
// full forward, the output is [B, k, V], and the cache is filled alike (the next step agrees).
func TestKeepLogitsLastRows(t *testing.T) {
	m, err := layers.New(tinyConfig())
	if err != nil {
		t.Fatal(err)
	}
	m.InitRandom(3, 0.3)
	V, B, T := m.Config.VocabSize, 2, 7
	ids := append(tokens(T, 4), tokens(T, 5)...)
	full := m.Forward(nil, layers.Input{IDs: ids, B: B, T: T}).Logits.Data
	for _, k := range []int{1, 3} {
		c1, c2 := layers.NewKVCache(&m.Config, B, T+1), layers.NewKVCache(&m.Config, B, T+1)
		out := m.Forward(nil, layers.Input{IDs: ids, B: B, T: T, Cache: c1, KeepLogits: k}).Logits
		if got := fmt.Sprint(out.Shape); got != fmt.Sprint([]int{B, k, V}) {
			t.Fatalf("k=%d: logits shape %s, want [%d %d %d]", k, got, B, k, V)
		}
		for r := range B {
			for j := range k {
				got := out.Data[(r*k+j)*V : (r*k+j+1)*V]
				want := full[(r*T+T-k+j)*V : (r*T+T-k+j+1)*V]
				if d := maxDiff(got, want); d > 2e-5 {
					t.Errorf("k=%d row %d kept position %d: max |logit diff| %.3g vs the full forward", k, r, j, d)
				}
			}
		}
		m.Forward(nil, layers.Input{IDs: ids, B: B, T: T, Cache: c2})
		step := []int32{3, 4}
		a := m.Forward(nil, layers.Input{IDs: step, B: B, T: 1, Cache: c1}).Logits.Data
		b := m.Forward(nil, layers.Input{IDs: step, B: B, T: 1, Cache: c2}).Logits.Data
		if d := maxDiff(a, b); d != 0 {
			t.Errorf("k=%d: the step after a KeepLogits prefill differs by %.3g", k, d)
		}
	}
	tp := autograd.NewTape()
	defer func() {
		if recover() == nil {
			t.Error("KeepLogits with a tape did not panic")
		}
	}()
	m.Forward(tp, layers.Input{IDs: ids, B: B, T: T, KeepLogits: 1})
}
