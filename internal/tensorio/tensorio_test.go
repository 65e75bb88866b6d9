package tensorio

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

func TestRoundTrip(t *testing.T) {
	for _, shape := range [][]int{{5}, {2, 3}, {2, 3, 4, 1}} {
		n := 1
		for _, s := range shape {
			n *= s
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(i)*0.5 - 3
		}
		in := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
		var buf bytes.Buffer
		if err := WriteNPY(&buf, in); err != nil {
			t.Fatal(err)
		}
		hdrLen := int(buf.Bytes()[8]) | int(buf.Bytes()[9])<<8
		if (10+hdrLen)%64 != 0 {
			t.Errorf("shape %v: header of %d bytes is not 64-aligned", shape, 10+hdrLen)
		}
		out, err := ReadNPY(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatalf("shape %v: %v", shape, err)
		}
		if !out.Shape().Eq(in.Shape()) {
			t.Fatalf("shape: got %v, want %v", out.Shape(), shape)
		}
		for i, v := range out.Data().([]float32) {
			if v != data[i] {
				t.Fatalf("shape %v: element %d: got %v, want %v", shape, i, v, data[i])
			}
		}
	}
}

func TestNumpyHeader(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteNPY(&buf, tensor.New(tensor.WithShape(3), tensor.WithBacking([]float32{1, 2, 3}))); err != nil {
		t.Fatal(err)
	}
	want := "\x93NUMPY\x01\x00"
	if got := buf.String()[:8]; got != want {
		t.Fatalf("magic: got %q, want %q", got, want)
	}
	if !strings.Contains(buf.String(), "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }") {
		t.Fatalf("header dict not as numpy writes it: %q", buf.String()[10:74])
	}
}

// npyBytes builds a .npy file by hand with the given descriptor and payload.
func npyBytes(dict string, payload []byte) []byte {
	pad := 64 - (10+len(dict)+1)%64
	h := append([]byte("\x93NUMPY\x01\x00"), byte(len(dict)+pad+1), byte((len(dict)+pad+1)>>8))
	h = append(h, dict...)
	h = append(h, bytes.Repeat([]byte(" "), pad)...)
	h = append(h, '\n')
	return append(h, payload...)
}

func TestFloat64AndFortran(t *testing.T) {
	// 2x3 matrix [[1 2 3] [4 5 6]] stored as float64 in Fortran order: 1 4 2 5 3 6.
	var payload []byte
	for _, v := range []float64{1, 4, 2, 5, 3, 6} {
		var b [8]byte
		u := math.Float64bits(v)
		for i := range b {
			b[i] = byte(u >> (8 * i))
		}
		payload = append(payload, b[:]...)
	}
	raw := npyBytes("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", payload)
	out, err := ReadNPY(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	got := out.Data().([]float32)
	for i, want := range []float32{1, 2, 3, 4, 5, 6} {
		if got[i] != want {
			t.Fatalf("element %d: got %v, want %v (all %v)", i, got[i], want, got)
		}
	}
}

func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  []byte
		want string
	}{
		{"not npy", []byte("hello world, not numpy"), "not a .npy"},
		{"int dtype", npyBytes("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", make([]byte, 16)), "dtype"},
		{"truncated", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", make([]byte, 8)), "truncated"},
		{"empty", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", nil), "empty"},
		{"huge", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000), }", nil), "shape"},
		// Headers npyio's reader panicked on (slice bounds out of range).
		{"no newline", []byte("\x93NUMPY\x01\x00\x03\x00{}x"), "not a .npy"},
		{"short header", []byte("\x93NUMPY\x01000"), "not a .npy"},
		{"no closing brace", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), ", make([]byte, 4)), "not a .npy"},
		{"keys out of order", npyBytes("{'shape': (1,), 'fortran_order': False, 'descr': '<f4', }", make([]byte, 4)), ""},
		{"empty shape value", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': }", make([]byte, 4)), "shape"},
		{"structured dtype", npyBytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", make([]byte, 4)), "descr"},
		{"negative dimension", npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", make([]byte, 4)), "dimension"},
		{"too many dimensions", npyBytes("{'descr': '<f4', 'fortran_order': True, 'shape': ("+strings.Repeat("1,", 65)+"), }", make([]byte, 4)), "dimensions"},
		// A version 2 header may claim 4 GiB, which npyio allocated.
		{"huge header", []byte("\x93NUMPY\x02\x00\xff\xff\xff\xff{"), "header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadNPY(bytes.NewReader(tc.raw), int64(len(tc.raw)))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// TestUnknownSizeAllocatesWhatArrives: without a size to check against (a
// compressed .npz entry), a header promising 8 GiB of floats followed by a
// few bytes costs a few megabytes, not 8 GiB.
func TestUnknownSizeAllocatesWhatArrives(t *testing.T) {
	raw := npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1024, 1024, 2048), }", make([]byte, 64))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ReadNPY(bytes.NewReader(raw), -1)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("got error %v, want one saying truncated", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Fatalf("allocated %d MiB for 64 bytes of data", got>>20)
	}
}

// TestNPZCompressedSizeIsNotTrusted: a deflated entry whose zip header
// claims a huge uncompressed size is read as it comes, not allocated.
func TestNPZCompressedSizeIsNotTrusted(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "a.npy", Method: zip.Deflate})
	if err != nil {
		t.Fatal(err)
	}
	// More data than bufio reads at once, so that the header is read
	// before the zip reader finds the entry shorter than it claims.
	w.Write(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1024, 1024, 1023), }", make([]byte, 1<<16)))
	zw.Close()
	raw := buf.Bytes()
	// The central directory claims 4 GiB uncompressed, enough for the
	// header's 4 GiB of floats (the local header has no size: the entry
	// was streamed).
	cd := bytes.LastIndex(raw, []byte("PK\x01\x02"))
	binary.LittleEndian.PutUint32(raw[cd+24:], 0xfffffff0)
	path := filepath.Join(t.TempDir(), "w.npz")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := OpenNPZ(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = a.Read("a")
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("no error")
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Fatalf("allocated %d MiB for 64 KiB of data: %v", got>>20, err)
	}
}

func TestNPZ(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.npz")
	arrays := map[string]*tensor.Dense{
		"conv1_conv/kernel": tensor.New(tensor.WithShape(1, 1, 2, 2), tensor.WithBacking([]float32{1, 2, 3, 4})),
		"conv1_conv/bias":   tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{5, 6})),
	}
	if err := WriteNPZ(path, arrays); err != nil {
		t.Fatal(err)
	}
	a, err := OpenNPZ(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if got := strings.Join(a.Names(), ","); got != "conv1_conv/bias,conv1_conv/kernel" {
		t.Fatalf("names: %s", got)
	}
	k, err := a.Read("conv1_conv/kernel")
	if err != nil {
		t.Fatal(err)
	}
	if k.Shape()[2] != 2 || k.Data().([]float32)[3] != 4 {
		t.Fatalf("kernel read back wrong: %v", k)
	}
	if _, err := a.Read("missing"); err == nil || !strings.Contains(err.Error(), `"missing"`) {
		t.Fatalf("missing array: got %v", err)
	}

	raw, _ := os.ReadFile(path)
	trunc := filepath.Join(dir, "trunc.npz")
	os.WriteFile(trunc, raw[:len(raw)/2], 0o644)
	if _, err := OpenNPZ(trunc); err == nil || !strings.Contains(err.Error(), "trunc.npz") {
		t.Fatalf("truncated npz: got %v", err)
	}
}

// TestFloat32Bytes: the bytes are "<f4" whatever the machine, bit patterns
// (negative zero, NaN payloads, denormals) included, and the element-wise
// decoder (big-endian machines, float64 files) reads them back the same.
func TestFloat32Bytes(t *testing.T) {
	v := []float32{0, float32(math.Copysign(0, -1)), 1.5, -3.25e-41, math.MaxFloat32,
		float32(math.Inf(-1)), math.Float32frombits(0x7fc00123), math.Float32frombits(0xffa5a5a5)}
	got := Float32Bytes(v)
	var want []byte
	for _, x := range v {
		want = binary.LittleEndian.AppendUint32(want, math.Float32bits(x))
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Float32Bytes = % x, want % x", got, want)
	}
	back := make([]float32, len(v))
	if err := decodeFloats(bytes.NewReader(want), back, 4); err != nil {
		t.Fatal(err)
	}
	for i := range v {
		if math.Float32bits(back[i]) != math.Float32bits(v[i]) {
			t.Errorf("element %d: decoded %08x, want %08x", i, math.Float32bits(back[i]), math.Float32bits(v[i]))
		}
	}
	if err := decodeFloats(bytes.NewReader(want[:5]), back, 4); err == nil {
		t.Error("decodeFloats of 5 bytes for 8 floats: no error")
	}
	if Float32Bytes(nil) != nil {
		t.Error("Float32Bytes(nil) is not empty")
	}
}

// TestHeadersNumPyReads: headers NumPy reads that npyio's parser did not:
// a dict without the trailing ", " (str(dict) writes them; npyio read the
// shape (2, 3) as (2)), and format version 3; and a file with bytes after
// its array is refused.
func TestHeadersNumPyReads(t *testing.T) {
	var payload []byte
	for i := range 6 {
		payload = binary.LittleEndian.AppendUint32(payload, math.Float32bits(float32(i+1)))
	}
	v3 := npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", payload)
	// Version 3: a 4-byte length, as version 2.
	dict := v3[10:]
	v3 = append(append([]byte("\x93NUMPY\x03\x00"), binary.LittleEndian.AppendUint32(nil, uint32(len(dict)-len(payload)))...), dict...)
	for name, raw := range map[string][]byte{
		"no trailing comma": npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", payload),
		"version 3":         v3,
	} {
		x, err := ReadNPY(bytes.NewReader(raw), int64(len(raw)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !x.Shape().Eq(tensor.Shape{2, 3}) || x.Float32s()[5] != 6 {
			t.Errorf("%s: shape %v, values %v", name, x.Shape(), x.Float32s())
		}
	}
	extra := npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", payload)
	for _, size := range []int64{int64(len(extra)), -1} { // a file, a pipe
		if _, err := ReadNPY(bytes.NewReader(extra), size); err == nil || !strings.Contains(err.Error(), "bytes left over") {
			t.Errorf("6 values under a header of 5, size %d: %v", size, err)
		}
	}
}

// TestReadNPYFileFromPipe: a .npy read from a pipe (predict --npy
// /dev/stdin), whose size the file system does not know.
func TestReadNPYFileFromPipe(t *testing.T) {
	want := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{1, 2, 3, 4, 5, 6}))
	var b bytes.Buffer
	if err := WriteNPY(&b, want); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() { w.Write(b.Bytes()); w.Close() }()
	defer r.Close()
	got, err := ReadNPYFile(fmt.Sprintf("/dev/fd/%d", r.Fd()))
	if err != nil || !got.Shape().Eq(want.Shape()) || got.Float32s()[5] != 6 {
		t.Fatalf("from a pipe: %v, %v", got, err)
	}
}

// TestNPZChecksum: an entry whose bytes do not match its CRC-32 is refused,
// stored or compressed.
func TestNPZChecksum(t *testing.T) {
	x := tensor.New(tensor.WithShape(4), tensor.WithBacking([]float32{1, 2, 3, 4}))
	var npy bytes.Buffer
	if err := WriteNPY(&npy, x); err != nil {
		t.Fatal(err)
	}
	for _, method := range []uint16{zip.Store, zip.Deflate} {
		data := npy.Bytes()
		if method == zip.Deflate {
			var c bytes.Buffer
			fw, _ := flate.NewWriter(&c, flate.DefaultCompression)
			fw.Write(data)
			fw.Close()
			data = c.Bytes()
		}
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		w, err := zw.CreateRaw(&zip.FileHeader{Name: "x.npy", Method: method, CRC32: crc32.ChecksumIEEE(npy.Bytes()) ^ 1,
			UncompressedSize64: uint64(npy.Len()), CompressedSize64: uint64(len(data))})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		zw.Close()
		path := filepath.Join(t.TempDir(), "x.npz")
		os.WriteFile(path, b.Bytes(), 0o644)
		a, err := OpenNPZ(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Read("x"); err == nil || !strings.Contains(err.Error(), "checksum") {
			t.Errorf("method %d: a wrong CRC-32: %v", method, err)
		}
		a.Close()
	}
}
