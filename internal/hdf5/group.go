package hdf5

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// maxNodes bounds the B-tree and symbol table nodes read for one group.
const maxNodes = 1 << 16

// Group is an HDF5 group: named members (groups, datasets) and
// attributes.
type Group struct {
	f    *File
	path string
	obj  *object

	// members, read on first use: name -> link.
	members map[string]link
	// attributes, parsed on first use.
	attrs   []attribute
	attrErr error
}

type link struct {
	addr uint64 // the member's object header
	soft string // a soft link's target (addr is then undef)
}

func (f *File) openGroup(addr uint64, path string) (*Group, error) {
	o, err := f.readObject(addr)
	if err != nil {
		return nil, f.errorf("group "+path, "%w", err)
	}
	g := &Group{f: f, path: path, obj: o}
	if !o.isGroup() {
		if _, ok := o.find(msgLayout); ok {
			return nil, f.errorf("dataset "+path, "not a group")
		}
		return nil, f.errorf(path, "not a group")
	}
	return g, nil
}

func (o *object) isGroup() bool {
	for _, m := range o.msgs {
		switch m.typ {
		case msgSymbolTable, msgLinkInfo, msgLink:
			return true
		}
	}
	return false
}

// Path returns the group's path from the root: "/" for the root,
// "a/b" below it.
func (g *Group) Path() string { return g.path }

func (g *Group) child(name string) string {
	if g.path == "/" {
		return name
	}
	return g.path + "/" + name
}

// Members lists the names of the group's members, sorted.
func (g *Group) Members() ([]string, error) {
	if err := g.load(); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(g.members))
	for n := range g.members {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// Group returns the group at path, relative to g ("a/b/c") or, with a
// leading "/", to the root. An error for a missing member matches
// ErrNotFound.
func (g *Group) Group(path string) (*Group, error) {
	addr, full, err := g.lookup(path)
	if err != nil {
		return nil, err
	}
	return g.f.openGroup(addr, full)
}

// Dataset returns the dataset at path, as Group does a group.
func (g *Group) Dataset(path string) (*Dataset, error) {
	addr, full, err := g.lookup(path)
	if err != nil {
		return nil, err
	}
	return g.f.openDataset(addr, full)
}

// lookup walks path to the object header of its last component.
func (g *Group) lookup(path string) (uint64, string, error) {
	if strings.HasPrefix(path, "/") {
		g = g.f.root
	}
	var parts []string
	for p := range strings.SplitSeq(path, "/") {
		if p != "" && p != "." {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return g.obj.addr, g.path, nil
	}
	for _, p := range parts[:len(parts)-1] {
		addr, full, err := g.member(p)
		if err != nil {
			return 0, "", err
		}
		if g, err = g.f.openGroup(addr, full); err != nil {
			return 0, "", err
		}
	}
	return g.member(parts[len(parts)-1])
}

// member returns the object header address and path of a member.
func (g *Group) member(name string) (uint64, string, error) {
	if err := g.load(); err != nil {
		return 0, "", err
	}
	l, ok := g.members[name]
	if !ok {
		return 0, "", g.f.errorf("group "+g.path, "%w", &notFound{fmt.Sprintf("no member %q", name)})
	}
	full := g.child(name)
	if l.addr == undef {
		return 0, "", g.f.errorf(full, "%w", unsupported("a soft link (to %q): not supported", l.soft))
	}
	return l.addr, full, nil
}

// load reads the group's members: a symbol table (B-tree, symbol table
// nodes, local heap: the old style h5py writes by default) or link
// messages in the object header (the compact new style).
func (g *Group) load() error {
	if g.members != nil {
		return nil
	}
	members := map[string]link{}
	var err error
	if m, ok := g.obj.find(msgSymbolTable); ok {
		err = g.loadSymbolTable(m, members)
	} else {
		err = g.loadLinks(members)
	}
	if err != nil {
		return g.f.errorf("group "+g.path, "%w", err)
	}
	g.members = members
	return nil
}

func (g *Group) loadLinks(members map[string]link) error {
	for _, m := range g.obj.msgs {
		switch m.typ {
		case msgLinkInfo:
			d := &decoder{b: m.data}
			d.skip(1)
			if d.u8()&1 != 0 {
				d.skip(8) // maximum creation index
			}
			heap := d.u64()
			if d.err != nil {
				return fmt.Errorf("link info message: %w", errTruncated)
			}
			if heap != undef {
				return unsupported("links in dense storage (a fractal heap, groups of many members in files written with libver 'latest') are not supported")
			}
		case msgLink:
			name, l, err := parseLink(m.data)
			if err != nil {
				return err
			}
			members[name] = l
		}
	}
	return nil
}

func parseLink(b []byte) (string, link, error) {
	d := &decoder{b: b}
	version, flags := d.u8(), d.u8()
	if d.err == nil && version != 1 {
		return "", link{}, unsupported("unsupported link message version %d", version)
	}
	kind := uint8(0)
	if flags&0x08 != 0 {
		kind = d.u8()
	}
	if flags&0x04 != 0 {
		d.skip(8) // creation order
	}
	if flags&0x10 != 0 {
		d.skip(1) // character set
	}
	n := d.uvar(1 << (flags & 3))
	if n > uint64(d.left()) {
		return "", link{}, fmt.Errorf("link message: %w", errTruncated)
	}
	name := string(d.take(int(n)))
	var l link
	switch kind {
	case 0:
		l.addr = d.u64()
	case 1:
		l.addr = undef
		l.soft = string(d.take(int(d.u16())))
	default:
		return "", link{}, unsupported("link %q: external or user-defined links (type %d) are not supported", name, kind)
	}
	if d.err != nil {
		return "", link{}, fmt.Errorf("link message: %w", errTruncated)
	}
	return name, l, nil
}

// symbolTable is the state of one walk over an old-style group.
type symbolTable struct {
	f     *File
	heap  []byte // the local heap's data segment: the members' names
	seen  map[uint64]bool
	links map[string]link
}

func (g *Group) loadSymbolTable(m message, members map[string]link) error {
	d := &decoder{b: m.data}
	btree, heapAddr := d.u64(), d.u64()
	if d.err != nil {
		return fmt.Errorf("symbol table message: %w", errTruncated)
	}
	hb, err := g.f.read(heapAddr, 32)
	if err != nil {
		return fmt.Errorf("local heap: %w", err)
	}
	d = &decoder{b: hb}
	sig := string(d.take(4))
	version := d.u8()
	d.skip(3)
	size := d.u64()
	d.skip(8) // free list
	data := d.u64()
	if sig != "HEAP" || version != 0 {
		return fmt.Errorf("local heap at address %d: bad signature or version", heapAddr)
	}
	heap, err := g.f.read(data, size)
	if err != nil {
		return fmt.Errorf("local heap data: %w", err)
	}
	t := &symbolTable{f: g.f, heap: heap, seen: map[uint64]bool{}, links: members}
	return t.node(btree, -1)
}

func (t *symbolTable) visit(addr uint64) error {
	if t.seen[addr] {
		return fmt.Errorf("symbol table: node at address %d reached twice", addr)
	}
	if len(t.seen) >= maxNodes {
		return errors.New("symbol table: too many nodes")
	}
	t.seen[addr] = true
	return nil
}

// node reads a group B-tree node, whose level must be level (any at the
// root, -1), and everything below it.
func (t *symbolTable) node(addr uint64, level int) error {
	if err := t.visit(addr); err != nil {
		return err
	}
	b, err := t.f.read(addr, 24)
	if err != nil {
		return fmt.Errorf("symbol table B-tree node: %w", err)
	}
	d := &decoder{b: b}
	sig := string(d.take(4))
	typ, lvl, used := d.u8(), int(d.u8()), uint64(d.u16())
	if sig != "TREE" {
		return fmt.Errorf("symbol table B-tree node at address %d: bad signature", addr)
	}
	if typ != 0 {
		return fmt.Errorf("symbol table B-tree node at address %d: type %d, want 0 (group)", addr, typ)
	}
	if level >= 0 && lvl != level {
		return fmt.Errorf("symbol table B-tree node at address %d: level %d, want %d", addr, lvl, level)
	}
	// Keys (heap offsets) and children alternate, a key first and last.
	b, err = t.f.read(addr+24, used*16+8)
	if err != nil {
		return fmt.Errorf("symbol table B-tree node: %w", err)
	}
	d = &decoder{b: b}
	for range used {
		d.skip(8)
		child := d.u64()
		if lvl > 0 {
			err = t.node(child, lvl-1)
		} else {
			err = t.symbols(child)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// symbols reads a symbol table node: the entries of up to 2K members.
func (t *symbolTable) symbols(addr uint64) error {
	if err := t.visit(addr); err != nil {
		return err
	}
	b, err := t.f.read(addr, 8)
	if err != nil {
		return fmt.Errorf("symbol table node: %w", err)
	}
	if string(b[:4]) != "SNOD" || b[4] != 1 {
		return fmt.Errorf("symbol table node at address %d: bad signature or version", addr)
	}
	n := uint64(b[6]) | uint64(b[7])<<8
	b, err = t.f.read(addr+8, n*40)
	if err != nil {
		return fmt.Errorf("symbol table node: %w", err)
	}
	d := &decoder{b: b}
	for range n {
		nameOff, header, cache := d.u64(), d.u64(), d.u32()
		d.skip(4)
		scratch := d.take(16)
		name, err := t.name(nameOff)
		if err != nil {
			return err
		}
		l := link{addr: header}
		if cache == 2 {
			// A soft link: its target in the heap, at the scratch pad's offset.
			sd := &decoder{b: scratch}
			target, err := t.name(uint64(sd.u32()))
			if err != nil {
				return err
			}
			l = link{addr: undef, soft: target}
		}
		if _, dup := t.links[name]; !dup {
			t.links[name] = l
		}
	}
	return nil
}

// name returns the NUL-terminated string at offset off of the local heap.
func (t *symbolTable) name(off uint64) (string, error) {
	if off >= uint64(len(t.heap)) {
		return "", fmt.Errorf("name at heap offset %d beyond the local heap (%d bytes)", off, len(t.heap))
	}
	s := t.heap[off:]
	end := bytes.IndexByte(s, 0)
	if end < 0 {
		return "", fmt.Errorf("name at heap offset %d not terminated", off)
	}
	return string(s[:end]), nil
}
