package lora_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/internal/golden"
	"github.com/gwen-ml/gwen/kernels"
	"github.com/gwen-ml/gwen/layers"
	"github.com/gwen-ml/gwen/lora"
)

// batch is the base golden's input_ids and labels.
type batch struct {
	ids, labels []int32
	b, t        int
}

func goldenBatch(t *testing.T) batch {
	t.Helper()
	g, err := golden.Open("tiny-dense")
	if err != nil {
		t.Fatal(err)
	}
	sh := g.Shape("input_ids")
	return batch{g.I32("input_ids"), g.I32("labels"), sh[0], sh[1]}
}

// lossAndGrads runs forward and backward on a new tape and returns a copy of the logits, the
// loss and a copy of every parameter's gradient (nil where none flowed), by parameter name.
func lossAndGrads(t *testing.T, m *layers.Model, ps []*autograd.Tensor, in batch) ([]float32, float64, map[string][]float32) {
	t.Helper()
	for _, p := range ps {
		p.ZeroGrad()
	}
	tp := autograd.NewTape()
	logits := m.Forward(tp, layers.Input{IDs: in.ids, B: in.b, T: in.t}).Logits
	out := slices.Clone(logits.Data)
	loss, _, _ := autograd.CrossEntropy(tp, logits.Reshape(in.b*in.t, m.Config.VocabSize), layers.CausalTargets(in.labels, in.b, in.t), 0)
	l := float64(loss.Data[0])
	tp.Backward(loss)
	grads := map[string][]float32{}
	for _, p := range ps {
		if g := p.Grad(); g != nil {
			grads[p.Name] = slices.Clone(g)
		} else {
			grads[p.Name] = nil
		}
	}
	return out, l, grads
}

// The golden PEFT adapter attached unmerged: logits, loss and every lora_grad match the
// independent float64 reference at the README's tolerances; the frozen base gets no gradient.
func TestAttachPEFTMatchesGolden(t *testing.T) {
	g, err := golden.Open("tiny-dense/lora")
	if err != nil {
		t.Fatal(err)
	}
	p, err := lora.Load(golden.Dir("tiny-dense/lora"))
	if err != nil {
		t.Fatal(err)
	}
	m := loadBase(t)
	set, err := lora.AttachPEFT(m, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Params()) != 28 {
		t.Fatalf("%d adapter tensors, want 28", len(set.Params()))
	}
	all := append(m.Params(), set.Params()...)
	logits, loss, grads := lossAndGrads(t, m, all, goldenBatch(t))
	if d := golden.Compare(logits, g.F32("lora.logits"), 1e-4); d.Max > 1e-4 {
		t.Errorf("logits: %s", d)
	}
	if d := loss - g.Scalar("lora_loss"); math.Abs(d) > 1e-5 {
		t.Errorf("loss %v, golden %v", loss, g.Scalar("lora_loss"))
	}
	n := 0
	for _, name := range g.Tensors.Names() {
		key, ok := strings.CutPrefix(name, "lora_grad.")
		if !ok {
			continue
		}
		n++
		want := g.F32(name)
		if d := golden.Compare(grads[key], want, golden.GradTol(want)); d.Max > golden.GradTol(want) {
			t.Errorf("%s: %s", key, d)
		}
	}
	if n != 28 {
		t.Errorf("compared %d lora gradients, want 28", n)
	}
	for _, bp := range m.Params() {
		if grads[bp.Name] != nil || bp.RequiresGrad {
			t.Errorf("frozen base parameter %s: RequiresGrad %v, gradient %v", bp.Name, bp.RequiresGrad, grads[bp.Name] != nil)
		}
	}
	// Disabled: the base alone, to the bit.
	set.SetDisabled(true)
	got := m.Forward(nil, layers.Input{IDs: goldenBatch(t).ids, B: goldenBatch(t).b, T: goldenBatch(t).t}).Logits.Data
	set.Detach()
	want := m.Forward(nil, layers.Input{IDs: goldenBatch(t).ids, B: goldenBatch(t).b, T: goldenBatch(t).t}).Logits.Data
	if !slices.Equal(got, want) {
		t.Errorf("disabled set: logits differ from the base model's")
	}
	for _, bp := range m.Params() {
		if !bp.RequiresGrad {
			t.Fatalf("after Detach, %s is still frozen", bp.Name)
		}
	}
}

// init_from: the golden adapter loaded through a training Config gives the golden logits.
func TestAttachInitFrom(t *testing.T) {
	g, err := golden.Open("tiny-dense/lora")
	if err != nil {
		t.Fatal(err)
	}
	cfg := lora.Config{R: 4, Alpha: 8, TargetModules: lora.Targets{Names: lora.DefaultTargets}, InitFrom: golden.Dir("tiny-dense/lora")}
	m := loadBase(t)
	if _, err := lora.Attach(m, cfg, 1); err != nil {
		t.Fatal(err)
	}
	in := goldenBatch(t)
	logits := m.Forward(nil, layers.Input{IDs: in.ids, B: in.b, T: in.t}).Logits
	if d := golden.Compare(logits.Data, g.F32("lora.logits"), 1e-4); d.Max > 1e-4 {
		t.Errorf("logits: %s", d)
	}
}

// PEFT's initialisation: A ~ U(-1/√in, 1/√in) (kaiming_uniform_ with a=√5), B = 0, so the
// adapted model starts equal to the base; the draw depends on the seed and the module only.
func TestAttachInit(t *testing.T) {
	cfg := lora.Config{R: 16, Alpha: 32, TargetModules: lora.Targets{Names: lora.DefaultTargets}}
	m := loadBase(t)
	in := goldenBatch(t)
	before := m.Forward(nil, layers.Input{IDs: in.ids, B: in.b, T: in.t}).Logits.Data
	set, err := lora.Attach(m, cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Adapters) != 14 {
		t.Fatalf("%d adapters, want 14", len(set.Adapters))
	}
	after := m.Forward(nil, layers.Input{IDs: in.ids, B: in.b, T: in.t}).Logits.Data
	if !slices.Equal(before, after) {
		t.Errorf("a freshly attached set changes the logits (B must start at zero)")
	}
	var sum2 float64
	var count int
	for _, a := range set.Adapters {
		if a.Scale != 2 || a.R != 16 {
			t.Errorf("%s: r %d, scale %v; want 16 and 32/16", a.Name, a.R, a.Scale)
		}
		if a.A.Name != "base_model.model."+a.Name+".lora_A.weight" || a.B.Name != "base_model.model."+a.Name+".lora_B.weight" {
			t.Errorf("names %s, %s", a.A.Name, a.B.Name)
		}
		if !slices.Equal(a.A.Shape, []int{16, a.In}) || !slices.Equal(a.B.Shape, []int{a.Out, 16}) {
			t.Errorf("%s: shapes %v %v", a.Name, a.A.Shape, a.B.Shape)
		}
		bound := 1 / math.Sqrt(float64(a.In))
		for _, v := range a.A.Data {
			if math.Abs(float64(v)) > bound {
				t.Fatalf("%s: A holds %v, beyond ±1/√%d", a.Name, v, a.In)
			}
			sum2 += float64(v) * float64(v) / (bound * bound)
			count++
		}
		for _, v := range a.B.Data {
			if v != 0 {
				t.Fatalf("%s: B is not zero", a.Name)
			}
		}
	}
	// U(-b, b) has variance b²/3: 14·16·(64..160) draws pin it within a few percent.
	if v := sum2 / float64(count); math.Abs(v-1.0/3) > 0.02 {
		t.Errorf("A's variance is %.4f·bound², want 1/3 (uniform)", v)
	}
	// The same seed draws the same A for a module whatever else is adapted; another seed does not.
	m2 := loadBase(t)
	one, err := lora.Attach(m2, lora.Config{R: 16, Alpha: 32, TargetModules: lora.Targets{Names: []string{"v_proj"}}, Layers: []int{1}}, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(one.Adapters) != 1 || one.Adapters[0].Name != "model.layers.1.self_attn.v_proj" {
		t.Fatalf("v_proj in layer 1 selected %d adapters", len(one.Adapters))
	}
	var v1 *lora.Adapter
	for _, a := range set.Adapters {
		if a.Name == "model.layers.1.self_attn.v_proj" {
			v1 = a
		}
	}
	if !slices.Equal(one.Adapters[0].A.Data, v1.A.Data) {
		t.Errorf("the same seed drew another A for layer 1's v_proj when fewer modules were adapted")
	}
	m3 := loadBase(t)
	other, _ := lora.Attach(m3, cfg, 8)
	if slices.Equal(other.Adapters[0].A.Data, set.Adapters[0].A.Data) {
		t.Errorf("seeds 7 and 8 drew the same A")
	}
}

// target_modules as names, names with layers, a pattern; mistakes are refused by key.
func TestAttachTargets(t *testing.T) {
	names := func(s *lora.Set) []string {
		var ns []string
		for _, a := range s.Adapters {
			ns = append(ns, a.Name)
		}
		return ns
	}
	for _, c := range []struct {
		cfg  lora.Config
		want []string
	}{
		{lora.Config{R: 2, Alpha: 2, TargetModules: lora.Targets{Names: []string{"o_proj", "q_proj"}}},
			[]string{"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.o_proj", "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.o_proj"}},
		{lora.Config{R: 2, Alpha: 2, TargetModules: lora.Targets{Names: []string{"down_proj"}}, Layers: []int{1}},
			[]string{"model.layers.1.mlp.down_proj"}},
		{lora.Config{R: 2, Alpha: 2, TargetModules: lora.Targets{Pattern: `model\.layers\.0\.(self_attn\.k|mlp\.up)_proj`}},
			[]string{"model.layers.0.self_attn.k_proj", "model.layers.0.mlp.up_proj"}},
		{lora.Config{R: 2, Alpha: 2, TargetModules: lora.Targets{Names: []string{"model.layers.1.self_attn.v_proj"}}},
			[]string{"model.layers.1.self_attn.v_proj"}},
		{lora.Config{R: 2, Alpha: 2, TargetModules: lora.Targets{Pattern: lora.AllLinear}},
			[]string{"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj", "model.layers.0.self_attn.v_proj", "model.layers.0.self_attn.o_proj",
				"model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj", "model.layers.0.mlp.down_proj",
				"model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.k_proj", "model.layers.1.self_attn.v_proj", "model.layers.1.self_attn.o_proj",
				"model.layers.1.mlp.gate_proj", "model.layers.1.mlp.up_proj", "model.layers.1.mlp.down_proj"}},
	} {
		s, err := lora.Attach(loadBase(t), c.cfg, 1)
		if err != nil {
			t.Errorf("%v: %v", c.cfg.TargetModules, err)
			continue
		}
		if got := names(s); !slices.Equal(got, c.want) {
			t.Errorf("%v layers %v: adapted %v, want %v", c.cfg.TargetModules, c.cfg.Layers, got, c.want)
		}
	}
	for _, c := range []struct {
		cfg  lora.Config
		want string
	}{
		{lora.Config{R: 0, Alpha: 2, TargetModules: lora.Targets{Names: []string{"q_proj"}}}, "lora.r = 0"},
		{lora.Config{R: 2, Alpha: 0, TargetModules: lora.Targets{Names: []string{"q_proj"}}}, "lora.alpha"},
		{lora.Config{R: 2, Alpha: 2, Dropout: 1, TargetModules: lora.Targets{Names: []string{"q_proj"}}}, "lora.dropout"},
		{lora.Config{R: 2, Alpha: 2}, "target_modules is empty"},
		{lora.Config{R: 2, Alpha: 2, TargetModules: lora.Targets{Names: []string{"qproj"}}}, `"qproj" names no module`},
		{lora.Config{R: 2, Alpha: 2, TargetModules: lora.Targets{Pattern: "(q_proj"}}, "pattern"},
		{lora.Config{R: 2, Alpha: 2, TargetModules: lora.Targets{Pattern: "q_proj"}}, "selects no Linear"},
		{lora.Config{R: 2, Alpha: 2, TargetModules: lora.Targets{Pattern: ".*q_proj"}, Layers: []int{0}}, "lora.layers cannot"},
		{lora.Config{R: 2, Alpha: 2, TargetModules: lora.Targets{Names: []string{"q_proj"}}, Layers: []int{2}}, "lora.layers: 2"},
		{lora.Config{R: 4, Alpha: 8, TargetModules: lora.Targets{Names: []string{"q_proj"}}, InitFrom: golden.Dir("tiny-dense/lora")},
			"adapts module model.layers.0.mlp.down_proj, which this run's target_modules [q_proj]"},
		{lora.Config{R: 8, Alpha: 16, TargetModules: lora.Targets{Names: lora.DefaultTargets}, InitFrom: golden.Dir("tiny-dense/lora")},
			"module model.layers.0.self_attn.q_proj has rank 4; this run's is 8"},
		{lora.Config{R: 4, Alpha: 16, TargetModules: lora.Targets{Names: lora.DefaultTargets}, InitFrom: golden.Dir("tiny-dense/lora")},
			"module model.layers.0.self_attn.q_proj has scale 2 (lora_alpha 8"},
		{lora.Config{R: 4, Alpha: 8, TargetModules: lora.Targets{Names: lora.DefaultTargets}, Layers: []int{1}, InitFrom: golden.Dir("tiny-dense/lora")},
			"(layers [1]) do not select"},
	} {
		m := loadBase(t)
		_, err := lora.Attach(m, c.cfg, 1)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one containing %q", c.cfg, err, c.want)
		}
		for _, p := range m.Params() {
			if !p.RequiresGrad {
				t.Fatalf("%+v: a failed Attach froze %s", c.cfg, p.Name)
			}
		}
	}
	// A second set on the same Linears is refused.
	m := loadBase(t)
	if _, err := lora.Attach(m, lora.Config{R: 2, Alpha: 2, TargetModules: lora.Targets{Names: []string{"q_proj"}}}, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := lora.Attach(m, lora.Config{R: 2, Alpha: 2, TargetModules: lora.Targets{Names: []string{"q_proj"}}}, 1); err == nil || !strings.Contains(err.Error(), "already has an adapter") {
		t.Errorf("second Attach: %v", err)
	}
}

// On a MoE model, names adapt attention (and the dense layers' MLP), not experts; a pattern
// that asks for experts or the router is refused with the reason.
func TestAttachMoE(t *testing.T) {
	m, err := layers.Load(golden.Dir("tiny-moe"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := lora.Attach(m, lora.Config{R: 2, Alpha: 4, TargetModules: lora.Targets{Names: lora.DefaultTargets}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	mlp := 0
	for _, a := range s.Adapters {
		if strings.Contains(a.Name, "experts") || strings.HasSuffix(a.Name, "mlp.gate") {
			t.Errorf("adapted %s", a.Name)
		}
		if strings.Contains(a.Name, ".mlp.") {
			mlp++
			if !strings.HasPrefix(a.Name, "model.layers.0.") {
				t.Errorf("adapted %s: layer 0 is the only dense MLP (mlp_only_layers)", a.Name)
			}
		}
	}
	if want := 4*len(m.Blocks) + 3; len(s.Adapters) != want || mlp != 3 {
		t.Errorf("%d adapters (%d on MLPs), want %d (attention everywhere, layer 0's dense MLP)", len(s.Adapters), mlp, want)
	}
	// The export names the adapted modules, since PEFT's reading of the names would adapt experts too.
	dir := t.TempDir()
	if err := s.Save(dir, "tiny-moe"); err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		TargetModules []string `json:"target_modules"`
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "adapter_config.json"))
	if err := json.Unmarshal(raw, &cfg); err != nil || len(cfg.TargetModules) != len(s.Adapters) {
		t.Errorf("MoE export target_modules %v (%v), want the %d adapted module paths", cfg.TargetModules, err, len(s.Adapters))
	}
	s.Detach()
	al, err := lora.Attach(m, lora.Config{R: 2, Alpha: 4, TargetModules: lora.Targets{Pattern: lora.AllLinear}}, 1)
	if err != nil || len(al.Adapters) != 4*len(m.Blocks)+3 {
		t.Errorf("all-linear on MoE: %v; want attention and the dense MLP only", err)
	} else {
		al.Detach()
	}
	for _, pat := range []string{`.*experts\.\d+\.up_proj`, `model\.layers\.1\.mlp\.gate`} {
		_, err := lora.Attach(m, lora.Config{R: 2, Alpha: 4, TargetModules: lora.Targets{Pattern: pat}}, 1)
		if err == nil || !strings.Contains(err.Error(), "mixture-of-experts module") {
			t.Errorf("pattern %s: %v", pat, err)
		}
	}
}

// A set trains: plain SGD on its own gradients (B starts at zero, so A moves from step 2),
// lowers the loss — the trainer's loop in miniature.
func TestSetTrainsByItsGradients(t *testing.T) {
	m := loadBase(t)
	set, err := lora.Attach(m, lora.Config{R: 4, Alpha: 8, TargetModules: lora.Targets{Names: lora.DefaultTargets}}, 3)
	if err != nil {
		t.Fatal(err)
	}
	in := goldenBatch(t)
	var first, last float64
	for step := range 5 {
		_, loss, grads := lossAndGrads(t, m, set.Params(), in)
		if step == 0 {
			first = loss
		}
		last = loss
		for _, p := range set.Params() {
			for i, g := range grads[p.Name] {
				p.Data[i] -= 0.5 * g
			}
		}
	}
	if !(last < first-1e-3) {
		t.Errorf("loss %v after 5 SGD steps on the adapters, %v before", last, first)
	}
}

// A frozen base held in bf16 only (layers' DropFP32Weights) trains the golden adapter with the
// gradients of the fp32-held base in bf16 mode, to the bit, for a base of bfloat16 values (as a
// bf16 checkpoint's are: the golden's embedding is rounded first, since bf16 mode rounds every
// product's operands but not the rows the embedding looks up); merging into it is refused.
func TestAdapterOnBF16OnlyBase(t *testing.T) {
	p, err := lora.Load(golden.Dir("tiny-dense/lora"))
	if err != nil {
		t.Fatal(err)
	}
	in := goldenBatch(t)
	var logits [2][]float32
	var grads [2]map[string][]float32
	for i, drop := range []bool{false, true} {
		m := loadBase(t)
		kernels.RoundBF16(m.Embed.Data, m.Embed.Data)
		m.BF16 = true
		if drop {
			m.UseBF16Weights()
		}
		s, err := lora.AttachPEFT(m, p)
		if err != nil {
			t.Fatal(err)
		}
		if drop {
			if err := m.DropFP32Weights(); err != nil {
				t.Fatal(err)
			}
		}
		logits[i], _, grads[i] = lossAndGrads(t, m, s.Params(), in)
		if drop {
			if err := p.Merge(m); err == nil || !strings.Contains(err.Error(), "bfloat16 bits only") {
				t.Errorf("Merge into a bf16-only base: %v", err)
			}
		}
	}
	if !slices.Equal(logits[0], logits[1]) {
		t.Errorf("logits differ with the base held in bf16 only")
	}
	for name, g := range grads[0] {
		if g == nil || !slices.Equal(g, grads[1][name]) {
			t.Errorf("%s: gradient differs with the base held in bf16 only", name)
		}
	}
	// And bf16 mode stays near the fp32 golden (the rule rounds, it does not break).
	g, _ := golden.Open("tiny-dense/lora")
	if d := golden.Compare(logits[1], g.F32("lora.logits"), 1e-2); d.Max > 1e-2 || d.Mean > 2e-3 {
		t.Errorf("bf16 logits vs the fp32 golden: %s", d)
	}
}

// On a bf16-only base laid out for its adapters (UseBF16Weights after Attach: the adapters fold
// into the base's products, autograd.FrozenLinears) the golden adapter gives the logits and
// every lora gradient of adapters run as products of their own (UseBF16Weights before Attach),
// up to bf16 summation order: without dropout, with dropout (the folded group runs the base
// and each adapter its own Forward), switched off, and in a tape-less forward of a few rows
// (the decoding GEMV).
func TestFoldedAdaptersMatchUnfolded(t *testing.T) {
	p, err := lora.Load(golden.Dir("tiny-dense/lora"))
	if err != nil {
		t.Fatal(err)
	}
	in := goldenBatch(t)
	build := func(fold bool) (*layers.Model, *lora.Set) {
		m := loadBase(t)
		m.BF16 = true
		if !fold {
			m.UseBF16Weights()
		}
		s, err := lora.AttachPEFT(m, p)
		if err != nil {
			t.Fatal(err)
		}
		if fold {
			m.UseBF16Weights()
		}
		if err := m.DropFP32Weights(); err != nil {
			t.Fatal(err)
		}
		return m, s
	}
	mf, sf := build(true)
	mu, su := build(false)
	if q := &mf.Blocks[0].Attn.Q; !q.Folded() || mu.Blocks[0].Attn.Q.Folded() {
		t.Fatal("UseBF16Weights after Attach should fold the adapters, and only then")
	}
	// The two round the same bf16 operands but sum in other orders (other products, other
	// kernels), so a value rounded to bf16 on the way (s·x·Aᵀ, dh) may land a bf16 step
	// apart: the results may differ by a bf16 step or two of their largest value (2⁻⁷ of
	// it), and on average by a fraction of one (2⁻⁹).
	closeTo := func(what string, got, want []float32) {
		t.Helper()
		d := golden.Compare(got, want, 1e-2)
		if d.Max > d.MaxRef/128 || d.Mean > d.MaxRef/512 {
			t.Errorf("%s: folded vs unfolded %s", what, d)
		}
		if testing.Verbose() {
			t.Logf("%s: max %.3g mean %.3g of max |ref| %.3g", what, d.Max, d.Mean, d.MaxRef)
		}
	}
	for _, c := range []struct {
		name    string
		dropout float64
		off     bool
	}{{"plain", 0, false}, {"dropout", 0.2, false}, {"disabled", 0, true}} {
		for _, s := range []*lora.Set{sf, su} {
			s.Config.Dropout = c.dropout
			s.SetDisabled(c.off)
			s.Train(3, 1)
		}
		lf, _, gf := lossAndGrads(t, mf, sf.Params(), in)
		lu, _, gu := lossAndGrads(t, mu, su.Params(), in)
		closeTo(c.name+" logits", lf, lu)
		for name, g := range gu {
			if c.off {
				if slices.ContainsFunc(g, nonZero) || slices.ContainsFunc(gf[name], nonZero) {
					t.Errorf("%s: %s has a gradient with the adapters off", c.name, name)
				}
				continue
			}
			closeTo(c.name+" "+name, gf[name], g)
		}
	}
	// A tape-less forward of 3 tokens (the batched GEMV) against the unfolded model's.
	for _, s := range []*lora.Set{sf, su} {
		s.SetDisabled(false)
		s.Eval()
	}
	ids := in.ids[:3]
	var logits [2][]float32
	for i, m := range []*layers.Model{mf, mu} {
		logits[i] = slices.Clone(m.Forward(nil, layers.Input{IDs: ids, B: 1, T: 3}).Logits.Data)
	}
	closeTo("decoding logits", logits[0], logits[1])
}

func nonZero(v float32) bool { return v != 0 }

// Folded bf16 adapters give the same bits with activation checkpointing as without: the
// recomputed blocks' groups keep their inputs' bits and take their data on the recomputing
// tape as the plain forward does on the step's.
func TestFoldedAdaptersWithCheckpointing(t *testing.T) {
	p, err := lora.Load(golden.Dir("tiny-dense/lora"))
	if err != nil {
		t.Fatal(err)
	}
	in := goldenBatch(t)
	var losses [2]float64
	var grads [2]map[string][]float32
	for i, ck := range []bool{false, true} {
		m := loadBase(t)
		m.BF16 = true
		s, err := lora.AttachPEFT(m, p)
		if err != nil {
			t.Fatal(err)
		}
		m.UseBF16Weights()
		if err := m.DropFP32Weights(); err != nil {
			t.Fatal(err)
		}
		m.Checkpointing = ck
		s.Train(3, 1)
		_, losses[i], grads[i] = lossAndGrads(t, m, s.Params(), in)
	}
	if losses[0] != losses[1] {
		t.Fatalf("loss %v with activations kept, %v with checkpointing", losses[0], losses[1])
	}
	for name, g := range grads[0] {
		if !slices.ContainsFunc(g, nonZero) || !slices.Equal(g, grads[1][name]) {
			t.Fatalf("%s: the gradient is missing or differs with checkpointing", name)
		}
	}
}
