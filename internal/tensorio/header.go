package tensorio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"codeberg.org/sbinet/npyio/npy"
)

// maxHeader bounds a .npy header's length: NumPy refuses those over 10000
// bytes by default, and a version 2 header may claim 4 GiB.
const maxHeader = 1 << 16

// header is what a .npy header says about the array.
type header struct {
	descr   string // dtype, e.g. "<f4"
	fortran bool
	shape   []int
}

// readHeader reads a .npy header (format versions 1 to 3) from r, leaving r
// at the array's data. The prefix and the length are checked here, the
// header's Python dict is parsed by npyio, whose panics on malformed ones
// (slice bounds) are turned into errors.
func readHeader(r io.Reader) (header, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return header{}, fmt.Errorf("header: %w", err)
	}
	if string(pre[:6]) != "\x93NUMPY" {
		return header{}, errors.New("header: no \\x93NUMPY magic")
	}
	var n uint32
	switch pre[6] {
	case 1:
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
	raw := append([]byte(nil), pre[:]...)
	if pre[6] == 1 {
		raw = binary.LittleEndian.AppendUint16(raw, uint16(n))
	} else {
		raw = binary.LittleEndian.AppendUint32(raw, n)
	}
	h, err := parseHeader(append(raw, buf...))
	if err != nil {
		return header{}, fmt.Errorf("header: %w", err)
	}
	if len(h.shape) > maxRank {
		return header{}, fmt.Errorf("header: %d dimensions, want at most %d", len(h.shape), maxRank)
	}
	return h, nil
}

// parseHeader reads a whole .npy header (prefix, length, dict) with npyio.
func parseHeader(raw []byte) (h header, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed dict %q", truncate(raw[min(len(raw), 10):], 80))
		}
	}()
	nr, err := npy.NewReader(bytes.NewReader(raw))
	if err != nil {
		return header{}, err
	}
	d := nr.Header.Descr
	return header{descr: strings.Trim(d.Type, "'\""), fortran: d.Fortran, shape: slices.Clone(d.Shape)}, nil
}

// truncate returns at most n bytes of b.
func truncate(b []byte, n int) []byte { return b[:min(len(b), n)] }
