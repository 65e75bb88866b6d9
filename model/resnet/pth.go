package resnet

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// A .pth file is a pickle of the state dict whose tensors refer, through
// "persistent ids", to raw storages kept beside it: in a zip archive
// (<dir>/data.pkl and <dir>/data/<key>, PyTorch >= 1.6) or, in the legacy
// format, appended to the file after a few small pickles.
//
// Unpickling is how PyTorch's own loader can be made to run code: a pickle
// may name any Python global and call it. Here gopickle interprets the
// pickle, but only after scanPickle has checked every opcode and every
// global it names against the short list a state dict needs, and the
// callables it can reach are Go functions that build descriptions of
// tensors. No tensor data is read until the state dict has been checked
// against the architecture, so what is allocated is bounded by the model
// the file claims to be, not by sizes written in the file.

// maxPickle bounds a state dict's pickle: torchvision's ResNet50 needs
// about 40 KB, a training checkpoint around it a few times that. The live
// memory of gopickle's objects can reach about a hundred times the
// pickle's size.
const maxPickle = 512 << 10

// maxMarks bounds the nesting of MARKs: gopickle allocates a stack per
// MARK, and a state dict nests a handful of levels.
const maxMarks = 64

// torchGlobals are the only Python globals a pickle may name; each maps to
// what gopickle gets for it. collections.OrderedDict is built into
// gopickle.
var torchGlobals = map[string]func() any{
	"collections.OrderedDict":         nil,
	"torch._utils._rebuild_tensor_v2": func() any { return rebuildTensor{} },
	"torch._utils._rebuild_parameter": func() any { return rebuildParameter{} },
	"torch.FloatStorage":              func() any { return storageKinds["FloatStorage"] },
	"torch.DoubleStorage":             func() any { return storageKinds["DoubleStorage"] },
	"torch.HalfStorage":               func() any { return storageKinds["HalfStorage"] },
	"torch.BFloat16Storage":           func() any { return storageKinds["BFloat16Storage"] },
	"torch.LongStorage":               func() any { return storageKinds["LongStorage"] },
	"torch.IntStorage":                func() any { return storageKinds["IntStorage"] },
	"torch.ShortStorage":              func() any { return storageKinds["ShortStorage"] },
	"torch.CharStorage":               func() any { return storageKinds["CharStorage"] },
	"torch.ByteStorage":               func() any { return storageKinds["ByteStorage"] },
	"torch.BoolStorage":               func() any { return storageKinds["BoolStorage"] },
}

// storageKind is a torch.<T>Storage class: its element size and, for
// floating types, how an element becomes a float32.
type storageKind struct {
	name   string
	size   int
	decode func([]byte) float32 // nil: not floating point
}

var storageKinds = map[string]*storageKind{
	"FloatStorage": {"FloatStorage", 4, func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }},
	"DoubleStorage": {"DoubleStorage", 8, func(b []byte) float32 {
		return float32(math.Float64frombits(binary.LittleEndian.Uint64(b)))
	}},
	"HalfStorage":     {"HalfStorage", 2, func(b []byte) float32 { return halfToFloat32(binary.LittleEndian.Uint16(b)) }},
	"BFloat16Storage": {"BFloat16Storage", 2, func(b []byte) float32 { return math.Float32frombits(uint32(binary.LittleEndian.Uint16(b)) << 16) }},
	"LongStorage":     {"LongStorage", 8, nil},
	"IntStorage":      {"IntStorage", 4, nil},
	"ShortStorage":    {"ShortStorage", 2, nil},
	"CharStorage":     {"CharStorage", 1, nil},
	"ByteStorage":     {"ByteStorage", 1, nil},
	"BoolStorage":     {"BoolStorage", 1, nil},
}

// halfToFloat32 converts an IEEE 754 binary16 value exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf, NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: mant * 2^-24
		f := float32(mant) / (1 << 24)
		return math.Float32frombits(sign | math.Float32bits(f))
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// storageRef is a storage named by a persistent id; its data stays in
// the file.
type storageRef struct {
	key   string
	kind  *storageKind
	numel int
}

// tensorRef is a tensor as _rebuild_tensor_v2 describes it: a strided
// view of a storage.
type tensorRef struct {
	storage       *storageRef
	offset        int
	shape, stride []int
}

// rebuildTensor stands for torch._utils._rebuild_tensor_v2(storage,
// storage_offset, size, stride, requires_grad, backward_hooks[, metadata]).
type rebuildTensor struct{}

func (rebuildTensor) Call(args ...any) (any, error) {
	if len(args) != 6 && len(args) != 7 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %d arguments, want 6 or 7", len(args))
	}
	s, ok := args[0].(*storageRef)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: storage is a %T", args[0])
	}
	off, ok := args[1].(int)
	if !ok || off < 0 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: storage offset %s", describe(args[1]))
	}
	shape, err := intTuple(args[2])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: size: %w", err)
	}
	stride, err := intTuple(args[3])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: stride: %w", err)
	}
	if len(shape) != len(stride) {
		return nil, fmt.Errorf("_rebuild_tensor_v2: size %v and stride %v differ in length", shape, stride)
	}
	return &tensorRef{storage: s, offset: off, shape: shape, stride: stride}, nil
}

// rebuildParameter stands for torch._utils._rebuild_parameter(data,
// requires_grad, backward_hooks): a state dict of nn.Parameters.
type rebuildParameter struct{}

func (rebuildParameter) Call(args ...any) (any, error) {
	if len(args) != 3 {
		return nil, fmt.Errorf("_rebuild_parameter: %d arguments, want 3", len(args))
	}
	t, ok := args[0].(*tensorRef)
	if !ok {
		return nil, fmt.Errorf("_rebuild_parameter: data is a %T", args[0])
	}
	return t, nil
}

// describe names a value from a pickle for an error message. Values are
// never formatted with %v: gopickle's containers print themselves
// recursively, and a pickle can make one contain itself.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%.64q", v)
	case int, bool, float64, nil:
		return fmt.Sprint(v)
	case *big.Int:
		if v.BitLen() <= 128 {
			return v.String()
		}
	}
	return fmt.Sprintf("a %T", v)
}

func intTuple(v any) ([]int, error) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("a %T, want a tuple", v)
	}
	if t.Len() > 8 {
		return nil, fmt.Errorf("%d dimensions", t.Len())
	}
	out := make([]int, t.Len())
	for i := range out {
		n, ok := t.Get(i).(int)
		if !ok || n < 0 {
			return nil, fmt.Errorf("element %d is %s, want a non-negative int", i, describe(t.Get(i)))
		}
		out[i] = n
	}
	return out, nil
}

// findClass resolves a global the pickle names, for gopickle; scanPickle
// has already refused the ones not listed, but STACK_GLOBAL takes its
// names from the stack, so they are checked again here.
func findClass(module, name string) (any, error) {
	mk, ok := torchGlobals[module+"."+name]
	if !ok || mk == nil {
		return nil, refusedGlobal(module, name)
	}
	return mk(), nil
}

func refusedGlobal(module, name string) error {
	hint := ""
	if strings.HasPrefix(module, "torchvision") || strings.HasPrefix(module, "torch.nn") || strings.HasPrefix(module, "__main__") {
		hint = " (a pickled model? save its state dict instead: torch.save(model.state_dict(), path))"
	}
	return fmt.Errorf("the pickle calls for %.100s.%.100s, which a state dict does not need: refused, nothing in the file is executed%s", module, name, hint)
}

// scanPickle walks one pickle without running it and returns its length up
// to and including STOP. It admits the opcodes of protocols 2 to 5 that a
// state dict uses, checks every length against the bytes present (gopickle
// allocates what a length says before reading), bounds the nesting of
// MARKs, and admits only the globals in torchGlobals.
func scanPickle(data []byte) (int, error) {
	if len(data) > maxPickle {
		data = data[:maxPickle]
	}
	marks := 0
	for i := 0; i < len(data); {
		at, op := i, data[i]
		i++
		fixed := func(n int) error {
			if n > len(data)-i {
				return fmt.Errorf("pickle truncated at byte %d (opcode 0x%02x)", at, op)
			}
			i += n
			return nil
		}
		counted := func(width int) error {
			if width > len(data)-i {
				return fmt.Errorf("pickle truncated at byte %d (opcode 0x%02x)", at, op)
			}
			var n uint64
			switch width {
			case 1:
				n = uint64(data[i])
			case 4:
				n = uint64(binary.LittleEndian.Uint32(data[i:]))
			case 8:
				n = binary.LittleEndian.Uint64(data[i:])
			}
			i += width
			if n > uint64(len(data)-i) {
				return fmt.Errorf("pickle truncated at byte %d: opcode 0x%02x wants %d bytes, %d remain", at, op, n, len(data)-i)
			}
			i += int(n)
			return nil
		}
		var err error
		switch op {
		case '.': // STOP
			return i, nil
		case '(': // MARK
			if marks++; marks > maxMarks {
				return 0, fmt.Errorf("pickle nests more than %d MARKs at byte %d", maxMarks, at)
			}
		case '1', 't', 'l', 'd', 'e', 'u': // POP_MARK, TUPLE, LIST, DICT, APPENDS, SETITEMS
			if marks--; marks < 0 {
				return 0, fmt.Errorf("pickle pops a MARK it never set, at byte %d", at)
			}
		case '0', '2', 'N', 'Q', 'R', ']', 'a', 'b', '}', 's', ')', // POP DUP NONE BINPERSID REDUCE EMPTY_LIST APPEND BUILD EMPTY_DICT SETITEM EMPTY_TUPLE
			0x85, 0x86, 0x87, 0x88, 0x89, 0x93, 0x94: // TUPLE1-3 NEWTRUE NEWFALSE STACK_GLOBAL MEMOIZE
		case 0x80: // PROTO
			if err = fixed(1); err == nil && (data[i-1] < 2 || data[i-1] > 5) {
				err = fmt.Errorf("pickle protocol %d, want 2 to 5", data[i-1])
			}
		case 'K', 'h', 'q': // BININT1 BINGET BINPUT
			err = fixed(1)
		case 'M': // BININT2
			err = fixed(2)
		case 'J', 'j', 'r': // BININT LONG_BINGET LONG_BINPUT
			err = fixed(4)
		case 'G': // BINFLOAT
			err = fixed(8)
		case 0x95: // FRAME: an 8-byte length, then ordinary opcodes
			if err = fixed(8); err == nil && binary.LittleEndian.Uint64(data[i-8:]) > uint64(len(data)-i) {
				err = fmt.Errorf("pickle truncated: frame at byte %d is longer than the data", at)
			}
		case 0x8a: // LONG1; gopickle cannot take an empty one
			if i < len(data) && (data[i] == 0 || data[i] > 16) {
				err = fmt.Errorf("pickle integer of %d bytes at byte %d", data[i], at)
			} else {
				err = counted(1)
			}
		case 0x8c, 'C', 'U': // SHORT_BINUNICODE SHORT_BINBYTES SHORT_BINSTRING
			err = counted(1)
		case 'X', 'B', 'T': // BINUNICODE BINBYTES BINSTRING
			err = counted(4)
		case 0x8d, 0x8e: // BINUNICODE8 BINBYTES8
			err = counted(8)
		case 'c': // GLOBAL "module\nname\n"
			var module, name string
			if module, i, err = pickleLine(data, i, at); err == nil {
				if name, i, err = pickleLine(data, i, at); err == nil {
					if _, ok := torchGlobals[module+"."+name]; !ok {
						err = refusedGlobal(module, name)
					}
				}
			}
		default:
			return 0, fmt.Errorf("pickle opcode 0x%02x at byte %d is not one a state dict uses: refused", op, at)
		}
		if err != nil {
			return 0, err
		}
	}
	if len(data) == maxPickle {
		return 0, fmt.Errorf("pickle longer than %d bytes: not a ResNet state dict", maxPickle)
	}
	return 0, errors.New("pickle truncated: no STOP")
}

func pickleLine(data []byte, i, at int) (string, int, error) {
	j := bytes.IndexByte(data[i:min(len(data), i+256)], '\n')
	if j < 0 {
		return "", 0, fmt.Errorf("pickle GLOBAL at byte %d: no name within 256 bytes", at)
	}
	return string(data[i : i+j]), i + j + 1, nil
}

// unpickle runs a pickle that scanPickle has admitted, with persistent ids
// resolved by persistent.
func unpickle(data []byte, persistent func(any) (any, error)) (v any, err error) {
	u := pickle.NewUnpickler(bytes.NewReader(data))
	u.FindClass = findClass
	u.PersistentLoad = persistent
	// gopickle indexes and hashes what the pickle hands it (a DICT of odd
	// length, a bytes key); a hostile pickle must come back as an error.
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("malformed pickle: %v", r)
		}
	}()
	return u.Load()
}

// pthFile is a state dict read from a .pth: its tensors by name, their
// data still in the file.
type pthFile struct {
	tensors map[string]any // *tensorRef, or whatever else the dict held
	names   []string       // in file order
	// open returns a storage's bytes and how many there are.
	open  func(s *storageRef) (io.ReadCloser, int64, error)
	close func() error
}

// isTorchFile tells a PyTorch file from an .npz by its content: a zip
// archive with a data.pkl, or a pickle (the legacy format). Files named
// .pth or .pt that are neither are also sent to the PyTorch reader, whose
// errors then say what is wrong.
func isTorchFile(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var head [2]byte
	n, _ := io.ReadFull(f, head[:])
	if n == 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5 {
		return true, nil
	}
	if fi, err := f.Stat(); err == nil {
		if z, err := zip.NewReader(f, fi.Size()); err == nil {
			for _, e := range z.File {
				if e.Name == "data.pkl" || strings.HasSuffix(e.Name, "/data.pkl") {
					return true, nil
				}
			}
		}
	}
	ext := strings.ToLower(filepath.Ext(path))
	return ext == ".pth" || ext == ".pt", nil
}

// openPTH reads a .pth's state dict, in either format.
func openPTH(path string) (*pthFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	var head [2]byte
	if n, _ := io.ReadFull(f, head[:]); n == 2 && head[0] == 0x80 {
		p, err := openLegacy(f, fi.Size())
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("legacy PyTorch file: %w", err)
		}
		return p, nil
	}
	z, err := zip.NewReader(f, fi.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("not a readable PyTorch file (a zip archive as torch.save writes since PyTorch 1.6, or a legacy pickle); truncated?: %w", err)
	}
	p, err := openZip(z)
	if err != nil {
		f.Close()
		return nil, err
	}
	p.close = f.Close
	return p, nil
}

func openZip(z *zip.Reader) (*pthFile, error) {
	files := make(map[string]*zip.File, len(z.File))
	var pkl *zip.File
	for _, e := range z.File {
		files[e.Name] = e
		if e.Name == "data.pkl" || strings.HasSuffix(e.Name, "/data.pkl") {
			if pkl != nil {
				return nil, fmt.Errorf("zip archive holds two pickles, %s and %s", pkl.Name, e.Name)
			}
			pkl = e
		}
	}
	if pkl == nil {
		return nil, errors.New("zip archive without data.pkl: not written by torch.save")
	}
	dir := strings.TrimSuffix(pkl.Name, "data.pkl")
	if _, ok := files[dir+"constants.pkl"]; ok {
		return nil, errors.New("a TorchScript archive: save the state dict instead: torch.save(model.state_dict(), path)")
	}
	if e, ok := files[dir+"byteorder"]; ok {
		b, err := readSmall(e, 16)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name, err)
		}
		if string(b) != "little" {
			return nil, fmt.Errorf("%s says %q: only little-endian files are read", e.Name, b)
		}
	}
	if pkl.UncompressedSize64 > maxPickle {
		return nil, fmt.Errorf("%s: %d bytes, more than a ResNet state dict's pickle (at most %d)", pkl.Name, pkl.UncompressedSize64, maxPickle)
	}
	data, err := readSmall(pkl, maxPickle)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkl.Name, err)
	}
	n, err := scanPickle(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkl.Name, err)
	}
	storages := map[string]*storageRef{}
	persistent := func(id any) (any, error) {
		t, ok := id.(*types.Tuple)
		if !ok || t.Len() != 5 || t.Get(0) != "storage" {
			return nil, fmt.Errorf("persistent id %s: want ('storage', type, key, location, numel)", describe(id))
		}
		return storage(storages, t)
	}
	v, err := unpickle(data[:n], persistent)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pkl.Name, err)
	}
	p, err := newPTHFile(v)
	if err != nil {
		return nil, err
	}
	p.open = func(s *storageRef) (io.ReadCloser, int64, error) {
		e, ok := files[dir+"data/"+s.key]
		if !ok {
			return nil, 0, fmt.Errorf("storage %.64q: no %.100s in the archive", s.key, dir+"data/"+s.key)
		}
		rc, err := e.Open()
		if err != nil {
			return nil, 0, fmt.Errorf("storage %.64q: %w", s.key, err)
		}
		return rc, int64(min(e.UncompressedSize64, math.MaxInt64)), nil
	}
	return p, nil
}

// storage resolves a ('storage', type, key, location, numel, ...) id.
func storage(seen map[string]*storageRef, t *types.Tuple) (*storageRef, error) {
	kind, ok1 := t.Get(1).(*storageKind)
	key, ok2 := t.Get(2).(string)
	numel, ok3 := t.Get(4).(int)
	if !ok1 || !ok2 || !ok3 || numel < 0 {
		return nil, fmt.Errorf("persistent id %s: want ('storage', torch.<T>Storage, key, location, numel)", describe(t))
	}
	if s, ok := seen[key]; ok {
		if s.kind != kind || s.numel != numel {
			return nil, fmt.Errorf("storage %.64q described twice, differently", key)
		}
		return s, nil
	}
	s := &storageRef{key: key, kind: kind, numel: numel}
	seen[key] = s
	return s, nil
}

func readSmall(e *zip.File, limit int64) ([]byte, error) {
	rc, err := e.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("more than %d bytes", limit)
	}
	return b, nil
}

// legacyMagic is the number a legacy torch.save file starts with.
var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

// openLegacy reads the format of torch.save before PyTorch 1.6: pickles of
// the magic number, the protocol version (1001), a dict of system
// information, the object, and the sorted list of storage keys; then each
// storage as an int64 element count and its raw little-endian data.
func openLegacy(f *os.File, size int64) (*pthFile, error) {
	head := make([]byte, min(size, 4*maxPickle))
	if _, err := f.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	off := 0
	next := func(what string, persistent func(any) (any, error)) (any, error) {
		n, err := scanPickle(head[off:])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		v, err := unpickle(head[off:off+n], persistent)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		off += n
		return v, nil
	}
	noPersistent := func(id any) (any, error) { return nil, fmt.Errorf("persistent id %s out of place", describe(id)) }
	magic, err := next("magic number", noPersistent)
	if err != nil {
		return nil, err
	}
	if m, ok := magic.(*big.Int); !ok || m.Cmp(legacyMagic) != 0 {
		return nil, fmt.Errorf("starts with %s, not PyTorch's magic number: not a .pth file", describe(magic))
	}
	if v, err := next("protocol version", noPersistent); err != nil {
		return nil, err
	} else if v != 1001 {
		return nil, fmt.Errorf("protocol version %s, want 1001", describe(v))
	}
	info, err := next("system information", noPersistent)
	if err != nil {
		return nil, err
	}
	if d, ok := info.(*types.Dict); ok {
		if le, ok := d.Get("little_endian"); ok && le != true {
			return nil, errors.New("written on a big-endian machine: only little-endian files are read")
		}
	}
	storages := map[string]*storageRef{}
	persistent := func(id any) (any, error) {
		t, ok := id.(*types.Tuple)
		if !ok || t.Len() != 6 || t.Get(0) != "storage" {
			return nil, fmt.Errorf("persistent id %s: want ('storage', type, key, location, numel, view)", describe(id))
		}
		if t.Get(5) != nil {
			return nil, fmt.Errorf("persistent id %s: storage views are not supported", describe(id))
		}
		return storage(storages, t)
	}
	v, err := next("state dict", persistent)
	if err != nil {
		return nil, err
	}
	keys, err := next("storage keys", noPersistent)
	if err != nil {
		return nil, err
	}
	list, ok := keys.(*types.List)
	if !ok {
		return nil, fmt.Errorf("storage keys are a %T, want a list", keys)
	}
	// Walk the storages: each is its element count, then its data.
	type span struct{ off, n int64 }
	spans := map[*storageRef]span{}
	pos := int64(off)
	for _, k := range *list {
		key, _ := k.(string)
		s, ok := storages[key]
		if !ok {
			return nil, fmt.Errorf("storage key %s: not used by the state dict", describe(k))
		}
		var count [8]byte
		if _, err := f.ReadAt(count[:], pos); err != nil {
			return nil, fmt.Errorf("storage %.64q at byte %d: truncated file: %w", key, pos, err)
		}
		if n := binary.LittleEndian.Uint64(count[:]); n != uint64(s.numel) {
			return nil, fmt.Errorf("storage %.64q at byte %d: %d elements, the pickle said %d", key, pos, n, s.numel)
		}
		n := int64(s.numel) * int64(s.kind.size)
		if n/int64(s.kind.size) != int64(s.numel) || pos+8+n > size || pos+8+n < pos {
			return nil, fmt.Errorf("storage %.64q at byte %d: %d elements of %d bytes run past the end of the file (%d bytes): truncated", key, pos, s.numel, s.kind.size, size)
		}
		spans[s] = span{pos + 8, n}
		pos += 8 + n
	}
	p, err := newPTHFile(v)
	if err != nil {
		return nil, err
	}
	p.open = func(s *storageRef) (io.ReadCloser, int64, error) {
		sp, ok := spans[s]
		if !ok {
			return nil, 0, fmt.Errorf("storage %.64q: not in the file", s.key)
		}
		return io.NopCloser(io.NewSectionReader(f, sp.off, sp.n)), sp.n, nil
	}
	p.close = f.Close
	return p, nil
}

// newPTHFile takes the state dict out of what the pickle built: an
// OrderedDict or dict of tensors, possibly inside a checkpoint's
// "state_dict" or "model" entry, with names possibly prefixed "module."
// by nn.DataParallel.
func newPTHFile(v any) (*pthFile, error) {
	p := &pthFile{tensors: map[string]any{}}
	if err := p.fill(v); err != nil {
		return nil, err
	}
	if _, ok := p.tensors["conv1.weight"]; !ok {
		for _, k := range []string{"state_dict", "model"} {
			if inner, ok := p.tensors[k]; ok {
				q := &pthFile{tensors: map[string]any{}}
				if q.fill(inner) == nil {
					p = q
					break
				}
			}
		}
	}
	if len(p.names) > 0 && strings.HasPrefix(p.names[0], "module.") {
		q := &pthFile{tensors: map[string]any{}}
		for _, n := range p.names {
			m, ok := strings.CutPrefix(n, "module.")
			if !ok {
				q = nil
				break
			}
			q.names = append(q.names, m)
			q.tensors[m] = p.tensors[n]
		}
		if q != nil {
			p = q
		}
	}
	return p, nil
}

func (p *pthFile) fill(v any) error {
	add := func(k, v any) error {
		name, ok := k.(string)
		if !ok {
			return fmt.Errorf("state dict key %s, want a string", describe(k))
		}
		if _, dup := p.tensors[name]; !dup {
			p.names = append(p.names, name)
		}
		p.tensors[name] = v
		return nil
	}
	switch d := v.(type) {
	case *types.OrderedDict:
		for e := d.List.Front(); e != nil; e = e.Next() {
			entry := e.Value.(*types.OrderedDictEntry)
			if err := add(entry.Key, entry.Value); err != nil {
				return err
			}
		}
	case *types.Dict:
		for _, entry := range *d {
			if err := add(entry.Key, entry.Value); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("the pickle holds a %T, want a state dict (an OrderedDict of tensors)", v)
	}
	return nil
}

// rowMajor says whether strides lay a shape out contiguously in C order.
func rowMajor(shape, stride []int) bool {
	want := 1
	for d := len(shape) - 1; d >= 0; d-- {
		if shape[d] != 1 && stride[d] != want {
			return false
		}
		want *= shape[d]
	}
	return true
}

// read returns a tensor's data as float32 in row-major order. Its shape
// has been checked against the architecture, so the allocation is bounded
// by the model's size; the storage must hold every element the view
// reaches.
func (p *pthFile) read(name string, t *tensorRef) ([]float32, error) {
	s := t.storage
	if s.kind.decode == nil {
		return nil, fmt.Errorf("tensor %q: a %s, want floating point", name, s.kind.name)
	}
	n, last := 1, t.offset
	for i, d := range t.shape {
		n *= d
		if d > 0 {
			last += (d - 1) * t.stride[i]
		}
	}
	if n == 0 {
		return []float32{}, nil
	}
	if last >= s.numel {
		return nil, fmt.Errorf("tensor %q: elements %d to %d of storage %.64q, which has %d", name, t.offset, last, s.key, s.numel)
	}
	// A view that reaches far beyond its own elements would make us read
	// (and hold) much more than the model needs.
	span := last - t.offset + 1
	if span > 4*n {
		return nil, fmt.Errorf("tensor %q: a view of %d elements spread over %d of storage %.64q: not supported", name, n, span, s.key)
	}
	rc, avail, err := p.open(s)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	es := int64(s.kind.size)
	if need := int64(s.numel) * es; avail < need {
		return nil, fmt.Errorf("tensor %q: storage %.64q has %d bytes, the pickle says %d elements of %d bytes: truncated file", name, s.key, avail, s.numel, es)
	}
	if _, err := io.CopyN(io.Discard, rc, int64(t.offset)*es); err != nil {
		return nil, fmt.Errorf("tensor %q: storage %.64q: %w", name, s.key, err)
	}
	raw := make([]byte, int64(span)*es)
	if _, err := io.ReadFull(rc, raw); err != nil {
		return nil, fmt.Errorf("tensor %q: storage %.64q: %w (truncated file?)", name, s.key, err)
	}
	out := make([]float32, n)
	if rowMajor(t.shape, t.stride) && s.kind.name == "FloatStorage" {
		// The usual case, contiguous float32: no gather, no conversion.
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return out, nil
	}
	// Walk the view in row-major order with an odometer over its indices.
	idx := make([]int, len(t.shape))
	at := 0
	for i := range out {
		out[i] = s.kind.decode(raw[int64(at)*es:])
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			at += t.stride[d]
			if idx[d] < t.shape[d] {
				break
			}
			at -= idx[d] * t.stride[d]
			idx[d] = 0
		}
	}
	return out, nil
}
