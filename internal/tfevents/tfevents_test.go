package tfevents

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// eventType describes tensorboard.Event with the fields of
// tensorboard/compat/proto/event.proto and summary.proto that this package
// writes, so that the generic protobuf decoder checks the encoding
// independently of the encoder.
func eventType(t *testing.T) protoreflect.MessageDescriptor {
	t.Helper()
	field := func(name string, n int32, typ descriptorpb.FieldDescriptorProto_Type, msg string, repeated bool) *descriptorpb.FieldDescriptorProto {
		label := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
		if repeated {
			label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
		}
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(n), Type: typ.Enum(), Label: label.Enum()}
		if msg != "" {
			f.TypeName = proto.String(msg)
		}
		return f
	}
	const (
		double, int64_, str, msg, float, enum = descriptorpb.FieldDescriptorProto_TYPE_DOUBLE, descriptorpb.FieldDescriptorProto_TYPE_INT64,
			descriptorpb.FieldDescriptorProto_TYPE_STRING, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE,
			descriptorpb.FieldDescriptorProto_TYPE_FLOAT, descriptorpb.FieldDescriptorProto_TYPE_ENUM
	)
	fd := &descriptorpb.FileDescriptorProto{
		Name: proto.String("event_subset.proto"), Package: proto.String("tensorboard"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("Event"), Field: []*descriptorpb.FieldDescriptorProto{
				field("wall_time", 1, double, "", false),
				field("step", 2, int64_, "", false),
				field("file_version", 3, str, "", false),
				field("summary", 5, msg, ".tensorboard.Summary", false),
				field("session_log", 7, msg, ".tensorboard.SessionLog", false),
			}},
			{Name: proto.String("Summary"),
				Field: []*descriptorpb.FieldDescriptorProto{field("value", 1, msg, ".tensorboard.Summary.Value", true)},
				NestedType: []*descriptorpb.DescriptorProto{{Name: proto.String("Value"), Field: []*descriptorpb.FieldDescriptorProto{
					field("tag", 1, str, "", false),
					field("simple_value", 2, float, "", false),
				}}},
			},
			{Name: proto.String("SessionLog"),
				Field: []*descriptorpb.FieldDescriptorProto{field("status", 1, enum, ".tensorboard.SessionLog.SessionStatus", false)},
				EnumType: []*descriptorpb.EnumDescriptorProto{{Name: proto.String("SessionStatus"), Value: []*descriptorpb.EnumValueDescriptorProto{
					{Name: proto.String("STATUS_UNSPECIFIED"), Number: proto.Int32(0)},
					{Name: proto.String("START"), Number: proto.Int32(1)},
					{Name: proto.String("STOP"), Number: proto.Int32(2)},
					{Name: proto.String("CHECKPOINT"), Number: proto.Int32(3)},
				}}},
			},
		},
	}
	file, err := protodesc.NewFile(fd, nil)
	if err != nil {
		t.Fatal(err)
	}
	return file.Messages().ByName("Event")
}

// readEvents reads a TFRecord file, checking the framing and both CRCs of
// every record, and decodes each record as an Event, as a text line.
func readEvents(t *testing.T, path string, typ protoreflect.MessageDescriptor) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	for {
		var head [12]byte
		if _, err := io.ReadFull(f, head[:]); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("record %d: header: %v", len(out), err)
		}
		n := binary.LittleEndian.Uint64(head[:8])
		if got := binary.LittleEndian.Uint32(head[8:]); got != MaskedCRC(head[:8]) {
			t.Fatalf("record %d: length CRC %08x, want %08x", len(out), got, MaskedCRC(head[:8]))
		}
		data := make([]byte, n+4)
		if _, err := io.ReadFull(f, data); err != nil {
			t.Fatalf("record %d: %v", len(out), err)
		}
		if got := binary.LittleEndian.Uint32(data[n:]); got != MaskedCRC(data[:n]) {
			t.Fatalf("record %d: data CRC %08x, want %08x", len(out), got, MaskedCRC(data[:n]))
		}
		m := dynamicpb.NewMessage(typ)
		if err := proto.Unmarshal(data[:n], m); err != nil {
			t.Fatalf("record %d: not an Event: %v", len(out), err)
		}
		out = append(out, describe(t, m))
	}
}

// describe prints an Event's fields (wall time aside), failing on fields
// the descriptor does not know.
func describe(t *testing.T, m protoreflect.Message) string {
	t.Helper()
	if len(m.GetUnknown()) > 0 {
		t.Fatalf("%v: unknown fields %x", m.Descriptor().FullName(), m.GetUnknown())
	}
	var parts []string
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ { // in declaration order, unlike Range
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		v := m.Get(fd)
		switch {
		case fd.Name() == "wall_time":
			if v.Float() < 1e9 {
				t.Errorf("wall_time %v is not a Unix time in seconds", v.Float())
			}
		case fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				parts = append(parts, fmt.Sprintf("%s{%s}", fd.Name(), describe(t, v.List().Get(i).Message())))
			}
		case fd.Kind() == protoreflect.MessageKind:
			parts = append(parts, fmt.Sprintf("%s{%s}", fd.Name(), describe(t, v.Message())))
		case fd.Kind() == protoreflect.EnumKind:
			parts = append(parts, fmt.Sprintf("%s=%s", fd.Name(), fd.Enum().Values().ByNumber(v.Enum()).Name()))
		default:
			parts = append(parts, fmt.Sprintf("%s=%v", fd.Name(), v.Interface()))
		}
	}
	return strings.Join(parts, " ")
}

func TestWriter(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "train")
	now := time.Date(2026, 11, 28, 1, 2, 3, 500_000_000, time.UTC)
	w, err := Create(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	steps := []error{
		w.Start(3, now),
		w.Scalars(3, now, Scalar{"epoch_loss", 0.25}, Scalar{"epoch_accuracy", 0.875}),
		w.Scalars(4, now.Add(time.Second), Scalar{"epoch_learning_rate", 1e-4}),
	}
	if err := errors.Join(append(steps, w.Close())...); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(w.Path()), fmt.Sprintf("events.out.tfevents.%d.", now.Unix())) {
		t.Errorf("file name %s: TensorBoard reads files named events.out.tfevents.*", w.Path())
	}
	got := readEvents(t, w.Path(), eventType(t))
	want := []string{
		"file_version=brain.Event:2",
		"step=3 session_log{status=START}",
		"step=3 summary{value{tag=epoch_loss simple_value=0.25} value{tag=epoch_accuracy simple_value=0.875}}",
		fmt.Sprintf("step=4 summary{value{tag=epoch_learning_rate simple_value=%v}}", float32(1e-4)),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	evs, err := Read(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	wantEvs := []Event{
		{FileVersion: FileVersion},
		{Step: 3, Start: true},
		{Step: 3, Scalars: []Scalar{{"epoch_loss", 0.25}, {"epoch_accuracy", 0.875}}},
		{Step: 4, Scalars: []Scalar{{"epoch_learning_rate", float64(float32(1e-4))}}},
	}
	for i := range evs {
		if evs[i].WallTime < float64(now.Unix()) || evs[i].WallTime > float64(now.Unix()+2) {
			t.Errorf("event %d: wall time %v, want about %v", i, evs[i].WallTime, now.Unix())
		}
		evs[i].WallTime = 0
	}
	if !reflect.DeepEqual(evs, wantEvs) {
		t.Errorf("Read = %+v, want %+v", evs, wantEvs)
	}

	// A second writer in the same second gets a file of its own.
	w2, err := Create(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	w2.Close()
	if w2.Path() == w.Path() {
		t.Errorf("two writers share %s", w.Path())
	}
}

// TestMaskedCRC: CRC-32C's check value (so the polynomial is Castagnoli's)
// and the mask TensorFlow's tsl/lib/hash/crc32c.h applies.
func TestMaskedCRC(t *testing.T) {
	c := crc32.Checksum([]byte("123456789"), castagnoli)
	if c != 0xe3069283 {
		t.Fatalf("CRC-32C(123456789) = %08x, want e3069283", c)
	}
	if got, want := MaskedCRC([]byte("123456789")), uint32(((c>>15)|(c<<17))+0xa282ead8); got != want {
		t.Fatalf("MaskedCRC = %08x, want %08x", got, want)
	}
	if MaskedCRC(nil) != 0xa282ead8 {
		t.Errorf("MaskedCRC of nothing = %08x, want the mask constant a282ead8", MaskedCRC(nil))
	}
}

func TestCreateErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(filepath.Join(file, "train"), time.Now()); err == nil || !strings.Contains(err.Error(), "tfevents:") {
		t.Errorf("Create under a file: error %v", err)
	}
}

func TestReadRejectsDamage(t *testing.T) {
	w, err := Create(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	w.Scalars(1, time.Now(), Scalar{"loss", 1})
	w.Close()
	good, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func([]byte) []byte
		err  string
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)-3] }, "unexpected EOF"},
		{"length flipped", func(b []byte) []byte { b[0] ^= 1; return b }, "corrupt length"},
		{"data flipped", func(b []byte) []byte { b[len(b)-6] ^= 0x40; return b }, "record 1: corrupt data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "events.out.tfevents.1")
			if err := os.WriteFile(p, tc.edit(slices.Clone(good)), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Read(p); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Read: error %v, want one with %q", err, tc.err)
			}
		})
	}
}
