package metrics

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// The reader below follows the notes (../shared/notes/metrics-protocols.md) and
// event.proto/summary.proto, decoding with protowire, independently of the encoder.

// tfMask is the masked CRC-32C of the TFRecord format, computed from the notes' formula.
func tfMask(b []byte) uint32 {
	c := crc32.Update(0, crc32.MakeTable(0x82f63b78), b) // Castagnoli, reversed polynomial
	return ((c >> 15) | (c << 17)) + 0xa282ead8
}

func TestCRC32C(t *testing.T) {
	if c := crc32.Update(0, crc32.MakeTable(0x82f63b78), []byte("123456789")); c != 0xe3069283 {
		t.Fatalf("crc32c check value %#x, want 0xe3069283", c)
	}
	if maskedCRC([]byte("123456789")) != tfMask([]byte("123456789")) {
		t.Fatal("maskedCRC disagrees with the notes' formula")
	}
}

type tbEvent struct {
	wall        float64
	step        int64
	fileVersion string
	values      map[string]float32
	order       []string
}

// readEvents parses a TFRecord file, checking both CRCs of every record.
func readEvents(t *testing.T, path string) []tbEvent {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var evs []tbEvent
	for off := 0; off < len(b); {
		if len(b)-off < 12 {
			t.Fatalf("%s: %d trailing bytes at %d", path, len(b)-off, off)
		}
		n := binary.LittleEndian.Uint64(b[off:])
		if got, want := binary.LittleEndian.Uint32(b[off+8:]), tfMask(b[off:off+8]); got != want {
			t.Fatalf("%s: record at %d: length CRC %#x, want %#x", path, off, got, want)
		}
		off += 12
		if uint64(len(b)-off) < n+4 {
			t.Fatalf("%s: record at %d: length %d past the end", path, off, n)
		}
		data := b[off : off+int(n)]
		if got, want := binary.LittleEndian.Uint32(b[off+int(n):]), tfMask(data); got != want {
			t.Fatalf("%s: record at %d: data CRC %#x, want %#x", path, off, got, want)
		}
		off += int(n) + 4
		evs = append(evs, parseEvent(t, data))
	}
	return evs
}

func parseEvent(t *testing.T, b []byte) tbEvent {
	t.Helper()
	ev := tbEvent{values: map[string]float32{}}
	fields(t, b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) {
		switch {
		case num == 1 && typ == protowire.Fixed64Type:
			ev.wall = math.Float64frombits(x)
		case num == 2 && typ == protowire.VarintType:
			ev.step = int64(x)
		case num == 3 && typ == protowire.BytesType:
			ev.fileVersion = string(v)
		case num == 5 && typ == protowire.BytesType: // Summary
			fields(t, v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) {
				if num != 1 || typ != protowire.BytesType {
					t.Fatalf("Summary field %d type %d", num, typ)
				}
				var tag string
				var val float32
				hasVal := false
				fields(t, v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) {
					switch {
					case num == 1 && typ == protowire.BytesType:
						tag = string(v)
					case num == 2 && typ == protowire.Fixed32Type:
						val, hasVal = math.Float32frombits(uint32(x)), true
					default:
						t.Fatalf("Summary.Value field %d type %d", num, typ)
					}
				})
				if !hasVal {
					t.Fatalf("tag %q without simple_value", tag)
				}
				ev.values[tag] = val
				ev.order = append(ev.order, tag)
			})
		default:
			t.Fatalf("Event field %d type %d", num, typ)
		}
	})
	return ev
}

func fields(t *testing.T, b []byte, f func(protowire.Number, protowire.Type, []byte, uint64)) {
	t.Helper()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var y uint32
			y, n = protowire.ConsumeFixed32(b)
			x = uint64(y)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			t.Fatalf("unexpected wire type %d", typ)
		}
		if n < 0 {
			t.Fatalf("bad field %d: %v", num, protowire.ParseError(n))
		}
		b = b[n:]
		f(num, typ, v, x)
	}
}

// tbRecords are what the TensorBoard tests write: two stages, evals, per-layer keys.
func tbRecords() []Record {
	var rs []Record
	for s := 0; s < 30; s++ {
		stage := "pretrain"
		if s >= 20 {
			stage = "sft"
		}
		rs = append(rs, Record{Step: s, Stage: stage, Values: map[string]float64{
			"loss": 10 / float64(s+1), "lr": 1e-3 * float64(s) / 30, "tokens_per_s": 1000 + float64(s),
			"moe/layer3/load_max": 0.25 + float64(s)/100, "big": -1e9 * float64(s),
		}})
		if s%10 == 9 {
			rs = append(rs, Record{Step: s, Stage: stage, Eval: true, Values: map[string]float64{"loss": float64(s) / 7, "ppl": float64(s)}})
		}
	}
	return rs
}

func writeTB(t *testing.T, dir string, rs []Record) string {
	t.Helper()
	s, err := NewTensorBoard(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if err := s.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(0); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "events.out.tfevents.*"))
	if len(files) != 1 {
		t.Fatalf("event files %v", files)
	}
	return files[0]
}

func TestTensorBoardFile(t *testing.T) {
	dir := t.TempDir()
	rs := tbRecords()
	path := writeTB(t, dir, rs)
	host, _ := os.Hostname()
	if base := filepath.Base(path); !strings.HasSuffix(base, "."+host) {
		t.Errorf("file name %s does not end in the host name %q", base, host)
	}
	evs := readEvents(t, path)
	if len(evs) != 1+len(rs) {
		t.Fatalf("%d events, want %d", len(evs), 1+len(rs))
	}
	if evs[0].fileVersion != "brain.Event:2" || len(evs[0].values) != 0 || evs[0].wall < 1.7e9 {
		t.Errorf("first event %+v", evs[0])
	}
	for i, r := range rs {
		ev := evs[i+1]
		if ev.step != int64(r.Step) || ev.fileVersion != "" || ev.wall < evs[0].wall {
			t.Errorf("event %d: step %d wall %v, want step %d", i+1, ev.step, ev.wall, r.Step)
		}
		prefix := "train/"
		if r.Eval {
			prefix = "eval/"
		}
		if len(ev.values) != len(r.Values) {
			t.Errorf("step %d: tags %v, want %d", r.Step, ev.order, len(r.Values))
		}
		for k, v := range r.Values {
			if got, ok := ev.values[prefix+k]; !ok || got != float32(v) {
				t.Errorf("step %d: %s = %v (present %v), want %v", r.Step, prefix+k, got, ok, float32(v))
			}
		}
	}
	// A second writer in the same second gets a file of its own.
	s1, err1 := NewTensorBoard(dir)
	s2, err2 := NewTensorBoard(dir)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	s1.Close(0)
	s2.Close(0)
	if files, _ := filepath.Glob(filepath.Join(dir, "events.out.tfevents.*")); len(files) != 3 {
		t.Errorf("three writers made %v", files)
	}
}

// TestTensorBoardEncoding pins one event's bytes, assembled by hand from the protobuf
// encoding rules: a negative step is a ten-byte varint, a zero value is still written.
func TestTensorBoardEncoding(t *testing.T) {
	got := appendEvent(nil, 1.5, -2, "", []scalar{{"a", 0}})
	want := []byte{0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, // wall_time 1.5
		0x10, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, // step -2
		0x2a, 0x0a, // summary, 10 bytes
		0x0a, 0x08, // value, 8 bytes
		0x0a, 0x01, 'a', // tag "a"
		0x15, 0, 0, 0, 0, // simple_value 0
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encoding\n have % x\n want % x", got, want)
	}
}

// TestTensorBoardPython loads the file with TensorBoard's own EventAccumulator when the
// Python package is installed.
func TestTensorBoardPython(t *testing.T) {
	if err := exec.Command("python3", "-c", "import tensorboard").Run(); err != nil {
		t.Skip("skipped: the Python tensorboard package is not importable here (python3 -c 'import tensorboard' failed)")
	}
	dir := t.TempDir()
	rs := tbRecords()
	writeTB(t, dir, rs)
	script := `
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
acc.Reload()
for tag in sorted(acc.Tags()["scalars"]):
    for e in acc.Scalars(tag):
        print(tag, e.step, repr(e.value))
`
	out, err := exec.Command("python3", "-c", script, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("EventAccumulator: %v\n%s", err, out)
	}
	var want []string
	for _, r := range rs {
		prefix := "train/"
		if r.Eval {
			prefix = "eval/"
		}
		for k, v := range r.Values {
			want = append(want, fmt.Sprintf("%s%s %d %v", prefix, k, r.Step, float32(v)))
		}
	}
	got := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		var v float64
		fmt.Sscan(f[2], &v)
		got[fmt.Sprintf("%s %s %v", f[0], f[1], float32(v))] = true
	}
	if len(got) != len(want) {
		t.Errorf("TensorBoard read %d scalars, want %d", len(got), len(want))
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("TensorBoard did not find %s", w)
		}
	}
}
