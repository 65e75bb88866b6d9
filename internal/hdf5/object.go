package hdf5

import (
	"errors"
	"fmt"
)

// Header message types read or recognised.
const (
	msgNIL          = 0x0000
	msgDataspace    = 0x0001
	msgLinkInfo     = 0x0002
	msgDatatype     = 0x0003
	msgLink         = 0x0006
	msgExternal     = 0x0007
	msgLayout       = 0x0008
	msgFilters      = 0x000B
	msgAttribute    = 0x000C
	msgContinuation = 0x0010
	msgSymbolTable  = 0x0011
	msgAttrInfo     = 0x0015
)

// Bounds on what one object header may hold: far above anything written
// in practice, low enough that a corrupt file cannot make the reader loop
// or allocate without end.
const (
	maxMessages = 1 << 16
	maxChunks   = 1 << 10
)

type message struct {
	typ   uint16
	flags uint8
	data  []byte
}

// shared reports a message stored elsewhere (a committed datatype, a
// shared message table): not supported.
func (m message) shared() bool { return m.flags&0x02 != 0 }

// object is a parsed object header: its messages, in order, continuation
// blocks followed.
type object struct {
	addr   uint64
	msgs   []message
	chunks int // blocks read: 1 + continuations
}

func (o *object) find(typ uint16) (message, bool) {
	for _, m := range o.msgs {
		if m.typ == typ {
			return m, true
		}
	}
	return message{}, false
}

// readObject reads the object header at addr, of version 1 or 2.
func (f *File) readObject(addr uint64) (*object, error) {
	prefix, err := f.readUpTo(addr, 16)
	if err != nil {
		return nil, fmt.Errorf("object header: %w", err)
	}
	o := &object{addr: addr}
	if len(prefix) >= 4 && string(prefix[:4]) == "OHDR" {
		err = f.readObjectV2(o)
	} else {
		err = f.readObjectV1(o, prefix)
	}
	if err != nil {
		return nil, fmt.Errorf("object header at address %d: %w", addr, err)
	}
	return o, nil
}

type chunk struct{ addr, size uint64 }

func (f *File) readObjectV1(o *object, prefix []byte) error {
	d := &decoder{b: prefix}
	version := d.u8()
	d.skip(1 + 2 + 4) // reserved, message count, reference count
	size := d.u32()
	if d.err != nil {
		return errTruncated
	}
	if version != 1 {
		return unsupported("unsupported object header version %d", version)
	}
	// Messages start after the 12-byte prefix, padded to 16.
	return f.readChunks(o, chunk{o.addr + 16, uint64(size)}, true, 0)
}

func (f *File) readObjectV2(o *object) error {
	// Signature, version, flags, optional times and attribute limits, then
	// the size of chunk 0 in 1, 2, 4 or 8 bytes: at most 4+1+1+16+4+8.
	b, err := f.readUpTo(o.addr, 34)
	if err != nil {
		return err
	}
	d := &decoder{b: b}
	d.skip(4)
	version, flags := d.u8(), d.u8()
	if d.err == nil && version != 2 {
		return unsupported("unsupported object header version %d", version)
	}
	if flags&0x20 != 0 {
		d.skip(16) // access, modification, change and birth times
	}
	if flags&0x10 != 0 {
		d.skip(4) // attribute storage phase change values
	}
	size := d.uvar(1 << (flags & 3))
	if d.err != nil {
		return errTruncated
	}
	if o.addr+uint64(d.off) < o.addr {
		return errTruncated
	}
	return f.readChunks(o, chunk{o.addr + uint64(d.off), size}, false, flags)
}

// readChunks parses the messages of an object header's first chunk and of
// every continuation block they lead to; v2flags is the flags byte of a
// version 2 header.
func (f *File) readChunks(o *object, first chunk, v1 bool, v2flags uint8) error {
	queue := []chunk{first}
	seen := map[uint64]bool{}
	for i := 0; len(queue) > 0; i++ {
		c := queue[0]
		queue = queue[1:]
		if i >= maxChunks || seen[c.addr] {
			return errors.New("object header continuation blocks loop or are too many")
		}
		seen[c.addr] = true
		o.chunks++
		if c.size > f.size {
			return fmt.Errorf("object header block of %d bytes in a file of %d", c.size, f.size)
		}
		var b []byte
		var err error
		if v1 {
			b, err = f.read(c.addr, c.size)
		} else {
			// Chunk 0's size excludes its checksum; a continuation block's
			// includes its "OCHK" signature and checksum.
			n := c.size
			if i == 0 {
				n += 4
			}
			if b, err = f.read(c.addr, n); err == nil {
				if i > 0 {
					if len(b) < 8 || string(b[:4]) != "OCHK" {
						return errors.New("continuation block without its OCHK signature")
					}
					b = b[4:]
				}
				b = b[:len(b)-4] // the checksum, not verified
			}
		}
		if err != nil {
			return err
		}
		d := &decoder{b: b}
		for {
			var m message
			if v1 {
				if d.left() < 8 {
					break
				}
				m.typ = d.u16()
				size := int(d.u16())
				m.flags = d.u8()
				d.skip(3)
				m.data = d.take(size)
			} else {
				hdr := 4
				if v2flags&0x04 != 0 {
					hdr = 6
				}
				if d.left() < hdr {
					break // the gap before the checksum
				}
				m.typ = uint16(d.u8())
				size := int(d.u16())
				m.flags = d.u8()
				if v2flags&0x04 != 0 {
					d.skip(2) // creation order
				}
				m.data = d.take(size)
			}
			if d.err != nil {
				return fmt.Errorf("message of type %#04x: %w", m.typ, errTruncated)
			}
			if len(o.msgs) >= maxMessages {
				return errors.New("too many header messages")
			}
			switch m.typ {
			case msgNIL:
			case msgContinuation:
				cd := &decoder{b: m.data}
				next := chunk{cd.u64(), cd.u64()}
				if cd.err != nil {
					return fmt.Errorf("continuation message: %w", errTruncated)
				}
				queue = append(queue, next)
			default:
				o.msgs = append(o.msgs, m)
			}
		}
	}
	return nil
}
