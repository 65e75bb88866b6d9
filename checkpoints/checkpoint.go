package checkpoints

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gorgonia.org/tensor"

	"gotransfer/internal/atomicfile"
	"gotransfer/internal/tensorio"
)

// ManifestFile is the name of the manifest inside a checkpoint folder.
const ManifestFile = "manifest.json"

// RunFile is the name of the file holding Manifest.Run inside a checkpoint
// folder.
const RunFile = "run.yaml"

// FormatVersion is the version of the layout this package writes and reads.
const FormatVersion = 1

// Tensor is a named float32 tensor, such as a head parameter
// ("dense_0/kernel") or an Adam moment ("adam_m/dense_0/kernel").
type Tensor struct {
	Name  string
	Value *tensor.Dense
}

// Manifest describes a checkpoint. Save fills Format and Files; the caller
// fills the rest.
type Manifest struct {
	Format        int   `json:"format"`
	Epoch         int   `json:"epoch"`          // epoch the next step belongs to, from 0
	Step          int64 `json:"step"`           // global steps done
	StepInEpoch   int   `json:"step_in_epoch"`  // steps done in Epoch
	OptimizerStep int64 `json:"optimizer_step"` // the optimizer's step counter
	// Optimizer names the optimizer whose state the checkpoint holds
	// ("adam", "sgd"); empty in checkpoints written before there was a
	// choice, which were all Adam's.
	Optimizer  string             `json:"optimizer,omitempty"`
	Seed       uint64             `json:"seed"`
	Classes    []string           `json:"classes"`
	ConfigHash string             `json:"config_hash"`
	Metrics    map[string]float64 `json:"metrics,omitempty"` // e.g. "val_loss"; finite values only
	Files      []File             `json:"files"`

	// Run is free-form text kept with the checkpoint, meant for the run's
	// resolved configuration (configs.Config.Marshal), so that a checkpoint
	// alone says how to rebuild its model. Save writes it to run.yaml and
	// its sha256 to RunSHA256; Load reads it back, ReadManifest does not.
	Run       []byte `json:"-"`
	RunSHA256 string `json:"run_sha256,omitempty"`
}

// File is one tensor file of a checkpoint, as the manifest lists it.
type File struct {
	Tensor string `json:"tensor"` // tensor name, e.g. "dense_0/kernel"
	Path   string `json:"path"`   // slash-separated, relative to the checkpoint folder
	Shape  []int  `json:"shape"`
	SHA256 string `json:"sha256"` // of the whole .npy file, lower-case hex
}

// Checkpoint is a loaded and verified checkpoint.
type Checkpoint struct {
	Dir      string
	Manifest Manifest
	Tensors  []Tensor // in the manifest's order, which is Save's order
}

// Tensor returns the named tensor.
func (c *Checkpoint) Tensor(name string) (*tensor.Dense, bool) {
	for _, t := range c.Tensors {
		if t.Name == name {
			return t.Value, true
		}
	}
	return nil, false
}

// FilePath returns the slash-separated path, relative to the checkpoint
// folder, of the file holding the named tensor: the name with ".npy" added,
// so "adam_m/dense_0/kernel" is stored in adam_m/dense_0/kernel.npy. Names
// are slash-separated components of letters, digits, '_', '-' and '.',
// none of them empty, "." or "..".
func FilePath(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty tensor name")
	}
	for _, c := range strings.Split(name, "/") {
		if c == "" || c == "." || c == ".." {
			return "", fmt.Errorf("tensor name %q: empty, \".\" or \"..\" component", name)
		}
		for _, r := range c {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
				return "", fmt.Errorf("tensor name %q: character %q not allowed", name, r)
			}
		}
	}
	return name + ".npy", nil
}

// fileWriter is what writing needs of a file; tests replace createFile to
// simulate a full or failing disk.
type fileWriter interface {
	io.Writer
	Sync() error
	Close() error
}

var createFile = func(path string) (fileWriter, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
}

// Save writes a checkpoint into the new folder dir, atomically: everything
// goes into a temporary folder next to dir, every file and folder is synced,
// the temporary folder is renamed to dir and dir's parent is synced. A
// failure leaves nothing at dir. dir must not exist.
func Save(dir string, m Manifest, tensors []Tensor) error {
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("save checkpoint %s: already exists", dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	tmp, _, err := writeTemp(dir, m, tensors)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	return nil
}

// tmpPrefix starts the names of the temporary folders and links of this
// package; a Manager removes leftovers with it.
const tmpPrefix = ".tmp-"

// writeTemp writes the checkpoint into a new temporary folder next to dir
// and returns that folder and the completed manifest. On error it removes
// the folder.
func writeTemp(dir string, m Manifest, tensors []Tensor) (tmp string, _ Manifest, err error) {
	fail := func(err error) (string, Manifest, error) {
		if tmp != "" {
			os.RemoveAll(tmp)
		}
		return "", Manifest{}, fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	m.Format = FormatVersion
	m.Files = nil
	m.RunSHA256 = ""
	m.Classes = slices.Clone(m.Classes)
	for k, v := range m.Metrics {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fail(fmt.Errorf("metric %q is %v; JSON holds finite numbers only", k, v))
		}
	}
	seen := make(map[string]bool, len(tensors))
	for _, t := range tensors {
		p, err := FilePath(t.Name)
		if err != nil {
			return fail(err)
		}
		if seen[p] {
			return fail(fmt.Errorf("tensor %q given twice", t.Name))
		}
		seen[p] = true
		if t.Value == nil || t.Value.Dtype() != tensor.Float32 {
			return fail(fmt.Errorf("tensor %q: want a float32 tensor", t.Name))
		}
		m.Files = append(m.Files, File{Tensor: t.Name, Path: p, Shape: slices.Clone([]int(t.Value.Shape()))})
	}
	manifest, err := json.MarshalIndent(m, "", "  ") // checks that m encodes before writing anything
	if err != nil {
		return fail(err)
	}
	if tmp, err = atomicfile.MkdirTemp(filepath.Dir(dir), tmpPrefix+filepath.Base(dir)+"-"); err != nil {
		return fail(err)
	}
	dirs := map[string]bool{tmp: true}
	for i, t := range tensors {
		path := filepath.Join(tmp, filepath.FromSlash(m.Files[i].Path))
		for d := filepath.Dir(path); !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fail(err)
		}
		sum, err := writeFile(path, func(w io.Writer) error { return tensorio.WriteNPY(w, t.Value) })
		if err != nil {
			return fail(fmt.Errorf("tensor %q: %w", t.Name, err))
		}
		m.Files[i].SHA256 = sum
	}
	if len(m.Run) > 0 {
		run := m.Run
		if m.RunSHA256, err = writeFile(filepath.Join(tmp, RunFile), func(w io.Writer) error {
			_, err := w.Write(run)
			return err
		}); err != nil {
			return fail(err)
		}
	}
	if manifest, err = json.MarshalIndent(m, "", "  "); err != nil {
		return fail(err)
	}
	if _, err := writeFile(filepath.Join(tmp, ManifestFile), func(w io.Writer) error {
		_, err := w.Write(append(manifest, '\n'))
		return err
	}); err != nil {
		return fail(err)
	}
	// Sync the deepest folders first, the temporary folder last.
	ds := make([]string, 0, len(dirs))
	for d := range dirs {
		ds = append(ds, d)
	}
	slices.SortFunc(ds, func(a, b string) int { return len(b) - len(a) })
	for _, d := range ds {
		if err := syncDir(d); err != nil {
			return fail(err)
		}
	}
	return tmp, m, nil
}

// writeFile creates path, writes it with fill, syncs and closes it, and
// returns the hex sha256 of what was written.
func writeFile(path string, fill func(io.Writer) error) (string, error) {
	f, err := createFile(path)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	err = fill(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}

// ReadManifest reads and checks the manifest of the checkpoint in dir
// without reading the tensors.
func ReadManifest(dir string) (Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return Manifest{}, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("checkpoint %s: file %s: %w", dir, ManifestFile, err)
	}
	if dec.More() {
		return Manifest{}, fmt.Errorf("checkpoint %s: file %s: data after the manifest", dir, ManifestFile)
	}
	if m.Format != FormatVersion {
		return Manifest{}, fmt.Errorf("checkpoint %s: file %s: format %d, want %d", dir, ManifestFile, m.Format, FormatVersion)
	}
	seen := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		p, err := FilePath(f.Tensor)
		if err != nil {
			return Manifest{}, fmt.Errorf("checkpoint %s: file %s: %w", dir, ManifestFile, err)
		}
		if f.Path != p {
			return Manifest{}, fmt.Errorf("checkpoint %s: file %s: tensor %q stored in %q, want %q", dir, ManifestFile, f.Tensor, f.Path, p)
		}
		if seen[p] {
			return Manifest{}, fmt.Errorf("checkpoint %s: file %s: tensor %q listed twice", dir, ManifestFile, f.Tensor)
		}
		seen[p] = true
		if len(f.SHA256) != 64 {
			return Manifest{}, fmt.Errorf("checkpoint %s: file %s: tensor %q: malformed sha256 %q", dir, ManifestFile, f.Tensor, f.SHA256)
		}
	}
	return m, nil
}

// Load reads the checkpoint in dir and verifies it: the manifest, the sha256
// of every file, that every tensor has the manifest's shape, and that the
// folder holds no file the manifest does not list. An error names the first
// file that fails.
func Load(dir string) (*Checkpoint, error) { return LoadTensors(dir, nil) }

// LoadTensors is Load for the tensors whose names keep accepts (all of them
// when keep is nil): the others are neither read nor verified, and are
// missing from the result. Reading a trained head for prediction needs
// its parameters, not the optimizer's state, which is twice their size.
func LoadTensors(dir string, keep func(name string) bool) (*Checkpoint, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	listed := map[string]bool{ManifestFile: true}
	if m.RunSHA256 != "" {
		listed[RunFile] = true
		b, err := readVerified(dir, RunFile, m.RunSHA256)
		if err != nil {
			return nil, err
		}
		m.Run = b
	}
	c := &Checkpoint{Dir: dir, Manifest: m}
	for _, f := range m.Files {
		listed[f.Path] = true
		if keep != nil && !keep(f.Tensor) {
			continue
		}
		b, err := readVerified(dir, f.Path, f.SHA256)
		if err != nil {
			return nil, err
		}
		t, err := tensorio.ReadNPY(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: file %s: %w", dir, f.Path, err)
		}
		if !slices.Equal([]int(t.Shape()), f.Shape) {
			return nil, fmt.Errorf("checkpoint %s: file %s: shape %v, manifest says %v", dir, f.Path, t.Shape(), f.Shape)
		}
		c.Tensors = append(c.Tensors, Tensor{Name: f.Tensor, Value: t})
	}
	// The walk must start inside the folder: dir may be the "last" or
	// "best" link, which WalkDir would not follow.
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	err = filepath.WalkDir(real, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(real, path)
		if err != nil {
			return err
		}
		if !listed[filepath.ToSlash(rel)] {
			return fmt.Errorf("file %s is not listed in the manifest", filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	return c, nil
}

// readVerified reads the file at the slash-separated path rel in dir and
// checks its sha256.
func readVerified(dir, rel, want string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: file %s: %w", dir, rel, err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != want {
		return nil, fmt.Errorf("checkpoint %s: file %s: sha256 %s, manifest says %s: the file is corrupt or truncated", dir, rel, got, want)
	}
	return b, nil
}
