// Package kernels owns Gwen's compute: plain float32 slices, sizes and strides in, slices out.
// It knows nothing of tensors, tapes or models; CPU now, CUDA later behind the same signatures.
//
// Conventions (every kernel follows them):
//   - Row-major storage. Dimension names: B batch, T sequence, N = B·T token rows, D hidden,
//     H query heads, KV key/value heads, hd head size, V vocabulary, E experts.
//   - Outputs come first in the argument list; nothing is allocated on the steady-state path
//     except small per-call scratch that a kernel documents.
//   - Forward kernels overwrite their outputs. Backward kernels ACCUMULATE (+=) into the
//     gradient buffers they are given, so a tensor used twice collects both contributions.
//     (CrossEntropyBackward is the one exception: it writes, and may alias the logits.)
//   - A shape mistake is a programming error: kernels panic with the sizes involved.
//   - Every fast kernel has a naive reference beside it (suffix Ref) that stays forever and a
//     test that cross-checks the two at the sizes where the fast strategy switches.
//   - Parallel loops use Parallel, which splits rows across GOMAXPROCS goroutines; GEMM runs on
//     OpenBLAS threads (fp32) or oneDNN's (bf16) — Debian builds both on one shared libgomp
//     pool — or on the pure-Go GEMM's own goroutines, never concurrently with a Parallel loop.
//     Attention's groups mode is the one exception by design: each goroutine calls GEMMs small
//     enough that OpenBLAS runs them on the calling thread.
//   - Libraries are loaded at run time with purego (no cgo): GWEN_BLAS and GWEN_DNNL choose or
//     disable them; BLASBackend and BF16Backend say what runs.
//
// Rooms: this package holds every kernel and the exported API. The native-library bindings
// live in kernels/internal/native and are reached only through backend.go (the seam a CUDA
// backend would stand beside); the generated AVX-512 assembly lives in kernels/internal/asm
// (dev/gen-*.py); the bfloat16 conversions live in kernels/bf16, which file formats use
// without the compute.
package kernels
