package kernels

// AttnOpts configures causal grouped-query attention.
type AttnOpts struct {
	Scale    float32 // usually 1/sqrt(hd)
	DocStart []int32 // nil, or [B*T]: per token, the position (within its sequence) of its document's first token; token t attends to s iff DocStart[t] <= s <= t
	BF16     bool    // round q, k, v and the probabilities P to bfloat16 before their products (fp32 accumulation); the backward uses the same rounded operands
}

// AttentionForward computes causal GQA attention: o [b,t,h,hd] from q [b,t,h,hd] and k, v
// [b,t,kv,hd]; query head j reads kv head j/(h/kv). It also writes the log-sum-exp of each
// score row, lse [b,h,t], for the backward.
func AttentionForward(o, lse, q, k, v []float32, b, t, h, kv, hd int, opt AttnOpts) {
	AttentionForwardRef(o, lse, q, k, v, b, t, h, kv, hd, opt)
}

// AttentionBackward accumulates dq, dk, dv from do, given the forward's inputs, output and lse.
func AttentionBackward(dq, dk, dv, do, q, k, v, o, lse []float32, b, t, h, kv, hd int, opt AttnOpts) {
	AttentionBackwardRef(dq, dk, dv, do, q, k, v, o, lse, b, t, h, kv, hd, opt)
}
