package layers_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/internal/golden"
	"github.com/gwen-ml/gwen/layers"
)

// This test binary never registers an MoE implementation (it does not import moe): a program
// that forgets moe.Register() must be told how to fix it, by New and by Load.
func TestMoEWithoutRegisterNamesTheFix(t *testing.T) {
	cfg := layers.Config{ModelType: "qwen3_moe", VocabSize: 16, HiddenSize: 8, IntermediateSize: 12,
		NumHiddenLayers: 2, NumAttentionHeads: 2, NumKeyValueHeads: 1, HeadDim: 4,
		MaxPositionEmbeddings: 32, RMSNormEps: 1e-6, RopeTheta: 10000,
		NumExperts: 4, NumExpertsPerTok: 2, MoEIntermediateSize: 6, DecoderSparseStep: 2}
	m, err := layers.New(cfg)
	if err == nil || !strings.Contains(err.Error(), "call moe.Register()") || !strings.Contains(err.Error(), "layer 1") {
		t.Fatalf("New(qwen3_moe) = %v, %v; want an error naming layer 1 and moe.Register()", m, err)
	}
	// The same config with no sparse layer (decoder_sparse_step beyond the depth) builds.
	cfg.DecoderSparseStep = 3
	if _, err := layers.New(cfg); err != nil {
		t.Fatalf("a qwen3_moe config without sparse layers: %v", err)
	}

	dir := golden.Dir("tiny-moe")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("golden folder %s is absent: %v", dir, err)
	}
	_, err = layers.Load(dir)
	if err == nil || !strings.Contains(err.Error(), "call moe.Register()") || !strings.Contains(err.Error(), filepath.Join(dir, "config.json")) {
		t.Fatalf("Load(tiny-moe) = %v; want an error naming config.json and moe.Register()", err)
	}
}

func TestRegisterSparseNilPanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "nil builder") {
			t.Errorf("RegisterSparse(nil) recovered %v, want a panic naming the nil builder", r)
		}
	}()
	layers.RegisterSparse(nil)
}
