// Package layers owns the Qwen3 model: its config.json, parameters under Hugging Face names,
// and the forward pass (embedding, decoder blocks with QK-norm GQA attention and SwiGLU or
// mixture-of-experts MLPs, final norm, lm_head), plus loading and saving HF model folders.
// It follows transformers' modeling_qwen3.py; it knows nothing of recipes or datasets.
package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/internal/freelist"
	"github.com/gwen-ml/gwen/kernels"
)

// Dimensions: B batch, T sequence, N = B·T token rows, D hidden_size, H query heads, KV
// key/value heads, hd head_dim, I intermediate size, V vocabulary.

// Adapter adds a learned correction to a Linear's output (LoRA implements it); layers knows
// only this interface.
type Adapter interface {
	Forward(tp *autograd.Tape, x, y *autograd.Tensor, bf16 bool) *autograd.Tensor
}

// LowRankAdapter is an Adapter that is a low-rank update y += Scale·(x·Aᵀ)·Bᵀ (LoRA). On a
// bf16 base, UseBF16Weights lays its Linear's bits out with room for it, so that the update
// folds into the base's own products (autograd.FrozenLinears) instead of running as products
// of its own.
type LowRankAdapter interface {
	Adapter
	// Rank is the update's rank R: the room UseBF16Weights leaves for it.
	Rank() int
	// LowRank returns the update for the coming forward, nil when it adds nothing now
	// (switched off); ok is false when it is not a plain low-rank update now (dropout) and
	// must run its own Forward on the base's output.
	LowRank() (u *autograd.LowRank, ok bool)
}

// Linear is a bias-free projection y = x·Wᵀ with W [out, in] as HF stores it.
type Linear struct {
	W       *autograd.Tensor
	Adapter Adapter  // nil unless an adapter wraps this projection
	WBF16   []uint16 // bfloat16 copy of W for inference (UseBF16Weights); nil: none. Row stride in, or group.LD in a group
	fold    *fold    // the Linears that read this one's input, their bits laid out for low-rank adapters; nil: none
	member  int      // this Linear's index in fold
}

// fold is Linears that read the same input with their bits in one autograd.FrozenGroup
// (UseBF16Weights, when some carry a LowRankAdapter): a forward runs them as one op.
type fold struct {
	g  *autograd.FrozenGroup
	ls []*Linear
}

// Forward applies the projection (and its adapter, if any).
func (l *Linear) Forward(tp *autograd.Tape, x *autograd.Tensor, bf16 bool) *autograd.Tensor {
	return l.forward(tp, x, bf16, false)
}

// forward is Forward; last says that nothing reads x after this projection (see
// groupForward).
func (l *Linear) forward(tp *autograd.Tape, x *autograd.Tensor, bf16, last bool) *autograd.Tensor {
	if l.folds(tp, bf16) {
		return l.groupForward(tp, x, last)[l.member]
	}
	y := linear(tp, x, l.W, l.WBF16, bf16)
	if l.Adapter != nil {
		y = l.Adapter.Forward(tp, x, y, bf16)
	}
	return y
}

// Folded reports whether the Linear's bits were laid out with its group's low-rank adapters
// (UseBF16Weights after they were attached): its bf16 forwards then run the group as one op.
func (l *Linear) Folded() bool { return l.fold != nil }

// folds reports whether a forward runs on l's group (autograd.FrozenLinears): it has one, and
// the forward multiplies on bits — always once the fp32 weight is dropped, and without a
// recording tape in bf16 mode.
func (l *Linear) folds(tp *autograd.Tape, bf16 bool) bool {
	return l.fold != nil && (l.W.Data == nil || (bf16 && !tp.Records()))
}

// groupForward runs every Linear of l's group on x as one op, each with its adapter: low-rank
// updates fold into the op, and an adapter that is not one now (dropout) runs its own Forward
// on the base's output. last says that nothing reads x after the group (a norm's or SwiGLU's
// output): unless an adapter runs its own Forward (which reads x again in backward), the op
// then keeps x's bits for its backward and gives x's data back to the tape
// (autograd.FrozenLinearsTaking).
func (l *Linear) groupForward(tp *autograd.Tape, x *autograd.Tensor, last bool) []*autograd.Tensor {
	g, ls := l.fold.g, l.fold.ls
	ups := make([]*autograd.LowRank, len(ls))
	var own []int
	for i, m := range ls {
		if m.Adapter == nil {
			continue
		}
		if a, isLR := m.Adapter.(LowRankAdapter); isLR && a.Rank() == g.Ranks[i] {
			if u, ok := a.LowRank(); ok {
				ups[i] = u
				continue
			}
		}
		own = append(own, i)
	}
	var ys []*autograd.Tensor
	if last && len(own) == 0 {
		ys = autograd.FrozenLinearsTaking(tp, x, g, ups)
	} else {
		ys = autograd.FrozenLinears(tp, x, g, ups)
	}
	for _, i := range own {
		ys[i] = ls[i].Adapter.Forward(tp, x, ys[i], true)
	}
	return ys
}

// Attention is Qwen3's self-attention: q/k/v/o projections and per-head RMSNorm of q and k
// applied before RoPE.
type Attention struct {
	Q, K, V, O   Linear           // q [H·hd, D], k and v [KV·hd, D], o [D, H·hd]
	QNorm, KNorm *autograd.Tensor // [hd]
}

// MLP is the SwiGLU feed-forward: down(silu(gate(x)) · up(x)).
type MLP struct {
	Gate, Up, Down Linear // gate, up [I, D]; down [D, I]
}

// Block is one decoder layer. Exactly one of MLP and Sparse is set.
type Block struct {
	InputNorm    *autograd.Tensor // [D]
	Attn         Attention
	PostAttnNorm *autograd.Tensor // [D]
	MLP          *MLP
	Sparse       SparseMLP

	// UseBF16Weights' bfloat16 copies of q, k, v (and of gate, up) in one buffer each, which
	// the Linears' WBF16 slice: a tape-less forward multiplies them as one product.
	qkvBF16, gateUpBF16 []uint16
}

// SparseMLP is a mixture-of-experts feed-forward (package moe provides it). It returns its
// output and its router logits [N, E] for the load-balancing loss.
type SparseMLP interface {
	Forward(tp *autograd.Tape, x *autograd.Tensor, bf16 bool) (y, routerLogits *autograd.Tensor)
	Params() []*autograd.Tensor
}

// Model is a Qwen3 causal language model.
type Model struct {
	Config Config
	Embed  *autograd.Tensor // [V, D]
	Blocks []*Block
	Norm   *autograd.Tensor // [D]
	LMHead *autograd.Tensor // [V, D]; the same tensor as Embed when tie_word_embeddings

	BF16          bool // mixed precision: bf16-rounded matmul inputs, fp32 everything else
	Checkpointing bool // recompute each block in backward instead of keeping its activations

	lmHeadBF16 []uint16 // bfloat16 copy of LMHead for inference (UseBF16Weights); nil: none
	embedBF16  []uint16 // the embedding's bits once its fp32 table is dropped (DropFP32Weights)

	rope    kernels.RoPE
	ropeLen int
	cos     []float32
	sin     []float32
}

// Input is a batch of token rows.
type Input struct {
	IDs      []int32 // [B·T]
	B, T     int
	Pos      []int32 // [B·T] position ids; nil means 0..T-1 in every row
	DocStart []int32 // [B·T] first token of each token's document (packing); nil: whole rows
	// Cache, for generation (nil tape): the T tokens of each row are new, attend to the row's
	// cached ones too, and are appended to it; Pos nil then continues each row's positions.
	Cache *KVCache
	// KeepLogits, for generation (nil tape): k in [1, T) computes the logits of each row's last
	// k positions only, [B, k, V] (transformers' logits_to_keep): a prompt's prefill needs one
	// row, not T rows through the LM head. 0 keeps all T.
	KeepLogits int
	// SkipLMHead stops the forward at the final norm: Output.Hidden holds its [B·T, D] output and
	// Logits is nil, for Model.CrossEntropy, which computes the loss without the [B·T, V] logits.
	SkipLMHead bool
}

// Output is what a forward pass produces.
type Output struct {
	Logits       *autograd.Tensor   // [B, T, V]; nil with SkipLMHead
	Hidden       *autograd.Tensor   // [B·T, D], the final norm's output, with SkipLMHead
	RouterLogits []*autograd.Tensor // [N, E] per sparse layer, in layer order (MoE only)
}

// SparseBuilder makes the sparse MLP of layer i from the config, its parameters made by
// newParam under names relative to the layer ("mlp.gate.weight", ...).
type SparseBuilder func(cfg *Config, layer int, newParam func(name string, shape ...int) *autograd.Tensor) (SparseMLP, error)

// sparse is the registered SparseBuilder; nil until RegisterSparse.
var sparse atomic.Pointer[SparseBuilder]

// RegisterSparse makes b the builder of the sparse (mixture-of-experts) layers of every model
// built after it, so that layers need not import the implementation: moe.Register calls it.
// It is safe for concurrent use; it panics on a nil b or when a builder is already registered
// (there is one MoE implementation: a second registration is a mistake, as in database/sql).
func RegisterSparse(b SparseBuilder) {
	if b == nil {
		panic("layers: RegisterSparse with a nil builder")
	}
	if !sparse.CompareAndSwap(nil, &b) {
		panic("layers: RegisterSparse called twice")
	}
}

// New allocates a model with zero parameters, named by the HF table.
func New(cfg Config) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rope, _ := cfg.RoPE()
	m := &Model{Config: cfg, rope: rope}
	D, H, KV, hd, I := cfg.HiddenSize, cfg.NumAttentionHeads, cfg.NumKeyValueHeads, cfg.HeadDim, cfg.IntermediateSize
	p := func(name string, shape ...int) *autograd.Tensor {
		n := 1
		for _, s := range shape {
			n *= s
		}
		return autograd.Param(name, make([]float32, n), shape...)
	}
	lin := func(name string, out, in int) Linear { return Linear{W: p(name+".weight", out, in)} }
	m.Embed = p("model.embed_tokens.weight", cfg.VocabSize, D)
	for i := 0; i < cfg.NumHiddenLayers; i++ {
		pre := fmt.Sprintf("model.layers.%d.", i)
		b := &Block{
			InputNorm: p(pre+"input_layernorm.weight", D),
			Attn: Attention{
				Q:     lin(pre+"self_attn.q_proj", H*hd, D),
				K:     lin(pre+"self_attn.k_proj", KV*hd, D),
				V:     lin(pre+"self_attn.v_proj", KV*hd, D),
				O:     lin(pre+"self_attn.o_proj", D, H*hd),
				QNorm: p(pre+"self_attn.q_norm.weight", hd),
				KNorm: p(pre+"self_attn.k_norm.weight", hd),
			},
			PostAttnNorm: p(pre+"post_attention_layernorm.weight", D),
		}
		if cfg.IsSparseLayer(i) {
			build := sparse.Load()
			if build == nil {
				return nil, fmt.Errorf("layer %d is a mixture-of-experts layer (model_type %q), but no MoE implementation is registered: call moe.Register() before building MoE models", i, cfg.ModelType)
			}
			sp, err := (*build)(&m.Config, i, func(name string, shape ...int) *autograd.Tensor { return p(pre+name, shape...) })
			if err != nil {
				return nil, err
			}
			b.Sparse = sp
		} else {
			b.MLP = &MLP{Gate: lin(pre+"mlp.gate_proj", I, D), Up: lin(pre+"mlp.up_proj", I, D), Down: lin(pre+"mlp.down_proj", D, I)}
		}
		m.Blocks = append(m.Blocks, b)
	}
	m.Norm = p("model.norm.weight", D)
	if cfg.TieWordEmbeddings {
		m.LMHead = m.Embed
	} else {
		m.LMHead = p("lm_head.weight", cfg.VocabSize, D)
	}
	return m, nil
}

// Params lists every parameter once, in HF module order, each named by its HF tensor name.
// The tied lm_head is not listed separately.
func (m *Model) Params() []*autograd.Tensor {
	ps := []*autograd.Tensor{m.Embed}
	for _, b := range m.Blocks {
		a := b.Attn
		ps = append(ps, a.Q.W, a.K.W, a.V.W, a.O.W, a.QNorm, a.KNorm)
		if b.MLP != nil {
			ps = append(ps, b.MLP.Gate.W, b.MLP.Up.W, b.MLP.Down.W)
		} else {
			ps = append(ps, b.Sparse.Params()...)
		}
		ps = append(ps, b.InputNorm, b.PostAttnNorm)
	}
	ps = append(ps, m.Norm)
	if m.LMHead != m.Embed {
		ps = append(ps, m.LMHead)
	}
	return ps
}

// InitRandom fills the parameters from a seeded generator: 2-D weights ~ N(0, std²), norm
// weights = 1 (RandomInit with no padding row). For benchmarks and tests; real weights come
// from Load, new models from `gwen init`, which draws the same values.
func (m *Model) InitRandom(seed uint64, std float64) {
	ri := NewRandomInit(seed, std, -1)
	for _, p := range m.Params() {
		ri.Fill(p.Name, p.Shape, p.Data)
	}
}

// RandomInit draws initial weights as transformers' PreTrainedModel._init_weights does for
// Qwen3: parameters of two or more dimensions ~ N(0, std²) from one seeded PCG stream, 1-D
// ones (the RMSNorm weights) = 1, and the embedding's padding row zero. The stream runs over
// the parameters in the order Fill is called, which must be Model.Params' order; so a model
// made parameter by parameter (gwen init, shard by shard) equals one made by InitRandom.
type RandomInit struct {
	r   *rand.Rand
	std float64
	pad int
}

// NewRandomInit starts the stream of seed; padRow >= 0 is the embedding row to zero
// (Config.PaddingIdx), -1 none.
func NewRandomInit(seed uint64, std float64, padRow int) *RandomInit {
	return &RandomInit{r: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)), std: std, pad: padRow}
}

// Fill writes the initial values of the parameter name of the given shape into data.
func (ri *RandomInit) Fill(name string, shape []int, data []float32) {
	if len(shape) == 1 {
		for i := range data {
			data[i] = 1
		}
		return
	}
	for i := range data {
		data[i] = float32(ri.r.NormFloat64() * ri.std)
	}
	if name == "model.embed_tokens.weight" && ri.pad >= 0 {
		d := shape[1]
		clear(data[ri.pad*d : (ri.pad+1)*d])
	}
}

// ropeTables returns cos/sin tables covering positions 0..seqLen-1. Dynamic NTK depends on
// the longest position in the batch, as in transformers, so its tables are rebuilt whenever
// that changes; the other types reuse any table that is long enough.
func (m *Model) ropeTables(seqLen int) (cos, sin []float32) {
	if m.ropeLen != seqLen && (m.rope.Type == "dynamic" || m.ropeLen < seqLen) {
		inv, scale := m.rope.InvFreq(seqLen)
		hd := m.Config.HeadDim
		m.cos = make([]float32, seqLen*hd)
		m.sin = make([]float32, seqLen*hd)
		kernels.RoPETables(m.cos, m.sin, inv, scale, seqLen, hd)
		m.ropeLen = seqLen
	}
	return m.cos, m.sin
}

// Forward runs the model over a batch. With a nil tape nothing is recorded (inference): the
// forward then runs on a pooled inference tape, one block at a time, so it allocates only its
// outputs (fresh memory the caller keeps), and holds no more than one block's activations.
func (m *Model) Forward(tp *autograd.Tape, in Input) Output {
	if tp != nil {
		return m.forward(tp, in, nil)
	}
	st := inferStates.Get()
	defer inferStates.Put(st)
	var out Output
	autograd.WithInferenceTape(func(tp *autograd.Tape) {
		st.tape, st.n = tp, 0
		out = m.forward(tp, in, st)
		st.tape = nil
	})
	return out
}

// inferState is the memory of a tape-less forward: an inference tape for the activations of
// half a block (attention, or the MLP), reset after each half, and two buffers for the
// residual stream between halves.
type inferState struct {
	tape   *autograd.Tape
	stream [2][]float32
	n      int // carries so far: the next one writes stream[n%2]
}

// carry ends half a block of a tape-less forward: it copies the residual stream x (and router
// logits) out of the tape's memory, resets the tape, and returns the copies. The buffer it
// writes held the stream two carries ago, which nothing reads any more.
func (st *inferState) carry(x, router *autograd.Tensor) (*autograd.Tensor, *autograd.Tensor) {
	buf := &st.stream[st.n%2]
	st.n++
	if cap(*buf) < len(x.Data) {
		*buf = make([]float32, len(x.Data))
	}
	*buf = (*buf)[:len(x.Data)]
	copy(*buf, x.Data)
	if router != nil {
		router = autograd.New(slices.Clone(router.Data), router.Shape...)
	}
	st.tape.Reset()
	return autograd.New(*buf, x.Shape...), router
}

// inferStates pools inferState values: concurrent tape-less forwards each take their own.
var inferStates freelist.List[inferState]

// forward is Forward on tp; st is set for a tape-less forward (tp is then its inference tape).
func (m *Model) forward(tp *autograd.Tape, in Input, st *inferState) Output {
	c := &m.Config
	N := in.B * in.T
	if len(in.IDs) != N || (in.Pos != nil && len(in.Pos) != N) || (in.DocStart != nil && len(in.DocStart) != N) {
		panic(fmt.Sprintf("layers.Forward: B=%d T=%d but %d ids, %d positions, %d document starts", in.B, in.T, len(in.IDs), len(in.Pos), len(in.DocStart)))
	}
	if in.KeepLogits < 0 || (in.KeepLogits > 0 && tp.Records()) {
		panic(fmt.Sprintf("layers.Forward: KeepLogits=%d: it must be ≥ 0, and is for inference only (nil tape)", in.KeepLogits))
	}
	for i, id := range in.IDs {
		if id < 0 || int(id) >= c.VocabSize {
			panic(fmt.Sprintf("layers.Forward: token %d at row %d, column %d is outside the vocabulary [0, %d)", id, i/in.T, i%in.T, c.VocabSize))
		}
	}
	pos := in.Pos
	if in.Cache != nil {
		pos = in.Cache.positions(tp, in, len(m.Blocks))
	}
	if pos == nil {
		pos = make([]int32, N)
		for i := range pos {
			pos[i] = int32(i % in.T)
		}
	}
	maxPos := int32(0)
	for _, p := range pos {
		maxPos = max(maxPos, p)
	}
	cos, sin := m.ropeTables(int(maxPos) + 1)

	var out Output
	var mid func(*autograd.Tensor) *autograd.Tensor // between a block's halves
	if st != nil {
		mid = func(x *autograd.Tensor) *autograd.Tensor { x, _ = st.carry(x, nil); return x }
	}
	x := m.embedding(tp, in.IDs) // [N, D]
	for li, b := range m.Blocks {
		xin := x
		var router *autograd.Tensor
		block := func(tp *autograd.Tape) *autograd.Tensor {
			y, r := m.block(tp, li, b, xin, in, pos, cos, sin, mid)
			router = r
			return y
		}
		if m.Checkpointing && tp.Records() && b.Sparse == nil {
			x = tp.Checkpoint(block)
		} else {
			x = block(tp)
		}
		if st != nil {
			x, router = st.carry(x, router)
		}
		if router != nil {
			out.RouterLogits = append(out.RouterLogits, router)
		}
	}
	if in.Cache != nil {
		in.Cache.Len += in.T
	}
	keep := in.T
	if in.KeepLogits > 0 && in.KeepLogits < in.T {
		keep = in.KeepLogits
		x = lastRows(x, in.B, in.T, keep)
	}
	if st != nil { // the logits are the caller's: in fresh memory, not the inference tape's
		tp = nil
	}
	x = autograd.RMSNorm(tp, x, m.Norm, float32(c.RMSNormEps))
	if in.SkipLMHead {
		out.Hidden = x
		return out
	}
	logits := linear(tp, x, m.LMHead, m.lmHeadBF16, m.BF16) // [B·keep, V]
	out.Logits = logits.Reshape(in.B, keep, c.VocabSize)
	return out
}

// CrossEntropy is the causal-LM loss of a SkipLMHead forward's Hidden against targets [B·T]
// (CausalTargets; -100 ignored), divided by denom (≤ 0: the counted targets): the LM head and
// autograd.CrossEntropy in one op (autograd.LinearCrossEntropy) that never holds the logits.
// It returns the loss, the sum of −log p and the count.
func (m *Model) CrossEntropy(tp *autograd.Tape, hidden *autograd.Tensor, targets []int32, denom float64) (loss *autograd.Tensor, sum float64, count int) {
	var wb []uint16
	if m.LMHead.Data == nil { // held in bf16 only
		wb = m.lmHeadBF16
	}
	return autograd.LinearCrossEntropy(tp, hidden, m.LMHead, wb, targets, denom, m.BF16)
}

// lastRows copies the last k of each row's t positions of x [b·t, D] into a new [b·k, D]
// tensor (no tape).
func lastRows(x *autograd.Tensor, b, t, k int) *autograd.Tensor {
	d := x.Shape[1]
	y := autograd.Zeros(b*k, d)
	for r := range b {
		copy(y.Data[r*k*d:(r+1)*k*d], x.Data[(r*t+t-k)*d:(r+1)*t*d])
	}
	return y
}

// block is one decoder layer: x + attn(norm(x)), then + mlp(norm(·)). mid, when not nil, is
// applied to the stream between the two (a tape-less forward carries it out of the tape there).
func (m *Model) block(tp *autograd.Tape, layer int, b *Block, x *autograd.Tensor, in Input, pos []int32, cos, sin []float32, mid func(*autograd.Tensor) *autograd.Tensor) (*autograd.Tensor, *autograd.Tensor) {
	c := &m.Config
	H, KV, hd := c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim
	eps := float32(c.RMSNormEps)

	h := autograd.RMSNorm(tp, x, b.InputNorm, eps)
	var q, k, v *autograd.Tensor // [N, H·hd], [N, KV·hd], [N, KV·hd]
	if b.Attn.Q.folds(tp, m.BF16) {
		f := b.Attn.Q.groupForward(tp, h, true)
		q, k, v = f[0], f[1], f[2]
	} else if f := fusedLinear(tp, h, b.qkvBF16, m.BF16, &b.Attn.Q, &b.Attn.K, &b.Attn.V); f != nil {
		q, k, v = f[0], f[1], f[2]
	} else {
		q, k, v = b.Attn.Q.Forward(tp, h, m.BF16), b.Attn.K.Forward(tp, h, m.BF16), b.Attn.V.Forward(tp, h, m.BF16)
	}
	// QK-norm, then RoPE, as one op.
	q = autograd.NormRoPE(tp, q, b.Attn.QNorm, eps, pos, cos, sin, H, hd)
	k = autograd.NormRoPE(tp, k, b.Attn.KNorm, eps, pos, cos, sin, KV, hd)
	scale := float32(1 / math.Sqrt(float64(hd)))
	var a *autograd.Tensor
	if in.Cache != nil {
		a = in.Cache.attend(layer, q, k, v, in.B, in.T, H, scale, m.BF16)
	} else {
		a = autograd.Attention(tp, q, k, v, in.B, in.T, H, KV, hd, kernels.AttnOpts{Scale: scale, DocStart: in.DocStart, BF16: m.BF16})
	}
	x = autograd.Add(tp, x, b.Attn.O.Forward(tp, a, m.BF16))
	if mid != nil {
		x = mid(x)
	}

	h = autograd.RMSNorm(tp, x, b.PostAttnNorm, eps)
	if b.Sparse != nil {
		y, router := b.Sparse.Forward(tp, h, m.BF16)
		return autograd.Add(tp, x, y), router
	}
	f := b.MLP
	var gate, up *autograd.Tensor
	if f.Gate.folds(tp, m.BF16) {
		gu := f.Gate.groupForward(tp, h, true)
		gate, up = gu[0], gu[1]
	} else if gu := fusedLinear(tp, h, b.gateUpBF16, m.BF16, &f.Gate, &f.Up); gu != nil {
		gate, up = gu[0], gu[1]
	} else {
		gate, up = f.Gate.Forward(tp, h, m.BF16), f.Up.Forward(tp, h, m.BF16)
	}
	g := gate
	if tp != nil && !tp.Records() { // an inference tape keeps neither: silu(gate)·up over gate
		kernels.SwiGLUForward(gate.Data, gate.Data, up.Data, len(gate.Data))
	} else {
		g = autograd.SwiGLU(tp, gate, up)
	}
	return autograd.Add(tp, x, f.Down.forward(tp, g, m.BF16, true)), nil
}

// CausalTargets shifts labels [B, T] left by one inside each row: position t is scored on
// labels[t+1]; the last position of each row predicts nothing (-100), as transformers'
// ForCausalLMLoss does.
func CausalTargets(labels []int32, b, t int) []int32 {
	out := make([]int32, b*t)
	for r := 0; r < b; r++ {
		for j := 0; j < t; j++ {
			if j+1 < t {
				out[r*t+j] = labels[r*t+j+1]
			} else {
				out[r*t+j] = -100
			}
		}
	}
	return out
}
