package main

import (
	"bytes"
	"encoding/json"
	"math"
	"path/filepath"
	"testing"

	"github.com/gwen-ml/gwen/internal/golden"
)

// gwen bench runs real training steps: on the golden model the loss it logs for the first
// step is the model's loss on its random batch (finite, near ln V for a fresh model) and goes
// down as AdamW trains on the same batch.
func TestBenchCommandTrains(t *testing.T) {
	cfg := filepath.Join(golden.Dir("tiny-dense"), "config.json")
	var stdout, stderr bytes.Buffer
	code := run([]string{"bench", "--config", cfg, "--batch", "2", "--seq", "16", "--warmup", "0", "--steps", "8", "--peak=false"}, nil, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var res benchResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("output %q: %v", stdout.String(), err)
	}
	if res.TokensPerS <= 0 || len(res.StepS) != 8 || res.PeakRSSMB <= 0 || len(res.Losses) != 8 {
		t.Fatalf("implausible result %+v", res)
	}
	if l0 := res.Losses[0]; math.Abs(l0-math.Log(512)) > 0.5 {
		t.Errorf("first loss %.3f, want near ln(512) = %.3f for a fresh model", l0, math.Log(512))
	}
	if res.Losses[7] >= res.Losses[0] {
		t.Errorf("losses %v do not decrease while training on one batch", res.Losses)
	}
}

// gwen bench --mode decode generates with the KV cache and reports bench_torch.py's fields.
func TestBenchCommandDecodes(t *testing.T) {
	cfg := filepath.Join(golden.Dir("tiny-dense"), "config.json")
	var stdout, stderr bytes.Buffer
	code := run([]string{"bench", "--config", cfg, "--mode", "decode", "--prompt", "6", "--new", "5", "--warmup", "0", "--steps", "2"}, nil, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var res decodeResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("output %q: %v", stdout.String(), err)
	}
	if res.Name != "decode_f32" || res.Prompt != 6 || res.NewTokens != 5 || res.DecodeTokPerS <= 0 || res.PrefillTokPerS <= 0 {
		t.Fatalf("implausible result %+v", res)
	}
	// The bandwidth figure is fp32's 4 bytes per matmul parameter at the median decode rate.
	want := 4 * float64(res.MatmulParamsTok) * res.DecodeTokPerS / 1e9
	if math.Abs(res.WeightGBPerS-want) > 1e-9*want || want <= 0 {
		t.Errorf("weights_gb_per_s %v, want 4 B × %d params × %v tok/s = %v GB/s", res.WeightGBPerS, res.MatmulParamsTok, res.DecodeTokPerS, want)
	}
}
