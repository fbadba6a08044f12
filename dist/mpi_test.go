package dist

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The MPI tests run this test binary again under mpirun: with GWEN_DIST_WORKER set, TestMain
// runs the named worker (one per rank) instead of the tests, and the parent test reads the
// job's exit status and output. Workers check their results against sums they compute
// themselves from what every rank contributed, and exit non-zero on the first mismatch.
const workerEnv = "GWEN_DIST_WORKER"

func TestMain(m *testing.M) {
	if w := os.Getenv(workerEnv); w != "" {
		os.Exit(runWorker(w))
	}
	os.Exit(m.Run())
}

// launchers are the MPI launchers the tests run under, each where it is installed: mpirun
// (Open MPI's in CI) and MPICH's Hydra, which Debian installs beside Open MPI as
// mpiexec.mpich. The same worker must pass under both.
var launchers = []string{"mpirun", "mpiexec.mpich"}

// mpirunCommand is the command that starts n copies of this binary as worker under launcher,
// or skips the test, saying why, where launcher is absent. Open MPI's ranks are left unbound
// (this machine's two cores are shared) and may oversubscribe.
func mpirunCommand(t *testing.T, ctx context.Context, launcher string, n int, worker string, env ...string) (*exec.Cmd, bool) {
	t.Helper()
	path, err := exec.LookPath(launcher)
	if err != nil {
		t.Skipf("%s not found: the MPI tests need an MPI launcher (Debian: apt-get install openmpi-bin; mpich for mpiexec.mpich)", launcher)
	}
	version, _ := exec.Command(path, "--version").CombinedOutput()
	openMPI := bytes.Contains(version, []byte("Open MPI")) || bytes.Contains(version, []byte("OpenRTE"))
	if launcher != "mpirun" && openMPI {
		t.Skipf("%s is Open MPI's, which the mpirun tests cover", launcher)
	}
	env = append(env, workerEnv+"="+worker)
	var args []string
	if openMPI {
		args = []string{"-np", strconv.Itoa(n), "--oversubscribe", "--bind-to", "none"}
		if os.Geteuid() == 0 {
			args = append(args, "--allow-run-as-root")
		}
		for _, kv := range env {
			args = append(args, "-x", kv)
		}
	} else { // MPICH's Hydra
		args = []string{"-n", strconv.Itoa(n)}
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			args = append(args, "-genv", k, v)
		}
	}
	args = append(args, os.Args[0])
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	return cmd, openMPI
}

// skipWithoutLibMPI skips when the job failed because no libmpi could be loaded.
func skipWithoutLibMPI(t *testing.T, out []byte) {
	t.Helper()
	if bytes.Contains(out, []byte("no MPI library could be loaded")) {
		t.Skipf("the launcher is here but its libmpi is not loadable (Debian: apt-get install libopenmpi3, or libmpich12):\n%s", out)
	}
}

func TestMPICollectives(t *testing.T) {
	for _, launcher := range launchers {
		t.Run(launcher, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd, _ := mpirunCommand(t, ctx, launcher, 2, "collectives")
			out, err := cmd.CombinedOutput()
			skipWithoutLibMPI(t, out)
			if err != nil {
				t.Fatalf("%s -np 2: %v\n%s", launcher, err, out)
			}
			for r := range 2 {
				if !bytes.Contains(out, fmt.Appendf(nil, "rank %d of 2: all checks passed", r)) {
					t.Errorf("rank %d did not report success:\n%s", r, out)
				}
			}
			if testing.Verbose() {
				t.Logf("%s", out)
			}
		})
	}
}

// A rank killed with SIGKILL in the middle of a run: the launcher notices, kills the other
// rank (blocked in an all-reduce that can never complete) and exits non-zero, naming the
// signal (Open MPI: "mpirun noticed that process rank 1 with PID … exited on signal 9
// (Killed)"; Hydra: "BAD TERMINATION … Killed (signal 9)").
func TestMPIKilledRank(t *testing.T) { testJobStops(t, "kill", "signal 9") }

// A rank that calls Abort while the other waits in a barrier: the job ends with its code.
func TestMPIAbort(t *testing.T) { testJobStops(t, "abort", "") }

// testJobStops runs worker, in which rank 1 ends abnormally while rank 0 is blocked in MPI,
// and checks that the launcher ends the job promptly, non-zero, saying what happened to rank
// 1 (signal, if given, is what its output must name), and that rank 0 is gone.
func testJobStops(t *testing.T, worker, signal string) {
	for _, launcher := range launchers {
		t.Run(launcher, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			pidFile := filepath.Join(t.TempDir(), "survivor.pid")
			cmd, openMPI := mpirunCommand(t, ctx, launcher, 2, worker, "GWEN_DIST_PIDFILE="+pidFile)
			start := time.Now()
			out, err := cmd.CombinedOutput()
			elapsed := time.Since(start)
			skipWithoutLibMPI(t, out)
			t.Logf("%s exited after %v with %v; its output:\n%s", launcher, elapsed.Round(time.Millisecond), err, out)
			if ctx.Err() != nil {
				t.Fatalf("the job was still running after %v: a killed rank left the other hanging", elapsed)
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Errorf("%s: %v, want a non-zero exit", launcher, err)
			}
			if signal != "" && (!bytes.Contains(out, []byte(signal)) || (openMPI && !bytes.Contains(out, []byte("rank 1")))) {
				t.Errorf("%s's output does not say that rank 1 died of %s", launcher, signal)
			}
			if worker == "abort" && (exit == nil || exit.ExitCode() != 3) && !bytes.Contains(out, []byte("errorcode 3")) {
				t.Errorf("the job did not end with rank 1's code 3")
			}
			if elapsed > 60*time.Second {
				t.Errorf("the job took %v to stop after a rank died", elapsed)
			}
			b, rerr := os.ReadFile(pidFile)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			if rerr != nil || pid <= 0 {
				t.Fatalf("rank 0 did not write its pid: %v %q", rerr, b)
			}
			// The surviving rank must be gone, not orphaned and blocked in MPI.
			deadline := time.Now().Add(10 * time.Second)
			for syscall.Kill(pid, 0) == nil {
				if time.Now().After(deadline) {
					syscall.Kill(pid, syscall.SIGKILL)
					t.Fatalf("rank 0 (pid %d) is still alive 10 s after %s exited", pid, launcher)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// srun without a PMI plugin that this MPI speaks starts N processes that each initialise MPI
// alone (a world of 1): every one would think it is rank 0. Open refuses, saying why.
func TestOpenSizeMismatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), workerEnv+"=collectives", "SLURM_STEP_NUM_TASKS=2", "SLURM_PROCID=0")
	out, err := cmd.CombinedOutput()
	skipWithoutLibMPI(t, out)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("%v, want Open to fail (exit 2):\n%s", err, out)
	}
	for _, want := range []string{"SLURM_STEP_NUM_TASKS=2", "world of 1", "--mpi=pmix"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("the error does not mention %q:\n%s", want, out)
		}
	}
}

// TestAllReduceBandwidth measures AllReduceSum at 2 ranks; it runs only when asked:
//
//	GWEN_DIST_BENCH=1 go test ./dist -run AllReduceBandwidth -v
//
// (GWEN_DIST_LAUNCHER=mpiexec.mpich for MPICH).
func TestAllReduceBandwidth(t *testing.T) {
	if os.Getenv("GWEN_DIST_BENCH") == "" {
		t.Skip("set GWEN_DIST_BENCH=1 to measure all-reduce bandwidth (runs 2 ranks for ~30 s)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	launcher := cmp.Or(os.Getenv("GWEN_DIST_LAUNCHER"), "mpirun")
	cmd, _ := mpirunCommand(t, ctx, launcher, 2, "bench")
	out, err := cmd.CombinedOutput()
	skipWithoutLibMPI(t, out)
	if err != nil {
		t.Fatalf("mpirun: %v\n%s", err, out)
	}
	t.Logf("\n%s", out)
}

// runWorker runs one rank of a worker and returns its exit code.
func runWorker(name string) int {
	c, err := Open()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	w := &worker{c: c}
	switch name {
	case "collectives":
		w.collectives()
	case "kill":
		w.kill()
	case "abort":
		w.abort()
	case "bench":
		w.bench()
	default:
		w.failf("unknown worker %q", name)
	}
	if w.failed {
		return 1
	}
	return 0
}

type worker struct {
	c      Comm
	failed bool
}

func (w *worker) failf(format string, args ...any) {
	w.failed = true
	fmt.Fprintf(os.Stderr, "rank %d FAIL: %s\n", w.c.Rank(), fmt.Sprintf(format, args...))
}

func (w *worker) must(what string, err error) {
	if err != nil {
		w.failf("%s: %v", what, err)
	}
}

// contribution is what rank r puts at index i: small integers, so that every sum is exact in
// fp32 whatever order MPI adds in.
func contribution(r, i int) float32 { return float32((i*7+r*131)%2001 - 1000) }

func (w *worker) checkSum(what string, got []float32) {
	for i, g := range got {
		var want float32
		for r := range w.c.Size() {
			want += contribution(r, i)
		}
		if g != want {
			w.failf("%s: element %d of %d is %v, want %v", what, i, len(got), g, want)
			return
		}
	}
}

func (w *worker) filled(n int) []float32 {
	b := make([]float32, n)
	for i := range b {
		b[i] = contribution(w.c.Rank(), i)
	}
	return b
}

func (w *worker) collectives() {
	c := w.c
	rank, size := c.Rank(), c.Size()
	if want, _ := strconv.Atoi(os.Getenv("OMPI_COMM_WORLD_RANK")); os.Getenv("OMPI_COMM_WORLD_RANK") != "" && rank != want {
		w.failf("Rank() = %d, OMPI_COMM_WORLD_RANK = %d", rank, want)
	}
	// Go turns a nil dereference into a panic through its SIGSEGV handler; MPI installs
	// handlers of its own (Open MPI's opal_signal: SIGSEGV, SIGBUS, …) unless one is there
	// already, which Go's is. A recovered panic shows the handler survived MPI_Init.
	if !recoversNilDeref() {
		w.failf("a nil dereference was not recovered after MPI_Init")
	}
	if c2, err := Open(); err != nil || c2 != c {
		w.failf("a second Open gave %v, %v; want the same communicator", c2, err)
	}

	// Ranks are distinct and cover 0..size-1: the sum of ranks and of their squares.
	ids := []float64{1, float64(rank), float64(rank * rank)}
	w.must("AllReduceSumFloat64(ids)", c.AllReduceSumFloat64(ids))
	var n, s, s2 float64
	for r := range size {
		n, s, s2 = n+1, s+float64(r), s2+float64(r*r)
	}
	if ids[0] != n || ids[1] != s || ids[2] != s2 {
		w.failf("sum of (1, rank, rank²) = %v, want (%v, %v, %v)", ids, n, s, s2)
	}

	// Blocking float32 sums, from one element to 4M (16 MiB).
	for _, n := range []int{1, 3, 1000, 65537, 4 << 20} {
		b := w.filled(n)
		w.must("AllReduceSum", c.AllReduceSum(b))
		w.checkSum(fmt.Sprintf("AllReduceSum(%d)", n), b)
	}
	w.must("AllReduceSum(empty)", c.AllReduceSum(nil))

	// Arbitrary floats: the sum is checked in float64 against each rank's values, which every
	// rank can regenerate from its seed.
	{
		const n = 100_003
		gen := func(r int) []float32 {
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			b := make([]float32, n)
			for i := range b {
				b[i] = float32(rng.NormFloat64() * 1e3)
			}
			return b
		}
		b := gen(rank)
		w.must("AllReduceSum(random)", c.AllReduceSum(b))
		want := make([]float64, n)
		for r := range size {
			for i, v := range gen(r) {
				want[i] += float64(v)
			}
		}
		for i := range b {
			if d := float64(b[i]) - want[i]; d > 1e-3 || d < -1e-3 {
				w.failf("AllReduceSum(random)[%d] = %v, want %v", i, b[i], want[i])
				break
			}
		}
	}

	// Non-blocking: buckets started from another goroutine (as backward would), while that
	// goroutine keeps computing, then waited for out of order from this one.
	{
		sizes := []int{1, 5000, 1 << 20, 77, 300_000, 2 << 20}
		bufs := make([][]float32, len(sizes))
		reqs := make([]Request, len(sizes))
		done := make(chan struct{})
		go func() {
			defer close(done)
			for k, n := range sizes {
				bufs[k] = w.filled(n)
				var err error
				reqs[k], err = c.IAllReduceSum(bufs[k])
				w.must("IAllReduceSum", err)
				busy(2 * time.Millisecond) // the next bucket's backward
			}
		}()
		<-done
		for _, k := range []int{3, 0, 5, 1, 4, 2} {
			if reqs[k] == nil {
				continue
			}
			w.must("Wait", reqs[k].Wait())
			w.checkSum(fmt.Sprintf("IAllReduceSum(%d)", sizes[k]), bufs[k])
			w.must("second Wait", reqs[k].Wait())
		}
		r, err := c.IAllReduceSum(nil)
		w.must("IAllReduceSum(empty)", err)
		if err == nil {
			w.must("Wait(empty)", r.Wait())
		}
	}

	// Broadcast from every root: bytes, then float32 up to 4M.
	for root := range size {
		msg := fmt.Appendf(nil, "from rank %d: %s", rank, strings.Repeat("x", 1000+rank))
		want := fmt.Appendf(nil, "from rank %d: %s", root, strings.Repeat("x", 1000+root))
		b := make([]byte, len(want))
		copy(b, msg) // non-root ranks hold something else
		w.must("Broadcast", c.Broadcast(b, root))
		if !bytes.Equal(b, want) {
			w.failf("Broadcast from %d: got %.40q…, want %.40q…", root, b, want)
		}
		for _, n := range []int{1, 4097, 4 << 20} {
			f := w.filled(n)
			w.must("BroadcastFloat32", c.BroadcastFloat32(f, root))
			for i := range f {
				if f[i] != contribution(root, i) {
					w.failf("BroadcastFloat32(%d) from %d: element %d is %v, want %v", n, root, i, f[i], contribution(root, i))
					break
				}
			}
		}
	}
	if err := c.Broadcast([]byte{1}, size); err == nil {
		w.failf("Broadcast from root %d of %d: no error", size, size)
	}

	// float64 sums that fp32 would round: 2^40 + rank/4.
	{
		d := make([]float64, 1001)
		for i := range d {
			d[i] = float64(int64(1)<<40) + float64(i) + float64(rank)/4
		}
		w.must("AllReduceSumFloat64", c.AllReduceSumFloat64(d))
		for i := range d {
			want := 0.0
			for r := range size {
				want += float64(int64(1)<<40) + float64(i) + float64(r)/4
			}
			if d[i] != want {
				w.failf("AllReduceSumFloat64[%d] = %v, want %v", i, d[i], want)
				break
			}
		}
	}

	// Buffers larger than one MPI call: with chunkBytes lowered on every rank, each operation
	// is split into several calls (and requests), the last one short.
	{
		saved := chunkBytes
		chunkBytes = 4000
		b := w.filled(4567)
		w.must("AllReduceSum split", c.AllReduceSum(b))
		w.checkSum("AllReduceSum split", b)
		b = w.filled(4567)
		r, err := c.IAllReduceSum(b)
		w.must("IAllReduceSum split", err)
		if err == nil {
			w.must("Wait split", r.Wait())
			w.checkSum("IAllReduceSum split", b)
		}
		f := w.filled(2500)
		w.must("BroadcastFloat32 split", c.BroadcastFloat32(f, size-1))
		for i := range f {
			if f[i] != contribution(size-1, i) {
				w.failf("BroadcastFloat32 split: element %d is %v", i, f[i])
				break
			}
		}
		chunkBytes = saved
	}

	// Barrier: the last rank arrives 300 ms late; nobody leaves before it arrives.
	{
		const late = 300 * time.Millisecond
		w.must("Barrier", c.Barrier())
		start := time.Now()
		if rank == size-1 {
			time.Sleep(late)
		}
		w.must("Barrier", c.Barrier())
		if waited := time.Since(start); waited < late*2/3 {
			w.failf("left the barrier after %v although rank %d arrived %v late", waited, size-1, late)
		}
	}

	// The training step allocates nothing in steady state; the collectives must not either
	// (IAllReduceSum returns a new Request).
	if !raceEnabled {
		b := w.filled(1000)
		d := make([]float64, 10)
		for _, tc := range []struct { // in the same order on every rank
			what string
			f    func()
		}{
			{"AllReduceSum", func() { c.AllReduceSum(b) }},
			{"AllReduceSumFloat64", func() { c.AllReduceSumFloat64(d) }},
			{"BroadcastFloat32", func() { c.BroadcastFloat32(b, 0) }},
			{"Barrier", func() { c.Barrier() }},
		} {
			if n := testing.AllocsPerRun(20, tc.f); n != 0 {
				w.failf("%s allocates %v times per call", tc.what, n)
			}
		}
		if n := testing.AllocsPerRun(20, func() {
			r, _ := c.IAllReduceSum(b)
			r.Wait()
		}); n > 1 {
			w.failf("IAllReduceSum+Wait allocates %v times per call, want 1 (the Request)", n)
		}
	}

	// Threads: both ranks run unbound on this machine, so they share its cores.
	os.Unsetenv("GWEN_THREADS")
	if got, want := Threads(c), max(1, runtime.NumCPU()/size); got != want {
		w.failf("Threads = %d, want %d (%d cores shared by %d ranks)", got, want, runtime.NumCPU(), size)
	}

	// Close with a reduction in flight completes it first.
	last := w.filled(1 << 20)
	lastReq, err := c.IAllReduceSum(last)
	w.must("IAllReduceSum before Close", err)
	w.must("Close", c.Close())
	if err == nil {
		w.must("Wait after Close", lastReq.Wait())
		w.checkSum("IAllReduceSum completed by Close", last)
	}
	if err := c.AllReduceSum([]float32{1}); !errors.Is(err, ErrClosed) {
		w.failf("AllReduceSum after Close: %v, want ErrClosed", err)
	}
	if _, err := Open(); err == nil {
		w.failf("Open after Close succeeded")
	}
	if !recoversNilDeref() {
		w.failf("a nil dereference was not recovered after the collectives")
	}
	if !w.failed {
		fmt.Printf("rank %d of %d: all checks passed (%v; Go signal handlers put back after loading MPI: %v)\n", rank, size, c,
			c.(*mpiComm).restoredSignals)
	}
}

// abort: rank 1 calls Abort while rank 0 waits in a barrier it will never leave.
func (w *worker) abort() {
	w.writePid()
	w.must("Barrier", w.c.Barrier())
	if w.c.Rank() == 1 {
		time.Sleep(100 * time.Millisecond)
		fmt.Fprintln(os.Stderr, "rank 1: aborting with code 3")
		Abort(w.c, 3)
	}
	w.must("Barrier", w.c.Barrier())
	w.failf("left a barrier that rank 1 never entered")
}

var nilInt *int

func recoversNilDeref() (recovered bool) {
	defer func() { recovered = recover() != nil }()
	return *nilInt == 0
}

// busy computes for d, as backward would between two buckets.
func busy(d time.Duration) {
	x := 1.0
	for start := time.Now(); time.Since(start) < d; {
		for range 1000 {
			x = x*1.0000001 + 1e-9
		}
	}
	_ = x
}

// writePid has rank 0 write its pid for the parent test, before the first collective (so
// that rank 1 cannot end the job before it is written).
func (w *worker) writePid() {
	if w.c.Rank() == 0 {
		w.must("pid file", os.WriteFile(os.Getenv("GWEN_DIST_PIDFILE"), []byte(strconv.Itoa(os.Getpid())), 0o644))
	}
}

// kill: rank 1 dies by SIGKILL after one all-reduce; rank 0 keeps reducing.
func (w *worker) kill() {
	w.writePid()
	b := w.filled(1 << 20)
	w.must("AllReduceSum", w.c.AllReduceSum(b))
	if w.c.Rank() == 1 {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	for {
		if err := w.c.AllReduceSum(b); err != nil {
			w.failf("AllReduceSum after the peer died: %v", err)
			return
		}
	}
}

// bench times AllReduceSum on 4M and 64M floats and prints the median and the best of the
// iterations (this machine's cores are shared, so the mean mostly measures the neighbours).
// Algorithm bandwidth is the buffer's bytes over the time of one all-reduce; bus bandwidth
// multiplies it by 2(n-1)/n, what each rank sends and receives in a ring all-reduce
// (nccl-tests' convention; the two are equal at 2 ranks).
func (w *worker) bench() {
	c := w.c
	if n, _ := strconv.Atoi(os.Getenv("GWEN_DIST_BENCH_CHUNK")); n > 0 {
		chunkBytes = n // bytes per MPI call, to compare
	}
	for _, tc := range []struct{ n, iters int }{{4 << 20, 40}, {64 << 20, 10}} {
		b := w.filled(tc.n)
		w.must("warm-up", c.AllReduceSum(b))
		times := make([]float64, tc.iters)
		for i := range times {
			w.must("Barrier", c.Barrier())
			start := time.Now()
			w.must("AllReduceSum", c.AllReduceSum(b))
			times[i] = time.Since(start).Seconds()
		}
		slices.Sort(times)
		// Each rank's median and best in its own slots; the slower rank's count.
		mine := make([]float64, 2*c.Size())
		mine[2*c.Rank()], mine[2*c.Rank()+1] = times[len(times)/2], times[0]
		w.must("AllReduceSumFloat64", c.AllReduceSumFloat64(mine))
		med, best := 0.0, 0.0
		for r := range c.Size() {
			med, best = max(med, mine[2*r]), max(best, mine[2*r+1])
		}
		gbs := func(sec float64) float64 { return float64(4*tc.n) / sec / 1e9 }
		bus := 2 * float64(c.Size()-1) / float64(c.Size())
		if c.Rank() == 0 {
			fmt.Printf("all-reduce %2dM floats (%3d MiB), %d ranks, %d calls of <= %d MiB: median %7.2f ms (algbw %.2f GB/s, busbw %.2f GB/s), best %7.2f ms (%.2f GB/s)\n",
				tc.n>>20, 4*tc.n>>20, c.Size(), (4*tc.n+chunkBytes-1)/chunkBytes, chunkBytes>>20,
				med*1e3, gbs(med), gbs(med)*bus, best*1e3, gbs(best))
		}
	}
	w.overlap()
	w.must("Close", c.Close())
}

// overlap measures what IAllReduceSum hides behind computation: 16 MiB reduced while the
// caller computes for 20 ms, against the blocking call followed by the same computation, and
// against IAllReduceSum with the MPI goroutine's polling off (MPI then progresses only in
// Wait). Medians of 10.
func (w *worker) overlap() {
	c := w.c
	const n, compute = 4 << 20, 20 * time.Millisecond
	b := w.filled(n)
	median := func(f func() time.Duration) float64 {
		ts := make([]float64, 10)
		for i := range ts {
			w.must("Barrier", c.Barrier())
			ts[i] = f().Seconds() * 1e3
		}
		slices.Sort(ts)
		mine := make([]float64, c.Size())
		mine[c.Rank()] = ts[len(ts)/2]
		w.must("AllReduceSumFloat64", c.AllReduceSumFloat64(mine))
		return slices.Max(mine)
	}
	blocking := median(func() time.Duration {
		start := time.Now()
		w.must("AllReduceSum", c.AllReduceSum(b))
		busy(compute)
		return time.Since(start)
	})
	nonblocking := func() time.Duration {
		start := time.Now()
		r, err := c.IAllReduceSum(b)
		w.must("IAllReduceSum", err)
		busy(compute)
		if err == nil {
			w.must("Wait", r.Wait())
		}
		return time.Since(start)
	}
	polled := median(nonblocking)
	saved := pollInterval
	pollInterval = time.Hour
	unpolled := median(nonblocking)
	pollInterval = saved
	if c.Rank() == 0 {
		fmt.Printf("16 MiB all-reduce + %v compute, %d ranks: blocking then compute %.1f ms; IAllReduceSum during compute %.1f ms (polled every %v), %.1f ms (no polling)\n",
			compute, c.Size(), blocking, polled, saved, unpolled)
	}
}
