package hdf5

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// signature starts every HDF5 file (at offset 0, or after a user block).
const signature = "\x89HDF\r\n\x1a\n"

// undef is the undefined address: storage never allocated, no such
// structure.
const undef = ^uint64(0)

// ErrNotFound is matched (errors.Is) by the errors for a group member or
// attribute that does not exist.
var ErrNotFound = errors.New("hdf5: not found")

// ErrUnsupported is matched by the errors for a structure or type this
// package does not read (see the package documentation), as opposed to a
// corrupt file.
var ErrUnsupported = errors.New("hdf5: not supported")

type notFound struct{ msg string }

func (e *notFound) Error() string        { return e.msg }
func (e *notFound) Is(target error) bool { return target == ErrNotFound }

type unsupportedError struct{ msg string }

func (e *unsupportedError) Error() string        { return e.msg }
func (e *unsupportedError) Is(target error) bool { return target == ErrUnsupported }

func unsupported(format string, args ...any) error {
	return &unsupportedError{fmt.Sprintf(format, args...)}
}

// IsHDF5 reports whether r, size bytes long, holds the HDF5 signature
// where Open looks for it: at offset 0 or after a user block.
func IsHDF5(r io.ReaderAt, size int64) bool {
	_, err := findSignature(r, uint64(max(size, 0)))
	return err == nil
}

// findSignature returns the offset of the superblock: 0 or, after a user
// block, 512, 1024, 2048...
func findSignature(r io.ReaderAt, size uint64) (uint64, error) {
	b := make([]byte, len(signature))
	for at := uint64(0); at+uint64(len(signature)) <= size; at = max(2*at, 512) {
		if err := readFull(r, b, int64(at)); err != nil {
			return 0, fmt.Errorf("reading the signature at offset %d: %w", at, err)
		}
		if string(b) == signature {
			return at, nil
		}
	}
	return 0, fmt.Errorf("not an HDF5 file (no signature %q at offset 0 or after a user block)", signature)
}

// File is an HDF5 file opened for reading.
type File struct {
	name string
	r    io.ReaderAt
	c    io.Closer
	size uint64 // bytes in the file
	base uint64 // absolute address of relative address 0
	root *Group
}

// Open opens an HDF5 file and reads its superblock and root group.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("hdf5: %w", err)
	}
	fi, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("hdf5: %w", err)
	}
	f, err := newFile(path, fh, fi.Size())
	if err != nil {
		fh.Close()
		return nil, err
	}
	f.c = fh
	return f, nil
}

// newFile reads an HDF5 file of the given size from r; name is what errors
// call it.
func newFile(name string, r io.ReaderAt, size int64) (*File, error) {
	if size < 0 {
		size = 0
	}
	f := &File{name: name, r: r, size: uint64(size)}
	at, err := findSignature(r, f.size)
	if err != nil {
		return nil, f.errorf("", "%w", err)
	}
	root, err := f.superblock(at)
	if err != nil {
		return nil, f.errorf("superblock", "%w", err)
	}
	g, err := f.openGroup(root, "/")
	if err != nil {
		return nil, err
	}
	f.root = g
	return f, nil
}

// superblock reads the superblock at absolute offset at and returns the
// root group's object header address.
func (f *File) superblock(at uint64) (uint64, error) {
	n := min(f.size-at, 128)
	b := make([]byte, n)
	if err := readFull(f.r, b, int64(at)); err != nil {
		return 0, err
	}
	d := &decoder{b: b}
	d.skip(8)
	version := d.u8()
	if d.err != nil {
		return 0, errTruncated
	}
	var offsets, lengths uint8
	switch version {
	case 0, 1:
		d.skip(3) // free-space, root symbol table entry, reserved
		d.skip(1) // shared header message format
		offsets, lengths = d.u8(), d.u8()
		if err := checkSizes(offsets, lengths); err != nil {
			return 0, err
		}
		d.skip(1 + 2 + 2 + 4) // reserved, group K's, consistency flags
		if version == 1 {
			d.skip(4) // indexed storage K, reserved
		}
		f.base = d.u64()
		d.skip(8 + 8 + 8) // free-space info, end of file, driver info
		// The root group's symbol table entry: name offset, object header.
		d.skip(8)
		root := d.u64()
		if d.err != nil {
			return 0, errTruncated
		}
		return root, nil
	case 2, 3:
		offsets, lengths = d.u8(), d.u8()
		if err := checkSizes(offsets, lengths); err != nil {
			return 0, err
		}
		d.skip(1) // consistency flags
		f.base = d.u64()
		d.skip(8 + 8) // superblock extension, end of file
		root := d.u64()
		if d.err != nil {
			return 0, errTruncated
		}
		return root, nil
	default:
		return 0, unsupported("unsupported superblock version %d (0 to 3 are read)", version)
	}
}

func checkSizes(offsets, lengths uint8) error {
	if offsets != 8 || lengths != 8 {
		return unsupported("%d-byte addresses and %d-byte lengths are not supported (only 8 and 8)", offsets, lengths)
	}
	return nil
}

// Name returns the name the file was opened with.
func (f *File) Name() string { return f.name }

// Root returns the root group.
func (f *File) Root() *Group { return f.root }

// Close closes the file.
func (f *File) Close() error {
	if f.c == nil {
		return nil
	}
	return f.c.Close()
}

// errorf makes the package's errors: "hdf5: FILE: OBJECT: message".
// Wrapped errors are kept for errors.Is.
func (f *File) errorf(object, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	var nf *notFound
	prefix := "hdf5: " + f.name + ": "
	if object != "" {
		prefix += object + ": "
	}
	if errors.As(err, &nf) {
		return &notFound{prefix + err.Error()}
	}
	return fmt.Errorf("%s%w", prefix, err)
}

var errTruncated = errors.New("structure truncated or corrupt")

// span checks that n bytes at relative address addr lie inside the file
// and returns the absolute offset.
func (f *File) span(addr, n uint64) (int64, error) {
	if addr == undef {
		return 0, errors.New("undefined address")
	}
	abs := f.base + addr
	if abs < f.base || abs > f.size || n > f.size-abs {
		return 0, fmt.Errorf("%d bytes at address %d are beyond the end of the file (%d bytes): truncated or corrupt", n, addr, f.size)
	}
	return int64(abs), nil
}

// read returns n bytes at relative address addr, checked against the file
// size before anything is allocated.
func (f *File) read(addr, n uint64) ([]byte, error) {
	off, err := f.span(addr, n)
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if err := readFull(f.r, b, off); err != nil {
		return nil, fmt.Errorf("reading %d bytes at address %d: %w", n, addr, err)
	}
	return b, nil
}

// readFull fills b from offset off: io.ReaderAt may report io.EOF along
// with a full read at the end of the input.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// readUpTo returns up to n bytes at addr: as many as the file holds.
func (f *File) readUpTo(addr, n uint64) ([]byte, error) {
	if _, err := f.span(addr, 0); err != nil {
		return nil, err
	}
	return f.read(addr, min(n, f.size-(f.base+addr)))
}

// decoder reads little-endian fields from a byte slice. An overrun sets
// err, after which every read returns zero: callers check err once after a
// structure instead of bounds-checking each field.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b)-d.off {
		d.err = errTruncated
		return nil
	}
	s := d.b[d.off : d.off+n]
	d.off += n
	return s
}

func (d *decoder) skip(n int) { d.take(n) }

func (d *decoder) u8() uint8 {
	if s := d.take(1); s != nil {
		return s[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if s := d.take(2); s != nil {
		return binary.LittleEndian.Uint16(s)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if s := d.take(4); s != nil {
		return binary.LittleEndian.Uint32(s)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if s := d.take(8); s != nil {
		return binary.LittleEndian.Uint64(s)
	}
	return 0
}

// uvar reads an n-byte (n <= 8) unsigned integer.
func (d *decoder) uvar(n int) uint64 {
	s := d.take(n)
	var v uint64
	for i := len(s) - 1; i >= 0; i-- {
		v = v<<8 | uint64(s[i])
	}
	return v
}

func (d *decoder) left() int { return len(d.b) - d.off }

// pad8 skips to the next multiple of 8 of n bytes read since start.
func pad8(n int) int { return (n + 7) &^ 7 }
