// Package dist owns the processes of a data-parallel run: rank, size, all-reduce, broadcast and barrier,
// on MPI loaded at run time (Open MPI or MPICH, no cgo, no headers) or on one process alone.
//
// It knows nothing of models, tensors or the training loop: buffers are plain slices. Open
// decides from the environment whether the process was started by a launcher (mpirun, mpiexec,
// srun) and, if so, loads libmpi with purego, as package kernels loads OpenBLAS; otherwise it
// returns Single, whose operations leave buffers as they are (the sum over one rank).
//
// # Launching
//
//	mpirun -np 4 gwen train recipe.yaml              # Open MPI or MPICH, one machine or a hostfile
//	srun --mpi=pmix -n 8 --kill-on-bad-exit=1 gwen train recipe.yaml   # Slurm (or --mpi=pmi2)
//
// Open recognises the launcher by the variables it gives each process (OMPI_COMM_WORLD_SIZE,
// PMIX_RANK, PMI_SIZE/PMI_RANK, SLURM_STEP_NUM_TASKS > 1; see detectLaunch) and loads the
// matching libmpi: Open MPI's libmpi.so.40 (Debian: libopenmpi3, with mpirun in openmpi-bin)
// or MPICH's libmpi.so.12/libmpich.so.12 (Debian: libmpich12). GWEN_MPI=/path/to/libmpi.so
// chooses the file. A launcher that announces N processes while MPI sees a world of one (srun
// without a PMI plugin this MPI speaks) is an error rather than N ranks that all think they are
// rank 0. GWEN_THREADS overrides Threads.
//
// # Calling rules
//
// Every rank must issue the same collective operations in the same order with buffers of the
// same length (MPI's rule). A Comm may be used from several goroutines: all MPI calls run on one
// goroutine locked to the OS thread that called MPI_Init_thread (MPI_THREAD_FUNNELED), which
// serves requests in the order they arrive, so operations issued concurrently from different
// goroutines may be ordered differently on different ranks — issue each rank's collectives from
// one goroutine at a time (the backward goroutine for gradient buckets, say, and the loop after
// it has waited for them).
//
// Buffers handed to IAllReduceSum must not be read or written until its Request's Wait returns;
// the Comm keeps them reachable until then. Open MPI progresses a non-blocking reduction only
// inside MPI calls, so while requests are outstanding the MPI goroutine polls them (MPI_Test)
// every pollInterval; that is what lets a bucket's all-reduce run while backward computes.
//
// # Signals
//
// Go's runtime needs its own handlers for SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGURG and
// SIGPROF (a nil dereference is a recoverable panic; goroutines are preempted by SIGURG). MPI
// libraries install their own when they load or initialise (UCX, under Debian's MPICH, takes
// the four fault signals), so Open saves those handlers before loading libmpi and puts back
// any that loading or MPI_Init replaced. The tests check that a nil dereference is still
// recovered after MPI_Init and after the collectives.
//
// # Failures
//
// MPI errors are returned as Go errors (MPI_ERRORS_RETURN on MPI_COMM_WORLD). A rank that dies
// is the launcher's business: Open MPI's mpirun notices the lost process, kills the others
// (SIGTERM, then SIGKILL) and exits non-zero with "mpirun noticed that process rank 1 with PID
// … exited on signal 9 (Killed)"; the tests check that the surviving rank is gone within
// seconds. Under Slurm, run srun with --kill-on-bad-exit=1 for the same behaviour. A rank that
// returns an error and exits non-zero makes mpirun abort the job likewise; Abort (MPI_Abort)
// ends the job from a failing rank under any launcher, while the others wait in a collective.
package dist
