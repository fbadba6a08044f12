package metrics

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// NewTensorBoard writes dir/events.out.tfevents.<unix seconds>.<hostname> (".1", ".2", …
// appended if that name is taken): TFRecords, each an Event protobuf. The first holds
// file_version "brain.Event:2"; then each record is one Event at its step whose Summary
// holds every value as a simple_value under the tag "train/<key>" or "eval/<key>" (keys may
// hold slashes: "train/moe/layer3/load_max"). The stage name is not written: TensorBoard
// shows it as a change of slope at best, and text summaries need the tensor plugin protos.
// Each Write flushes its event to the file.
//
// The protobufs are encoded by hand (six fields, see appendEvent): google.golang.org/protobuf
// would need generated Event/Summary types, which is more code to keep than the encoder.
func NewTensorBoard(dir string) (Sink, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	name := filepath.Join(dir, "events.out.tfevents."+strconv.FormatInt(time.Now().Unix(), 10)+"."+host)
	var f *os.File
	for i := 0; ; i++ {
		n := name
		if i > 0 {
			n += "." + strconv.Itoa(i)
		}
		f, err = os.OpenFile(n, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) && i < 100 {
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}
	tb := &tensorBoard{f: f, w: bufio.NewWriter(f), now: time.Now}
	if err := tb.put(appendEvent(nil, tb.wallTime(), 0, "brain.Event:2", nil)); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %v", f.Name(), err)
	}
	return tb, nil
}

type tensorBoard struct {
	mu    sync.Mutex
	f     *os.File
	w     *bufio.Writer
	now   func() time.Time
	event []byte
	frame [12]byte
}

func (tb *tensorBoard) wallTime() float64 {
	return float64(tb.now().UnixNano()) / 1e9
}

func (tb *tensorBoard) Write(r Record) error {
	prefix := "train/"
	if r.Eval {
		prefix = "eval/"
	}
	keys := sortedKeys(r.Values)
	tags := make([]scalar, len(keys))
	for i, k := range keys {
		tags[i] = scalar{prefix + k, float32(r.Values[k])}
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.f == nil {
		return errors.New("tensorboard: write after close")
	}
	tb.event = appendEvent(tb.event[:0], tb.wallTime(), int64(r.Step), "", tags)
	if err := tb.put(tb.event); err != nil {
		return fmt.Errorf("%s: %v", tb.f.Name(), err)
	}
	return nil
}

// put writes one TFRecord and flushes it:
// uint64 LE length | uint32 LE masked CRC of the length | data | uint32 LE masked CRC of data.
func (tb *tensorBoard) put(data []byte) error {
	binary.LittleEndian.PutUint64(tb.frame[:8], uint64(len(data)))
	binary.LittleEndian.PutUint32(tb.frame[8:], maskedCRC(tb.frame[:8]))
	tb.w.Write(tb.frame[:12])
	tb.w.Write(data)
	binary.LittleEndian.PutUint32(tb.frame[:4], maskedCRC(data))
	tb.w.Write(tb.frame[:4])
	return tb.w.Flush()
}

func (tb *tensorBoard) Close(int) error {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.f == nil {
		return nil
	}
	err := tb.w.Flush()
	if e := tb.f.Close(); err == nil {
		err = e
	}
	tb.f = nil
	return err
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskedCRC is TFRecord's ((crc >> 15) | (crc << 17)) + 0xa282ead8 over CRC-32C.
func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

type scalar struct {
	tag   string
	value float32
}

// Protobuf field keys (field number << 3 | wire type) of tensorflow/core/util/event.proto
// and summary.proto: wire type 0 varint, 1 64-bit, 2 length-delimited, 5 32-bit.
const (
	eventWallTime    = 1<<3 | 1 // double
	eventStep        = 2<<3 | 0 // int64
	eventFileVersion = 3<<3 | 2 // string
	eventSummary     = 5<<3 | 2 // Summary
	summaryValue     = 1<<3 | 2 // repeated Summary.Value
	valueTag         = 1<<3 | 2 // string
	valueSimpleValue = 2<<3 | 5 // float
)

// appendEvent encodes an Event with wall_time and step, and either file_version or a
// Summary of scalars (proto3 leaves out a zero step).
func appendEvent(b []byte, wall float64, step int64, fileVersion string, values []scalar) []byte {
	b = append(b, eventWallTime)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(wall))
	if step != 0 {
		b = append(b, eventStep)
		b = binary.AppendUvarint(b, uint64(step))
	}
	if fileVersion != "" {
		b = appendBytes(b, eventFileVersion, fileVersion)
	}
	if values == nil {
		return b
	}
	size := 0
	for _, v := range values {
		n := valueSize(v)
		size += 1 + uvarintLen(n) + n
	}
	b = append(b, eventSummary)
	b = binary.AppendUvarint(b, uint64(size))
	for _, v := range values {
		b = append(b, summaryValue)
		b = binary.AppendUvarint(b, uint64(valueSize(v)))
		b = appendBytes(b, valueTag, v.tag)
		b = append(b, valueSimpleValue)
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v.value))
	}
	return b
}

func valueSize(v scalar) int { return 1 + uvarintLen(len(v.tag)) + len(v.tag) + 1 + 4 }

func appendBytes(b []byte, key byte, s string) []byte {
	b = append(b, key)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func uvarintLen(n int) int {
	l := 1
	for ; n >= 0x80; n >>= 7 {
		l++
	}
	return l
}
