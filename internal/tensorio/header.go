package tensorio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// maxHeader bounds a .npy header's length: NumPy refuses those over 10000
// bytes by default, and a version 2 header may claim 4 GiB.
const maxHeader = 1 << 16

// header is what a .npy header says about the array.
type header struct {
	descr   string // dtype, e.g. "<f4"
	fortran bool
	shape   []int
	size    int64 // bytes of the header, prefix and padding included
}

// readHeader reads a .npy header (format versions 1 to 3) from r, leaving r
// at the array's data. It parses the header's Python dict itself:
// npyio's reader panics on malformed dicts, misreads the shape of a dict
// without NumPy's trailing ", " (such as str(dict) writes, which NumPy
// reads) and knows no version 3.
func readHeader(r io.Reader) (header, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return header{}, fmt.Errorf("header: %w", err)
	}
	if string(pre[:6]) != "\x93NUMPY" {
		return header{}, errors.New("header: no \\x93NUMPY magic")
	}
	var n uint32
	prefix := int64(12)
	switch pre[6] {
	case 1:
		prefix = 10
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return header{}, fmt.Errorf("header: %w", err)
		}
		n = uint32(binary.LittleEndian.Uint16(l[:]))
	case 2, 3:
		var l [4]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return header{}, fmt.Errorf("header: %w", err)
		}
		n = binary.LittleEndian.Uint32(l[:])
	default:
		return header{}, fmt.Errorf("header: format version %d.%d not supported", pre[6], pre[7])
	}
	if n > maxHeader {
		return header{}, fmt.Errorf("header: %d bytes long, want at most %d", n, maxHeader)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return header{}, fmt.Errorf("header: %w", err)
	}
	h, err := parseHeader(string(buf))
	if err != nil {
		return header{}, fmt.Errorf("header: %w", err)
	}
	h.size = prefix + int64(n)
	return h, nil
}

// parseHeader parses the dict of a .npy header, such as
// "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }".
func parseHeader(s string) (header, error) {
	p := &pyLit{s: s}
	var h header
	seen := map[string]bool{}
	if !p.eat('{') {
		return h, errors.New("want a dict")
	}
	for !p.eat('}') {
		key, ok := p.str()
		if !ok || !p.eat(':') {
			return h, errors.New("want 'key': value in the dict")
		}
		if seen[key] {
			return h, fmt.Errorf("key %q given twice", key)
		}
		seen[key] = true
		switch key {
		case "descr":
			if h.descr, ok = p.str(); !ok {
				return h, errors.New("descr: want a dtype string (structured arrays are not supported)")
			}
		case "fortran_order":
			switch w := p.word(); w {
			case "True", "False":
				h.fortran = w == "True"
			default:
				return h, fmt.Errorf("fortran_order: %q, want True or False", w)
			}
		case "shape":
			var err error
			if h.shape, err = p.tuple(); err != nil {
				return h, fmt.Errorf("shape: %w", err)
			}
		default:
			return h, fmt.Errorf("unknown key %q", key)
		}
		if !p.eat(',') {
			if !p.eat('}') {
				return h, errors.New("want , or } after a value in the dict")
			}
			break
		}
	}
	if p.space(); p.i != len(s) {
		return h, errors.New("data after the dict")
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return h, fmt.Errorf("no key %q", k)
		}
	}
	return h, nil
}

// pyLit reads the few Python literals of a .npy header.
type pyLit struct {
	s string
	i int
}

func (p *pyLit) space() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

// eat skips space and c, reporting whether c was there.
func (p *pyLit) eat(c byte) bool {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a quoted string without escapes.
func (p *pyLit) str() (string, bool) {
	p.space()
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", false
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", false
	}
	v := p.s[p.i+1 : p.i+1+end]
	if strings.IndexByte(v, '\\') >= 0 {
		return "", false
	}
	p.i += end + 2
	return v, true
}

// word reads a run of letters and digits: True, False, a number.
func (p *pyLit) word() string {
	p.space()
	j := p.i
	for j < len(p.s) && (p.s[j] >= 'a' && p.s[j] <= 'z' || p.s[j] >= 'A' && p.s[j] <= 'Z' || p.s[j] >= '0' && p.s[j] <= '9') {
		j++
	}
	w := p.s[p.i:j]
	p.i = j
	return w
}

// tuple reads a tuple of non-negative ints; Python 2's NumPy wrote them
// as longs, with an L.
func (p *pyLit) tuple() ([]int, error) {
	if !p.eat('(') {
		return nil, errors.New("want a tuple")
	}
	var t []int
	for !p.eat(')') {
		w := p.word()
		v, err := strconv.Atoi(strings.TrimSuffix(w, "L"))
		if err != nil || v < 0 {
			return nil, fmt.Errorf("dimension %q is not a whole number", w)
		}
		if len(t) == maxRank {
			return nil, fmt.Errorf("more than %d dimensions", maxRank)
		}
		t = append(t, v)
		if !p.eat(',') {
			if !p.eat(')') {
				return nil, errors.New("want , or ) after a dimension")
			}
			break
		}
	}
	return t, nil
}
