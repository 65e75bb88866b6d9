package resnet

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strings"

	"gorgonia.org/tensor"

	"gotransfer/internal/hdf5"
)

// Keras' legacy HDF5 weights layout, as model.save_weights("x.h5") and
// keras.applications' downloads have it: the root attribute layer_names
// lists the layers in order, each layer's group has an attribute
// weight_names, and each weight is a dataset at that name inside the
// group. This file is the reference for the mapping to the project's
// names; scripts/export_keras_resnet50.py does the same in Python.

// isHDF5File tells an HDF5 file by its signature at offset 0.
func isHDF5File(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	return hdf5.IsHDF5(f, fi.Size()), nil
}

// kerasRole is one weight of a layer kind, in Keras' order, and the names
// Keras versions gave it (Keras 1 called the moving variance running_std).
type kerasRole struct {
	role    string
	aliases []string
}

var (
	convRoles = []kerasRole{{"kernel", []string{"kernel", "W"}}, {"bias", []string{"bias", "b"}}}
	bnRoles   = []kerasRole{
		{"gamma", []string{"gamma"}},
		{"beta", []string{"beta"}},
		{"moving_mean", []string{"moving_mean", "running_mean"}},
		{"moving_variance", []string{"moving_variance", "running_std", "running_var"}},
	}
	kerasRoles = map[string][]kerasRole{"conv": convRoles, "bn": bnRoles, "dense": convRoles}
)

var caffeName = regexp.MustCompile(`^(res|bn)([0-9])([a-z])_branch(1|2[abc])$`)

// kerasLayerName returns today's Keras layer name for a layer of either
// release: the older one named them Caffe-style (conv1, bn_conv1,
// res2a_branch2a, bn2a_branch1, fc1000).
func kerasLayerName(layer string) string {
	switch layer {
	case "conv1":
		return "conv1_conv"
	case "bn_conv1":
		return "conv1_bn"
	case "fc1000":
		return "predictions"
	}
	m := caffeName.FindStringSubmatch(layer)
	if m == nil {
		return layer
	}
	kind, stage, block, branch := m[1], m[2], m[3], m[4]
	k := "0"
	if branch != "1" {
		k = fmt.Sprint(strings.IndexByte("abc", branch[1]) + 1)
	}
	suffix := "conv"
	if kind == "bn" {
		suffix = "bn"
	}
	return fmt.Sprintf("conv%s_block%d_%s_%s", stage, block[0]-'a'+1, k, suffix)
}

// kerasLayerKind says which weights a (renamed) layer has: "conv", "bn",
// "dense", or "" for a layer that is not one of ResNet50's.
func kerasLayerKind(layer string) string {
	switch {
	case layer == "predictions":
		return "dense"
	case strings.HasSuffix(layer, "_conv"):
		return "conv"
	case strings.HasSuffix(layer, "_bn"):
		return "bn"
	}
	return ""
}

// kerasWeightRole returns the role of a weight name ("conv1_conv/kernel:0",
// "res2a_branch2a_W:0", "bn_conv1_running_std:0") in a layer of kind, ""
// if none matches.
func kerasWeightRole(name, kind string) string {
	base, _, _ := strings.Cut(name, ":")
	for _, r := range kerasRoles[kind] {
		for _, a := range r.aliases {
			if base == a || strings.HasSuffix(base, "/"+a) || strings.HasSuffix(base, "_"+a) {
				return r.role
			}
		}
	}
	return ""
}

// kerasAttr reads an attribute that Keras may have split into chunks
// name0, name1, ... (an HDF5 object header holds 64 KiB); ok is false
// where there is neither.
func kerasAttr(g *hdf5.Group, name string) (values []string, ok bool, err error) {
	v, err := g.Attr(name)
	if err == nil {
		return v, true, nil
	}
	if !errors.Is(err, hdf5.ErrNotFound) {
		return nil, false, err
	}
	for i := 0; ; i++ {
		v, err := g.Attr(fmt.Sprintf("%s%d", name, i))
		if errors.Is(err, hdf5.ErrNotFound) {
			return values, i > 0, nil
		}
		if err != nil {
			return nil, false, err
		}
		values = append(values, v...)
	}
}

// kerasH5Tensors reads the weights of a Keras ResNet50 .h5 under the
// project's names; old reports Caffe-style layer names.
func kerasH5Tensors(path string) (m map[string]*tensor.Dense, old bool, err error) {
	f, err := hdf5.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	g := f.Root()
	layers, ok, err := kerasAttr(g, "layer_names")
	if err != nil {
		return nil, false, err
	}
	if !ok {
		// A whole model saved by model.save() keeps its weights here.
		if mw, err := g.Group("model_weights"); err == nil {
			g = mw
			if layers, ok, err = kerasAttr(g, "layer_names"); err != nil {
				return nil, false, err
			}
		}
	}
	if !ok {
		return nil, false, fmt.Errorf("%s: no 'layer_names' attribute: not Keras' legacy HDF5 weights layout (a Keras 3 .weights.h5? load it into keras.applications.ResNet50 and use scripts/export_keras_resnet50.py --from-keras)", path)
	}
	m = map[string]*tensor.Dense{}
	for _, layer := range layers {
		lg, err := g.Group(layer)
		if errors.Is(err, hdf5.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		names, _, err := kerasAttr(lg, "weight_names")
		if err != nil {
			return nil, false, err
		}
		if len(names) == 0 {
			continue // a layer without weights: input, padding, activation, pooling
		}
		name := kerasLayerName(layer)
		old = old || name != layer
		kind := kerasLayerKind(name)
		if kind == "" {
			return nil, false, fmt.Errorf("%s: layer %q has weights but is not a ResNet50 convolution, BatchNorm or 'predictions' layer", path, layer)
		}
		order := make([]string, len(kerasRoles[kind]))
		for i, r := range kerasRoles[kind] {
			order[i] = r.role
		}
		if len(names) != len(order) {
			return nil, false, fmt.Errorf("%s: layer %q has %d weights %q, want %d (%s)", path, layer, len(names), names, len(order), strings.Join(order, ", "))
		}
		roles := make([]string, len(names))
		for i, n := range names {
			roles[i] = kerasWeightRole(n, kind)
		}
		if !sameSet(roles, order) {
			roles = order // unrecognised names: Keras' own loader goes by position too
		}
		for i, n := range names {
			d, err := lg.Dataset(n)
			if err != nil {
				return nil, false, err
			}
			v, err := d.Float32s()
			if err != nil {
				return nil, false, err
			}
			shape := d.Shape()
			if len(shape) == 0 {
				shape = []int{1} // a scalar; tensor has no rank-0 dense backing
			}
			m[name+"/"+roles[i]] = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
		}
	}
	return m, old, nil
}

// sameSet reports whether a and b hold the same strings, counting repeats.
func sameSet(a, b []string) bool {
	a, b = append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(a)
	sort.Strings(b)
	return strings.Join(a, "\x00") == strings.Join(b, "\x00")
}

// loadKerasH5 reads a Keras ResNet50 .h5 (see Load).
func loadKerasH5(path string) (*Weights, error) {
	m, old, err := kerasH5Tensors(path)
	if errors.Is(err, hdf5.ErrUnsupported) {
		return nil, fmt.Errorf("%w; scripts/export_keras_resnet50.py (h5py) converts such a file to an .npz", err)
	}
	if err != nil {
		return nil, err
	}
	w, err := FromTensors(path, m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// FromTensors keeps what it does not know; a Keras file must not have it.
	known := map[string]bool{"predictions/kernel": true, "predictions/bias": true}
	for _, c := range w.Arch.Convs() {
		for _, p := range convParams(c, true) {
			known[p.name] = true
		}
	}
	for _, n := range w.Names() {
		if !known[n] {
			return nil, fmt.Errorf("%s: unexpected tensor %q: not a Keras ResNet50", path, n)
		}
	}
	if old {
		slog.Warn("Caffe-style layer names (the older keras_applications/resnet50.py release), renamed. "+
			"That Keras model applied BatchNorm epsilon 1e-3; this project applies tf.keras' 1.001e-5, "+
			"so expect small differences from that old model's outputs", "weights", path)
	}
	return w, nil
}
