package checkpoints

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Names of the links a Manager keeps next to the checkpoints.
const (
	LastLink = "last"
	BestLink = "best"
)

// ErrNoCheckpoint is returned by Manager.Latest and Manager.Best when there is
// no checkpoint to return.
var ErrNoCheckpoint = errors.New("no checkpoint")

// Options configures a Manager. The zero value of a field means its default.
type Options struct {
	// Keep is how many of the newest checkpoints to keep, besides the best
	// one; 0 means 3.
	Keep int
	// BestMetric is the manifest metric that ranks checkpoints, lower being
	// better; "" means "val_loss". Checkpoints without it are never the best.
	BestMetric string
	// Logger receives a line per save and deletion; nil means slog.Default().
	Logger *slog.Logger
}

// Manager keeps the checkpoints of one run in a folder (<run>/checkpoints):
// each one in a folder named after its global step (step-000123), the links
// "last" (the newest) and "best" (the lowest BestMetric) next to them, and
// only the Keep newest plus the best. One Manager, in one process, should own
// the folder.
type Manager struct {
	dir  string
	opts Options
	log  *slog.Logger
}

// Info describes a checkpoint found by a Manager.
type Info struct {
	Dir      string // path of the checkpoint folder
	Manifest Manifest
}

// NewManager returns a manager for dir, creating the folder if needed and
// removing temporary folders and links left by an interrupted save.
func NewManager(dir string, opts Options) (*Manager, error) {
	if opts.Keep == 0 {
		opts.Keep = 3
	}
	if opts.Keep < 1 {
		return nil, fmt.Errorf("checkpoint manager %s: keep %d, want at least 1", dir, opts.Keep)
	}
	if opts.BestMetric == "" {
		opts.BestMetric = "val_loss"
	}
	m := &Manager{dir: dir, opts: opts, log: opts.Logger}
	if m.log == nil {
		m.log = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint manager: %w", err)
	}
	if err := m.cleanTemp(); err != nil {
		return nil, err
	}
	return m, nil
}

// Dir returns the folder the manager keeps.
func (m *Manager) Dir() string { return m.dir }

// Name returns the folder name of the checkpoint of a global step.
func Name(step int64) string { return fmt.Sprintf("step-%06d", step) }

func parseName(name string) (int64, bool) {
	s, ok := strings.CutPrefix(name, "step-")
	if !ok || len(s) < 6 {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || Name(n) != name {
		return 0, false
	}
	return n, true
}

// cleanTemp removes what an interrupted Save left: temporary folders and
// links, whose names start with tmpPrefix.
func (m *Manager) cleanTemp() error {
	es, err := os.ReadDir(m.dir)
	if err != nil {
		return fmt.Errorf("checkpoint manager: %w", err)
	}
	for _, e := range es {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			m.log.Info("removing leftover of an interrupted checkpoint save", "path", filepath.Join(m.dir, e.Name()))
			if err := os.RemoveAll(filepath.Join(m.dir, e.Name())); err != nil {
				return fmt.Errorf("checkpoint manager: %w", err)
			}
		}
	}
	return nil
}

// List returns the complete checkpoints (folders step-N with a valid
// manifest for step N), oldest step first. Their tensors are not verified;
// Load does that.
func (m *Manager) List() ([]Info, error) {
	es, err := os.ReadDir(m.dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint manager: %w", err)
	}
	var infos []Info
	for _, e := range es {
		step, ok := parseName(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		dir := filepath.Join(m.dir, e.Name())
		man, err := ReadManifest(dir)
		if err != nil {
			m.log.Warn("skipping unreadable checkpoint", "path", dir, "err", err)
			continue
		}
		if man.Step != step {
			m.log.Warn("skipping checkpoint whose manifest names another step", "path", dir, "step", man.Step)
			continue
		}
		infos = append(infos, Info{Dir: dir, Manifest: man})
	}
	slices.SortFunc(infos, func(a, b Info) int { return cmpInt(a.Manifest.Step, b.Manifest.Step) })
	return infos, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// best returns the index in infos (sorted by step) of the checkpoint with the
// lowest BestMetric, the earliest on ties, or -1.
func (m *Manager) best(infos []Info) int {
	b := -1
	for i, in := range infos {
		v, ok := in.Manifest.Metrics[m.opts.BestMetric]
		if !ok || math.IsNaN(v) {
			continue
		}
		if b < 0 || v < infos[b].Manifest.Metrics[m.opts.BestMetric] {
			b = i
		}
	}
	return b
}

// Save writes a checkpoint named after man.Step, points "last" (and "best",
// if it is the best) at it, and deletes the checkpoints beyond the Keep
// newest, never the best. A checkpoint of the same step is replaced (as when
// an epoch ends on a step that was just saved); a step below the newest one
// is refused. If anything fails before the checkpoint is in place, the
// previous checkpoints and links are left as they were.
func (m *Manager) Save(man Manifest, tensors []Tensor) (dir string, err error) {
	if man.Step < 0 {
		return "", fmt.Errorf("checkpoint manager %s: negative step %d", m.dir, man.Step)
	}
	infos, err := m.List()
	if err != nil {
		return "", err
	}
	if n := len(infos); n > 0 && infos[n-1].Manifest.Step > man.Step {
		return "", fmt.Errorf("checkpoint manager %s: step %d is below the newest checkpoint's, %d", m.dir, man.Step, infos[n-1].Manifest.Step)
	}
	dir = filepath.Join(m.dir, Name(man.Step))
	tmp, man, err := writeTemp(dir, man, tensors)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(dir); err == nil {
		err = replaceDir(tmp, dir)
		if err != nil {
			os.RemoveAll(tmp)
			return "", fmt.Errorf("save checkpoint %s: replace: %w", dir, err)
		}
	} else if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	if err := syncDir(m.dir); err != nil {
		return "", fmt.Errorf("save checkpoint %s: %w", dir, err)
	}
	m.log.Info("saved checkpoint", "path", dir, "epoch", displayEpoch(man), "step", man.Step)

	if infos, err = m.List(); err != nil {
		return dir, err
	}
	if err := m.link(LastLink, filepath.Base(dir)); err != nil {
		return dir, err
	}
	b := m.best(infos)
	if b >= 0 {
		if err := m.link(BestLink, filepath.Base(infos[b].Dir)); err != nil {
			return dir, err
		}
	}
	keepFrom := len(infos) - m.opts.Keep
	for i, in := range infos[:max(keepFrom, 0)] {
		if i == b {
			continue
		}
		if err := m.remove(in.Dir); err != nil {
			return dir, err
		}
	}
	return dir, nil
}

// displayEpoch is the epoch a checkpoint was saved in, counted from 1 as
// training shows it: the last one done at an epoch's end, else the one in
// progress.
func displayEpoch(man Manifest) int {
	if man.StepInEpoch > 0 {
		return man.Epoch + 1
	}
	return man.Epoch
}

// link points m.dir/name at target atomically: a new link under a temporary
// name is renamed over the old one.
func (m *Manager) link(name, target string) error {
	path := filepath.Join(m.dir, name)
	if cur, err := os.Readlink(path); err == nil && cur == target {
		return nil
	}
	tmp := filepath.Join(m.dir, tmpPrefix+name)
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("checkpoint manager: link %s: %w", name, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("checkpoint manager: link %s: %w", name, err)
	}
	if err := syncDir(m.dir); err != nil {
		return fmt.Errorf("checkpoint manager: link %s: %w", name, err)
	}
	return nil
}

// remove deletes a checkpoint folder: renamed to a temporary name first, so
// that a half-deleted checkpoint never looks like one.
func (m *Manager) remove(dir string) error {
	trash := filepath.Join(m.dir, tmpPrefix+"trash-"+filepath.Base(dir))
	if err := os.Rename(dir, trash); err != nil {
		return fmt.Errorf("checkpoint manager: delete %s: %w", dir, err)
	}
	if err := syncDir(m.dir); err != nil {
		return fmt.Errorf("checkpoint manager: delete %s: %w", dir, err)
	}
	m.log.Info("deleted old checkpoint", "path", dir)
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("checkpoint manager: delete %s: %w", dir, err)
	}
	return nil
}

// Latest returns the newest complete checkpoint: the one "last" names if it
// is complete, otherwise the complete one of the highest step (after a crash
// between a save and the link update). It removes leftovers of interrupted
// saves first. With no checkpoint it returns an error wrapping
// ErrNoCheckpoint; with none complete but step folders whose manifest does
// not read (damaged since: Save leaves none), the newest one's error.
func (m *Manager) Latest() (Info, error) {
	if err := m.cleanTemp(); err != nil {
		return Info{}, err
	}
	if in, ok := m.follow(LastLink); ok {
		return in, nil
	}
	infos, err := m.List()
	if err != nil {
		return Info{}, err
	}
	if len(infos) == 0 {
		if err := m.newestUnreadable(); err != nil {
			return Info{}, fmt.Errorf("checkpoint manager %s: no checkpoint whose manifest reads (damaged since written; move them away to start again from nothing): the newest: %w", m.dir, err)
		}
		return Info{}, fmt.Errorf("checkpoint manager %s: %w", m.dir, ErrNoCheckpoint)
	}
	return infos[len(infos)-1], nil
}

// newestUnreadable returns the error of the step folder of the highest step
// whose manifest does not read (or names another step), nil if none.
func (m *Manager) newestUnreadable() error {
	es, err := os.ReadDir(m.dir)
	if err != nil {
		return fmt.Errorf("checkpoint manager: %w", err)
	}
	var newest error
	newestStep := int64(-1)
	for _, e := range es {
		step, ok := parseName(e.Name())
		if !ok || !e.IsDir() || step < newestStep {
			continue
		}
		dir := filepath.Join(m.dir, e.Name())
		if man, err := ReadManifest(dir); err != nil {
			newest, newestStep = err, step
		} else if man.Step != step {
			newest, newestStep = fmt.Errorf("checkpoint %s: its manifest names step %d", dir, man.Step), step
		}
	}
	return newest
}

// Damaged is a complete checkpoint (its manifest reads) whose files do not
// load: corrupt or truncated since they were written.
type Damaged struct {
	Info
	Err error
}

// LatestIntact returns the newest checkpoint that Load reads and verifies
// whole, loaded, and the newer ones that did not load, newest first: a
// run resumes from the last checkpoint it can trust. With no checkpoint
// it returns an error wrapping ErrNoCheckpoint; with none intact, the
// newest one's load error.
func (m *Manager) LatestIntact() (*Checkpoint, []Damaged, error) {
	if err := m.cleanTemp(); err != nil {
		return nil, nil, err
	}
	infos, err := m.List()
	if err != nil {
		return nil, nil, err
	}
	if len(infos) == 0 {
		return nil, nil, fmt.Errorf("checkpoint manager %s: %w", m.dir, ErrNoCheckpoint)
	}
	var damaged []Damaged
	for _, in := range slices.Backward(infos) {
		ck, err := Load(in.Dir)
		if err == nil {
			return ck, damaged, nil
		}
		damaged = append(damaged, Damaged{Info: in, Err: err})
	}
	return nil, damaged, damaged[0].Err
}

// SetAside renames a damaged checkpoint folder to corrupt-step-NNNNNN,
// where the manager no longer sees it (so that the steps it held can be
// saved again) and a person can still look at it, and points the links
// "last" and "best" at what is left (removing them where nothing is). It
// returns the new path.
func (m *Manager) SetAside(in Info) (string, error) {
	to := filepath.Join(filepath.Dir(in.Dir), "corrupt-"+filepath.Base(in.Dir))
	for i := 2; ; i++ {
		if _, err := os.Lstat(to); errors.Is(err, fs.ErrNotExist) {
			break
		}
		to = filepath.Join(filepath.Dir(in.Dir), fmt.Sprintf("corrupt-%d-%s", i, filepath.Base(in.Dir)))
	}
	if err := os.Rename(in.Dir, to); err != nil {
		return "", fmt.Errorf("checkpoint manager %s: set aside: %w", m.dir, err)
	}
	m.log.Warn("set a damaged checkpoint aside", "from", in.Dir, "to", to)
	// The links may have named it: they name what is left.
	infos, err := m.List()
	if err != nil {
		return to, err
	}
	last, best := "", ""
	if len(infos) > 0 {
		last = filepath.Base(infos[len(infos)-1].Dir)
	}
	if b := m.best(infos); b >= 0 {
		best = filepath.Base(infos[b].Dir)
	}
	for _, l := range []struct{ name, target string }{{LastLink, last}, {BestLink, best}} {
		var err error
		if l.target != "" {
			err = m.link(l.name, l.target)
		} else if err = os.Remove(filepath.Join(m.dir, l.name)); errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		if err != nil {
			return to, fmt.Errorf("checkpoint manager %s: set aside: %w", m.dir, err)
		}
	}
	if err := syncDir(m.dir); err != nil {
		return "", fmt.Errorf("checkpoint manager %s: set aside: %w", m.dir, err)
	}
	return to, nil
}

// Best returns the checkpoint "best" names, or the complete checkpoint with
// the lowest BestMetric if the link is missing. With none it returns an error
// wrapping ErrNoCheckpoint.
func (m *Manager) Best() (Info, error) {
	if in, ok := m.follow(BestLink); ok {
		return in, nil
	}
	infos, err := m.List()
	if err != nil {
		return Info{}, err
	}
	b := m.best(infos)
	if b < 0 {
		return Info{}, fmt.Errorf("checkpoint manager %s: best by %s: %w", m.dir, m.opts.BestMetric, ErrNoCheckpoint)
	}
	return infos[b], nil
}

// follow returns the complete checkpoint the link names, if any.
func (m *Manager) follow(link string) (Info, bool) {
	target, err := os.Readlink(filepath.Join(m.dir, link))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			m.log.Warn("unreadable checkpoint link", "link", link, "err", err)
		}
		return Info{}, false
	}
	step, ok := parseName(target)
	if !ok {
		m.log.Warn("checkpoint link names no checkpoint", "link", link, "target", target)
		return Info{}, false
	}
	dir := filepath.Join(m.dir, target)
	man, err := ReadManifest(dir)
	if err != nil || man.Step != step {
		m.log.Warn("checkpoint link names an incomplete checkpoint", "link", link, "target", target, "err", err)
		return Info{}, false
	}
	return Info{Dir: dir, Manifest: man}, true
}

// Find returns the checkpoint folder that path names, reading only: path
// itself if it holds a manifest; else the checkpoint that the "best" link,
// or failing that the "last" link, names in path or in its checkpoints/
// sub-folder, so that a manager's folder or a whole run folder will do.
func Find(path string) (string, error) {
	if _, err := os.Stat(filepath.Join(path, ManifestFile)); err == nil {
		return path, nil
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("checkpoint %s: %w", path, err)
	}
	for _, dir := range []string{path, filepath.Join(path, "checkpoints")} {
		for _, link := range []string{BestLink, LastLink} {
			if _, err := os.Stat(filepath.Join(dir, link, ManifestFile)); err == nil {
				return filepath.Join(dir, link), nil
			}
		}
	}
	return "", fmt.Errorf("checkpoint %s: no %s in it, and no %s or %s checkpoint in it or in its checkpoints/ folder", path, ManifestFile, BestLink, LastLink)
}
