package train

import (
	"fmt"

	"github.com/gwen-ml/gwen/autograd"
	"github.com/gwen-ml/gwen/data"
	"github.com/gwen-ml/gwen/dist"
)

// Data parallelism. Every rank reads the same global data stream (the pipeline is seeded the
// same everywhere) and trains its own slice of each micro-batch's rows: with N ranks and a
// batch of B rows, rank r takes rows [r·B/N, (r+1)·B/N). So the global batch is the recipe's
// batch_size × grad_accum whatever N is, the loss is normalised over the whole batch's counted
// targets (known to every rank without communication), and a checkpoint's data position is
// the same on every rank: a run checkpointed with N ranks resumes on M ranks as long as M
// divides batch_size. Tokenizing the whole stream on every rank costs little next to the
// model (one tokenizer worker gives millions of tokens per second).

// shard returns rank's rows of b (its Padding still counts the whole batch's).
func shard(b data.Batch, rank, size int) data.Batch {
	if size == 1 {
		return b
	}
	rows := b.B / size
	lo, hi := rank*rows*b.T, (rank+1)*rows*b.T
	s := b
	s.B = rows
	s.IDs, s.Labels, s.Pos, s.DocStart = b.IDs[lo:hi], b.Labels[lo:hi], b.Pos[lo:hi], b.DocStart[lo:hi]
	if b.Response != nil {
		s.Response = b.Response[lo:hi]
	}
	return s
}

// bucketFloats is the size of the buffers small gradients are gathered into for one
// all-reduce each (16 MiB): fewer, larger MPI calls.
const bucketFloats = 4 << 20

// reducer sums the trainable gradients over the ranks, overlapping backward: armed on the
// tape for a step's last micro-batch (Tape.OnGradFinal), it gathers each gradient into a
// bucket the moment the gradient is final and starts the bucket's non-blocking all-reduce
// when it is full; finish adds the gradients the tape did not report (those of checkpointed
// blocks), starts the last bucket and waits for all. Every rank sees the same parameters in
// the same order, so the collectives match. A gradient no rank produced reads as zeros.
type reducer struct {
	c       dist.Comm
	params  []*autograd.Tensor
	want    map[*autograd.Tensor]bool // trainable, not yet started
	bufs    [][]float32               // bucket buffers, reused every step
	used    int                       // buffers in use this step
	bucket  []float32
	members []*autograd.Tensor
	reqs    []pending
	err     error
}

type pending struct {
	req     dist.Request
	bucket  []float32
	members []*autograd.Tensor
}

func newReducer(c dist.Comm, params []*autograd.Tensor) *reducer {
	return &reducer{c: c, params: params, want: map[*autograd.Tensor]bool{}}
}

// arm prepares a step and returns the hook for the tape.
func (r *reducer) arm() func(*autograd.Tensor) {
	clear(r.want)
	for _, p := range r.params {
		r.want[p] = true
	}
	r.used, r.reqs, r.err = 0, r.reqs[:0], nil
	r.bucket, r.members = nil, nil
	return r.add
}

// add starts p's gradient on its way (the tape's hook).
func (r *reducer) add(p *autograd.Tensor) {
	if !r.want[p] || r.err != nil {
		return
	}
	delete(r.want, p)
	g := p.GradBuf()
	if len(g) >= bucketFloats { // large: reduced in place
		req, err := r.c.IAllReduceSum(g)
		if err != nil {
			r.err = err
			return
		}
		r.reqs = append(r.reqs, pending{req: req})
		return
	}
	if r.bucket != nil && len(r.bucket)+len(g) > bucketFloats {
		r.flush()
	}
	if r.bucket == nil {
		if r.used == len(r.bufs) {
			r.bufs = append(r.bufs, make([]float32, 0, bucketFloats))
		}
		r.bucket = r.bufs[r.used][:0]
		r.used++
	}
	r.bucket = append(r.bucket, g...)
	r.members = append(r.members, p)
}

func (r *reducer) flush() {
	if len(r.members) == 0 || r.err != nil {
		return
	}
	req, err := r.c.IAllReduceSum(r.bucket)
	if err != nil {
		r.err = err
		return
	}
	r.reqs = append(r.reqs, pending{req, r.bucket, r.members})
	r.bucket, r.members = nil, nil
}

// finish reduces what the tape did not report, in parameter order, and waits for everything.
func (r *reducer) finish() error {
	for _, p := range r.params {
		if r.want[p] {
			r.add(p)
		}
	}
	r.flush()
	if r.err != nil {
		return fmt.Errorf("all-reduce of gradients: %w", r.err)
	}
	for _, q := range r.reqs {
		if err := q.req.Wait(); err != nil {
			return fmt.Errorf("all-reduce of gradients: %w", err)
		}
		off := 0
		for _, p := range q.members {
			g := p.GradBuf()
			copy(g, q.bucket[off:off+len(g)])
			off += len(g)
		}
	}
	return nil
}

// shardTargets returns rank's rows of a full batch's causal targets.
func shardTargets(t []int32, b data.Batch, rank, size int) []int32 {
	rows := b.B / size
	return t[rank*rows*b.T : (rank+1)*rows*b.T]
}
