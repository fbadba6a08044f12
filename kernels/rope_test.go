package kernels

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"testing"
)

func TestRoPERefGradients(t *testing.T) {
	rng := newRNG(10)
	n, heads, hd, rows := 5, 3, 8, 11
	x, r := randF64(rng, n*heads*hd, 2), randF64(rng, n*heads*hd, 1)
	cos, sin := randF64(rng, rows*hd, 1), randF64(rng, rows*hd, 1) // any tables: R is linear in x
	pos := []int32{0, 10, 3, 3, 7}
	loss := func() float64 {
		y := make([]float64, len(x))
		RoPEForwardRef(y, x, pos, cos, sin, n, heads, hd)
		return dot64(r, y)
	}
	dx0 := randF64(rng, len(x), 1)
	dx := clone(dx0)
	RoPEBackwardRef(dx, r, pos, cos, sin, n, heads, hd)
	checkGrad(t, "RoPE dx", x, sub(dx, dx0), loss, 200, 1e-6, 1e-10)
}

// Hand check: hd=2, angle θ: (x1, x2) → (x1 cosθ − x2 sinθ, x2 cosθ + x1 sinθ).
func TestRoPEHandRotation(t *testing.T) {
	inv, sc := RoPE{Theta: 10000, HeadDim: 2}.InvFreq(4)
	if inv[0] != 1 || sc != 1 {
		t.Fatalf("hd=2 inv_freq = %v scaling %v, want [1] and 1", inv, sc)
	}
	cos, sin := make([]float32, 4*2), make([]float32, 4*2)
	RoPETables(cos, sin, inv, 1, 4, 2)
	y := make([]float32, 2)
	RoPEForward(y, []float32{1, 2}, []int32{3}, cos, sin, 1, 1, 2)
	c, s := math.Cos(3), math.Sin(3)
	closeTo(t, "y", y, []float32{float32(c - 2*s), float32(2*c + s)}, 1e-6, 0)
}

func TestRoPEFastMatchesRef(t *testing.T) {
	rng := newRNG(11)
	for _, sz := range [][3]int{{1, 1, 2}, {3, 2, 6}, {300, 8, 64}, {1000, 2, 16}} {
		n, heads, hd := sz[0], sz[1], sz[2]
		rows := n + 3
		inv, sc := RoPE{Theta: 1e6, HeadDim: hd}.InvFreq(rows)
		cos, sin := make([]float32, rows*hd), make([]float32, rows*hd)
		RoPETables(cos, sin, inv, sc, rows, hd)
		pos := make([]int32, n)
		for i := range pos {
			pos[i] = int32(rng.IntN(rows))
		}
		x, dy := randF32(rng, n*heads*hd, 2), randF32(rng, n*heads*hd, 1)
		y, yr := make([]float32, len(x)), make([]float32, len(x))
		RoPEForward(y, x, pos, cos, sin, n, heads, hd)
		RoPEForwardRef(yr, x, pos, cos, sin, n, heads, hd)
		closeTo(t, label("y %v", sz), y, yr, 1e-6, 1e-6)
		alias := clone(x)
		RoPEForward(alias, alias, pos, cos, sin, n, heads, hd)
		closeTo(t, "y in place", alias, y, 0, 0)
		dx0 := randF32(rng, len(x), 1)
		dx, dxr := clone(dx0), clone(dx0)
		RoPEBackward(dx, dy, pos, cos, sin, n, heads, hd)
		RoPEBackwardRef(dxr, dy, pos, cos, sin, n, heads, hd)
		closeTo(t, label("dx %v", sz), dx, dxr, 1e-6, 1e-6)
	}
}

// ropeGoldenCase is one entry of testdata/rope/rope.json (transformers' outputs).
type ropeGoldenCase struct {
	HeadDim          int                `json:"head_dim"`
	MaxPos           int                `json:"max_position_embeddings"`
	Theta            float64            `json:"rope_theta"`
	SeqLens          []int              `json:"seq_lens"`
	AttentionScaling map[string]float64 `json:"attention_scaling"`
	Scaling          *struct {
		Type     string  `json:"rope_type"`
		Factor   float64 `json:"factor"`
		Orig     int     `json:"original_max_position_embeddings"`
		BetaFast float64 `json:"beta_fast"`
		BetaSlow float64 `json:"beta_slow"`
		AttFac   float64 `json:"attention_factor"`
		MScale   float64 `json:"mscale"`
		MScaleAD float64 `json:"mscale_all_dim"`
		Truncate *bool   `json:"truncate"`
	} `json:"rope_scaling"`
}

// readF32Safetensors is a minimal safetensors reader for this test (F32 tensors only).
func readF32Safetensors(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hlen := binary.LittleEndian.Uint64(raw[:8])
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+hlen], &header); err != nil {
		t.Fatalf("%s: header: %v", path, err)
	}
	data := raw[8+hlen:]
	out := map[string][]float32{}
	for name, msg := range header {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			Dtype   string `json:"dtype"`
			Offsets [2]int `json:"data_offsets"`
		}
		if err := json.Unmarshal(msg, &e); err != nil || e.Dtype != "F32" {
			t.Fatalf("%s: tensor %s: dtype %q err %v", path, name, e.Dtype, err)
		}
		b := data[e.Offsets[0]:e.Offsets[1]]
		v := make([]float32, len(b)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		out[name] = v
	}
	return out
}

func TestRoPEGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/rope/rope.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases map[string]ropeGoldenCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	tensors := readF32Safetensors(t, "testdata/rope/rope.safetensors")
	names := make([]string, 0, len(doc.Cases))
	for name := range doc.Cases {
		names = append(names, name)
	}
	sort.Strings(names)
	checked := 0
	for _, name := range names {
		c := doc.Cases[name]
		r := RoPE{Theta: c.Theta, HeadDim: c.HeadDim, MaxPositionEmbeddings: c.MaxPos}
		if s := c.Scaling; s != nil {
			r.Type, r.Factor, r.OriginalMaxPositionEmbeddings = s.Type, s.Factor, s.Orig
			r.BetaFast, r.BetaSlow, r.AttentionFactor = s.BetaFast, s.BetaSlow, s.AttFac
			r.MScale, r.MScaleAllDim, r.Truncate = s.MScale, s.MScaleAD, s.Truncate
		}
		for _, L := range c.SeqLens {
			key := fmt.Sprintf("%s.T%d", name, L)
			inv, sc := r.InvFreq(L)
			wantInv := tensors[key+".inv_freq"]
			if wantInv == nil {
				t.Fatalf("%s: no inv_freq tensor", key)
			}
			closeTo(t, key+".inv_freq", inv, wantInv, 1e-9, 1e-6)
			if want := c.AttentionScaling[strconv.Itoa(L)]; math.Abs(float64(sc)-want) > 1e-6 {
				t.Errorf("%s: attention scaling %v, want %v", key, sc, want)
			}
			cos, sin := make([]float32, L*c.HeadDim), make([]float32, L*c.HeadDim)
			RoPETables(cos, sin, inv, sc, L, c.HeadDim)
			closeTo(t, key+".cos", cos, tensors[key+".cos"], 1e-6, 1e-6)
			closeTo(t, key+".sin", sin, tensors[key+".sin"], 1e-6, 1e-6)
			checked++
		}
	}
	if checked < 10 {
		t.Fatalf("only %d golden (case, length) pairs checked", checked)
	}
}

// YaRN options the golden cases do not exercise, against values worked out from the formulas
// (YaRN paper / transformers' _compute_yarn_parameters).
func TestRoPEYarnOptions(t *testing.T) {
	base := RoPE{Type: "yarn", Theta: 1e4, HeadDim: 16, Factor: 4, MaxPositionEmbeddings: 128, OriginalMaxPositionEmbeddings: 32}
	ln4 := math.Log(4)

	r := base
	r.MScale, r.MScaleAllDim = 1, 0.5
	if _, sc := r.InvFreq(10); math.Abs(float64(sc)-(0.1*ln4+1)/(0.05*ln4+1)) > 1e-6 {
		t.Errorf("mscale/mscale_all_dim scaling %v, want %v", sc, (0.1*ln4+1)/(0.05*ln4+1))
	}
	r = base
	r.MScale = 2 // without mscale_all_dim transformers ignores mscale
	if _, sc := r.InvFreq(10); math.Abs(float64(sc)-(0.1*ln4+1)) > 1e-6 {
		t.Errorf("mscale alone: scaling %v, want %v", sc, 0.1*ln4+1)
	}
	r = base
	r.AttentionFactor = 0.7
	if _, sc := r.InvFreq(10); math.Abs(float64(sc)-0.7) > 1e-7 {
		t.Errorf("explicit attention_factor: %v, want 0.7", sc)
	}

	// Correction range for dim 16, base 1e4, original 32: low = dim·ln(32/(32·2π))/(2 ln 1e4)
	// < 0 → 0; high = dim·ln(32/(1·2π))/(2 ln 1e4) ≈ 1.414, ceil → 2 when truncating.
	high := 16 * math.Log(32/(2*math.Pi)) / (2 * math.Log(1e4))
	extra1 := 1 / math.Pow(1e4, 2.0/16)
	want := func(ramp float64) float64 { // inv_freq[1] for a given ramp value
		ef := 1 - ramp
		return extra1/4*(1-ef) + extra1*ef
	}
	inv, _ := base.InvFreq(10)
	if math.Abs(float64(inv[1])-want(0.5)) > 1e-6*want(0.5) {
		t.Errorf("truncated yarn inv_freq[1] = %v, want %v", inv[1], want(0.5))
	}
	no := false
	r = base
	r.Truncate = &no
	inv, _ = r.InvFreq(10)
	if math.Abs(float64(inv[1])-want(1/high)) > 1e-6*want(1/high) {
		t.Errorf("untruncated yarn inv_freq[1] = %v, want %v (high %v)", inv[1], want(1/high), high)
	}
	if math.Abs(float64(inv[0])-1) > 1e-7 || math.Abs(float64(inv[7])-1/math.Pow(1e4, 14.0/16)/4) > 1e-6*float64(inv[7]) {
		t.Errorf("yarn ends: inv_freq[0] = %v (want extrapolated 1), inv_freq[7] = %v (want interpolated)", inv[0], inv[7])
	}
}

func TestRoPEUnknownTypePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for rope type longrope")
		}
	}()
	RoPE{Type: "longrope", Theta: 1e4, HeadDim: 8}.InvFreq(4)
}
