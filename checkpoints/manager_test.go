package checkpoints

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func quietManager(t *testing.T, dir string, keep int) *Manager {
	t.Helper()
	m, err := NewManager(dir, Options{Keep: keep, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// names lists the entries of dir.
func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ns []string
	for _, e := range es {
		ns = append(ns, e.Name())
	}
	return ns
}

func readLink(t *testing.T, path string) string {
	t.Helper()
	s, err := os.Readlink(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestManagerKeepsLastKAndBest(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "checkpoints")
	m := quietManager(t, dir, 2)
	if _, err := m.Latest(); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("Latest of an empty folder: %v", err)
	}
	if _, err := m.Best(); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("Best of an empty folder: %v", err)
	}
	steps := []struct {
		step    int64
		valLoss float64 // < 0: no validation metric
	}{{10, 0.9}, {20, 0.3}, {25, -1}, {30, 0.5}, {40, 0.4}, {50, 0.35}}
	for _, s := range steps {
		man := sampleManifest(s.step, s.valLoss)
		if s.valLoss < 0 {
			man.Metrics = nil
		}
		got, err := m.Save(man, sample(uint64(s.step)))
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(dir, Name(s.step)); got != want {
			t.Errorf("Save returned %s, want %s", got, want)
		}
		if l := readLink(t, filepath.Join(dir, LastLink)); l != Name(s.step) {
			t.Errorf("after step %d: last -> %s", s.step, l)
		}
	}
	want := []string{BestLink, LastLink, "step-000020", "step-000040", "step-000050"}
	if got := names(t, dir); !slices.Equal(got, want) {
		t.Errorf("folder holds %v, want %v", got, want)
	}
	if b := readLink(t, filepath.Join(dir, BestLink)); b != "step-000020" {
		t.Errorf("best -> %s, want step-000020", b)
	}
	latest, err := m.Latest()
	if err != nil || latest.Manifest.Step != 50 || latest.Dir != filepath.Join(dir, "step-000050") {
		t.Errorf("Latest = %+v, %v; want step 50", latest, err)
	}
	best, err := m.Best()
	if err != nil || best.Manifest.Step != 20 {
		t.Errorf("Best = %+v, %v; want step 20", best, err)
	}
	if _, err := Load(latest.Dir); err != nil {
		t.Errorf("the latest checkpoint does not load: %v", err)
	}
	// Through the links, as users name them (`predict --checkpoint run/checkpoints/best`).
	for _, link := range []string{LastLink, BestLink} {
		if ck, err := Load(filepath.Join(dir, link)); err != nil || len(ck.Tensors) == 0 {
			t.Errorf("Load(%s): %v", link, err)
		}
	}
	// A better one takes over "best"; the old best goes with the others.
	if _, err := m.Save(sampleManifest(60, 0.1), sample(60)); err != nil {
		t.Fatal(err)
	}
	want = []string{BestLink, LastLink, "step-000050", "step-000060"}
	if got := names(t, dir); !slices.Equal(got, want) {
		t.Errorf("folder holds %v, want %v", got, want)
	}
	if b := readLink(t, filepath.Join(dir, BestLink)); b != "step-000060" {
		t.Errorf("best -> %s, want step-000060", b)
	}
}

func TestManagerReplacesSameStepAndRefusesOlder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "checkpoints")
	m := quietManager(t, dir, 3)
	if _, err := m.Save(sampleManifest(30, 0.5), sample(1)); err != nil {
		t.Fatal(err)
	}
	// The epoch ends on the step just saved: the same step again, with the
	// epoch counters moved on.
	man := sampleManifest(30, 0.4)
	man.Epoch, man.StepInEpoch = 4, 0
	if _, err := m.Save(man, sample(2)); err != nil {
		t.Fatal(err)
	}
	c, err := Load(filepath.Join(dir, Name(30)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Manifest.Epoch != 4 || !sameBits(c.Tensors[0].Value.Float32s(), sample(2)[0].Value.Float32s()) {
		t.Errorf("step 30 not replaced: epoch %d", c.Manifest.Epoch)
	}
	if got := names(t, dir); !slices.Equal(got, []string{BestLink, LastLink, "step-000030"}) {
		t.Errorf("folder holds %v", got)
	}
	if _, err := m.Save(sampleManifest(20, 0.1), sample(3)); err == nil || !strings.Contains(err.Error(), "step 20 is below the newest checkpoint's, 30") {
		t.Errorf("saving an older step: %v", err)
	}
}

func TestManagerIgnoresAndCleansPartialSaves(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "checkpoints")
	m := quietManager(t, dir, 3)
	if _, err := m.Save(sampleManifest(10, 0.5), sample(1)); err != nil {
		t.Fatal(err)
	}
	// What crashes leave: a temporary folder with some files, a temporary
	// link, and a step folder without a manifest (made by hand, since Save
	// never makes one).
	tmp := filepath.Join(dir, tmpPrefix+"step-000020-123")
	if err := os.MkdirAll(filepath.Join(tmp, "dense_0"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "dense_0", "kernel.npy"), []byte("\x93NUMPY"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("step-000020", filepath.Join(dir, tmpPrefix+LastLink)); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "step-000030", "dense_0"), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := m.Latest()
	if err != nil || in.Manifest.Step != 10 {
		t.Fatalf("Latest = %+v, %v; want step 10", in, err)
	}
	if got := names(t, dir); !slices.Equal(got, []string{BestLink, LastLink, "step-000010", "step-000030"}) {
		t.Errorf("after Latest the folder holds %v, want the temporary entries gone", got)
	}
	// "last" pointing at nothing complete: Latest falls back to the newest
	// complete checkpoint.
	if err := os.Remove(filepath.Join(dir, LastLink)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("step-000030", filepath.Join(dir, LastLink)); err != nil {
		t.Fatal(err)
	}
	if in, err := m.Latest(); err != nil || in.Manifest.Step != 10 {
		t.Errorf("Latest with last -> an incomplete folder = %+v, %v; want step 10", in, err)
	}
	// A new manager cleans up too.
	if err := os.Mkdir(filepath.Join(dir, tmpPrefix+"step-000040-9"), 0o755); err != nil {
		t.Fatal(err)
	}
	quietManager(t, dir, 3)
	for _, n := range names(t, dir) {
		if strings.HasPrefix(n, tmpPrefix) {
			t.Errorf("NewManager left %s", n)
		}
	}
}

// failingFile fails with ENOSPC once more than budget bytes were written.
type failingFile struct {
	*os.File
	budget *int
}

func (f failingFile) Write(p []byte) (int, error) {
	if len(p) > *f.budget {
		n, _ := f.File.Write(p[:*f.budget])
		*f.budget = 0
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	*f.budget -= len(p)
	return f.File.Write(p)
}

func TestFailedSaveLeavesPreviousCheckpoint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "checkpoints")
	m := quietManager(t, dir, 3)
	if _, err := m.Save(sampleManifest(10, 0.5), sample(1)); err != nil {
		t.Fatal(err)
	}
	before := readTree(t, filepath.Join(dir, Name(10)))

	t.Run("disk full", func(t *testing.T) {
		for _, budget := range []int{0, 100, 500, 1000} {
			b := budget
			orig := createFile
			createFile = func(path string) (fileWriter, error) {
				f, err := orig(path)
				if err != nil {
					return nil, err
				}
				return failingFile{f.(*os.File), &b}, nil
			}
			_, err := m.Save(sampleManifest(20, 0.1), sample(2))
			createFile = orig
			if err == nil || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "step-000020") {
				t.Errorf("budget %d: error %v, want ENOSPC naming step-000020", budget, err)
			}
		}
	})
	t.Run("folder is a file", func(t *testing.T) {
		parent := filepath.Join(t.TempDir(), "run")
		if err := os.WriteFile(parent, []byte("not a folder"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := NewManager(filepath.Join(parent, "checkpoints"), Options{}); err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("NewManager under a file: %v", err)
		}
		if err := Save(filepath.Join(parent, "ck"), Manifest{}, sample(1)); err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("Save under a file: %v", err)
		}
	})
	t.Run("same step, disk full", func(t *testing.T) {
		orig := createFile
		createFile = func(string) (fileWriter, error) { return nil, syscall.ENOSPC }
		_, err := m.Save(sampleManifest(10, 0.1), sample(3))
		createFile = orig
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("error %v, want ENOSPC", err)
		}
	})

	if got := names(t, dir); !slices.Equal(got, []string{BestLink, LastLink, "step-000010"}) {
		t.Errorf("after failed saves the folder holds %v", got)
	}
	if l := readLink(t, filepath.Join(dir, LastLink)); l != Name(10) {
		t.Errorf("last -> %s", l)
	}
	after := readTree(t, filepath.Join(dir, Name(10)))
	if len(after) != len(before) {
		t.Errorf("previous checkpoint has %d files, had %d", len(after), len(before))
	}
	for n, b := range before {
		if string(after[n]) != string(b) {
			t.Errorf("previous checkpoint's %s changed", n)
		}
	}
	if _, err := Load(filepath.Join(dir, Name(10))); err != nil {
		t.Errorf("previous checkpoint no longer loads: %v", err)
	}
}

func TestReplaceDirRenames(t *testing.T) {
	root := t.TempDir()
	dir, tmp := filepath.Join(root, "d"), filepath.Join(root, "t")
	for _, d := range []string{dir, tmp} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "f"), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := replaceDirRenames(tmp, dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "f")); string(b) != tmp {
		t.Errorf("d/f holds %q, want %q", b, tmp)
	}
	if got := names(t, root); !slices.Equal(got, []string{"d"}) {
		t.Errorf("root holds %v", got)
	}
}

func TestManagerOptions(t *testing.T) {
	if _, err := NewManager(t.TempDir(), Options{Keep: -1}); err == nil || !strings.Contains(err.Error(), "keep -1") {
		t.Errorf("keep -1: %v", err)
	}
	for _, tc := range []struct {
		name string
		step int64
		ok   bool
	}{{"step-000123", 123, true}, {"step-1234567", 1234567, true}, {"step-123", 0, false}, {"step-0000123", 0, false}, {"step--00001", 0, false}, {"best", 0, false}} {
		if step, ok := parseName(tc.name); ok != tc.ok || step != tc.step {
			t.Errorf("parseName(%q) = %d, %v", tc.name, step, ok)
		}
	}
}

// TestFind resolves what users pass as a checkpoint: the folder itself, the
// manager's folder or the run folder, best before last.
func TestFind(t *testing.T) {
	run := t.TempDir()
	ckDir := filepath.Join(run, "checkpoints")
	m := quietManager(t, ckDir, 3)
	if _, err := m.Save(sampleManifest(10, 0.1), sample(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Save(sampleManifest(20, 0.5), sample(2)); err != nil {
		t.Fatal(err)
	}
	noBest := filepath.Join(t.TempDir(), "checkpoints")
	m2 := quietManager(t, noBest, 3)
	if _, err := m2.Save(Manifest{Step: 5}, sample(3)); err != nil { // no val_loss: no best
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want, err string }{
		{path: filepath.Join(ckDir, Name(20)), want: filepath.Join(ckDir, Name(20))},
		{path: filepath.Join(ckDir, LastLink), want: filepath.Join(ckDir, LastLink)},
		{path: ckDir, want: filepath.Join(ckDir, BestLink)},
		{path: run, want: filepath.Join(ckDir, BestLink)},
		{path: noBest, want: filepath.Join(noBest, LastLink)},
		{path: t.TempDir(), err: "no manifest.json in it, and no best or last checkpoint"},
		{path: filepath.Join(run, "missing"), err: "no such file"},
	} {
		got, err := Find(tc.path)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Find(%s) = %q, %v; want an error containing %q", tc.path, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Find(%s) = %q, %v; want %q", tc.path, got, err, tc.want)
			continue
		}
		if man, err := ReadManifest(got); err != nil || (tc.path == run && man.Step != 10) {
			t.Errorf("Find(%s): %s: step %d, %v", tc.path, got, man.Step, err)
		}
	}
}

// TestLatestIntact: the newest checkpoint that loads, past newer damaged
// ones (listed newest first); set aside, a damaged one no longer counts and
// its step can be saved again.
func TestLatestIntact(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "checkpoints")
	m := quietManager(t, dir, 5)
	if _, _, err := m.LatestIntact(); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("LatestIntact of an empty folder: %v", err)
	}
	for i, step := range []int64{10, 20, 30} {
		i := uint64(i)
		if _, err := m.Save(sampleManifest(step, 0.5), sample(i)); err != nil {
			t.Fatal(err)
		}
	}
	damage := func(step int64) {
		c, err := Load(filepath.Join(dir, Name(step)))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, Name(step), c.Manifest.Files[0].Path)
		if err := os.Truncate(p, 10); err != nil {
			t.Fatal(err)
		}
	}
	damage(30)
	damage(20)
	ck, damaged, err := m.LatestIntact()
	if err != nil || ck.Manifest.Step != 10 {
		t.Fatalf("LatestIntact: %v, %v", ck, err)
	}
	if len(damaged) != 2 || damaged[0].Manifest.Step != 30 || damaged[1].Manifest.Step != 20 || damaged[0].Err == nil {
		t.Fatalf("damaged: %+v", damaged)
	}
	for _, d := range damaged {
		if _, err := m.SetAside(d.Info); err != nil {
			t.Fatal(err)
		}
	}
	// The links name what is left, though nothing is saved after.
	if last, best := readLink(t, filepath.Join(dir, LastLink)), readLink(t, filepath.Join(dir, BestLink)); last != Name(10) || best != Name(10) {
		t.Errorf("after setting aside: last %s, best %s, want both %s", last, best, Name(10))
	}
	if _, err := m.Save(sampleManifest(20, 0.4), sample(5)); err != nil {
		t.Errorf("saving step 20 again: %v", err)
	}
	if got := names(t, dir); !slices.Equal(got, []string{BestLink, "corrupt-step-000020", "corrupt-step-000030", LastLink, "step-000010", "step-000020"}) {
		t.Errorf("folder holds %v", got)
	}
	damage(10)
	damage(20)
	if _, damaged, err := m.LatestIntact(); err == nil || len(damaged) != 2 {
		t.Errorf("every checkpoint damaged: %v (%d damaged)", err, len(damaged))
	}
}

// TestLatestWithEveryManifestDamaged: step folders whose manifest no
// longer reads (truncated since it was written; Save never leaves one) are
// not "no checkpoint": Latest says they are damaged, naming the newest,
// so that a resume does not start again from nothing over them.
func TestLatestWithEveryManifestDamaged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"truncated", func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, ManifestFile), 10); err != nil {
				t.Fatal(err)
			}
		}},
		{"missing", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, ManifestFile)); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "checkpoints")
			m := quietManager(t, dir, 5)
			for i, step := range []int64{10, 20} {
				if _, err := m.Save(sampleManifest(step, 0.5), sample(uint64(i))); err != nil {
					t.Fatal(err)
				}
				tc.damage(t, filepath.Join(dir, Name(step)))
			}
			_, err := m.Latest()
			if err == nil || errors.Is(err, ErrNoCheckpoint) || !strings.Contains(err.Error(), Name(20)) {
				t.Errorf("Latest with every manifest damaged: %v, want an error naming %s, not ErrNoCheckpoint", err, Name(20))
			}
		})
	}
}

func TestDisplayEpoch(t *testing.T) {
	for _, tc := range []struct{ epoch, stepInEpoch, want int }{
		{0, 5, 1}, // during the first epoch
		{1, 0, 1}, // at its end
		{1, 3, 2},
		{3, 0, 3},
	} {
		if got := displayEpoch(Manifest{Epoch: tc.epoch, StepInEpoch: tc.stepInEpoch}); got != tc.want {
			t.Errorf("displayEpoch(epoch %d, step %d in it) = %d, want %d", tc.epoch, tc.stepInEpoch, got, tc.want)
		}
	}
}
