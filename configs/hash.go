package configs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// leaf is one setting, flattened for hashing and comparing.
type leaf struct {
	path   string
	value  string // for Diff: paths made absolute
	hashed string // for Hash: paths reduced to their last element
	resume bool   // may not change on resume (Diff's Change.Resume)
	// unhashed leaves a setting added after version 1 out of Hash while it
	// has its zero value, so that runs begun before it existed still resume
	// (tag hash:"omitzero"; on a section, all its settings while its IsZero
	// method says it is off).
	unhashed bool
	// diffOnly leaves out of Hash a setting that may not change on resume
	// in a section whose settings may (tag resume:"yes"): Diff alone
	// refuses its change, so that runs begun before it was refused keep
	// their hash.
	diffOnly bool
}

// leaves lists the settings of c in declaration order.
func leaves(c *Config) []leaf {
	var ls []leaf
	isName := map[string]func(string) bool{}
	for _, s := range c.paths() {
		if s.name != nil {
			isName[s.key] = s.name
		}
	}
	var walk func(v reflect.Value, path string, resume bool)
	walk = func(v reflect.Value, path string, resume bool) {
		if st, ok := v.Interface().(fmt.Stringer); ok { // a setting with a YAML form of its own (ClassWeight)
			ls = append(ls, leaf{path: path, value: st.String(), hashed: st.String(), resume: resume})
			return
		}
		if v.Kind() == reflect.Struct {
			t := v.Type()
			for i := 0; i < t.NumField(); i++ {
				f := t.Field(i)
				k := yamlKey(f)
				if k == "" {
					continue
				}
				first := len(ls)
				walk(v.Field(i), join(path, k), resume && f.Tag.Get("resume") != "no" || f.Tag.Get("resume") == "yes")
				if f.Tag.Get("hash") == "omitzero" && isZero(v.Field(i)) {
					for j := first; j < len(ls); j++ { // every leaf of a section
						ls[j].unhashed = true
					}
				}
				if f.Tag.Get("resume") == "yes" && !resume {
					for j := first; j < len(ls); j++ {
						ls[j].diffOnly = true
					}
				}
				if f.Tag.Get("path") == "yes" {
					l := &ls[len(ls)-1]
					p := v.Field(i).String()
					l.hashed = strconv.Quote(filepath.Base(p))
					if p == "" {
						l.hashed = `""`
					} else if name := isName[l.path]; name != nil && name(p) {
						l.value = strconv.Quote(p)
					} else if abs, err := filepath.Abs(p); err == nil {
						l.value = strconv.Quote(abs)
					}
				}
			}
			return
		}
		s := format(v)
		ls = append(ls, leaf{path: path, value: s, hashed: s, resume: resume})
	}
	walk(reflect.ValueOf(c).Elem(), "", true)
	return ls
}

// isZero is v's IsZero method where it has one (a section that is off
// while some of its settings keep non-zero defaults), else reflect's.
func isZero(v reflect.Value) bool {
	if z, ok := v.Interface().(interface{ IsZero() bool }); ok {
		return z.IsZero()
	}
	return v.IsZero()
}

func format(v reflect.Value) string {
	switch v.Kind() {
	case reflect.String:
		return strconv.Quote(v.String())
	case reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.String {
			return fmt.Sprintf("%q", v.Interface())
		}
	}
	return fmt.Sprint(v.Interface())
}

// Hash returns a stable hash (hex sha256) of the settings a resumed run must
// share with the run that wrote its checkpoints: data (but the number of
// workers), backbone (but device and batch) and head. Training, run and
// cache settings may change between runs (more epochs, say; Diff refuses
// the few that may not, such as label smoothing), and so may the
// location of the data and the weights: paths enter the hash by their last
// element only, so a project can move.
func (c *Config) Hash() string {
	h := sha256.New()
	fmt.Fprintln(h, "gotransfer config v1")
	for _, l := range leaves(c) {
		if l.resume && !l.unhashed && !l.diffOnly {
			fmt.Fprintf(h, "%s=%s\n", l.path, l.hashed)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Change is one setting that differs between two configurations.
type Change struct {
	Path     string // e.g. "head.layers"
	From, To string // values as Go prints them, strings quoted, paths absolute
	Resume   bool   // whether the setting is part of Hash (of either configuration)
}

// CheckedByContent reports whether a resume may accept the change because
// the run checks what the setting names by content, not by value: the
// backbone weights moved, renamed, or named (imagenet) rather than given
// as a file, or the reverse, whose sha256 the pipeline compares with the
// checkpoint's; a data folder moved, or the classes listed or the pixel
// limit changed, whose images' sha256s, labels and split (which files
// train, with which labels) the pipeline compares with the checkpoint's. Random weights for a
// file, a validation folder for a split, or the reverse, are not.
func (c Change) CheckedByContent() bool {
	switch c.Path {
	case "backbone.weights", "data.dir", "data.validation_dir":
		return c.From != `""` && c.To != `""`
	case "data.classes", "data.max_pixels":
		// Which files train, with which labels: the images' digest.
		return true
	}
	return false
}

func (c Change) String() string {
	return fmt.Sprintf("%s changed from %s to %s", c.Path, c.From, c.To)
}

// Diff lists the settings that differ from old to new, in the order of the
// Config struct, e.g. "head.layers changed from [64 32] to [64 16]".
func Diff(old, new *Config) []Change {
	a, b := leaves(old), leaves(new)
	var cs []Change
	for i := range a {
		if a[i].value != b[i].value {
			// A setting of a section that is off in both (hash:"omitzero")
			// changes nothing a resumed run depends on.
			resume := a[i].resume && !(a[i].unhashed && b[i].unhashed)
			cs = append(cs, Change{Path: a[i].path, From: a[i].value, To: b[i].value, Resume: resume})
		}
	}
	return cs
}

// HashDiff lists the settings that make Hash differ from old to new: why
// a checkpoint's configuration hash is not this one's. Paths count by
// their last element, as in Hash.
func HashDiff(old, new *Config) []Change {
	a, b := leaves(old), leaves(new)
	hashed := func(l leaf) string {
		if !l.resume || l.unhashed || l.diffOnly {
			return "" // not in the hash
		}
		return l.hashed
	}
	var cs, same []Change
	for i := range a {
		if hashed(a[i]) != hashed(b[i]) {
			c := Change{Path: a[i].path, From: a[i].value, To: b[i].value, Resume: true}
			if c.From == c.To { // a setting that entered the hash (its section turned on)
				same = append(same, c)
			} else {
				cs = append(cs, c)
			}
		}
	}
	if len(cs) == 0 {
		return same
	}
	return cs
}

// Marshal writes c as YAML with every setting spelled out and paths relative
// to dir, so that a copy saved in dir (a run folder, say) loads back to the
// same configuration.
func (c *Config) Marshal(dir string) ([]byte, error) {
	cp := *c
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("config: marshal: %w", err)
	}
	for _, s := range cp.paths() {
		p := s.value
		if *p == "" || s.name != nil && s.name(*p) {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, fmt.Errorf("config: marshal: %w", err)
		}
		if rel, err := filepath.Rel(absDir, abs); err == nil {
			*p = filepath.ToSlash(rel)
			if s.name != nil && s.name(*p) {
				*p = "./" + *p // a file named like a name
			}
		} else {
			*p = abs
		}
	}
	b, err := yaml.Marshal(&cp)
	if err != nil {
		return nil, fmt.Errorf("config: marshal: %w", err)
	}
	return b, nil
}
