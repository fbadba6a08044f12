package moe_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/internal/golden"
	"github.com/gwen-ml/gwen/kernels"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/layers/safetensors"
	"github.com/gwen-ml/gwen/moe"
)

func randVec(r *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * scale)
	}
	return v
}

func to64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// Cyclic routing: row r puts its two large logits on experts r and r+1 (mod E). Every expert
// gets R·K/E slots and the mean probabilities are uniform, so aux = E·Σ (K/E)(1/E) = K.
func TestLoadBalancingLossBalancedIsTopK(t *testing.T) {
	for _, c := range []struct{ E, K int }{{4, 2}, {8, 2}, {6, 3}, {5, 1}} {
		R := 2 * c.E
		logits := make([]float32, R*c.E)
		for r := 0; r < R; r++ {
			for j := 0; j < c.K; j++ {
				logits[r*c.E+(r+j)%c.E] = 3 - 0.5*float32(j)
			}
		}
		// split the rows over two "layers": pooling must not change the value
		a := autograd.New(logits[:c.E*R/2], R/2, c.E)
		b := autograd.New(logits[c.E*R/2:], R/2, c.E)
		_, v := moe.LoadBalancingLoss(nil, []*autograd.Tensor{a, b}, c.E, c.K)
		if math.Abs(v-float64(c.K)) > 1e-6 {
			t.Errorf("E=%d K=%d balanced: aux %.9f, want %d", c.E, c.K, v, c.K)
		}
	}
	// All rows identical, logits [ln 3, 0], K=1: every row picks expert 0 (f = [1, 0]) with
	// p = [3/4, 1/4], so aux = 2·(1·3/4) = 1.5.
	l := autograd.New([]float32{float32(math.Log(3)), 0, float32(math.Log(3)), 0, float32(math.Log(3)), 0}, 3, 2)
	if _, v := moe.LoadBalancingLoss(nil, []*autograd.Tensor{l}, 2, 1); math.Abs(v-1.5) > 1e-6 {
		t.Errorf("collapsed routing: aux %.9f, want 1.5", v)
	}
}

// refLoadBalancing is load_balancing_loss_func in float64, written from its definition.
func refLoadBalancing(logits []float64, E, K int) float64 {
	R := len(logits) / E
	f, pm := make([]float64, E), make([]float64, E)
	for r := 0; r < R; r++ {
		p := softmax64(logits[r*E : (r+1)*E])
		for _, e := range top64(p, K) {
			f[e] += 1 / float64(R)
		}
		for e := range p {
			pm[e] += p[e] / float64(R)
		}
	}
	s := 0.0
	for e := range f {
		s += f[e] * pm[e]
	}
	return s * float64(E)
}

func softmax64(l []float64) []float64 {
	m := slices.Max(l)
	p := make([]float64, len(l))
	s := 0.0
	for i, v := range l {
		p[i] = math.Exp(v - m)
		s += p[i]
	}
	for i := range p {
		p[i] /= s
	}
	return p
}

// top64 is the indices of the k largest values, largest first, ties to the lower index.
func top64(p []float64, k int) []int {
	idx := make([]int, len(p))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return p[idx[a]] > p[idx[b]] })
	return idx[:k]
}

// checkFD compares analytic gradients with central differences of a float64 function f of
// the inputs, probing at most ~maxProbe elements per input.
func checkFD(t *testing.T, name string, ins []*autograd.Tensor, in64 [][]float64, f func([][]float64) float64, maxProbe int) {
	t.Helper()
	const h = 1e-6
	for i := range in64 {
		g := ins[i].Grad()
		step := max(1, len(in64[i])/maxProbe)
		for j := 0; j < len(in64[i]); j += step {
			old := in64[i][j]
			in64[i][j] = old + h
			lp := f(in64)
			in64[i][j] = old - h
			lm := f(in64)
			in64[i][j] = old
			fd := (lp - lm) / (2 * h)
			got := 0.0
			if g != nil {
				got = float64(g[j])
			}
			if math.Abs(got-fd) > 2e-3*(1+math.Abs(fd)) {
				t.Errorf("%s: d/d %s[%d] = %.7g, finite difference %.7g", name, ins[i], j, got, fd)
			}
		}
	}
}

func TestRouterLossGradients(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const E, K = 5, 2
	a := autograd.New(randVec(r, 7*E, 1), 7, E)
	b := autograd.New(randVec(r, 4*E, 1), 4, E)
	a.RequiresGrad, b.RequiresGrad = true, true
	ce := autograd.New([]float32{2.5}, 1)
	ce.RequiresGrad = true
	cfg := &layers.Config{NumExperts: E, NumExpertsPerTok: K, RouterAuxLossCoef: 0.3}
	tp := autograd.NewTape()
	total, parts := moe.AddRouterLosses(tp, ce, []*autograd.Tensor{a, b}, cfg, 0.05)
	ref := func(in [][]float64) float64 {
		all := append(slices.Clone(in[0]), in[1]...)
		z := 0.0
		for row := 0; row < len(all)/E; row++ {
			l := all[row*E : (row+1)*E]
			m := slices.Max(l)
			s := 0.0
			for _, v := range l {
				s += math.Exp(v - m)
			}
			z += (m + math.Log(s)) * (m + math.Log(s))
		}
		z /= float64(len(all) / E)
		return 2.5 + 0.3*refLoadBalancing(all, E, K) + 0.05*z
	}
	in64 := [][]float64{to64(a.Data), to64(b.Data)}
	if want := ref(in64); math.Abs(float64(total.Data[0])-want) > 1e-5 {
		t.Fatalf("total %.7f, float64 reference %.7f", total.Data[0], want)
	}
	if want := refLoadBalancing(append(slices.Clone(in64[0]), in64[1]...), E, K); math.Abs(parts.Aux-want) > 1e-6 {
		t.Fatalf("aux %.9f, float64 reference %.9f", parts.Aux, want)
	}
	tp.Backward(total)
	if ce.Grad()[0] != 1 {
		t.Errorf("d total / d ce = %v, want 1", ce.Grad()[0])
	}
	checkFD(t, "router losses", []*autograd.Tensor{a, b}, in64, ref, 60)
}

// refSparse is the sparse block in float64, token by token, from the transformers definition.
// in: x [N,D], router [E,D], then per expert gate [I,D], up [I,D], down [D,I].
func refSparse(in [][]float64, N, D, E, I, K int, norm bool) []float64 {
	x, wr := in[0], in[1]
	y := make([]float64, N*D)
	for n := 0; n < N; n++ {
		xn := x[n*D : (n+1)*D]
		l := make([]float64, E)
		for e := range l {
			for d := 0; d < D; d++ {
				l[e] += xn[d] * wr[e*D+d]
			}
		}
		p := softmax64(l)
		sel := top64(p, K)
		s := 0.0
		for _, e := range sel {
			s += p[e]
		}
		for _, e := range sel {
			w := p[e]
			if norm {
				w /= s
			}
			wg, wu, wd := in[2+3*e], in[3+3*e], in[4+3*e]
			h := make([]float64, I)
			for i := range h {
				var g, u float64
				for d := 0; d < D; d++ {
					g += xn[d] * wg[i*D+d]
					u += xn[d] * wu[i*D+d]
				}
				h[i] = g / (1 + math.Exp(-g)) * u
			}
			for d := 0; d < D; d++ {
				o := 0.0
				for i := range h {
					o += h[i] * wd[d*I+i]
				}
				y[n*D+d] += w * o
			}
		}
	}
	return y
}

// minTopKGap is the smallest gap, over tokens, between the K-th and (K+1)-th probability:
// perturbations much smaller than it cannot change the choice.
func minTopKGap(in [][]float64, N, D, E, K int) float64 {
	gap := math.Inf(1)
	for n := 0; n < N; n++ {
		l := make([]float64, E)
		for e := range l {
			for d := 0; d < D; d++ {
				l[e] += in[0][n*D+d] * in[1][e*D+d]
			}
		}
		p := softmax64(l)
		s := slices.Clone(p)
		sort.Sort(sort.Reverse(sort.Float64Slice(s)))
		if K < E {
			gap = min(gap, s[K-1]-s[K])
		}
	}
	return gap
}

func newSparse(t *testing.T, E, K, D, I int, norm bool) *moe.Sparse {
	t.Helper()
	cfg := &layers.Config{ModelType: "qwen3_moe", HiddenSize: D, NumExperts: E, NumExpertsPerTok: K, MoEIntermediateSize: I, NormTopKProb: norm}
	s, err := moe.New(cfg, 0, func(name string, shape ...int) *autograd.Tensor {
		n := 1
		for _, v := range shape {
			n *= v
		}
		return autograd.Param(name, make([]float32, n), shape...)
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The whole block (router Linear + MixExperts) against float64 finite differences of refSparse,
// w.r.t. x, the router and every expert weight, renormalised or not, K=1 and K=2.
func TestSparseGradients(t *testing.T) {
	const N, D, E, I = 9, 6, 5, 4
	for _, c := range []struct {
		K    int
		norm bool
	}{{2, true}, {2, false}, {1, true}, {1, false}, {5, true}} {
		t.Run(fmt.Sprintf("K=%d norm=%v", c.K, c.norm), func(t *testing.T) {
			s := newSparse(t, E, c.K, D, I, c.norm)
			var in64 [][]float64
			var ins []*autograd.Tensor
			for seed := uint64(1); ; seed++ {
				r := rand.New(rand.NewPCG(seed, 99))
				x := autograd.New(randVec(r, N*D, 1), N, D)
				x.RequiresGrad = true
				ins = []*autograd.Tensor{x}
				for _, p := range s.Params() {
					copy(p.Data, randVec(r, len(p.Data), 0.7))
					ins = append(ins, p)
				}
				in64 = nil
				for _, p := range ins {
					in64 = append(in64, to64(p.Data))
				}
				if minTopKGap(in64, N, D, E, c.K) > 1e-3 {
					break
				}
			}
			tp := autograd.NewTape()
			y, logits := s.Forward(tp, ins[0], false)
			if len(logits.Data) != N*E {
				t.Fatalf("router logits %v, want [%d %d]", logits.Shape, N, E)
			}
			want := refSparse(in64, N, D, E, I, c.K, c.norm)
			for j := range want {
				if math.Abs(float64(y.Data[j])-want[j]) > 1e-5*(1+math.Abs(want[j])) {
					t.Fatalf("y[%d] = %.7g, float64 reference %.7g", j, y.Data[j], want[j])
				}
			}
			wr := rand.New(rand.NewPCG(3, 4))
			rw := randVec(wr, len(y.Data), 1)
			tp.BackwardFrom(y, rw)
			loss := func(in [][]float64) float64 {
				o := refSparse(in, N, D, E, I, c.K, c.norm)
				sum := 0.0
				for j, v := range o {
					sum += float64(rw[j]) * v
				}
				return sum
			}
			checkFD(t, "sparse block", ins, in64, loss, 30)
			st := s.Stats()
			total := 0
			for _, n := range st.TokensPerExpert {
				total += n
			}
			if total != N*c.K || st.MaxLoad < st.MinLoad || st.MaxLoad != slices.Max(st.TokensPerExpert) {
				t.Errorf("stats %+v: loads must sum to N·K = %d", st, N*c.K)
			}
		})
	}
}

// With a zero router every probability ties at 1/E: the choice is the lowest indices, in
// order, and renormalised weights are 1/K. Tokens then all go to experts 0..K-1.
func TestTiesChooseLowestIndex(t *testing.T) {
	const N, D, E, K, I = 3, 4, 6, 3, 2
	s := newSparse(t, E, K, D, I, true)
	x := autograd.New(randVec(rand.New(rand.NewPCG(1, 1)), N*D, 1), N, D)
	s.Forward(nil, x, false)
	r := s.Routing()
	for n := 0; n < N; n++ {
		for j := 0; j < K; j++ {
			if r.Experts[n*K+j] != int32(j) || math.Abs(float64(r.Weights[n*K+j])-1.0/K) > 1e-7 {
				t.Fatalf("token %d slot %d: expert %d weight %v, want expert %d weight 1/3", n, j, r.Experts[n*K+j], r.Weights[n*K+j], j)
			}
		}
	}
	st := s.Stats()
	if want := []int{3, 3, 3, 0, 0, 0}; !slices.Equal(st.TokensPerExpert, want) || st.MaxLoad != 3 || st.MinLoad != 0 {
		t.Errorf("stats %+v, want loads %v, max 3, min 0", st, want)
	}
	// f = [1,1,1,0,0,0], P̄ = 1/6 each: aux = 6·3·(1/6) = 3 = K, though the load is unbalanced.
	if math.Abs(st.AuxLoss-3) > 1e-6 {
		t.Errorf("layer aux %.9f, want 3", st.AuxLoss)
	}
}

// In bf16 the router stays fp32: the logits equal the fp32 run's exactly, while the expert
// output differs by bf16 rounding.
func TestBF16KeepsRouterFP32(t *testing.T) {
	const N, D, E, K, I = 16, 32, 4, 2, 24
	s := newSparse(t, E, K, D, I, true)
	r := rand.New(rand.NewPCG(8, 8))
	for _, p := range s.Params() {
		copy(p.Data, randVec(r, len(p.Data), 0.3))
	}
	x := autograd.New(randVec(r, N*D, 1), N, D)
	y32, l32 := s.Forward(nil, x, false)
	y16, l16 := s.Forward(nil, x, true)
	if !slices.Equal(l32.Data, l16.Data) {
		t.Errorf("router logits differ between fp32 and bf16 runs")
	}
	d := golden.Compare(y16.Data, y32.Data, 1)
	if d.Max == 0 || d.Max > 0.05*d.MaxRef {
		t.Errorf("bf16 expert output vs fp32: %v (want rounding-size differences, not 0)", d)
	}
}

func moeConfig(layersN, step int, mlpOnly []int) layers.Config {
	return layers.Config{ModelType: "qwen3_moe", VocabSize: 16, HiddenSize: 8, IntermediateSize: 12,
		NumHiddenLayers: layersN, NumAttentionHeads: 2, NumKeyValueHeads: 1, HeadDim: 4,
		MaxPositionEmbeddings: 32, RMSNormEps: 1e-6, RopeTheta: 10000,
		NumExperts: 4, NumExpertsPerTok: 2, MoEIntermediateSize: 6, NormTopKProb: true,
		DecoderSparseStep: step, MLPOnlyLayers: mlpOnly, RouterAuxLossCoef: 0.01}
}

// Which layers are sparse follows transformers' rule: (i+1) % decoder_sparse_step == 0 and
// i not in mlp_only_layers (hand-listed expectations).
func TestSparseLayerPlacement(t *testing.T) {
	for _, c := range []struct {
		step    int
		mlpOnly []int
		want    []int
	}{
		{1, nil, []int{0, 1, 2, 3, 4, 5}},
		{2, nil, []int{1, 3, 5}},
		{3, nil, []int{2, 5}},
		{1, []int{0, 4}, []int{1, 2, 3, 5}},
		{2, []int{3}, []int{1, 5}},
		{7, nil, nil},
	} {
		m, err := layers.New(moeConfig(6, c.step, c.mlpOnly))
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		names := map[string]bool{}
		for _, p := range m.Params() {
			names[p.Name] = true
		}
		for i, b := range m.Blocks {
			if (b.Sparse != nil) == (b.MLP != nil) {
				t.Fatalf("layer %d has sparse %v and dense %v", i, b.Sparse != nil, b.MLP != nil)
			}
			pre := fmt.Sprintf("model.layers.%d.mlp.", i)
			if b.Sparse != nil {
				got = append(got, i)
				if !names[pre+"gate.weight"] || !names[pre+"experts.3.down_proj.weight"] || names[pre+"gate_proj.weight"] {
					t.Errorf("sparse layer %d lacks HF expert names", i)
				}
			} else if !names[pre+"gate_proj.weight"] || names[pre+"gate.weight"] {
				t.Errorf("dense layer %d lacks HF MLP names", i)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("decoder_sparse_step %d, mlp_only_layers %v: sparse layers %v, want %v", c.step, c.mlpOnly, got, c.want)
		}
	}
	// Params order within a sparse block: gate, then each expert's gate_proj, up_proj, down_proj.
	m, _ := layers.New(moeConfig(1, 1, nil))
	var mlp []string
	for _, p := range m.Blocks[0].Sparse.Params() {
		mlp = append(mlp, strings.TrimPrefix(p.Name, "model.layers.0."))
	}
	want := []string{"mlp.gate.weight"}
	for e := 0; e < 4; e++ {
		for _, pr := range []string{"gate_proj", "up_proj", "down_proj"} {
			want = append(want, fmt.Sprintf("mlp.experts.%d.%s.weight", e, pr))
		}
	}
	if !slices.Equal(mlp, want) {
		t.Errorf("sparse params %v, want %v", mlp, want)
	}
}

// corruptCopy writes tiny-moe's weights into a temporary folder after edit changes the
// tensor list and the config map, and returns the folder.
func corruptCopy(t *testing.T, edit func(ts []safetensors.Tensor, cfg map[string]any) []safetensors.Tensor) string {
	t.Helper()
	src := golden.Dir("tiny-moe")
	ts, err := golden.ReadAll(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Skipf("tiny-moe golden folder unreadable: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	ts = edit(ts, cfg)
	dir := t.TempDir()
	if b, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestBadMoECheckpoints(t *testing.T) {
	drop := func(name string) func([]safetensors.Tensor, map[string]any) []safetensors.Tensor {
		return func(ts []safetensors.Tensor, _ map[string]any) []safetensors.Tensor {
			return slices.DeleteFunc(ts, func(x safetensors.Tensor) bool { return x.Name == name })
		}
	}
	reshape := func(name string, shape ...int) func([]safetensors.Tensor, map[string]any) []safetensors.Tensor {
		return func(ts []safetensors.Tensor, _ map[string]any) []safetensors.Tensor {
			for i := range ts {
				if ts[i].Name == name {
					n := 1
					for _, s := range shape {
						n *= s
					}
					ts[i].Shape, ts[i].F32 = shape, make([]float32, n)
				}
			}
			return ts
		}
	}
	setCfg := func(k string, v any) func([]safetensors.Tensor, map[string]any) []safetensors.Tensor {
		return func(ts []safetensors.Tensor, cfg map[string]any) []safetensors.Tensor { cfg[k] = v; return ts }
	}
	for _, c := range []struct {
		name string
		edit func([]safetensors.Tensor, map[string]any) []safetensors.Tensor
		want []string // every one must appear in the error
	}{
		{"missing expert", drop("model.layers.2.mlp.experts.5.up_proj.weight"), []string{"model.layers.2.mlp.experts.5.up_proj.weight"}},
		{"missing router", drop("model.layers.1.mlp.gate.weight"), []string{"model.layers.1.mlp.gate.weight"}},
		{"expert shape", reshape("model.layers.1.mlp.experts.3.down_proj.weight", 64, 33), []string{"model.layers.1.mlp.experts.3.down_proj.weight", "[64 33]", "[64 32]"}},
		{"router shape", reshape("model.layers.2.mlp.gate.weight", 7, 64), []string{"model.layers.2.mlp.gate.weight", "[7 64]"}},
		{"top-k > experts", setCfg("num_experts_per_tok", 9), []string{"num_experts_per_tok", "9", "8"}},
		{"fewer experts in config", setCfg("num_experts", 6), []string{"model.layers.1.mlp.experts.6"}},
		{"moe_intermediate_size contradicts", setCfg("moe_intermediate_size", 48), []string{"model.layers.1.mlp.experts.0.gate_proj.weight", "[32 64]", "[48 64]"}},
		{"missing num_experts", func(ts []safetensors.Tensor, cfg map[string]any) []safetensors.Tensor {
			delete(cfg, "num_experts")
			return ts
		}, []string{"num_experts"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := corruptCopy(t, c.edit)
			_, err := layers.Load(dir)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// MixExperts in mixed precision follows the rule in forward and backward: every expert product
// multiplies bfloat16-rounded operands (x, h and the weights forward; dy, the weighted dy, dg,
// du, x, h and the weights backward) and sums in fp32. Checked against a float64 evaluation of
// that rule; the tolerance allows a rounding of an fp32 intermediate (h, dg, du) to land on the
// other side of a bfloat16 boundary.
func TestMixExpertsBF16Rule(t *testing.T) {
	const N, D, E, K, I = 24, 32, 4, 2, 40
	r := rand.New(rand.NewPCG(12, 13))
	rb := func(v float32) float64 { return float64(kernels.RoundBF16Value(v)) }
	x := autograd.New(randVec(r, N*D, 1), N, D)
	x.RequiresGrad = true
	logits := autograd.New(randVec(r, N*E, 1), N, E)
	logits.RequiresGrad = true
	experts := make([]moe.Expert, E)
	for e := range experts {
		experts[e] = moe.Expert{
			Gate: autograd.Param("g", randVec(r, I*D, 0.3), I, D),
			Up:   autograd.Param("u", randVec(r, I*D, 0.3), I, D),
			Down: autograd.Param("d", randVec(r, D*I, 0.3), D, I),
		}
	}
	tp := autograd.NewTape()
	y, rt := moe.MixExperts(tp, x, logits, experts, K, true, true)
	dy := randVec(r, N*D, 1)
	yv := slices.Clone(y.Data) // the tape recycles y's memory in backward
	tp.BackwardFrom(y, dy)

	wantY, wantDx := make([]float64, N*D), make([]float64, N*D)
	wantDg, wantDu, wantDd := make([][]float64, E), make([][]float64, E), make([][]float64, E)
	for e := range E {
		wantDg[e], wantDu[e], wantDd[e] = make([]float64, I*D), make([]float64, I*D), make([]float64, D*I)
	}
	for n := range N {
		for j := range K {
			e, w := int(rt.Experts[n*K+j]), rt.Weights[n*K+j]
			ex := experts[e]
			g, u, h, hr := make([]float64, I), make([]float64, I), make([]float64, I), make([]float64, I)
			for i := range I {
				for d := range D {
					g[i] += rb(x.Data[n*D+d]) * rb(ex.Gate.Data[i*D+d])
					u[i] += rb(x.Data[n*D+d]) * rb(ex.Up.Data[i*D+d])
				}
				sig := 1 / (1 + math.Exp(-g[i]))
				h[i] = g[i] * sig * u[i]
				hr[i] = rb(float32(h[i]))
			}
			dhu := make([]float64, I)
			for d := range D {
				var o float64
				for i := range I {
					o += hr[i] * rb(ex.Down.Data[d*I+i])
					dhu[i] += rb(dy[n*D+d]) * rb(ex.Down.Data[d*I+i])
					wantDd[e][d*I+i] += rb(w*dy[n*D+d]) * hr[i]
				}
				wantY[n*D+d] += float64(w) * o
			}
			for i := range I {
				sig := 1 / (1 + math.Exp(-g[i]))
				dh := float64(w) * dhu[i]
				dg := rb(float32(dh * u[i] * sig * (1 + g[i]*(1-sig))))
				du := rb(float32(dh * g[i] * sig))
				for d := range D {
					wantDg[e][i*D+d] += dg * rb(x.Data[n*D+d])
					wantDu[e][i*D+d] += du * rb(x.Data[n*D+d])
					wantDx[n*D+d] += dg*rb(ex.Gate.Data[i*D+d]) + du*rb(ex.Up.Data[i*D+d])
				}
			}
		}
	}
	check := func(name string, got []float32, want []float64) {
		t.Helper()
		scale := 0.0
		for _, v := range want {
			scale = max(scale, math.Abs(v))
		}
		for i := range want {
			if math.Abs(float64(got[i])-want[i]) > 4e-3*scale {
				t.Fatalf("%s[%d] = %v, want %v (largest |value| %.3g)", name, i, got[i], want[i], scale)
			}
		}
	}
	check("y", yv, wantY)
	check("dx", x.Grad(), wantDx)
	for e, ex := range experts {
		check(fmt.Sprintf("expert %d dgate", e), ex.Gate.Grad(), wantDg[e])
		check(fmt.Sprintf("expert %d dup", e), ex.Up.Grad(), wantDu[e])
		check(fmt.Sprintf("expert %d ddown", e), ex.Down.Grad(), wantDd[e])
	}
}

// A tape-less forward of an MoE model hands back router logits of its own, one per sparse
// layer, equal to a recording forward's and untouched by the next tape-less forward.
func TestTapelessForwardKeepsRouterLogits(t *testing.T) {
	m, err := layers.New(moeConfig(3, 1, nil))
	if err != nil {
		t.Fatal(err)
	}
	m.InitRandom(4, 0.5)
	ids := []int32{1, 5, 9, 2, 3, 15, 7, 0}
	in := layers.Input{IDs: ids, B: 2, T: 4}
	rec := m.Forward(autograd.NewTape(), in)
	var want [][]float32
	for _, r := range rec.RouterLogits {
		want = append(want, slices.Clone(r.Data))
	}
	first := m.Forward(nil, in)
	m.Forward(nil, layers.Input{IDs: []int32{4, 4, 4, 4, 8, 8, 8, 8}, B: 2, T: 4})
	if len(first.RouterLogits) != 3 {
		t.Fatalf("%d router logits, want one per sparse layer (3)", len(first.RouterLogits))
	}
	for i, r := range first.RouterLogits {
		if !slices.Equal(r.Data, want[i]) {
			t.Fatalf("layer %d: tape-less router logits differ from the recording forward's after a second forward", i)
		}
	}
}
