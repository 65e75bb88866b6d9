package tensorio

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"gorgonia.org/tensor"
)

// npySeeds are valid and near-valid .npy files for the fuzz corpora.
func npySeeds() [][]byte {
	var good bytes.Buffer
	if err := WriteNPY(&good, tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{1, 2, 3, 4, 5, 6}))); err != nil {
		panic(err)
	}
	return [][]byte{
		good.Bytes(),
		npyBytes("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", make([]byte, 48)),
		npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", make([]byte, 4)),
		npyBytes("{'descr': '|f4', 'fortran_order': False, 'shape': (1,), }", make([]byte, 4)),
		npyBytes("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", make([]byte, 16)),
		npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000), }", nil),
	}
}

// FuzzReadNPY feeds arbitrary bytes to ReadNPY, with the size known and
// unknown: an error is fine, a panic is not, and a tensor must be backed by
// bytes that were there.
func FuzzReadNPY(f *testing.F) {
	for _, b := range npySeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, size := range []int64{int64(len(b)), -1} {
			x, err := ReadNPY(bytes.NewReader(b), size)
			if err != nil {
				continue
			}
			if n := x.Shape().TotalSize(); 4*n > len(b) {
				t.Fatalf("size %d: %d elements from %d bytes", size, n, len(b))
			}
		}
	})
}

// FuzzReadNPZ writes arbitrary bytes to an .npz file and reads every array
// in it.
func FuzzReadNPZ(f *testing.F) {
	for _, method := range []uint16{zip.Store, zip.Deflate} {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for i, b := range npySeeds()[:3] {
			w, err := zw.CreateHeader(&zip.FileHeader{Name: string(rune('a'+i)) + ".npy", Method: method})
			if err != nil {
				f.Fatal(err)
			}
			w.Write(b)
		}
		if err := zw.Close(); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "fuzz.npz")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		a, err := OpenNPZ(path)
		if err != nil {
			return
		}
		defer a.Close()
		for _, name := range a.Names() {
			a.Read(name)
		}
	})
}
