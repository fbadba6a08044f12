package train

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// mpirun starts the test binary as 2 ranks training the recipe (blocking at GWEN_TRAIN_BLOCK
// when block is set) in its own process group, so that a test can kill every rank at once.
func mpirun(t *testing.T, path string, env ...string) *exec.Cmd {
	t.Helper()
	bin, err := exec.LookPath("mpirun")
	if err != nil {
		t.Skip("mpirun is not installed (Debian: openmpi-bin); the data-parallel tests need it")
	}
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/libmpi.so.40"); err != nil && os.Getenv("GWEN_MPI") == "" {
		t.Skip("libmpi.so.40 is not installed (Debian: libopenmpi3)")
	}
	cmd := exec.Command(bin, "-np", "2", "--oversubscribe", os.Args[0], "-test.run=^$")
	// One thread per rank, said explicitly: OpenBLAS's thread count changes a GEMM's bits, and
	// an earlier in-process run of this test binary sets OMP_NUM_THREADS in its environment.
	cmd.Env = append(os.Environ(), append(env, "GWEN_TRAIN_CHILD="+path, "OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1", "GWEN_THREADS=1", "OMP_NUM_THREADS=1")...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

func runMPI(t *testing.T, path string, env ...string) {
	t.Helper()
	cmd := mpirun(t, path, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("mpirun: %v\n%s", err, out.String())
	}
}

// Two ranks with the global batch split between them take the same steps as one process with
// the whole batch (within fp32 summation order), and a job killed with SIGKILL resumes under
// mpirun bit for bit.
func TestDataParallelMatchesOneProcess(t *testing.T) {
	dir := t.TempDir()
	one, two := filepath.Join(dir, "one"), filepath.Join(dir, "two")
	extra := "" // batch_size 4 × grad_accum 2 is the global batch in both runs
	p2 := recipe(t, two, extra)
	src, _ := os.ReadFile(p2)
	src = bytes.Replace(src, []byte("  batch_size: 2\n"), []byte("  batch_size: 4\n  grad_accum: 2\n"), 1)
	os.WriteFile(p2, src, 0o644)
	runMPI(t, p2)
	p1 := filepath.Join(dir, "one.yaml")
	os.WriteFile(p1, bytes.Replace(src, []byte("out_dir: "+two), []byte("out_dir: "+one), 1), 0o644)
	if _, err := runRecipe(t, p1, false); err != nil {
		t.Fatal(err)
	}
	m1, m2 := readMetrics(t, one), readMetrics(t, two)
	if len(m1) != 6 || len(m2) != 6 {
		t.Fatalf("steps: %d and %d", len(m1), len(m2))
	}
	for s := 1; s <= 6; s++ {
		for _, k := range []string{"loss", "grad_norm"} {
			a, b := m1[s].Values[k], m2[s].Values[k]
			if math.Abs(a-b) > 1e-6*math.Abs(a) {
				t.Errorf("step %d %s: one process %v, two ranks %v", s, k, a, b)
			}
		}
	}
	w1 := loadWeights(t, filepath.Join(one, "checkpoints", "step-6"))
	w2 := loadWeights(t, filepath.Join(two, "checkpoints", "step-6"))
	for name, a := range w1 {
		for i := range a {
			if d := math.Abs(float64(a[i] - w2[name][i])); d > 1e-5 {
				t.Fatalf("%s[%d]: %v vs %v", name, i, a[i], w2[name][i])
			}
		}
	}

	// Killed after the checkpoint of step 3 (both ranks blocked at step 4), then resumed.
	killed := filepath.Join(dir, "killed")
	pk := filepath.Join(dir, "killed.yaml")
	os.WriteFile(pk, bytes.Replace(src, []byte("out_dir: "+two), []byte("out_dir: "+killed), 1), 0o644)
	mark := filepath.Join(dir, "blocked")
	cmd := mpirun(t, pk, "GWEN_TRAIN_BLOCK=step:4", "GWEN_TRAIN_MARK="+mark)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(mark); err == nil {
			break
		}
		if time.Now().After(deadline) {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Fatalf("the job never reached step 4:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // both ranks at the hook
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	runMPI(t, pk, "GWEN_TRAIN_RESUME=1")
	sameRun(t, two, killed)
}
