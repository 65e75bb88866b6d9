package tensorio

import (
	"archive/zip"
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	"gorgonia.org/tensor"

	"gotransfer/internal/atomicfile"
)

// maxElements bounds one array: 1<<31 float32 values (8 GiB) is far beyond
// any tensor of this project, and stops absurd headers early.
const maxElements = 1 << 31

// maxRank bounds the dimensions of an array, as NumPy's own limit (64)
// does: a header of thousands of them would make fortranToC crawl.
const maxRank = 64

// ReadNPY reads one float array from r. size is the number of bytes that r
// holds (the .npy file's size), used to reject headers that promise more
// (or less) data than there is; pass -1 when it is unknown (or not to be trusted):
// memory then grows with the data that arrives, not with the header's
// promise.
func ReadNPY(r io.Reader, size int64) (*tensor.Dense, error) {
	h, err := readHeader(r)
	if err != nil {
		return nil, fmt.Errorf("not a .npy array: %w", err)
	}
	shape := h.shape
	n := 1
	for _, s := range shape {
		if s < 0 || (s > 0 && n > maxElements/s) {
			return nil, fmt.Errorf("implausible shape %v", shape)
		}
		n *= s
	}
	if n == 0 {
		// gorgonia's tensor cannot hold zero elements, and no tensor of this
		// project is empty.
		return nil, fmt.Errorf("empty array of shape %v", shape)
	}
	var esize int
	switch h.descr {
	case "<f4", "|f4":
		esize = 4
	case "<f8", "|f8":
		esize = 8
	default:
		return nil, fmt.Errorf("dtype %s: want float32 (<f4) or float64 (<f8)", h.descr)
	}
	if data := size - h.size; size >= 0 && int64(n)*int64(esize) != data {
		what := "truncated"
		if int64(n)*int64(esize) < data {
			what = "bytes left over: the header does not describe the data"
		}
		return nil, fmt.Errorf("shape %v needs %d bytes of data, file has %d: %s", shape, n*esize, max(data, 0), what)
	}
	// The data is read in one piece (in chunks when size is unknown),
	// straight into the tensor's memory where its byte order is the file's.
	data, err := readData(r, n, esize, size >= 0)
	if err != nil {
		return nil, fmt.Errorf("shape %v: data truncated: %w", shape, err)
	}
	if size < 0 { // what the size check does for a file: nothing may follow
		var one [1]byte
		switch k, err := io.ReadFull(r, one[:]); {
		case k > 0:
			return nil, fmt.Errorf("shape %v: bytes left over: the header does not describe the data", shape)
		case err != io.EOF: // a compressed entry's checksum, say
			return nil, fmt.Errorf("shape %v: after the data: %w", shape, err)
		}
	}
	if h.fortran && len(shape) > 1 {
		data = fortranToC(data, shape)
	}
	if len(shape) == 0 {
		shape = []int{1} // a NumPy scalar; tensor has no rank-0 dense backing
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data)), nil
}

// readData reads n floats of esize bytes. Unless the size was checked
// (sized), it reads chunks of doubling size, so that a header promising
// gigabytes costs at most twice the bytes actually there.
func readData(r io.Reader, n, esize int, sized bool) ([]float32, error) {
	if sized {
		data := make([]float32, n)
		return data, ReadFloats(r, data, esize)
	}
	const chunk = 1 << 20 // floats
	var data []float32
	for len(data) < n {
		k := min(n-len(data), max(len(data), chunk))
		data = slices.Grow(data, k)
		if err := ReadFloats(r, data[len(data):len(data)+k], esize); err != nil {
			return nil, err
		}
		data = data[:len(data)+k]
	}
	return data, nil
}

// ReadFloats fills data with len(data) little-endian IEEE floats of esize
// bytes (4, or 8: converted to float32) read from r, straight into data's
// memory where the machine's byte order is the file's (the one copy of
// 100 MB of weights).
func ReadFloats(r io.Reader, data []float32, esize int) error {
	if esize == 4 && littleEndian {
		_, err := io.ReadFull(r, Float32Bytes(data))
		return err
	}
	return decodeFloats(r, data, esize)
}

// decodeFloats reads len(data) little-endian floats of esize bytes (4 or 8)
// from r into data, one by one.
func decodeFloats(r io.Reader, data []float32, esize int) error {
	raw := make([]byte, len(data)*esize)
	if _, err := io.ReadFull(r, raw); err != nil {
		return err
	}
	if esize == 4 {
		for i := range data {
			data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	} else {
		for i := range data {
			data[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	}
	return nil
}

// littleEndian: this machine stores a float32 as .npy's "<f4" does.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// Float32Bytes returns the little-endian bytes of v, as .npy files (and
// digests of weights) hold them: a view of v's memory on little-endian
// machines, nothing copied; a converted copy elsewhere.
func Float32Bytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	if littleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
	}
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// fortranToC reorders column-major data of the given shape to row-major.
func fortranToC(src []float32, shape []int) []float32 {
	dst := make([]float32, len(src))
	idx := make([]int, len(shape))
	for f := range src {
		// f enumerates column-major order: first axis fastest.
		c := 0
		for ax := range shape {
			c = c*shape[ax] + idx[ax]
		}
		dst[c] = src[f]
		for ax := 0; ax < len(shape); ax++ {
			idx[ax]++
			if idx[ax] < shape[ax] {
				break
			}
			idx[ax] = 0
		}
	}
	return dst
}

// ReadNPYFile reads a .npy file.
func ReadNPYFile(path string) (*tensor.Dense, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if !st.Mode().IsRegular() {
		size = -1 // a pipe (/dev/stdin): its size says nothing
	}
	t, err := ReadNPY(bufio.NewReader(f), size)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return t, nil
}

// WriteNPY writes t as a C-ordered little-endian float32 .npy array
// (format version 1.0, header padded to 64 bytes as NumPy writes it).
func WriteNPY(w io.Writer, t *tensor.Dense) error {
	if t.Dtype() != tensor.Float32 {
		return fmt.Errorf("write npy: dtype %v: want float32", t.Dtype())
	}
	if t.Shape().TotalSize() == 0 {
		return errors.New("write npy: empty tensor")
	}
	data := t.Data().([]float32)
	if t.RequiresIterator() {
		return errors.New("write npy: tensor is a non-contiguous view; materialize it first")
	}
	shape := t.Shape()
	dims := make([]string, len(shape))
	for i, s := range shape {
		dims[i] = strconv.Itoa(s)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	dict := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", tuple)
	const pre = 10 // magic (6) + version (2) + header length (2)
	pad := 64 - (pre+len(dict)+1)%64
	if pad == 64 {
		pad = 0
	}
	hdr := make([]byte, 0, pre+len(dict)+pad+1)
	hdr = append(hdr, "\x93NUMPY\x01\x00"...)
	hdr = binary.LittleEndian.AppendUint16(hdr, uint16(len(dict)+pad+1))
	hdr = append(hdr, dict...)
	hdr = append(hdr, strings.Repeat(" ", pad)...)
	hdr = append(hdr, '\n')
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := w.Write(Float32Bytes(data))
	return err
}

// WriteNPYFile writes t to a new .npy file at path.
func WriteNPYFile(path string, t *tensor.Dense) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	err = WriteNPY(bw, t)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Archive is an opened .npz file: a zip of .npy arrays.
type Archive struct {
	path  string
	file  *os.File
	size  int64
	zr    *zip.Reader
	names []string
	files map[string]*zip.File
}

// OpenNPZ opens an .npz archive. Names are reported without the ".npy"
// suffix that numpy.savez adds inside the zip.
func OpenNPZ(path string) (*Archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: not a valid .npz (zip) archive, perhaps truncated: %w", path, err)
	}
	a := &Archive{path: path, file: f, size: st.Size(), zr: zr, files: map[string]*zip.File{}}
	for _, zf := range zr.File {
		name := strings.TrimSuffix(zf.Name, ".npy")
		a.files[name] = zf
		a.names = append(a.names, name)
	}
	sort.Strings(a.names)
	return a, nil
}

// Names lists the arrays in the archive, sorted.
func (a *Archive) Names() []string { return a.names }

// Has reports whether the archive holds the named array.
func (a *Archive) Has(name string) bool { _, ok := a.files[name]; return ok }

// Read reads the named array.
func (a *Archive) Read(name string) (*tensor.Dense, error) {
	zf, ok := a.files[name]
	if !ok {
		return nil, fmt.Errorf("%s: no array %q", a.path, name)
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: array %q: %w", a.path, name, err)
	}
	defer rc.Close()
	// A stored array's size is checked against the file. A compressed
	// one's is the zip header's word, which archive/zip checks as it reads:
	// it is passed on (so the array is read in one piece) where deflate
	// could give that much from the bytes present, at most 1032 times as
	// many, which bounds what a lying header can have allocated.
	size := int64(-1)
	if off, err := zf.DataOffset(); err == nil && off >= 0 && off <= a.size && zf.CompressedSize64 <= uint64(a.size-off) {
		switch {
		case zf.Method == zip.Store && zf.UncompressedSize64 == zf.CompressedSize64:
			size = int64(zf.CompressedSize64)
		case zf.Method == zip.Deflate && zf.UncompressedSize64 <= 1032*zf.CompressedSize64+1024:
			size = int64(zf.UncompressedSize64)
		}
	}
	br := bufio.NewReader(rc)
	t, err := ReadNPY(br, size)
	if err != nil {
		return nil, fmt.Errorf("%s: array %q: %w", a.path, name, err)
	}
	// To the end of the entry, where archive/zip checks its CRC-32.
	if _, err := br.ReadByte(); err != io.EOF {
		return nil, fmt.Errorf("%s: array %q: after the data: %v", a.path, name, cmp.Or(err, errors.New("bytes left over")))
	}
	return t, nil
}

// Close releases the file.
func (a *Archive) Close() error { return a.file.Close() }

// WriteNPZ writes the named tensors to an .npz archive at path, in sorted
// name order, uncompressed (as numpy.savez does). The file appears whole
// or not at all (see atomicfile).
func WriteNPZ(path string, arrays map[string]*tensor.Dense) error {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := make([]string, 0, len(arrays))
	for n := range arrays {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n + ".npy", Method: zip.Store})
		if err == nil {
			err = WriteNPY(w, arrays[n])
		}
		if err != nil {
			return fmt.Errorf("write %s: array %q: %w", path, n, err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, buf.Bytes())
}
