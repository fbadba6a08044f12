package dist

import (
	"fmt"
	"strings"

	"github.com/ebitengine/purego"
)

// MPI without headers. The C API is the same in every MPI, but the handles are not (the MPI
// standard fixes names, not values; MPI 5's common ABI is not what Debian ships):
//
//   - Open MPI: MPI_Comm, MPI_Datatype, MPI_Op, MPI_Errhandler and MPI_Request are pointers to
//     structs, and the predefined handles are the addresses of global objects in libmpi:
//     MPI_COMM_WORLD is &ompi_mpi_comm_world, MPI_FLOAT &ompi_mpi_float, MPI_SUM
//     &ompi_mpi_op_sum, and so on (mpi.h: OMPI_PREDEFINED_GLOBAL). purego.Dlsym returns exactly
//     those addresses. MPI_IN_PLACE is (void *)1, MPI_STATUS_IGNORE is NULL.
//   - MPICH and its ABI family (Intel MPI, MVAPICH, Cray MPICH): handles are 32-bit integers
//     with fixed values from MPICH's mpi.h (MPI_COMM_WORLD 0x44000000, MPI_FLOAT 0x4c00040a,
//     MPI_SUM 0x58000003, …), MPI_Request is an int, MPI_IN_PLACE is (void *)-1 and
//     MPI_STATUS_IGNORE is (MPI_Status *)1.
//
// A handle travels in a 64-bit register whichever its C type (an int argument is read from
// the low half). A request is written by MPI into a uint64 in Go memory: 8 bytes for Open
// MPI's pointer, the low 4 for MPICH's int (little-endian). Integer results come back in the
// low 32 bits of the return register. The thread levels (MPI_THREAD_FUNNELED = 1) are the same
// in both.
//
// Which family a library belongs to is decided by the presence of the symbol
// ompi_mpi_comm_world; anything else is taken for MPICH's ABI.
type mpiABI struct {
	name    string // "Open MPI" or "MPICH ABI", plus the library version where MPI gives it
	library string // the file that was loaded

	commWorld, float, double, byte_, opSum, errorsReturn uintptr
	inPlace, statusIgnore                                uintptr

	// Entry points, called with purego.SyscallN.
	initThread, finalize, commRank, commSize, commSetErrhandler uintptr
	allreduce, iallreduce, bcast, barrier, allgather            uintptr
	wait, test, errorString, abort                              uintptr
}

const mpiThreadFunneled = 1

// mpichHandles are the predefined handles of MPICH's mpi.h (MPICH 3.x and 4.x).
const (
	mpichCommWorld    = 0x44000000
	mpichFloat        = 0x4c00040a
	mpichDouble       = 0x4c00080b
	mpichByte         = 0x4c00010d
	mpichSum          = 0x58000003
	mpichErrorsReturn = 0x54000001
)

// loadMPI loads the first of libs that opens and binds the MPI functions Gwen calls.
func loadMPI(libs []string) (*mpiABI, error) {
	var errs []string
	for _, name := range libs {
		a, err := bindMPI(name)
		if err == nil {
			return a, nil
		}
		errs = append(errs, err.Error())
	}
	return nil, fmt.Errorf("no MPI library could be loaded (%s)", strings.Join(errs, "; "))
}

func bindMPI(name string) (*mpiABI, error) {
	// RTLD_GLOBAL: Open MPI 4 dlopens its components (mca_*.so), which expect libmpi's and
	// libopen-pal's symbols to be global, as they are when a program links libmpi.
	h, err := purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		if strings.Contains(err.Error(), name) { // dlerror names the file already
			return nil, err
		}
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	a := &mpiABI{library: name}
	var missing []string
	sym := func(s string) uintptr {
		p, err := purego.Dlsym(h, s)
		if err != nil {
			missing = append(missing, s)
		}
		return p
	}
	a.initThread = sym("MPI_Init_thread")
	a.finalize = sym("MPI_Finalize")
	a.commRank = sym("MPI_Comm_rank")
	a.commSize = sym("MPI_Comm_size")
	a.commSetErrhandler = sym("MPI_Comm_set_errhandler")
	a.allreduce = sym("MPI_Allreduce")
	a.iallreduce = sym("MPI_Iallreduce")
	a.bcast = sym("MPI_Bcast")
	a.barrier = sym("MPI_Barrier")
	a.allgather = sym("MPI_Allgather")
	a.wait = sym("MPI_Wait")
	a.test = sym("MPI_Test")
	a.errorString = sym("MPI_Error_string")
	a.abort = sym("MPI_Abort")
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: not an MPI-3 library, missing %s", name, strings.Join(missing, ", "))
	}

	if world, err := purego.Dlsym(h, "ompi_mpi_comm_world"); err == nil {
		a.name = "Open MPI"
		a.commWorld = world
		a.float = sym("ompi_mpi_float")
		a.double = sym("ompi_mpi_double")
		a.byte_ = sym("ompi_mpi_byte")
		a.opSum = sym("ompi_mpi_op_sum")
		a.errorsReturn = sym("ompi_mpi_errors_return")
		a.inPlace = 1
		a.statusIgnore = 0
		if len(missing) > 0 {
			return nil, fmt.Errorf("%s: Open MPI without %s", name, strings.Join(missing, ", "))
		}
	} else {
		a.name = "MPICH ABI"
		a.commWorld = mpichCommWorld
		a.float = mpichFloat
		a.double = mpichDouble
		a.byte_ = mpichByte
		a.opSum = mpichSum
		a.errorsReturn = mpichErrorsReturn
		a.inPlace = ^uintptr(0) // (void *)-1
		a.statusIgnore = 1
	}
	if v := libraryVersion(h); v != "" {
		a.name += " (" + v + ")"
	}
	return a, nil
}

// libraryVersion is the first line of MPI_Get_library_version, which MPI allows before init.
func libraryVersion(h uintptr) string {
	p, err := purego.Dlsym(h, "MPI_Get_library_version")
	if err != nil {
		return ""
	}
	buf := make([]byte, 8192) // MPI_MAX_LIBRARY_VERSION_STRING: 256 in Open MPI, 8192 in MPICH
	var n int32
	purego.SyscallN(p, uintptr(ptr(&buf[0])), uintptr(ptr(&n)))
	if n <= 0 || int(n) > len(buf) {
		return ""
	}
	s := strings.TrimRight(string(buf[:n]), "\x00\n ")
	if i := strings.IndexAny(s, ",\n"); i >= 0 { // "Open MPI v4.1.4, package: …", "MPICH Version: 4.0.2\n…"
		s = s[:i]
	}
	return strings.Join(strings.Fields(s), " ")
}
