// Package tfevents writes TensorBoard event files: scalars per step, as
// Keras' TensorBoard callback and PyTorch's SummaryWriter write them, so
// that `tensorboard --logdir runs` shows and compares training runs.
//
// A file is a sequence of TFRecords (a little-endian uint64 length, its
// masked CRC-32C, the data, the data's masked CRC-32C), each holding one
// tensorflow.Event protocol buffer (tensorboard/compat/proto/event.proto).
// The first event names the format ("brain.Event:2"). Only the fields this
// project writes are encoded: wall_time, step, summary (scalar
// simple_value) and session_log.
//
// A run that restarts from a checkpoint starts a new file with a
// SessionLog START event at the step it resumes from: TensorBoard then
// drops the events of the old files from that step on (those written after
// the checkpoint), so a resumed run's curves show each step once.
package tfevents

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// FileVersion is the format the first event of a file names.
const FileVersion = "brain.Event:2"

// Field numbers of event.proto and summary.proto.
const (
	eventWallTime    = 1 // double
	eventStep        = 2 // int64
	eventFileVersion = 3 // string
	eventSummary     = 5 // Summary
	eventSessionLog  = 7 // SessionLog

	summaryValue      = 1 // repeated Summary.Value
	valueTag          = 1 // string
	valueSimpleValue  = 2 // float
	sessionLogStatus  = 1 // SessionLog.SessionStatus
	sessionLogStarted = 1 // SessionLog.START
)

// Scalar is one named value.
type Scalar struct {
	Tag   string
	Value float64
}

// Writer appends events to one new event file. It is not safe for
// concurrent use.
type Writer struct {
	f    *os.File
	path string
	buf  []byte
}

// Create makes dir (and its parents) and a new event file in it, named as
// TensorFlow names them (events.out.tfevents.<seconds>.<host>.<pid>...),
// and writes the file-version event.
func Create(dir string, now time.Time) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tfevents: %w", err)
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	var f *os.File
	var path string
	for i := 0; ; i++ { // a second file in the same second gets a suffix
		path = filepath.Join(dir, fmt.Sprintf("events.out.tfevents.%d.%s.%d.%d.gotransfer", now.Unix(), host, os.Getpid(), i))
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
		if err == nil || !os.IsExist(err) || i == 99 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("tfevents: %w", err)
	}
	w := &Writer{f: f, path: path}
	if err := w.writeEvent(now, 0, eventFileVersion, []byte(FileVersion)); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// Path is the event file's path.
func (w *Writer) Path() string { return w.path }

// Start records that a run (re)starts at step: TensorBoard discards the
// events of earlier files at this step and later.
func (w *Writer) Start(step int64, now time.Time) error {
	var log []byte
	log = protowire.AppendTag(log, sessionLogStatus, protowire.VarintType)
	log = protowire.AppendVarint(log, sessionLogStarted)
	return w.writeEvent(now, step, eventSessionLog, log)
}

// Scalars records values at step, in one event. TensorBoard stores them as
// float32, as it does every scalar.
func (w *Writer) Scalars(step int64, now time.Time, values ...Scalar) error {
	var sum []byte
	for _, s := range values {
		var v []byte
		v = protowire.AppendTag(v, valueTag, protowire.BytesType)
		v = protowire.AppendString(v, s.Tag)
		v = protowire.AppendTag(v, valueSimpleValue, protowire.Fixed32Type)
		v = protowire.AppendFixed32(v, math.Float32bits(float32(s.Value)))
		sum = protowire.AppendTag(sum, summaryValue, protowire.BytesType)
		sum = protowire.AppendBytes(sum, v)
	}
	return w.writeEvent(now, step, eventSummary, sum)
}

// Close closes the file.
func (w *Writer) Close() error { return w.f.Close() }

// writeEvent writes an Event with its wall time, step and one
// length-delimited field (of the oneof "what").
func (w *Writer) writeEvent(now time.Time, step int64, field protowire.Number, payload []byte) error {
	var ev []byte
	ev = protowire.AppendTag(ev, eventWallTime, protowire.Fixed64Type)
	ev = protowire.AppendFixed64(ev, math.Float64bits(float64(now.UnixNano())/1e9))
	if step != 0 {
		ev = protowire.AppendTag(ev, eventStep, protowire.VarintType)
		ev = protowire.AppendVarint(ev, uint64(step))
	}
	ev = protowire.AppendTag(ev, field, protowire.BytesType)
	ev = protowire.AppendBytes(ev, payload)
	return w.write(ev)
}

// write appends one record, whole (one write call, so that a reader never
// sees a record's length without its data for long).
func (w *Writer) write(data []byte) error {
	b := w.buf[:0]
	b = binary.LittleEndian.AppendUint64(b, uint64(len(data)))
	b = binary.LittleEndian.AppendUint32(b, MaskedCRC(b[:8]))
	b = append(b, data...)
	b = binary.LittleEndian.AppendUint32(b, MaskedCRC(data))
	w.buf = b
	if _, err := w.f.Write(b); err != nil {
		return fmt.Errorf("tfevents: %s: %w", w.path, err)
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MaskedCRC is TFRecord's checksum: CRC-32C, rotated right by 15 bits plus
// a constant (so that a CRC of data holding CRCs is not degenerate).
func MaskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// Event is what Read returns of one event: the fields this package writes.
type Event struct {
	WallTime    float64
	Step        int64
	FileVersion string   // the first event's
	Start       bool     // a SessionLog START
	Scalars     []Scalar // a summary's simple values, as float32 (widened)
}

// Read reads an event file, checking every record's checksums. Fields and
// summary values of other kinds are skipped.
func Read(path string) ([]Event, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tfevents: %w", err)
	}
	var evs []Event
	for len(b) > 0 {
		if len(b) < 12 {
			return evs, fmt.Errorf("tfevents: %s: record %d: %w", path, len(evs), io.ErrUnexpectedEOF)
		}
		n := binary.LittleEndian.Uint64(b)
		if binary.LittleEndian.Uint32(b[8:]) != MaskedCRC(b[:8]) {
			return evs, fmt.Errorf("tfevents: %s: record %d: corrupt length", path, len(evs))
		}
		if uint64(len(b)-12) < n+4 {
			return evs, fmt.Errorf("tfevents: %s: record %d: %w", path, len(evs), io.ErrUnexpectedEOF)
		}
		data := b[12 : 12+n]
		if binary.LittleEndian.Uint32(b[12+n:]) != MaskedCRC(data) {
			return evs, fmt.Errorf("tfevents: %s: record %d: corrupt data", path, len(evs))
		}
		ev, err := decodeEvent(data)
		if err != nil {
			return evs, fmt.Errorf("tfevents: %s: record %d: %w", path, len(evs), err)
		}
		evs = append(evs, ev)
		b = b[12+n+4:]
	}
	return evs, nil
}

var errMalformed = errors.New("malformed protocol buffer")

// fields calls fn for each field of the message b.
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var u uint32
			u, n = protowire.ConsumeFixed32(b)
			x = uint64(u)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
		if err := fn(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

func decodeEvent(b []byte) (Event, error) {
	var ev Event
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == eventWallTime && typ == protowire.Fixed64Type:
			ev.WallTime = math.Float64frombits(x)
		case num == eventStep && typ == protowire.VarintType:
			ev.Step = int64(x)
		case num == eventFileVersion && typ == protowire.BytesType:
			ev.FileVersion = string(v)
		case num == eventSessionLog && typ == protowire.BytesType:
			return fields(v, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
				if num == sessionLogStatus && typ == protowire.VarintType && x == sessionLogStarted {
					ev.Start = true
				}
				return nil
			})
		case num == eventSummary && typ == protowire.BytesType:
			return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if num != summaryValue || typ != protowire.BytesType {
					return nil
				}
				var s Scalar
				simple := false
				err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
					switch {
					case num == valueTag && typ == protowire.BytesType:
						s.Tag = string(v)
					case num == valueSimpleValue && typ == protowire.Fixed32Type:
						s.Value, simple = float64(math.Float32frombits(uint32(x))), true
					}
					return nil
				})
				if simple {
					ev.Scalars = append(ev.Scalars, s)
				}
				return err
			})
		}
		return nil
	})
	return ev, err
}
