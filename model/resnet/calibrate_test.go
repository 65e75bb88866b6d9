package resnet

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// TestCalibrateStem checks the stem's statistics against a direct
// convolution written out in the test.
func TestCalibrateStem(t *testing.T) {
	w, _ := Random(8, 0, 5)
	x := readNPY(t, filepath.Join("testdata", "resnet50_w8_s64", "inputs.npy"))
	c, err := Calibrate(w, x)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.Source, "calibrated on 4 images") {
		t.Errorf("source %q does not say it was calibrated", c.Source)
	}
	n, h, wd := x.Shape()[0], x.Shape()[1], x.Shape()[2]
	in := x.Data().([]float32)
	k, b := w.data("conv1_conv/kernel"), w.data("conv1_conv/bias")
	const cout = 8
	oh, ow := outSize(h, 7, 2, 3), outSize(wd, 7, 2, 3)
	var sum, sq [cout]float64
	for i := range n {
		for oy := range oh {
			for ox := range ow {
				for o := range cout {
					v := float64(b[o])
					for ky := range 7 {
						for kx := range 7 {
							iy, ix := 2*oy-3+ky, 2*ox-3+kx
							if iy < 0 || iy >= h || ix < 0 || ix >= wd {
								continue
							}
							for ci := range 3 {
								v += float64(in[((i*h+iy)*wd+ix)*3+ci]) * float64(k[((ky*7+kx)*3+ci)*cout+o])
							}
						}
					}
					sum[o] += v
					sq[o] += v * v
				}
			}
		}
	}
	cnt := float64(n * oh * ow)
	mean, variance := c.data("conv1_bn/moving_mean"), c.data("conv1_bn/moving_variance")
	for o := range cout {
		m := sum[o] / cnt
		v := sq[o]/cnt - m*m
		if math.Abs(float64(mean[o])-m) > 1e-3*(1+math.Abs(m)) || math.Abs(float64(variance[o])-v) > 1e-3*v {
			t.Errorf("channel %d: calibrated mean %v variance %v, direct %v %v", o, mean[o], variance[o], m, v)
		}
	}
}

// TestCalibrateSpreadsRandomFeatures: calibrated random weights give
// images features that differ from image to image far more than the raw
// random weights do.
func TestCalibrateSpreadsRandomFeatures(t *testing.T) {
	w, _ := Random(8, 0, 3)
	x := readNPY(t, filepath.Join("testdata", "resnet50_w8_s64", "inputs.npy"))
	c, err := Calibrate(w, x)
	if err != nil {
		t.Fatal(err)
	}
	spread := func(w *Weights) float64 {
		e, _ := NewCPU(w)
		f, err := e.Features(x)
		if err != nil {
			t.Fatal(err)
		}
		n, d := f.Shape()[0], f.Shape()[1]
		data := f.Data().([]float32)
		var rel float64
		for j := range d {
			var mean, sq float64
			for i := range n {
				mean += float64(data[i*d+j])
			}
			mean /= float64(n)
			for i := range n {
				v := float64(data[i*d+j]) - mean
				sq += v * v
			}
			rel += math.Sqrt(sq/float64(n)) / (math.Abs(mean) + 1e-6)
		}
		return rel / float64(d)
	}
	if a, b := spread(w), spread(c); b < 1.3*a {
		t.Errorf("calibration did not spread features: relative spread %.3f before, %.3f after", a, b)
	}
	if _, err := Calibrate(w, tensor.New(tensor.WithShape(1, 8, 8, 3), tensor.WithBacking(make([]float32, 192)))); err == nil {
		t.Error("calibration on 8x8 images accepted")
	}
}

// Calibrating torchvision weights keeps their variant (it was lost, and
// the weights then refused for their missing convolution biases).
func TestCalibrateTorchvision(t *testing.T) {
	dir := filepath.Join("testdata", "torchvision_w8_s64")
	w, err := Load(filepath.Join(dir, "weights.pth"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Calibrate(w, readNPY(t, filepath.Join(dir, "inputs.npy")))
	if err != nil {
		t.Fatal(err)
	}
	if c.Arch.Variant != Torchvision {
		t.Errorf("calibrated weights are %s, want %s", c.Arch.Variant, Torchvision)
	}
}
