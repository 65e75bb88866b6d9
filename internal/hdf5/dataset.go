package hdf5

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"

	"gotransfer/internal/tensorio"
)

// maxRank is HDF5's own limit on a dataspace's rank.
const maxRank = 32

// Dataset is an HDF5 dataset: an array of a shape and a datatype.
type Dataset struct {
	f     *File
	path  string
	space dataspace
	dt    datatype
	lay   layout
	// external is set by an External Data Files message: the data lives in
	// other files.
	external bool
}

func (f *File) openDataset(addr uint64, path string) (*Dataset, error) {
	o, err := f.readObject(addr)
	if err != nil {
		return nil, f.errorf("dataset "+path, "%w", err)
	}
	if o.isGroup() {
		return nil, f.errorf("group "+path, "not a dataset")
	}
	d := &Dataset{f: f, path: path}
	if err := d.parse(o); err != nil {
		return nil, f.errorf("dataset "+path, "%w", err)
	}
	return d, nil
}

func (d *Dataset) parse(o *object) error {
	var haveSpace, haveType, haveLayout bool
	for _, m := range o.msgs {
		var err error
		switch m.typ {
		case msgDataspace, msgDatatype, msgLayout:
			if m.shared() {
				return unsupported("shared header messages (type %#04x: a committed datatype?) are not supported", m.typ)
			}
		}
		switch m.typ {
		case msgDataspace:
			d.space, err = parseDataspace(m.data)
			haveSpace = true
		case msgDatatype:
			d.dt, _, err = parseDatatype(m.data)
			haveType = true
		case msgLayout:
			d.lay, err = parseLayout(m.data)
			haveLayout = true
		case msgExternal:
			d.external = true
		}
		if err != nil {
			return err
		}
	}
	if !haveSpace || !haveType || !haveLayout {
		return errors.New("not a dataset (no dataspace, datatype or layout message)")
	}
	return nil
}

// Path returns the dataset's path from the root.
func (d *Dataset) Path() string { return d.path }

// Shape returns the dataset's dimensions: empty for a scalar.
func (d *Dataset) Shape() []int { return append([]int(nil), d.space.dims...) }

// Float32s reads the whole dataset, row-major, as float32: little-endian
// IEEE float32 as it is, float64 rounded. The data is read with one read
// (contiguous layout) or taken from the header (compact).
func (d *Dataset) Float32s() ([]float32, error) {
	v, err := d.float32s()
	if err != nil {
		return nil, d.f.errorf("dataset "+d.path, "%w", err)
	}
	return v, nil
}

func (d *Dataset) float32s() ([]float32, error) {
	dt := d.dt
	if dt.class != classFloat || !dt.ieee || dt.bigEndian {
		return nil, unsupported("%s data is not supported (only little-endian IEEE float32 and float64)", dt)
	}
	if d.space.null {
		return nil, errors.New("no data (a null dataspace)")
	}
	n, size := d.space.n, uint64(dt.size)
	if n > math.MaxInt/size {
		return nil, fmt.Errorf("%d elements of %d bytes: too large", n, size)
	}
	nbytes := n * size
	var data io.Reader
	switch {
	case d.external:
		return nil, unsupported("external storage (data in other files) is not supported")
	case d.lay.class == layoutChunked:
		return nil, unsupported("chunked layout is not supported (only contiguous and compact)")
	case d.lay.class == layoutVirtual:
		return nil, unsupported("virtual layout is not supported (only contiguous and compact)")
	case n == 0:
		return []float32{}, nil
	case d.lay.class == layoutCompact:
		if uint64(len(d.lay.compact)) < nbytes {
			return nil, fmt.Errorf("compact data holds %d bytes, shape %v of %s needs %d", len(d.lay.compact), d.space.dims, dt, nbytes)
		}
		data = bytes.NewReader(d.lay.compact[:nbytes])
	default: // contiguous
		if d.lay.addr == undef {
			return nil, errors.New("no data written (storage never allocated)")
		}
		if d.lay.size != undef && d.lay.size < nbytes {
			return nil, fmt.Errorf("layout stores %d bytes, shape %v of %s needs %d", d.lay.size, d.space.dims, dt, nbytes)
		}
		off, err := d.f.span(d.lay.addr, nbytes)
		if err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
		data = io.NewSectionReader(d.f.r, off, int64(nbytes))
	}
	out := make([]float32, n)
	if err := tensorio.ReadFloats(data, out, int(size)); err != nil {
		return nil, fmt.Errorf("reading data: %w", err)
	}
	return out, nil
}

// dataspace is a Dataspace message: the dimensions of a dataset or an
// attribute.
type dataspace struct {
	dims []int
	n    uint64 // elements: the product of dims
	null bool   // no elements at all (h5py.Empty)
}

func parseDataspace(b []byte) (dataspace, error) {
	d := &decoder{b: b}
	version, rank := d.u8(), int(d.u8())
	d.skip(1) // flags: maximum dimensions follow the dimensions, unread
	var s dataspace
	switch version {
	case 1:
		d.skip(5)
	case 2:
		switch d.u8() {
		case 0: // scalar
		case 1: // simple
		case 2:
			s.null = true
		default:
			return s, errors.New("dataspace: unknown type")
		}
	default:
		if d.err == nil {
			return s, unsupported("unsupported dataspace message version %d", version)
		}
	}
	if rank > maxRank {
		return s, fmt.Errorf("dataspace of rank %d (at most %d)", rank, maxRank)
	}
	s.n = 1
	if s.null {
		s.n = 0
	}
	for range rank {
		v := d.u64()
		if v > math.MaxInt || (v != 0 && s.n > math.MaxInt/v) {
			return s, fmt.Errorf("dataspace dimension %d too large", v)
		}
		s.dims = append(s.dims, int(v))
		s.n *= v
	}
	if d.err != nil {
		return s, fmt.Errorf("dataspace message: %w", errTruncated)
	}
	return s, nil
}

// Datatype classes read.
const (
	classFixed  = 0
	classFloat  = 1
	classString = 3
	classVarLen = 9
)

// datatype is a Datatype message, as far as this reader needs it.
type datatype struct {
	class     uint8
	size      uint32 // bytes per element
	bigEndian bool
	signed    bool
	ieee      bool  // a float of IEEE 754's standard layout
	pad       uint8 // strings: 0 NUL-terminated, 1 NUL-padded, 2 space-padded
	vlenStr   bool  // a variable-length string
}

// parseDatatype reads a datatype and returns how many bytes it took.
func parseDatatype(b []byte) (datatype, int, error) {
	d := &decoder{b: b}
	cv := d.u8()
	bits := d.take(3)
	t := datatype{class: cv & 0x0f, size: d.u32()}
	if d.err != nil {
		return t, 0, fmt.Errorf("datatype message: %w", errTruncated)
	}
	switch t.class {
	case classFixed:
		t.bigEndian = bits[0]&1 != 0
		t.signed = bits[0]&0x08 != 0
		d.skip(4) // bit offset, precision
	case classFloat:
		t.bigEndian = bits[0]&1 != 0
		vax := bits[0]&0x40 != 0
		norm := (bits[0] >> 4) & 3
		sign := bits[1]
		offset, precision := d.u16(), d.u16()
		expLoc, expSize, mantLoc, mantSize := d.u8(), d.u8(), d.u8(), d.u8()
		bias := d.u32()
		switch {
		case vax || norm != 2 || offset != 0:
		case t.size == 4:
			t.ieee = precision == 32 && sign == 31 && expLoc == 23 && expSize == 8 && mantLoc == 0 && mantSize == 23 && bias == 127
		case t.size == 8:
			t.ieee = precision == 64 && sign == 63 && expLoc == 52 && expSize == 11 && mantLoc == 0 && mantSize == 52 && bias == 1023
		}
	case classString:
		t.pad = bits[0] & 0x0f
	case classVarLen:
		t.vlenStr = bits[0]&0x0f == 1
		t.pad = (bits[0] >> 4) & 0x0f
		// The base type follows: a 1-byte character for strings.
		if _, n, err := parseDatatype(b[d.off:]); err == nil {
			d.skip(n)
		} else if t.vlenStr {
			return t, 0, err
		}
	}
	if d.err != nil {
		return t, 0, fmt.Errorf("datatype message: %w", errTruncated)
	}
	return t, d.off, nil
}

func (t datatype) String() string {
	be := ""
	if t.bigEndian {
		be = "big-endian "
	}
	switch t.class {
	case classFixed:
		u := "u"
		if t.signed {
			u = ""
		}
		return fmt.Sprintf("%s%sint%d", be, u, 8*t.size)
	case classFloat:
		if !t.ieee {
			return fmt.Sprintf("non-IEEE %d-byte float", t.size)
		}
		return fmt.Sprintf("%sfloat%d", be, 8*t.size)
	case classString:
		return fmt.Sprintf("fixed-length string (%d bytes)", t.size)
	case classVarLen:
		if t.vlenStr {
			return "variable-length string"
		}
		return "variable-length sequence"
	}
	names := []string{2: "time", 4: "bitfield", 5: "opaque", 6: "compound", 7: "reference", 8: "enum", 10: "array"}
	if int(t.class) < len(names) && names[t.class] != "" {
		return names[t.class]
	}
	return fmt.Sprintf("datatype class %d", t.class)
}

// Layout classes.
const (
	layoutCompact    = 0
	layoutContiguous = 1
	layoutChunked    = 2
	layoutVirtual    = 3
)

// layout is a Data Layout message.
type layout struct {
	class   uint8
	addr    uint64 // contiguous: the data's address
	size    uint64 // contiguous: its size, undef where the version has none
	compact []byte // compact: the data
}

func parseLayout(b []byte) (layout, error) {
	d := &decoder{b: b}
	version := d.u8()
	l := layout{addr: undef, size: undef}
	switch version {
	case 1, 2:
		rank := int(d.u8())
		l.class = d.u8()
		d.skip(5)
		if l.class != layoutCompact {
			l.addr = d.u64()
		}
		d.skip(4 * rank) // dimensions (of the data or of a chunk)
		switch l.class {
		case layoutChunked:
			d.skip(4) // element size
		case layoutCompact:
			l.compact = d.take(int(d.u32()))
		}
	case 3, 4:
		l.class = d.u8()
		switch l.class {
		case layoutCompact:
			l.compact = d.take(int(d.u16()))
		case layoutContiguous:
			l.addr, l.size = d.u64(), d.u64()
		}
	default:
		if d.err == nil {
			return l, unsupported("unsupported data layout message version %d", version)
		}
	}
	if d.err != nil {
		return l, fmt.Errorf("data layout message: %w", errTruncated)
	}
	if l.class > layoutVirtual {
		return l, fmt.Errorf("unknown data layout class %d", l.class)
	}
	return l, nil
}
