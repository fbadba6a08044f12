package dist

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/bits"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/ebitengine/purego"
)

// pollInterval is how often the MPI goroutine drives outstanding non-blocking requests
// (MPI_Test) while no call arrives. Open MPI advances a non-blocking collective only inside
// MPI calls; without the polling an IAllReduceSum would mostly run inside its Wait.
var pollInterval = 200 * time.Microsecond

// chunkBytes is the most bytes one MPI call is given; larger buffers go in several calls (a
// variable so that a test can exercise the split with small buffers). MPI counts are C ints,
// which caps a call at 2^31-1 elements anyway, but the size that matters is smaller: with Open
// MPI 4.1 on one machine, a 64M-float (256 MiB) all-reduce in one call took 1.2-1.4 s at two
// ranks (0.2 GB/s: its temporary buffers are mmapped and faulted in on every call and its
// single-copy process_vm_readv of 128 MiB regions crawled) and 75-110 ms in 4 MiB calls
// (2.5-3.7 GB/s); 1-16 MiB calls were all far better than one, 4 MiB among the best.
var chunkBytes = 4 << 20

// chunk is the number of elements of elem bytes per MPI call.
func chunk(elem int) int { return max(1, min(chunkBytes/elem, math.MaxInt32)) }

// mpiComm is MPI_COMM_WORLD. Every MPI call runs on the goroutine serve, locked to the OS
// thread that called MPI_Init_thread; the methods hand it ops over calls and wait. Ops come
// from a pool and the MPI arguments are staged in outParams, so a blocking collective
// allocates nothing and IAllReduceSum allocates its Request only.
type mpiComm struct {
	abi        *mpiABI
	rank, size int
	nthreads   int
	// signals are the handlers from before libmpi was loaded; restoredSignals the signals
	// whose handlers loading libmpi or MPI_Init replaced and Open put back.
	signals         *signalHandlers
	restoredSignals []int

	mu     sync.RWMutex // held for reading while an op is handed over, for writing by Close
	closed bool
	calls  chan *op

	// Owned by the serve goroutine.
	pending []*mpiRequest
	out     *outParams
}

// outParams is heap memory MPI writes results into, and the argument list of the MPI call
// being made (the GC never moves heap objects; SyscallN's variadic slice would otherwise be
// allocated per call).
type outParams struct {
	n      int32
	flag   int32
	errLen int32
	errBuf [1024]byte // MPI_MAX_ERROR_STRING: 256 in Open MPI, 1024 in MPICH
	args   [8]uintptr
}

func ptr[T any](p *T) unsafe.Pointer { return unsafe.Pointer(p) }

type opKind uint8

const (
	opAllreduce  opKind = iota // buf, n, elem, dtype
	opBcast                    // buf, n, elem, dtype, root
	opBarrier                  //
	opIallreduce               // req
	opWait                     // req
	opFunc                     // fn
)

// op is one request to the MPI goroutine; err is its result, and done receives once when it
// is complete.
type op struct {
	kind    opKind
	buf     unsafe.Pointer
	n, elem int
	dtype   uintptr
	root    int
	req     *mpiRequest
	fn      func()
	err     error
	done    chan struct{}
}

var opPool = sync.Pool{New: func() any { return &op{done: make(chan struct{}, 1)} }}

// startMPI starts the MPI goroutine, initialises MPI on its thread and reads rank and size.
// signals are the handlers saved before libmpi was loaded.
func startMPI(a *mpiABI, signals *signalHandlers) (*mpiComm, error) {
	c := &mpiComm{abi: a, calls: make(chan *op), out: new(outParams), signals: signals}
	ready := make(chan error, 1)
	go c.serve(ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	err := c.do(func() error {
		if err := c.mpi("MPI_Comm_rank", a.commRank, a.commWorld, uintptr(ptr(&c.out.n))); err != nil {
			return err
		}
		c.rank = int(c.out.n)
		if err := c.mpi("MPI_Comm_size", a.commSize, a.commWorld, uintptr(ptr(&c.out.n))); err != nil {
			return err
		}
		c.size = int(c.out.n)
		return nil
	})
	if err == nil {
		c.nthreads, err = c.localThreads()
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// serve owns MPI: it initialises it on its locked thread, runs the ops handed to it, polls
// outstanding requests, and finalises MPI when calls is closed. The thread stays locked, so it
// exits with the goroutine. MPI_THREAD_FUNNELED is what this needs (only this thread calls
// MPI); an MPI that provides less is used all the same.
func (c *mpiComm) serve(ready chan<- error) {
	runtime.LockOSThread()
	a := c.abi
	c.out.n = 0
	r1, _, _ := purego.SyscallN(a.initThread, 0, 0, mpiThreadFunneled, uintptr(ptr(&c.out.n)))
	c.restoredSignals = append(c.restoredSignals, c.signals.restore()...)
	if code := int32(r1); code != 0 {
		ready <- fmt.Errorf("dist: MPI_Init_thread (%s, %s) failed with code %d", a.name, a.library, code)
		return
	}
	// Errors come back as codes instead of aborting the job, so they reach Go callers.
	if err := c.mpi("MPI_Comm_set_errhandler", a.commSetErrhandler, a.commWorld, a.errorsReturn); err != nil {
		ready <- err
		return
	}
	ready <- nil

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var o *op
		var ok bool
		if len(c.pending) == 0 {
			o, ok = <-c.calls
		} else {
			timer.Reset(pollInterval)
			select {
			case o, ok = <-c.calls:
				timer.Stop()
			case <-timer.C:
				c.progress()
				continue
			}
		}
		if !ok {
			return
		}
		o.err = c.run(o)
		o.done <- struct{}{}
	}
}

// run performs one op. Run on the MPI goroutine.
func (c *mpiComm) run(o *op) error {
	a := c.abi
	switch o.kind {
	case opAllreduce:
		step := chunk(o.elem)
		for off := 0; off < o.n; off += step {
			if err := c.mpi("MPI_Allreduce", a.allreduce, a.inPlace, uintptr(o.buf)+uintptr(off*o.elem),
				uintptr(min(step, o.n-off)), o.dtype, a.opSum, a.commWorld); err != nil {
				return err
			}
		}
	case opBcast:
		step := chunk(o.elem)
		for off := 0; off < o.n; off += step {
			if err := c.mpi("MPI_Bcast", a.bcast, uintptr(o.buf)+uintptr(off*o.elem), uintptr(min(step, o.n-off)),
				o.dtype, uintptr(o.root), a.commWorld); err != nil {
				return err
			}
		}
	case opBarrier:
		return c.mpi("MPI_Barrier", a.barrier, a.commWorld)
	case opIallreduce:
		return c.start(o.req)
	case opWait:
		c.wait(o.req)
	case opFunc:
		o.fn()
	}
	return nil
}

// call hands o to the MPI goroutine and returns its error.
func (c *mpiComm) call(o *op) error {
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return ErrClosed
	}
	c.calls <- o
	c.mu.RUnlock()
	<-o.done
	return o.err
}

// exec fills a pooled op with kind and the buffer's description, runs it and returns its error.
func (c *mpiComm) exec(kind opKind, buf unsafe.Pointer, n, elem int, dtype uintptr, root int, req *mpiRequest) error {
	o := opPool.Get().(*op)
	o.kind, o.buf, o.n, o.elem, o.dtype, o.root, o.req = kind, buf, n, elem, dtype, root, req
	err := c.call(o)
	*o = op{done: o.done}
	opPool.Put(o)
	return err
}

// do runs f on the MPI goroutine (for the calls made once: setup, Close, Abort).
func (c *mpiComm) do(f func() error) error {
	var err error
	o := &op{kind: opFunc, fn: func() { err = f() }, done: make(chan struct{}, 1)}
	if cerr := c.call(o); cerr != nil {
		return cerr
	}
	return err
}

// mpi calls the MPI function at fn with args and returns check's error. Run on the MPI
// goroutine only. Pointers among args must be to memory kept alive by the caller.
func (c *mpiComm) mpi(name string, fn uintptr, args ...uintptr) error {
	n := copy(c.out.args[:], args)
	r1, _, _ := purego.SyscallN(fn, c.out.args[:n]...)
	return c.check(name, r1)
}

// check turns an MPI return code into an error naming the function and MPI's message. Run
// on the MPI goroutine only.
func (c *mpiComm) check(fn string, r1 uintptr) error {
	code := int32(r1)
	if code == 0 {
		return nil
	}
	msg := ""
	c.out.errLen = 0
	if r, _, _ := purego.SyscallN(c.abi.errorString, uintptr(code), uintptr(ptr(&c.out.errBuf[0])), uintptr(ptr(&c.out.errLen))); int32(r) == 0 &&
		c.out.errLen > 0 && int(c.out.errLen) <= len(c.out.errBuf) {
		msg = ": " + string(bytes.TrimRight(c.out.errBuf[:c.out.errLen], "\x00"))
	}
	return fmt.Errorf("dist: %s failed on rank %d (MPI error %d%s)", fn, c.rank, code, msg)
}

func (c *mpiComm) Rank() int      { return c.rank }
func (c *mpiComm) Size() int      { return c.size }
func (c *mpiComm) threads() int   { return c.nthreads }
func (c *mpiComm) String() string { return fmt.Sprintf("%s rank %d of %d", c.abi.name, c.rank, c.size) }

func (c *mpiComm) isClosed() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.closed
}

// Blocking collectives split buffers into calls of at most chunkBytes (see chunk). The
// buffers are kept alive by the op that holds them and by KeepAlive until the call returns.

func (c *mpiComm) AllReduceSum(buf []float32) error {
	if len(buf) == 0 {
		return nil
	}
	err := c.exec(opAllreduce, unsafe.Pointer(&buf[0]), len(buf), 4, c.abi.float, 0, nil)
	runtime.KeepAlive(buf)
	return err
}

func (c *mpiComm) AllReduceSumFloat64(buf []float64) error {
	if len(buf) == 0 {
		return nil
	}
	err := c.exec(opAllreduce, unsafe.Pointer(&buf[0]), len(buf), 8, c.abi.double, 0, nil)
	runtime.KeepAlive(buf)
	return err
}

func (c *mpiComm) Broadcast(buf []byte, root int) error {
	if err := checkRoot(root, c.size); err != nil || len(buf) == 0 {
		return err
	}
	err := c.exec(opBcast, unsafe.Pointer(&buf[0]), len(buf), 1, c.abi.byte_, root, nil)
	runtime.KeepAlive(buf)
	return err
}

func (c *mpiComm) BroadcastFloat32(buf []float32, root int) error {
	if err := checkRoot(root, c.size); err != nil || len(buf) == 0 {
		return err
	}
	err := c.exec(opBcast, unsafe.Pointer(&buf[0]), len(buf), 4, c.abi.float, root, nil)
	runtime.KeepAlive(buf)
	return err
}

func (c *mpiComm) Barrier() error { return c.exec(opBarrier, nil, 0, 0, 0, 0, nil) }

// mpiRequest is an IAllReduceSum in flight: one MPI request per chunkBytes of the buffer.
type mpiRequest struct {
	c       *mpiComm
	buf     []float32 // reachable until completion; nil after
	handles []uint64  // MPI_Request values, written by MPI (heap memory); 0 once complete
	inline  [1]uint64 // handles for a buffer of one chunk
	// finished is set, after err, once the request is complete (or failed) on this rank.
	finished atomic.Bool
	err      error
}

func (c *mpiComm) IAllReduceSum(buf []float32) (Request, error) {
	r := &mpiRequest{c: c}
	if len(buf) == 0 {
		r.finished.Store(true)
		return r, nil
	}
	r.buf = buf
	if n := (len(buf) + chunk(4) - 1) / chunk(4); n == 1 {
		r.handles = r.inline[:]
	} else {
		r.handles = make([]uint64, n)
	}
	if err := c.exec(opIallreduce, nil, 0, 0, 0, 0, r); err != nil {
		return nil, err
	}
	return r, nil
}

// start issues r's MPI_Iallreduce calls. Run on the MPI goroutine.
func (c *mpiComm) start(r *mpiRequest) error {
	step := chunk(4)
	p := uintptr(unsafe.Pointer(&r.buf[0]))
	for i := range r.handles {
		off := i * step
		if err := c.mpi("MPI_Iallreduce", c.abi.iallreduce, c.abi.inPlace, p+uintptr(off*4), uintptr(min(step, len(r.buf)-off)),
			c.abi.float, c.abi.opSum, c.abi.commWorld, uintptr(ptr(&r.handles[i]))); err != nil {
			// The requests already started stay pending (and are waited for by Close); the
			// job is broken anyway.
			r.handles = r.handles[:i]
			if i == 0 {
				r.finish(err)
			} else {
				c.pending = append(c.pending, r)
			}
			return err
		}
	}
	c.pending = append(c.pending, r)
	return nil
}

// finish records the outcome, releases the buffer and drops r from pending. Run on the MPI
// goroutine.
func (r *mpiRequest) finish(err error) {
	r.err = err
	r.buf = nil
	r.finished.Store(true)
	for i, p := range r.c.pending {
		if p == r {
			r.c.pending = append(r.c.pending[:i], r.c.pending[i+1:]...)
			break
		}
	}
}

// progress tests every outstanding request once. Run on the MPI goroutine.
func (c *mpiComm) progress() {
	for i := 0; i < len(c.pending); {
		r := c.pending[i]
		complete := true
		for j := range r.handles {
			if r.handles[j] == 0 {
				continue // completed by an earlier test
			}
			if !c.testHandle(r, j) {
				complete = false
				break
			}
		}
		if complete || r.err != nil {
			r.finish(r.err)
			continue // finish removed pending[i]
		}
		i++
	}
}

// testHandle calls MPI_Test on one handle and reports whether it completed; a completed
// handle is zeroed so it is not tested again.
func (c *mpiComm) testHandle(r *mpiRequest, j int) bool {
	c.out.flag = 0
	if err := c.mpi("MPI_Test", c.abi.test, uintptr(ptr(&r.handles[j])), uintptr(ptr(&c.out.flag)), c.abi.statusIgnore); err != nil {
		r.err = err
		return true
	}
	if c.out.flag != 0 {
		r.handles[j] = 0
		return true
	}
	return false
}

// wait completes r with MPI_Wait unless it is complete already. Run on the MPI goroutine.
func (c *mpiComm) wait(r *mpiRequest) {
	if r.finished.Load() {
		return
	}
	var err error
	for j := range r.handles {
		if r.handles[j] == 0 {
			continue
		}
		if err = c.mpi("MPI_Wait", c.abi.wait, uintptr(ptr(&r.handles[j])), c.abi.statusIgnore); err != nil {
			break
		}
		r.handles[j] = 0
	}
	r.finish(err)
}

// Wait blocks until the reduction is complete on this rank.
func (r *mpiRequest) Wait() error {
	if !r.finished.Load() {
		if err := r.c.exec(opWait, nil, 0, 0, 0, 0, r); err != nil {
			// Closed: Close completed every request before closing.
			if !r.finished.Load() {
				return err
			}
		}
	}
	return r.err
}

// Close waits for outstanding requests, finalises MPI and stops the MPI goroutine.
func (c *mpiComm) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	var err error
	o := &op{kind: opFunc, done: make(chan struct{}, 1), fn: func() {
		for len(c.pending) > 0 {
			c.wait(c.pending[0])
		}
		err = c.mpi("MPI_Finalize", c.abi.finalize)
	}}
	c.calls <- o
	<-o.done
	close(c.calls)
	return err
}

// abortNow hands MPI_Abort to the MPI goroutine, or, if that goroutine is blocked in another
// call for a second (a collective the failing rank will never finish), calls it from this
// thread: the MPI standard does not promise that under MPI_THREAD_FUNNELED, but Open MPI and
// MPICH both tear the job down from any thread, and the job is ending either way.
func (c *mpiComm) abortNow(code int) {
	abort := func() { purego.SyscallN(c.abi.abort, c.abi.commWorld, uintptr(code)) }
	c.mu.RLock()
	if !c.closed {
		select {
		case c.calls <- &op{kind: opFunc, fn: abort, done: make(chan struct{}, 1)}:
			c.mu.RUnlock()
			time.Sleep(10 * time.Second) // MPI_Abort does not return
			return
		case <-time.After(time.Second):
		}
	}
	c.mu.RUnlock()
	if !c.isClosed() {
		abort()
	}
}

// localThreads gives each rank its share of the cores of its machine: the ranks exchange a
// machine key (a hash of the host name) and their CPU affinity masks, and a rank divides its
// own cores by the number of ranks on its machine whose masks overlap its own (itself
// included). Run once by startMPI.
func (c *mpiComm) localThreads() (int, error) {
	set, ok := affinity()
	if !ok {
		set = make([]uint64, 16)
		for i := range runtime.NumCPU() {
			set[i/64%16] |= 1 << (i % 64)
		}
	}
	host, _ := os.Hostname()
	h := fnv.New64a()
	h.Write([]byte(host))
	rec := 8 * (1 + len(set))
	mine := make([]byte, rec)
	binary.LittleEndian.PutUint64(mine, h.Sum64())
	for i, w := range set {
		binary.LittleEndian.PutUint64(mine[8*(1+i):], w)
	}
	all := make([]byte, rec*c.size)
	err := c.do(func() error {
		return c.mpi("MPI_Allgather", c.abi.allgather, uintptr(ptr(&mine[0])), uintptr(rec), c.abi.byte_,
			uintptr(ptr(&all[0])), uintptr(rec), c.abi.byte_, c.abi.commWorld)
	})
	runtime.KeepAlive(mine)
	runtime.KeepAlive(all)
	if err != nil {
		return 0, err
	}
	return sharedThreads(mine, all, rec), nil
}

// sharedThreads is the rule of localThreads on the gathered records (machine key, then the
// affinity mask as little-endian uint64 words).
func sharedThreads(mine, all []byte, rec int) int {
	cores := 0
	for w := 8; w < rec; w += 8 {
		cores += bits.OnesCount64(binary.LittleEndian.Uint64(mine[w:]))
	}
	sharers := 0
	for r := 0; r+rec <= len(all); r += rec {
		other := all[r : r+rec]
		if !bytes.Equal(other[:8], mine[:8]) {
			continue
		}
		for w := 8; w < rec; w += 8 {
			if binary.LittleEndian.Uint64(other[w:])&binary.LittleEndian.Uint64(mine[w:]) != 0 {
				sharers++
				break
			}
		}
	}
	return max(1, cores/max(1, sharers))
}
