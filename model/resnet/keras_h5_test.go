package resnet

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// writeLegacyH5 writes the weights of an .npz as Keras' legacy HDF5
// weights file does: root attribute layer_names (split into chunks
// layer_names0..2, as Keras splits attributes too big for an HDF5 header),
// weightless layers among them, per-layer weight_names (chunked for one
// layer), and datasets at the weight names. style "old" uses the Caffe-style
// layer names and Keras 1 weight names of the older release.
const writeLegacyH5 = `
import re, sys
import h5py, numpy as np

src, out, style, drop = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
w = dict(np.load(src))
layers = {}
for k, v in w.items():
    layer, var = k.split("/")
    layers.setdefault(layer, {})[var] = v
order = ["input_1", "conv1_pad"]
for layer in layers:
    order.append(layer)
    if layer.endswith("_bn"):
        order.append(layer[:-3] + "_relu")
order.append("avg_pool")

def old_name(layer):
    if layer == "conv1_conv": return "conv1"
    if layer == "conv1_bn": return "bn_conv1"
    if layer == "predictions": return "fc1000"
    m = re.fullmatch(r"conv(\d)_block(\d)_(\d)_(conv|bn)", layer)
    if m:
        s, b, k, kind = m.groups()
        branch = "1" if k == "0" else "2" + "abc"[int(k) - 1]
        return ("res" if kind == "conv" else "bn") + s + "abcdef"[int(b) - 1] + "_branch" + branch
    return layer

KERAS1 = {"kernel": "W", "bias": "b", "gamma": "gamma", "beta": "beta",
          "moving_mean": "running_mean", "moving_variance": "running_std"}
ROLE_ORDER = ["kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance"]

def chunked(group, name, values, chunks):
    values = np.array([v.encode("utf8") for v in values])
    if chunks == 1:
        group.attrs[name] = values
        return
    for i, part in enumerate(np.array_split(values, chunks)):
        group.attrs["%s%d" % (name, i)] = part

with h5py.File(out, "w") as f:
    names = [old_name(l) if style == "old" else l for l in order]
    chunked(f, "layer_names", names, 3)
    f.attrs["backend"] = b"tensorflow"
    f.attrs["keras_version"] = b"2.2.4"
    for layer, name in zip(order, names):
        g = f.create_group(name)
        vars = layers.get(layer, {})
        wn = []
        for var in sorted(vars, key=ROLE_ORDER.index):
            if layer + "/" + var == drop:
                continue
            n = (name + "_" + KERAS1[var] if style == "old" else name + "/" + var) + ":0"
            g.create_dataset(n, data=vars[var])
            wn.append(n)
        chunked(g, "weight_names", wn, 2 if layer == "conv2_block1_2_bn" else 1)
`

func TestKerasH5Export(t *testing.T) {
	py := python(t, "numpy", "h5py")
	src := filepath.Join("testdata", "resnet50_w8_s64", "weights.npz")
	want, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join("..", "..", "scripts", "export_keras_resnet50.py")
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		b, err := exec.Command(py, args...).CombinedOutput()
		return string(b), err
	}
	for _, tc := range []struct {
		name, style, drop string
		notop             bool
		fail              []string // what the script's error says, if it must fail
	}{
		{name: "tf.keras names", style: "new"},
		{name: "old release names", style: "old"},
		{name: "notop", style: "new", notop: true},
		{name: "missing weight", style: "new", drop: "conv3_block2_2_bn/moving_mean", fail: []string{"conv3_block2_2_bn", "weights"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h5 := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".h5")
			if out, err := run("-c", writeLegacyH5, src, h5, tc.style, tc.drop); err != nil {
				t.Fatalf("writing the h5: %v\n%s", err, out)
			}
			npz := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".npz")
			args := []string{script, h5, npz}
			if tc.notop {
				args = append(args, "--notop")
			}
			out, err := run(args...)
			if tc.fail != nil {
				if err == nil {
					t.Fatalf("export succeeded:\n%s", out)
				}
				for _, s := range tc.fail {
					if !strings.Contains(out, s) {
						t.Errorf("output does not mention %q:\n%s", s, out)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("export: %v\n%s", err, out)
			}
			if !strings.Contains(out, "not one of the official") {
				t.Errorf("no warning about an unknown md5:\n%s", out)
			}
			if tc.style == "old" && !strings.Contains(out, "Caffe-style") {
				t.Errorf("old names not reported:\n%s", out)
			}
			got, err := Load(npz)
			if err != nil {
				t.Fatal(err)
			}
			if tc.notop {
				if got.Classes != 0 || got.Tensor("predictions/kernel") != nil {
					t.Fatalf("notop export has %d classes", got.Classes)
				}
				return
			}
			sameTensors(t, want, got)
			if got.Digest() != want.Digest() {
				t.Fatal("digests differ")
			}
		})
	}
	// Not an h5 at all.
	bad := filepath.Join(dir, "bad.h5")
	os.WriteFile(bad, []byte("not hdf5"), 0o644)
	if out, err := run(script, bad, filepath.Join(dir, "bad.npz")); err == nil {
		t.Fatalf("exported a non-h5 file:\n%s", out)
	}
}
