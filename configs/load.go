package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in a configuration file, at a line and column (both
// from 1; 0 when unknown, e.g. for a missing key).
type Error struct {
	File         string
	Line, Column int
	Path         string // dotted path of the setting, e.g. "train.adam.lr"
	Msg          string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads the YAML configuration file at path, with sets applied: see
// Parse.
func Load(path string, sets ...string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(b, path, sets...)
}

// Parse reads a YAML configuration, strictly: an unknown key, a value of the
// wrong type and a value out of range are errors, each an *Error with the
// file, line and column (all of them, joined with errors.Join). Settings
// absent from the YAML take their defaults (see Default); relative paths are
// resolved against the folder of file, which also names the configuration in
// errors.
//
// Each of sets, "key=value" (train --set), overrides one setting as if the
// file said so: key is the setting's dotted path (train.adam.lr) and value
// is YAML (0.0003, [160, 160], true, cosine). Keys absent from the file are
// added. The values of path settings (data.dir, run.dir, ...), in a set
// of their own or of their section, are relative to the working folder,
// not to the file's; null leaves one unset. Errors in a set's value name
// the set instead of a line.
func Parse(data []byte, file string, sets ...string) (*Config, error) {
	d := &decoder{file: file, pos: map[string]*yaml.Node{}}
	c := Default()
	c.File = file
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return nil, d.syntaxError(err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); err != io.EOF {
		if err != nil {
			return nil, d.syntaxError(err)
		}
		return nil, &Error{File: file, Line: more.Line, Column: more.Column, Msg: "a second YAML document; a configuration is one document"}
	}
	for _, set := range sets {
		if err := d.set(&doc, set, c.paths()); err != nil {
			return nil, err
		}
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		d.walk(doc.Content[0], reflect.ValueOf(&c).Elem(), "")
	}
	if c.Data.ValidationDir != "" && d.pos["data.validation_split"] == nil {
		c.Data.ValidationSplit = 0 // the default split does not apply
	}
	c.check(d.at)
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	c.finish(filepath.Dir(file))
	return &c, nil
}

// Validate checks the values of a Config built in code (Load already does);
// errors name the settings but no position.
func (c *Config) Validate() error {
	file := c.File
	if file == "" {
		file = "config"
	}
	d := &decoder{file: file, pos: map[string]*yaml.Node{}}
	c.check(d.at)
	// Load fills these in; a configuration built in code must.
	if c.Run.Dir == "" {
		d.at("run.dir", "required: the run's folder (Load sets runs/<name of the file> where a file omits it)")
	}
	if c.Cache.Dir == "" {
		d.at("cache.dir", "required: the feature cache's folder (Load sets feature-cache beside run.dir where a file omits it)")
	}
	if c.Data.Preprocess == "" {
		d.at("data.preprocess", "required: caffe, torch or none (Load sets the one backbone.variant was trained with where a file omits it)")
	}
	return errors.Join(d.errs...)
}

// decoder walks a YAML node tree into a Config, recording the node of every
// setting so that range errors found later can point at it.
type decoder struct {
	file string
	pos  map[string]*yaml.Node
	errs []error
	bad  map[string]bool // paths already reported, not range-checked again
	// from names the set ("--set key=value") each node it made came from.
	from map[*yaml.Node]string
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	e := &Error{File: d.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if d.bad == nil {
		d.bad = map[string]bool{}
	}
	d.bad[path] = true
	if set, ok := d.from[n]; ok {
		e.File = set
	} else if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// set applies one "key=value" override to the document doc; paths are the
// Config's path settings, whose relative values it makes absolute.
func (d *decoder) set(doc *yaml.Node, set string, paths []pathSetting) error {
	name := "--set " + set
	key, value, ok := strings.Cut(set, "=")
	keys := strings.Split(key, ".")
	if !ok || slices.Contains(keys, "") {
		return &Error{File: name, Msg: "want key=value, the key a setting's dotted path (e.g. train.adam.lr=0.0003)"}
	}
	var val yaml.Node
	if err := yaml.Unmarshal([]byte(value), &val); err != nil {
		return &Error{File: name, Path: key, Msg: "YAML syntax: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value} // "" stays a string
	if val.Kind == yaml.DocumentNode && len(val.Content) == 1 {
		n = val.Content[0]
	}
	// The path settings in the value (it may be a whole section) are
	// relative to the working folder.
	for _, p := range paths {
		rest, ok := strings.CutPrefix(p.key, key)
		if !ok || (rest != "" && rest[0] != '.') {
			continue
		}
		v := n
		for _, k := range strings.Split(rest, ".")[1:] {
			v = mappingValue(v, k)
		}
		if v == nil || v.Kind != yaml.ScalarNode || v.Tag == "!!null" || !p.isPath(v.Value) {
			continue
		}
		abs, err := filepath.Abs(v.Value)
		if err != nil {
			return &Error{File: name, Path: p.key, Msg: err.Error()}
		}
		v.Value = abs
	}
	if d.from == nil {
		d.from = map[*yaml.Node]string{}
	}
	var mark func(*yaml.Node)
	mark = func(n *yaml.Node) {
		d.from[n] = name
		for _, c := range n.Content {
			mark(c)
		}
	}
	mark(n)
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		*doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
		d.from[doc.Content[0]] = name
	}
	m := doc.Content[0]
	for i, k := range keys {
		if m.Kind == yaml.ScalarNode && m.Tag == "!!null" { // an empty section: "train:"
			*m = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: m.Line, Column: m.Column}
		}
		if m.Kind != yaml.MappingNode {
			return &Error{File: name, Path: strings.Join(keys[:i], "."), Msg: fmt.Sprintf("is %s, not a section with a key %q", kindName(m), k)}
		}
		j := -1 // the index of k's key node
		for at := 0; at+1 < len(m.Content); at += 2 {
			if m.Content[at].Value == k {
				j = at
				break
			}
		}
		last := i == len(keys)-1
		if j < 0 {
			kn := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}
			d.from[kn] = name
			child := n
			if !last {
				child = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
				d.from[child] = name
			}
			m.Content = append(m.Content, kn, child)
			m = child
			continue
		}
		if last {
			m.Content[j+1] = n
		} else {
			m = m.Content[j+1]
		}
	}
	return nil
}

// mappingValue returns the value of key in the mapping m, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// at reports a range error at the setting's value, or at the file if the
// setting was not in the YAML.
func (d *decoder) at(path, format string, args ...any) {
	for p := path; p != ""; p = p[:max(strings.LastIndexAny(p, ".["), 0)] {
		if d.bad[p] { // reported already, or inside a section that was
			return
		}
	}
	n := d.pos[path]
	if n == nil && strings.HasSuffix(path, "]") { // an element: point at its list
		n = d.pos[path[:strings.LastIndex(path, "[")]]
	}
	if n == nil {
		format += " (the default or an unset value)"
	}
	d.errorf(n, path, format, args...)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

func (d *decoder) syntaxError(err error) error {
	msg := err.Error()
	e := &Error{File: d.file, Msg: msg}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		fmt.Sscan(m[1], &e.Line)
		e.Msg = "YAML syntax: " + msg[len(m[0]):]
	}
	return e
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%s %q", strings.TrimPrefix(n.Tag, "!!"), n.Value)
	}
	return "something else"
}

// yamlKeys returns the YAML keys of a struct type's fields, in order.
func yamlKeys(t reflect.Type) []string {
	var ks []string
	for i := 0; i < t.NumField(); i++ {
		if k := yamlKey(t.Field(i)); k != "" {
			ks = append(ks, k)
		}
	}
	return ks
}

func yamlKey(f reflect.StructField) string {
	k, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if k == "-" || !f.IsExported() {
		return ""
	}
	return k
}

// walk decodes n into v. Null values keep v's default.
func (d *decoder) walk(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.pos[path] = n
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if v.Type() == reflect.TypeFor[ClassWeight]() {
		d.classWeight(n, v.Addr().Interface().(*ClassWeight), path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, path, "want a mapping with keys %s, got %s", strings.Join(yamlKeys(v.Type()), ", "), kindName(n))
			return
		}
		seen := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if prev := seen[k.Value]; prev != nil {
				d.errorf(k, p, "key %q given twice (first at line %d)", k.Value, prev.Line)
				continue
			}
			seen[k.Value] = k
			f := slices.IndexFunc(reflect.VisibleFields(v.Type()), func(f reflect.StructField) bool { return yamlKey(f) == k.Value })
			if f < 0 || k.Kind != yaml.ScalarNode {
				where := "at the top level"
				if path != "" {
					where = "in " + path
				}
				d.errorf(k, p, "unknown key %q %s (known keys: %s)", k.Value, where, strings.Join(yamlKeys(v.Type()), ", "))
				continue
			}
			d.walk(val, v.Field(f), p)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "want a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, e := range n.Content {
			d.walk(e, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	default:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "want a %s, got %s", typeName(v.Type()), kindName(n))
			return
		}
		d.scalar(n, v, path)
	}
}

// classWeight decodes train.class_weight: none, balanced or a list of
// numbers.
func (d *decoder) classWeight(n *yaml.Node, w *ClassWeight, path string) {
	switch {
	case n.Kind == yaml.SequenceNode:
		ws := []float64{}
		d.walk(n, reflect.ValueOf(&ws).Elem(), path)
		*w = ClassWeight{Weights: ws}
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str" && (n.Value == "none" || n.Value == "balanced"):
		*w = ClassWeight{Balanced: n.Value == "balanced"}
	default:
		d.errorf(n, path, "want none, balanced or a list of one weight per class, got %s", kindName(n))
	}
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		return "whole number"
	case reflect.Uint64:
		return "non-negative whole number"
	case reflect.Float64:
		return "number"
	case reflect.Bool:
		return "boolean (true or false)"
	case reflect.String:
		return "string"
	}
	return t.String()
}

// scalar decodes a scalar node by its YAML tag: whole numbers only for
// integers (yaml.v3 would truncate 1.5 to 1), booleans only for booleans,
// and any non-null scalar, as written, for strings.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	bad := func() { d.errorf(n, path, "want a %s, got %s", typeName(v.Type()), kindName(n)) }
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Tag != "!!bool" || n.Decode(&b) != nil {
			bad()
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		var i int64
		if n.Tag != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) {
			bad()
			return
		}
		v.SetInt(i)
	case reflect.Uint64:
		var u uint64
		if n.Tag != "!!int" || n.Decode(&u) != nil {
			bad()
			return
		}
		v.SetUint(u)
	case reflect.Float64:
		var f float64
		if (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&f) != nil {
			bad()
			return
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			d.errorf(n, path, "want a finite number, got %s", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		d.errorf(n, path, "unsupported setting type %v", v.Type())
	}
}
