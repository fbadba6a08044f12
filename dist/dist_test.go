package dist

import (
	"encoding/binary"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestSingle(t *testing.T) {
	c := Single()
	if c.Rank() != 0 || c.Size() != 1 {
		t.Fatalf("Single: rank %d size %d, want 0 and 1", c.Rank(), c.Size())
	}
	f := []float32{1.5, -2, 3}
	want := slices.Clone(f)
	if err := c.AllReduceSum(f); err != nil || !slices.Equal(f, want) {
		t.Errorf("AllReduceSum: %v, err %v; want %v unchanged", f, err, want)
	}
	r, err := c.IAllReduceSum(f)
	if err != nil || r.Wait() != nil || r.Wait() != nil || !slices.Equal(f, want) {
		t.Errorf("IAllReduceSum: %v, err %v; want %v unchanged and Wait nil", f, err, want)
	}
	d := []float64{1e300, 2}
	if err := c.AllReduceSumFloat64(d); err != nil || d[0] != 1e300 || d[1] != 2 {
		t.Errorf("AllReduceSumFloat64: %v, err %v", d, err)
	}
	b := []byte("abc")
	if err := c.Broadcast(b, 0); err != nil || string(b) != "abc" {
		t.Errorf("Broadcast: %q, err %v", b, err)
	}
	if err := c.BroadcastFloat32(f, 0); err != nil || !slices.Equal(f, want) {
		t.Errorf("BroadcastFloat32: %v, err %v", f, err)
	}
	for _, root := range []int{-1, 1} {
		if err := c.Broadcast(b, root); err == nil || !strings.Contains(err.Error(), "root") {
			t.Errorf("Broadcast from root %d: err %v, want an out-of-range error", root, err)
		}
		if err := c.BroadcastFloat32(f, root); err == nil {
			t.Errorf("BroadcastFloat32 from root %d: no error", root)
		}
	}
	if err := c.Barrier(); err != nil {
		t.Error("Barrier:", err)
	}
	if err := c.Close(); err != nil {
		t.Error("Close:", err)
	}
}

func TestDetectLaunch(t *testing.T) {
	for _, tc := range []struct {
		env      map[string]string
		launched bool
		size     int
		firstLib string
	}{
		{map[string]string{}, false, 0, ""},
		{map[string]string{"OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "1"}, true, 4, "libmpi.so.40"},
		{map[string]string{"PMI_SIZE": "3", "PMI_RANK": "0"}, true, 3, "libmpi.so.12"},
		{map[string]string{"PMIX_RANK": "0", "SLURM_STEP_NUM_TASKS": "8"}, true, 8, "libmpi.so.40"},
		{map[string]string{"SLURM_STEP_NUM_TASKS": "2", "SLURM_PROCID": "1"}, true, 2, "libmpi.so.40"},
		// An sbatch script: the job has 16 tasks, but this is one process, not a step of srun.
		{map[string]string{"SLURM_NTASKS": "16", "SLURM_JOB_ID": "7"}, false, 0, ""},
		{map[string]string{"SLURM_STEP_NUM_TASKS": "1"}, false, 0, ""},
	} {
		l := detectLaunch(func(k string) string { return tc.env[k] })
		if l.launched != tc.launched || l.size != tc.size || (tc.launched && l.libs[0] != tc.firstLib) {
			t.Errorf("%v: launched %v size %d libs %v; want %v, %d, %s first", tc.env, l.launched, l.size, l.libs,
				tc.launched, tc.size, tc.firstLib)
		}
		if tc.launched && (!slices.Contains(l.libs, "libmpi.so.40") || !slices.Contains(l.libs, "libmpi.so.12")) {
			t.Errorf("%v: libs %v should hold both Open MPI's and MPICH's", tc.env, l.libs)
		}
	}
}

func TestOpenNotLaunched(t *testing.T) {
	for _, k := range []string{"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK", "SLURM_STEP_NUM_TASKS"} {
		t.Setenv(k, "")
	}
	c, err := Open()
	if err != nil || c.Size() != 1 || c.Rank() != 0 {
		t.Fatalf("Open outside a launcher: %v, %v; want the single-process Comm", c, err)
	}
	if _, ok := c.(single); !ok {
		t.Errorf("Open outside a launcher gave %T, want single", c)
	}
}

// Launched by mpirun but libmpi cannot be loaded: the error names the library and the Debian
// packages.
func TestOpenMissingLibrary(t *testing.T) {
	t.Setenv("OMPI_COMM_WORLD_SIZE", "2")
	t.Setenv("GWEN_MPI", "/nonexistent/libmpi.so.40")
	c, err := Open()
	if err == nil {
		c.Close()
		t.Fatal("Open succeeded without a library")
	}
	for _, want := range []string{"/nonexistent/libmpi.so.40", "OMPI_COMM_WORLD_SIZE=2", "libopenmpi3", "libmpich12", "GWEN_MPI"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// A library that loads but is not MPI.
	if _, err := loadMPI([]string{"libc.so.6"}); err == nil || !strings.Contains(err.Error(), "MPI_Init_thread") {
		t.Errorf("loading libc as MPI: %v, want an error naming the missing MPI_Init_thread", err)
	}
}

func TestThreads(t *testing.T) {
	t.Setenv("GWEN_THREADS", "")
	if got, want := Threads(Single()), max(1, runtime.NumCPU()); got != want {
		t.Errorf("Threads(Single()) = %d, want %d (NumCPU)", got, want)
	}
	t.Setenv("GWEN_THREADS", "7")
	if got := Threads(Single()); got != 7 {
		t.Errorf("GWEN_THREADS=7: Threads = %d", got)
	}
	t.Setenv("GWEN_THREADS", "zero")
	if got := Threads(Single()); got != max(1, runtime.NumCPU()) {
		t.Errorf("GWEN_THREADS=zero: Threads = %d, want the default", got)
	}
}

// sharedThreads on made-up records: machine key, then a 2-word affinity mask.
func TestSharedThreads(t *testing.T) {
	const rec = 8 * 3
	record := func(host uint64, lo, hi uint64) []byte {
		b := make([]byte, rec)
		binary.LittleEndian.PutUint64(b, host)
		binary.LittleEndian.PutUint64(b[8:], lo)
		binary.LittleEndian.PutUint64(b[16:], hi)
		return b
	}
	all := func(rs ...[]byte) []byte { return slices.Concat(rs...) }
	for _, tc := range []struct {
		name string
		mine []byte
		all  []byte
		want int
	}{
		{"alone, 8 cores", record(1, 0xff, 0), all(record(1, 0xff, 0)), 8},
		{"4 unbound ranks on a 16-core machine", record(1, 0xffff, 0),
			all(record(1, 0xffff, 0), record(1, 0xffff, 0), record(1, 0xffff, 0), record(1, 0xffff, 0)), 4},
		{"bound to one core each", record(1, 0x2, 0), all(record(1, 0x1, 0), record(1, 0x2, 0)), 1},
		{"two per socket of 4 cores, cores 64-67 in the second word", record(1, 0, 0xf),
			all(record(1, 0xf, 0), record(1, 0xf, 0), record(1, 0, 0xf), record(1, 0, 0xf)), 2},
		{"other machines do not count", record(1, 0xff, 0),
			all(record(1, 0xff, 0), record(2, 0xff, 0), record(3, 0xff, 0)), 8},
		{"more ranks than cores", record(1, 0x3, 0),
			all(record(1, 0x3, 0), record(1, 0x3, 0), record(1, 0x3, 0)), 1},
	} {
		if got := sharedThreads(tc.mine, tc.all, rec); got != tc.want {
			t.Errorf("%s: %d threads, want %d", tc.name, got, tc.want)
		}
	}
}
