package dist

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// Comm is a group of ranks that run the same program on different data. Buffers are reduced
// in place; every method is collective (all ranks call it, in the same order) except Rank and
// Size.
type Comm interface {
	Rank() int
	Size() int
	// AllReduceSum replaces buf, on every rank, by the element-wise sum of buf over the ranks.
	AllReduceSum(buf []float32) error
	// IAllReduceSum starts AllReduceSum without waiting for it (MPI_Iallreduce): buf holds the
	// sum once the Request's Wait returns nil, and must not be touched before.
	IAllReduceSum(buf []float32) (Request, error)
	// Broadcast copies root's buf into every other rank's buf.
	Broadcast(buf []byte, root int) error
	BroadcastFloat32(buf []float32, root int) error
	// AllReduceSumFloat64 is AllReduceSum on float64 (token counts, loss sums).
	AllReduceSumFloat64(buf []float64) error
	// Barrier returns once every rank has entered it.
	Barrier() error
	// Close waits for outstanding requests and ends the communicator (MPI_Finalize): no call
	// may follow, and MPI cannot be opened again in this process. Every rank closes before it
	// exits: mpirun takes a rank that exits without MPI_Finalize for a failed one.
	Close() error
}

// Request is an operation in flight. Wait blocks until it completes and returns its error;
// calling it again returns the same error.
type Request interface{ Wait() error }

// ErrClosed is returned by operations on a closed Comm.
var ErrClosed = errors.New("dist: communicator is closed")

// Single is the communicator of one process: rank 0 of 1. Every reduction leaves its buffer as
// it is (the sum over one rank), Broadcast from root 0 does nothing, Barrier returns at once.
func Single() Comm { return single{} }

type single struct{}

func (single) Rank() int                                { return 0 }
func (single) Size() int                                { return 1 }
func (single) AllReduceSum([]float32) error             { return nil }
func (single) IAllReduceSum([]float32) (Request, error) { return doneRequest{}, nil }
func (single) Broadcast(_ []byte, root int) error       { return checkRoot(root, 1) }
func (single) BroadcastFloat32(_ []float32, root int) error {
	return checkRoot(root, 1)
}
func (single) AllReduceSumFloat64([]float64) error { return nil }
func (single) Barrier() error                      { return nil }
func (single) Close() error                        { return nil }

type doneRequest struct{}

func (doneRequest) Wait() error { return nil }

func checkRoot(root, size int) error {
	if root < 0 || root >= size {
		return fmt.Errorf("dist: broadcast root %d out of range [0, %d)", root, size)
	}
	return nil
}

// launch describes how this process was started.
type launch struct {
	launched bool     // by an MPI launcher
	why      string   // the environment variable that says so, e.g. "OMPI_COMM_WORLD_SIZE=2"
	size     int      // the world size the launcher announced, 0 if unknown
	libs     []string // libmpi candidates, most likely first
}

// Library names tried by Open unless GWEN_MPI names one. Debian's libopenmpi3 ships
// libmpi.so.40 and libmpich12 ships libmpich.so.12; MPICH's own builds and Intel MPI name
// theirs libmpi.so.12; the unversioned names come with the -dev packages.
var (
	openMPILibs = []string{"libmpi.so.40", "libmpi.so"}
	mpichLibs   = []string{"libmpi.so.12", "libmpich.so.12", "libmpich.so"}
)

// detectLaunch reads the variables launchers set for each process they start:
//
//	Open MPI's mpirun/mpiexec (up to 4.x)      OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_RANK
//	PMIx launchers (Open MPI 5, srun --mpi=pmix) PMIX_RANK
//	MPICH's Hydra, Intel MPI, srun --mpi=pmi2   PMI_SIZE, PMI_RANK
//	Slurm's srun with more than one task       SLURM_STEP_NUM_TASKS
//
// SLURM_NTASKS alone is not enough: an sbatch script has it too while it runs as one process;
// srun sets SLURM_STEP_NUM_TASKS for the processes of its step.
func detectLaunch(getenv func(string) string) launch {
	atoi := func(k string) int { n, _ := strconv.Atoi(getenv(k)); return n }
	both := func(first, second []string) []string { return append(append([]string{}, first...), second...) }
	switch {
	case getenv("OMPI_COMM_WORLD_SIZE") != "":
		return launch{true, "OMPI_COMM_WORLD_SIZE=" + getenv("OMPI_COMM_WORLD_SIZE"), atoi("OMPI_COMM_WORLD_SIZE"), both(openMPILibs, mpichLibs)}
	case getenv("PMIX_RANK") != "":
		return launch{true, "PMIX_RANK=" + getenv("PMIX_RANK"), atoi("SLURM_STEP_NUM_TASKS"), both(openMPILibs, mpichLibs)}
	case getenv("PMI_SIZE") != "" || getenv("PMI_RANK") != "":
		return launch{true, "PMI_SIZE=" + getenv("PMI_SIZE"), atoi("PMI_SIZE"), both(mpichLibs, openMPILibs)}
	case atoi("SLURM_STEP_NUM_TASKS") > 1:
		return launch{true, "SLURM_STEP_NUM_TASKS=" + getenv("SLURM_STEP_NUM_TASKS"), atoi("SLURM_STEP_NUM_TASKS"), both(openMPILibs, mpichLibs)}
	}
	return launch{}
}

// opened is the process's MPI communicator: MPI is initialised at most once per process.
var opened struct {
	sync.Mutex
	comm *mpiComm
}

// Open returns the MPI communicator when a launcher (mpirun, mpiexec, srun) started this
// process, and Single otherwise. It loads libmpi at run time: GWEN_MPI names the library file
// if set; otherwise Open MPI's libmpi.so.40 (Debian: libopenmpi3) and MPICH's libmpi.so.12
// (Debian: libmpich12) are tried, the launcher's own first. Launched but without a loadable
// libmpi is an error that names the libraries and the packages. Calling Open again returns the
// same communicator; after its Close, an error.
func Open() (Comm, error) {
	l := detectLaunch(os.Getenv)
	if !l.launched {
		return Single(), nil
	}
	opened.Lock()
	defer opened.Unlock()
	if opened.comm != nil {
		if opened.comm.isClosed() {
			return nil, errors.New("dist: MPI was finalized by Close; it cannot be opened again in this process")
		}
		return opened.comm, nil
	}
	libs := l.libs
	if p := os.Getenv("GWEN_MPI"); p != "" {
		libs = []string{p}
	}
	signals := saveSignals() // libraries may install handlers when they load (UCX does)
	a, err := loadMPI(libs)
	restored := signals.restore()
	if err != nil {
		return nil, fmt.Errorf("dist: launched under MPI (%s) but %v; install the MPI runtime the job was launched with "+
			"(Debian: libopenmpi3 for Open MPI, libmpich12 for MPICH) or set GWEN_MPI to its libmpi.so", l.why, err)
	}
	c, err := startMPI(a, signals)
	if err != nil {
		return nil, err
	}
	c.restoredSignals = append(restored, c.restoredSignals...)
	if l.size > 0 && c.Size() != l.size {
		c.Close()
		return nil, fmt.Errorf("dist: the launcher started %d processes (%s) but %s sees a world of %d: "+
			"the MPI library does not match the launcher (under Slurm, srun needs --mpi=pmix or --mpi=pmi2)", l.size, l.why, a.name, c.Size())
	}
	opened.comm = c
	return c, nil
}

// Threads is the number of compute threads this rank should use: GWEN_THREADS if it is set to
// a positive integer; otherwise the cores this process may run on divided by the ranks of the
// same machine that may run on them too, at least 1. Ranks that the launcher bound to disjoint
// cores (mpirun binds each rank to a core by default for up to 2 ranks) keep their own cores;
// unbound ranks share the machine's.
func Threads(c Comm) int {
	if s := strings.TrimSpace(os.Getenv("GWEN_THREADS")); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	if t, ok := c.(interface{ threads() int }); ok {
		return t.threads()
	}
	return max(1, runtime.NumCPU())
}

// Abort ends the whole job from one rank, with code as the exit status: MPI_Abort for MPI,
// os.Exit otherwise. Use it when a rank fails and cannot tell the others (they may be waiting
// in a collective it will never join): mpirun already ends the job when a rank exits non-zero,
// but srun only with --kill-on-bad-exit, and other launchers not at all. Abort does not
// return.
func Abort(c Comm, code int) {
	if m, ok := c.(*mpiComm); ok {
		m.abortNow(code)
	}
	os.Exit(code)
}
