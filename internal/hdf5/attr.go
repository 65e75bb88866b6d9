package hdf5

import (
	"bytes"
	"errors"
	"fmt"
)

// attribute is an Attribute message.
type attribute struct {
	name  string
	dt    datatype
	space dataspace
	data  []byte
}

func parseAttribute(b []byte) (attribute, error) {
	var a attribute
	d := &decoder{b: b}
	version, flags := d.u8(), d.u8()
	nameSize, typeSize, spaceSize := int(d.u16()), int(d.u16()), int(d.u16())
	var name, dt, ds []byte
	switch version {
	case 1:
		// Each part padded to a multiple of 8 bytes.
		name = d.take(pad8(nameSize))
		dt = d.take(pad8(typeSize))
		ds = d.take(pad8(spaceSize))
	case 2, 3:
		if flags&3 != 0 {
			return a, unsupported("attribute with a shared datatype or dataspace: not supported")
		}
		if version == 3 {
			d.skip(1) // the name's character set
		}
		name, dt, ds = d.take(nameSize), d.take(typeSize), d.take(spaceSize)
	default:
		if d.err == nil {
			return a, unsupported("unsupported attribute message version %d", version)
		}
	}
	if d.err != nil {
		return a, fmt.Errorf("attribute message: %w", errTruncated)
	}
	name = name[:min(nameSize, len(name))]
	a.name = string(bytes.TrimRight(name, "\x00"))
	var err error
	if a.dt, _, err = parseDatatype(dt); err != nil {
		return a, fmt.Errorf("attribute %q: %w", a.name, err)
	}
	if a.space, err = parseDataspace(ds); err != nil {
		return a, fmt.Errorf("attribute %q: %w", a.name, err)
	}
	a.data = b[d.off:]
	return a, nil
}

// attrs parses an object's attribute messages.
func (o *object) attrs() ([]attribute, error) {
	var out []attribute
	for _, m := range o.msgs {
		if m.typ != msgAttribute {
			continue
		}
		a, err := parseAttribute(m.data)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// denseAttrs reports attributes kept out of the header, in a fractal heap
// (more than 8 of them, in files written with libver 'latest').
func (o *object) denseAttrs() bool {
	m, ok := o.find(msgAttrInfo)
	if !ok {
		return false
	}
	d := &decoder{b: m.data}
	d.skip(1)
	if d.u8()&1 != 0 {
		d.skip(2) // maximum creation index
	}
	return d.err == nil && d.u64() != undef
}

// attributes parses the group's attribute messages once.
func (g *Group) attributes() ([]attribute, error) {
	if g.attrs == nil && g.attrErr == nil {
		g.attrs, g.attrErr = g.obj.attrs()
		if g.attrErr != nil {
			g.attrErr = g.f.errorf("group "+g.path, "%w", g.attrErr)
		} else if g.attrs == nil {
			g.attrs = []attribute{}
		}
	}
	return g.attrs, g.attrErr
}

// AttrNames lists the group's attributes, in header order.
func (g *Group) AttrNames() ([]string, error) {
	as, err := g.attributes()
	if err != nil {
		return nil, err
	}
	if g.obj.denseAttrs() {
		return nil, g.f.errorf("group "+g.path, "%w", unsupported("attributes in dense storage (a fractal heap) are not supported"))
	}
	names := make([]string, len(as))
	for i, a := range as {
		names[i] = a.name
	}
	return names, nil
}

// Attr returns a string attribute's values: one for a scalar, every
// element (row-major) of an array. Fixed-length strings lose their
// padding; variable-length ones are read from the global heap. An error
// for a missing attribute matches ErrNotFound.
func (g *Group) Attr(name string) ([]string, error) {
	obj := "attribute " + name + " of group " + g.path
	as, err := g.attributes()
	if err != nil {
		return nil, err
	}
	for _, a := range as {
		if a.name == name {
			v, err := g.f.strings(a)
			if err != nil {
				return nil, g.f.errorf(obj, "%w", err)
			}
			return v, nil
		}
	}
	if g.obj.denseAttrs() {
		return nil, g.f.errorf(obj, "%w", unsupported("not among the attributes in the header; attributes in dense storage (a fractal heap) are not supported"))
	}
	return nil, g.f.errorf("group "+g.path, "%w", &notFound{fmt.Sprintf("no attribute %q", name)})
}

func (f *File) strings(a attribute) ([]string, error) {
	n := a.space.n
	switch {
	case n == 0:
		// Whatever the type: Keras writes a layer without weights an
		// empty float64 array as its weight_names.
		return []string{}, nil
	case a.dt.class == classString:
		size := uint64(a.dt.size)
		if size == 0 {
			return nil, errors.New("fixed-length strings of 0 bytes")
		}
		if n > uint64(len(a.data))/size {
			return nil, fmt.Errorf("%d strings of %d bytes, %d bytes of data: %w", n, size, len(a.data), errTruncated)
		}
		out := make([]string, n)
		for i := range out {
			out[i] = unpad(a.data[uint64(i)*size:uint64(i+1)*size], a.dt.pad)
		}
		return out, nil
	case a.dt.vlenStr:
		// Each element: length, then the global heap collection's address
		// and the object's index in it.
		if n > uint64(len(a.data))/16 {
			return nil, fmt.Errorf("%d strings, %d bytes of data: %w", n, len(a.data), errTruncated)
		}
		heaps := map[uint64][]byte{}
		out := make([]string, n)
		d := &decoder{b: a.data}
		for i := range out {
			length, addr, index := d.u32(), d.u64(), d.u32()
			if length == 0 {
				continue
			}
			s, err := f.globalHeapObject(heaps, addr, index)
			if err != nil {
				return nil, err
			}
			if uint64(length) > uint64(len(s)) {
				return nil, fmt.Errorf("string of %d bytes in a heap object of %d", length, len(s))
			}
			out[i] = unpad(s[:length], a.dt.pad)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s, not a string", a.dt)
}

// unpad strips a fixed-length string's padding as h5py does: at the first
// NUL of a NUL-terminated string, trailing NULs or spaces otherwise.
func unpad(b []byte, pad uint8) string {
	switch pad {
	case 0:
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
		}
	case 2:
		b = bytes.TrimRight(b, " ")
	default:
		b = bytes.TrimRight(b, "\x00")
	}
	return string(b)
}

// globalHeapObject returns object index of the global heap collection at
// addr; heaps caches the collections read.
func (f *File) globalHeapObject(heaps map[uint64][]byte, addr uint64, index uint32) ([]byte, error) {
	c, ok := heaps[addr]
	if !ok {
		h, err := f.read(addr, 16)
		if err != nil {
			return nil, fmt.Errorf("global heap: %w", err)
		}
		d := &decoder{b: h}
		if string(d.take(4)) != "GCOL" || d.u8() != 1 {
			return nil, fmt.Errorf("global heap at address %d: bad signature or version", addr)
		}
		d.skip(3)
		size := d.u64()
		if size < 16 {
			return nil, fmt.Errorf("global heap at address %d: size %d", addr, size)
		}
		if c, err = f.read(addr, size); err != nil {
			return nil, fmt.Errorf("global heap: %w", err)
		}
		heaps[addr] = c
	}
	d := &decoder{b: c, off: 16}
	for d.left() >= 16 {
		i := d.u16()
		d.skip(2 + 4) // reference count, reserved
		size := d.u64()
		if i == 0 {
			break // free space: the rest of the collection
		}
		if size > uint64(d.left()) {
			break
		}
		obj := d.take(int(size))
		if i == uint16(index) && uint32(i) == index {
			return obj, nil
		}
		d.skip(min(pad8(int(size))-int(size), d.left()))
	}
	return nil, fmt.Errorf("global heap at address %d: no object %d", addr, index)
}
