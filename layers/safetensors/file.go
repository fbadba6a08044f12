package safetensors

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

// File is one opened safetensors file, memory-mapped read-only. Its slices from Bytes point into
// the mapping and are invalid after Close. As with any mapping, a file truncated by someone else
// while open faults (SIGBUS) on access: Gwen's writers replace files by rename, never in place.
type File struct {
	path string
	data []byte // the whole file (the mapping); nil once closed or for an empty data buffer
	base int64  // 8 + header length: where the data buffer starts in data
	h    *header
}

// Open opens, parses and fully validates the safetensors file at path, then maps it. Nothing
// of the file beyond the header is read before the header is known to be sound.
func Open(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("safetensors %s: not a regular file", path)
	}
	size := st.Size()
	hdr, err := readHeaderBytes(path, fd, size)
	if err != nil {
		return nil, err
	}
	base := 8 + int64(len(hdr))
	h, err := parseHeader(path, hdr, size-base)
	if err != nil {
		return nil, err
	}
	if size > math.MaxInt {
		return nil, fmt.Errorf("safetensors %s: %d bytes is too large to map", path, size)
	}
	data, err := unix.Mmap(int(fd.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: mmap: %w", path, err)
	}
	// The file could have changed between the read and the map: what we validated must be
	// what we mapped.
	if !bytes.Equal(data[8:base], hdr) {
		unix.Munmap(data)
		return nil, fmt.Errorf("safetensors %s: file changed while being opened", path)
	}
	return &File{path: path, data: data, base: base, h: h}, nil
}

// readHeaderBytes reads the header length and the header of a file of the given size, bounding
// the length by the file and by MaxHeaderBytes before allocating anything.
func readHeaderBytes(path string, r io.ReaderAt, size int64) ([]byte, error) {
	if size < 8 {
		return nil, fmt.Errorf("safetensors %s: file is %d bytes, shorter than the 8-byte header length", path, size)
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("safetensors %s: reading header length: %w", path, err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderBytes {
		return nil, fmt.Errorf("safetensors %s: header length %d exceeds the %d-byte limit", path, n, MaxHeaderBytes)
	}
	if n > uint64(size-8) {
		return nil, fmt.Errorf("safetensors %s: header length %d exceeds the %d bytes after the length field: file truncated or not safetensors",
			path, n, size-8)
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, fmt.Errorf("safetensors %s: reading header: %w", path, err)
	}
	return hdr, nil
}

// Path returns the path the file was opened from.
func (f *File) Path() string { return f.path }

// Names returns the tensor names, sorted.
func (f *File) Names() []string { return slices.Clone(f.h.names) }

// Info returns the description of the named tensor.
func (f *File) Info(name string) (Info, bool) {
	in, ok := f.h.infos[name]
	in.Shape = slices.Clone(in.Shape)
	return in, ok
}

// Metadata returns a copy of the header's "__metadata__" (nil when absent).
func (f *File) Metadata() map[string]string {
	if f.h.metadata == nil {
		return nil
	}
	m := make(map[string]string, len(f.h.metadata))
	for k, v := range f.h.metadata {
		m[k] = v
	}
	return m
}

// Bytes returns the raw little-endian bytes of the named tensor, a view into the mapping
// (valid until Close); nil when the tensor is absent or the file closed.
func (f *File) Bytes(name string) []byte {
	in, ok := f.h.infos[name]
	if !ok || f.data == nil {
		return nil
	}
	return f.data[f.base+in.Begin : f.base+in.End : f.base+in.End]
}

func (f *File) lookup(name string) (Info, []byte, error) {
	in, ok := f.h.infos[name]
	if !ok {
		return in, nil, fmt.Errorf("safetensors %s: no tensor %q", f.path, name)
	}
	if f.data == nil {
		return in, nil, fmt.Errorf("safetensors %s: tensor %q: file is closed", f.path, name)
	}
	return in, f.data[f.base+in.Begin : f.base+in.End], nil
}

// Float32 returns the named tensor as float32: F32 copied, BF16 and F16 widened exactly, F64
// narrowed (rounded to nearest). Any other dtype is an error naming file, tensor and dtype.
func (f *File) Float32(name string) ([]float32, error) {
	in, _, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	out := make([]float32, in.NumElements())
	if err := f.Float32Into(out, name); err != nil {
		return nil, err
	}
	return out, nil
}

// Float32Into decodes the named tensor as Float32 does, into dst (exactly its element count),
// then tells the kernel the tensor's mapped pages are no longer needed, so loading a model
// holds neither a second copy of each tensor nor the file's pages (they stay in the page
// cache: a second read costs no disk I/O).
func (f *File) Float32Into(dst []float32, name string) error {
	in, b, err := f.lookup(name)
	if err != nil {
		return err
	}
	if int64(len(dst)) != in.NumElements() {
		return fmt.Errorf("safetensors %s: tensor %q has %d elements, destination %d", f.path, name, in.NumElements(), len(dst))
	}
	le := binary.LittleEndian
	switch in.DType {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(le.Uint16(b[2*i:])) << 16)
		}
	case F16:
		for i := range dst {
			dst[i] = F16BitsToF32(le.Uint16(b[2*i:]))
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(le.Uint64(b[8*i:])))
		}
	default:
		return fmt.Errorf("safetensors %s: tensor %q has dtype %s, not a float type readable as float32 (F32, BF16, F16, F64)",
			f.path, name, in.DType)
	}
	f.dropPages(in)
	return nil
}

// dropPages releases the whole pages that lie inside a tensor's bytes from this mapping.
func (f *File) dropPages(in Info) {
	page := int64(os.Getpagesize())
	start := (f.base + in.Begin + page - 1) / page * page
	end := (f.base + in.End) / page * page
	if end > start {
		_ = unix.Madvise(f.data[start:end], unix.MADV_DONTNEED)
	}
}

// Int64 returns the named tensor as int64: I64 copied; I32, I16, I8, U32, U16, U8 widened.
// Any other dtype is an error naming file, tensor and dtype. (One case per dtype, alike in
// shape: each has its own width and sign extension, which a table of funcs would hide.)
func (f *File) Int64(name string) ([]int64, error) {
	in, b, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	var out []int64
	switch in.DType {
	case I64:
		out = make([]int64, len(b)/8)
		for i := range out {
			out[i] = int64(le.Uint64(b[8*i:]))
		}
	case I32:
		out = make([]int64, len(b)/4)
		for i := range out {
			out[i] = int64(int32(le.Uint32(b[4*i:])))
		}
	case U32:
		out = make([]int64, len(b)/4)
		for i := range out {
			out[i] = int64(le.Uint32(b[4*i:]))
		}
	case I16:
		out = make([]int64, len(b)/2)
		for i := range out {
			out[i] = int64(int16(le.Uint16(b[2*i:])))
		}
	case U16:
		out = make([]int64, len(b)/2)
		for i := range out {
			out[i] = int64(le.Uint16(b[2*i:]))
		}
	case I8:
		out = make([]int64, len(b))
		for i := range out {
			out[i] = int64(int8(b[i]))
		}
	case U8:
		out = make([]int64, len(b))
		for i := range out {
			out[i] = int64(b[i])
		}
	default:
		return nil, fmt.Errorf("safetensors %s: tensor %q has dtype %s, not an integer type readable as int64 (I64, I32, U32, I16, U16, I8, U8)",
			f.path, name, in.DType)
	}
	return out, nil
}

// Close unmaps the file. Slices returned by Bytes become invalid; later reads return errors.
func (f *File) Close() error {
	if f.data == nil {
		return nil
	}
	err := unix.Munmap(f.data)
	f.data = nil
	if err != nil {
		return fmt.Errorf("safetensors %s: munmap: %w", f.path, err)
	}
	return nil
}
