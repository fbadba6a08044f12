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

// allReduceGrads sums every trainable gradient over the ranks, in buckets started back to back
// and then waited for. A gradient no rank produced reads as zeros afterwards.
func allReduceGrads(c dist.Comm, params []*autograd.Tensor) error {
	if c.Size() == 1 {
		return nil
	}
	type pending struct {
		req     dist.Request
		bucket  []float32
		members []*autograd.Tensor
	}
	var reqs []pending
	var bucket []float32
	var members []*autograd.Tensor
	flush := func() error {
		if len(members) == 0 {
			return nil
		}
		req, err := c.IAllReduceSum(bucket)
		if err != nil {
			return err
		}
		reqs = append(reqs, pending{req, bucket, members})
		bucket, members = nil, nil
		return nil
	}
	for _, p := range params {
		g := p.GradBuf()
		if len(g) >= bucketFloats { // large: reduced in place
			req, err := c.IAllReduceSum(g)
			if err != nil {
				return err
			}
			reqs = append(reqs, pending{req: req})
			continue
		}
		if len(bucket)+len(g) > bucketFloats {
			if err := flush(); err != nil {
				return err
			}
		}
		bucket = append(bucket, g...)
		members = append(members, p)
	}
	if err := flush(); err != nil {
		return err
	}
	for _, r := range reqs {
		if err := r.req.Wait(); err != nil {
			return fmt.Errorf("all-reduce of gradients: %w", err)
		}
		off := 0
		for _, p := range r.members {
			g := p.GradBuf()
			copy(g, r.bucket[off:off+len(g)])
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
