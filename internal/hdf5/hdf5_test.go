package hdf5

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The golden files are written by testdata/make.py (h5py); its docstring
// says what each holds.

func open(t testing.TB, name string) *File {
	t.Helper()
	f, err := Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestDatasets(t *testing.T) {
	inf := float32(math.Inf(1))
	for _, tc := range []struct {
		file, path string
		shape      []int
		want       []float32
		err        string // what the error says, if reading must fail
	}{
		{file: "small.h5", path: "a/b/c/kernel:0", shape: []int{2, 3}, want: []float32{0, 0.25, 0.5, 0.75, 1, 1.25}},
		{file: "small.h5", path: "/a/b/c/kernel:0", shape: []int{2, 3}, want: []float32{0, 0.25, 0.5, 0.75, 1, 1.25}},
		{file: "small.h5", path: "f64", shape: []int{3}, want: []float32{0.1, -2.5, inf}},
		{file: "small.h5", path: "scalar", shape: []int{}, want: []float32{7}},
		{file: "small.h5", path: "empty", shape: []int{0, 3}, want: []float32{}},
		{file: "small.h5", path: "compact", shape: []int{4}, want: []float32{1.5, -2, 3, 1e-3}},
		{file: "small.h5", path: "many/d11", shape: []int{}, want: []float32{11}},
		{file: "small.h5", path: "chunked", shape: []int{4, 4}, err: "hdf5: testdata/small.h5: dataset chunked: chunked layout is not supported"},
		{file: "small.h5", path: "int", shape: []int{3}, err: "dataset int: int32 data is not supported"},
		{file: "small.h5", path: "be", shape: []int{3}, err: "dataset be: big-endian float32 data is not supported"},
		{file: "latest.h5", path: "a/b/c/kernel:0", shape: []int{2, 3}, want: []float32{0, 0.25, 0.5, 0.75, 1, 1.25}},
		{file: "latest.h5", path: "compact", shape: []int{4}, want: []float32{1.5, -2, 3, 1e-3}},
		{file: "latest.h5", path: "chunked", shape: []int{4, 4}, err: "dataset chunked: chunked layout is not supported"},
		{file: "userblock.h5", path: "x", shape: []int{3}, want: []float32{1, 2, 3}},
		{file: "wide.h5", path: "g/n298", shape: []int{}, want: []float32{1}},
	} {
		t.Run(tc.file+":"+tc.path, func(t *testing.T) {
			d, err := open(t, tc.file).Root().Dataset(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Shape(); !reflect.DeepEqual(got, tc.shape) && !(len(got) == 0 && len(tc.shape) == 0) {
				t.Errorf("shape %v, want %v", got, tc.shape)
			}
			v, err := d.Float32s()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrUnsupported) {
					t.Fatalf("error %v, want an ErrUnsupported saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(v, tc.want) {
				t.Fatalf("got %v, want %v", v, tc.want)
			}
		})
	}
}

func TestAttrs(t *testing.T) {
	for _, tc := range []struct {
		file, group, name string
		want              []string
		err               string
	}{
		{file: "small.h5", group: "/", name: "names", want: []string{"conv1", "bn_conv1", "fc1000"}},
		{file: "small.h5", group: "/", name: "backend", want: []string{"tensorflow"}},
		{file: "small.h5", group: "/", name: "keras_version", want: []string{"2.2.4"}},
		{file: "small.h5", group: "/", name: "label", want: []string{"café"}},
		{file: "small.h5", group: "/", name: "vlen_list", want: []string{"x", "yz"}},
		{file: "small.h5", group: "/", name: "layers1", want: []string{"l3", "l4"}},
		{file: "small.h5", group: "a", name: "weight_names", want: []string{"b/c/kernel:0"}},
		{file: "small.h5", group: "attrs", name: "attr39", want: []string{"value of attribute 39"}},
		{file: "small.h5", group: "/", name: "pi", err: "hdf5: testdata/small.h5: attribute pi of group /: float32, not a string"},
		{file: "small.h5", group: "/", name: "layers", err: `group /: no attribute "layers"`},
		{file: "latest.h5", group: "/", name: "names", want: []string{"conv1", "bn_conv1", "fc1000"}},
		{file: "latest.h5", group: "/", name: "backend", want: []string{"tensorflow"}},
		{file: "latest.h5", group: "/", name: "label", want: []string{"café"}},
		{file: "latest.h5", group: "a", name: "weight_names", want: []string{"b/c/kernel:0"}},
	} {
		t.Run(tc.file+":"+tc.group+"@"+tc.name, func(t *testing.T) {
			g, err := open(t, tc.file).Root().Group(tc.group)
			if err != nil {
				t.Fatal(err)
			}
			v, err := g.Attr(tc.name)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(v, tc.want) {
				t.Fatalf("got %q, want %q", v, tc.want)
			}
		})
	}
	// Keras' chunked attributes are separate attributes to this package.
	names, err := open(t, "small.h5").Root().AttrNames()
	if err != nil {
		t.Fatal(err)
	}
	if want := "names backend keras_version label pi layers0 layers1 layers2 vlen_list"; strings.Join(names, " ") != want {
		t.Fatalf("attributes %v, want %s", names, want)
	}
}

func TestGroups(t *testing.T) {
	f := open(t, "small.h5")
	members, err := f.Root().Members()
	if err != nil {
		t.Fatal(err)
	}
	if want := "a attrs be chunked compact empty f64 int many scalar soft"; strings.Join(members, " ") != want {
		t.Errorf("root members %v, want %s", members, want)
	}
	many, err := f.Root().Group("many")
	if err != nil {
		t.Fatal(err)
	}
	// 12 members: more than one symbol table node holds (2K = 8).
	if m, _ := many.Members(); len(m) != 12 || m[0] != "d00" || m[11] != "d11" {
		t.Errorf("many: members %v", m)
	}
	// 40 attributes overflow the object header into a continuation block.
	attrs, err := f.Root().Group("attrs")
	if err != nil {
		t.Fatal(err)
	}
	if attrs.obj.chunks < 2 {
		t.Errorf("group attrs: %d header blocks; the test wants a continuation", attrs.obj.chunks)
	}
	if n, _ := attrs.AttrNames(); len(n) != 40 {
		t.Errorf("group attrs: %d attributes, want 40", len(n))
	}
	// In latest.h5, the root's header grew into "OCHK" continuation blocks.
	if c := open(t, "latest.h5").Root().obj.chunks; c < 2 {
		t.Errorf("latest.h5: the root has %d header blocks; the test wants continuations", c)
	}

	// 300 hard links: a B-tree of depth > 0.
	w := open(t, "wide.h5")
	g, err := w.Root().Group("g")
	if err != nil {
		t.Fatal(err)
	}
	m, err := g.Members()
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 300 {
		t.Fatalf("g: %d members, want 300", len(m))
	}
	st, _ := g.obj.find(msgSymbolTable)
	root, err := w.read((&decoder{b: st.data}).u64(), 8)
	if err != nil {
		t.Fatal(err)
	}
	if root[5] == 0 {
		t.Errorf("wide.h5: the B-tree of g has depth 0; the test wants more")
	}
	for i, name := range m {
		if want := fmt.Sprintf("n%03d", i); name != want {
			t.Fatalf("member %d: %s, want %s", i, name, want)
		}
		d, err := g.Dataset(name)
		if err != nil {
			t.Fatal(err)
		}
		v, err := d.Float32s()
		if err != nil || len(v) != 1 || v[0] != float32(i%3) {
			t.Fatalf("%s: %v %v, want [%d]", name, v, err, i%3)
		}
	}
}

func TestErrors(t *testing.T) {
	small := open(t, "small.h5").Root()
	latest := open(t, "latest.h5").Root()
	for _, tc := range []struct {
		name                  string
		do                    func() error
		err                   string
		notFound, unsupported bool
	}{
		{name: "missing member", do: func() error { _, err := small.Group("a/x"); return err }, err: `hdf5: testdata/small.h5: group a: no member "x"`, notFound: true},
		{name: "missing dataset", do: func() error { _, err := small.Dataset("a/b/c/kernel:1"); return err }, err: `group a/b/c: no member "kernel:1"`, notFound: true},
		{name: "missing attribute", do: func() error { _, err := small.Attr("nope"); return err }, err: `no attribute "nope"`, notFound: true},
		{name: "dataset as group", do: func() error { _, err := small.Group("f64"); return err }, err: "dataset f64: not a group"},
		{name: "through a dataset", do: func() error { _, err := small.Dataset("f64/x"); return err }, err: "dataset f64: not a group"},
		{name: "group as dataset", do: func() error { _, err := small.Dataset("a/b"); return err }, err: "group a/b: not a dataset"},
		{name: "soft link", do: func() error { _, err := small.Group("soft"); return err }, err: `soft: a soft link (to "/a"): not supported`, unsupported: true},
		{name: "dense links", do: func() error { _, err := latest.Dataset("dense/x00"); return err }, err: "group dense: links in dense storage (a fractal heap", unsupported: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one saying %q", err, tc.err)
			}
			if errors.Is(err, ErrNotFound) != tc.notFound {
				t.Fatalf("errors.Is(%v, ErrNotFound) = %v", err, !tc.notFound)
			}
			if errors.Is(err, ErrUnsupported) != tc.unsupported {
				t.Fatalf("errors.Is(%v, ErrUnsupported) = %v", err, !tc.unsupported)
			}
		})
	}
}

func TestNotHDF5(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty.h5": "",
		"npz.h5":   "PK\x03\x04 not hdf5 at all, but long enough to be searched for a user block" + strings.Repeat("x", 2000),
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		_, err := Open(p)
		if err == nil || !strings.Contains(err.Error(), "hdf5: "+p+": not an HDF5 file") {
			t.Errorf("%s: error %v", name, err)
		}
	}
	if _, err := Open(filepath.Join(dir, "missing.h5")); err == nil {
		t.Error("opened a missing file")
	}
	b, _ := os.ReadFile(filepath.Join("testdata", "small.h5"))
	ub, _ := os.ReadFile(filepath.Join("testdata", "userblock.h5"))
	if !IsHDF5(bytes.NewReader(b), int64(len(b))) || IsHDF5(bytes.NewReader(b[1:]), int64(len(b)-1)) || !IsHDF5(bytes.NewReader(ub), int64(len(ub))) {
		t.Error("IsHDF5: a file, the file less its first byte, a file with a user block")
	}
	// Corrupt, not unsupported.
	f, err := newFile("cut.h5", bytes.NewReader(b[:len(b)/2]), int64(len(b)/2))
	if err == nil {
		_, err = f.Root().Dataset("many/d11")
	}
	if err == nil || !strings.Contains(err.Error(), "hdf5: cut.h5: ") || !strings.Contains(err.Error(), "beyond the end of the file") || errors.Is(err, ErrUnsupported) {
		t.Errorf("truncated file: %v", err)
	}
}

func TestUnsupportedStructures(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "small.h5"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func([]byte)
		err  string
	}{
		{name: "superblock version", edit: func(b []byte) { b[8] = 9 }, err: "superblock: unsupported superblock version 9"},
		{name: "4-byte addresses", edit: func(b []byte) { b[13] = 4 }, err: "superblock: 4-byte addresses and 8-byte lengths are not supported"},
		{name: "object header version", edit: func(b []byte) { b[96] = 3 }, err: "group /: object header at address 96: unsupported object header version 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := bytes.Clone(b)
			tc.edit(c)
			_, err := newFile("x.h5", bytes.NewReader(c), int64(len(c)))
			if err == nil || !strings.Contains(err.Error(), "hdf5: x.h5: "+tc.err) || !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v, want an ErrUnsupported saying %q", err, tc.err)
			}
		})
	}
}

// walk reads everything in a file: every member, attribute and dataset it
// can, errors ignored. It must not panic, whatever the bytes.
func walk(name string, b []byte) {
	f, err := newFile(name, bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return
	}
	seen := map[uint64]bool{}
	var group func(g *Group, depth int)
	group = func(g *Group, depth int) {
		if seen[g.obj.addr] || depth > 8 {
			return
		}
		seen[g.obj.addr] = true
		names, _ := g.AttrNames()
		for _, n := range names {
			g.Attr(n)
		}
		members, _ := g.Members()
		for _, m := range members {
			// What Group or Dataset would do, the header read once.
			addr, path, err := g.member(m)
			if err != nil {
				continue
			}
			o, err := f.readObject(addr)
			if err != nil {
				continue
			}
			if o.isGroup() {
				group(&Group{f: f, path: path, obj: o}, depth+1)
				continue
			}
			d := &Dataset{f: f, path: path}
			if d.parse(o) == nil {
				d.Shape()
				d.Float32s()
			}
		}
	}
	group(f.Root(), 0)
}

// TestCorrupt truncates the golden files at every length and changes each
// of their bytes in turn: errors are fine, panics and hangs are not.
func TestCorrupt(t *testing.T) {
	for _, name := range []string{"small.h5", "latest.h5"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			corrupt(t, name)
		})
	}
}

func corrupt(t *testing.T, name string) {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	step := 1
	if testing.Short() {
		step = 7
	}
	// try walks c; at is the truncation point or changed byte, for the report.
	try := func(c []byte, at int, x byte) {
		defer func() {
			if r := recover(); r != nil {
				if x == 0 {
					t.Fatalf("%s truncated to %d bytes: panic: %v", name, at, r)
				}
				t.Fatalf("%s with byte %d ^ %#x: panic: %v", name, at, x, r)
			}
		}()
		walk(name, c)
	}
	for n := 0; n < len(b); n += step {
		try(b[:n], n, 0)
	}
	c := bytes.Clone(b)
	// One change a byte, the kind taking turns: low bit, high bit, all.
	for i := 0; i < len(b); i += step {
		x := []byte{0x01, 0x80, 0xff}[i%3]
		c[i] = b[i] ^ x
		try(c, i, x)
		c[i] = b[i]
	}
}

// FuzzWalk lets go test -fuzz=FuzzWalk look further than TestCorrupt.
func FuzzWalk(f *testing.F) {
	for _, name := range []string{"small.h5", "latest.h5", "userblock.h5"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { walk("fuzz.h5", b) })
}
