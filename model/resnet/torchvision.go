package resnet

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gorgonia.org/tensor"
)

// torchParam is one tensor of a torchvision state dict and the Keras-named
// tensor it becomes.
type torchParam struct {
	torch, keras string
	shape        []int // torchvision's shape
	// transpose: OIHW -> HWIO for convolution kernels, (out, in) -> (in,
	// out) for the fc layer.
	transpose bool
}

// torchvisionParams lists the tensors of a torchvision ResNet50 state dict
// of the architecture's width, in state-dict order, without the fc layer:
//
//	conv1.weight (W, 3, 7, 7)                  conv1_conv/kernel (7, 7, 3, W)
//	bn1.{weight,bias,running_mean,running_var} conv1_bn/{gamma,beta,moving_mean,moving_variance}
//	layerL.B.convK.weight, layerL.B.bnK.*      conv{L+1}_block{B+1}_{K}_conv/kernel, ..._bn/*
//	layerL.0.downsample.0.weight, .1.*         conv{L+1}_block1_0_conv/kernel, ..._bn/*
//
// (num_batches_tracked, a BatchNorm counter, has no part in inference.)
func torchvisionParams(a *Arch) []torchParam {
	var ps []torchParam
	add := func(conv, bn string, c ConvSpec) {
		ps = append(ps, torchParam{conv + ".weight", c.Name + "_conv/kernel", []int{c.Out, c.In, c.K, c.K}, true})
		for _, p := range [...][2]string{{"weight", "gamma"}, {"bias", "beta"}, {"running_mean", "moving_mean"}, {"running_var", "moving_variance"}} {
			ps = append(ps, torchParam{bn + "." + p[0], c.Name + "_bn/" + p[1], []int{c.Out}, false})
		}
	}
	add("conv1", "bn1", a.Stem)
	for _, b := range a.Blocks {
		var stage, block int
		fmt.Sscanf(b.Name, "conv%d_block%d", &stage, &block)
		prefix := fmt.Sprintf("layer%d.%d.", stage-1, block-1)
		for k, c := range b.Convs {
			add(prefix+"conv"+strconv.Itoa(k+1), prefix+"bn"+strconv.Itoa(k+1), c)
		}
		if b.Shortcut != nil {
			add(prefix+"downsample.0", prefix+"downsample.1", *b.Shortcut)
		}
	}
	return ps
}

var blockName = regexp.MustCompile(`^layer([1-9])\.([0-9]+)\.`)

// knownResNets names torchvision's ResNets by blocks per stage, to say
// what a state dict is when it is not a ResNet50.
var knownResNets = []struct {
	blocks     [4]int
	bottleneck bool
	name       string
}{
	{[4]int{2, 2, 2, 2}, false, "ResNet18"},
	{[4]int{3, 4, 6, 3}, false, "ResNet34"},
	{[4]int{3, 4, 6, 3}, true, "ResNet50"},
	{[4]int{3, 4, 23, 3}, true, "ResNet101"},
	{[4]int{3, 8, 36, 3}, true, "ResNet152"},
}

// checkResNet50 says, before any tensor is compared, whether a state dict
// has ResNet50's blocks, and if not, what it looks like.
func checkResNet50(p *pthFile) error {
	var blocks [4]int
	bottleneck, other := false, 0
	for _, n := range p.names {
		m := blockName.FindStringSubmatch(n)
		if m == nil {
			continue
		}
		l, _ := strconv.Atoi(m[1])
		b, err := strconv.Atoi(m[2])
		if l > 4 || err != nil || b > 1000 {
			other++
			continue
		}
		blocks[l-1] = max(blocks[l-1], b+1)
		if strings.HasPrefix(n[len(m[0]):], "conv3.") {
			bottleneck = true
		}
	}
	if other > 0 {
		return fmt.Errorf("not a ResNet50 state dict: it has layers beyond layer4")
	}
	if blocks == [4]int{3, 4, 6, 3} && bottleneck {
		return nil
	}
	what := ""
	for _, k := range knownResNets {
		if k.blocks == blocks && k.bottleneck == bottleneck {
			what = " (a " + k.name + ")"
		}
	}
	kind := "basic blocks"
	if bottleneck {
		kind = "bottleneck blocks"
	}
	return fmt.Errorf("not a ResNet50 state dict%s: its stages have %v %s, ResNet50's have [3 4 6 3] bottleneck blocks", what, blocks, kind)
}

// loadPTH reads a torchvision ResNet50 state dict and maps it to the
// package's Keras names. It checks the names and shapes of every tensor
// before reading any data.
func loadPTH(path string) (*Weights, error) {
	p, err := openPTH(path)
	if err != nil {
		return nil, err
	}
	defer p.close()

	stem, ok := p.tensors["conv1.weight"].(*tensorRef)
	if !ok {
		held := "nothing"
		if len(p.names) > 0 {
			held = fmt.Sprintf("%d entries, %q first", len(p.names), p.names[0])
		}
		return nil, fmt.Errorf("no tensor %q: not a torchvision ResNet state dict (it holds %s)", "conv1.weight", held)
	}
	if s := stem.shape; len(s) != 4 || s[1] != 3 || s[2] != 7 || s[3] != 7 {
		return nil, fmt.Errorf("tensor %q: want shape (width, 3, 7, 7), got %v", "conv1.weight", tensor.Shape(s))
	}
	if err := checkResNet50(p); err != nil {
		return nil, err
	}
	arch, err := NewArch(Torchvision, stem.shape[0])
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", "conv1.weight", err)
	}
	params := torchvisionParams(arch)
	f := arch.FeatureDim()
	fc, hasFC := p.tensors["fc.weight"].(*tensorRef)
	if _, hasBias := p.tensors["fc.bias"]; hasFC != hasBias {
		return nil, fmt.Errorf("fc layer incomplete: want both fc.weight and fc.bias")
	}
	if hasFC {
		if s := fc.shape; len(s) != 2 || s[1] != f || s[0] < 1 {
			return nil, fmt.Errorf("tensor %q: want shape (classes, %d), got %v", "fc.weight", f, tensor.Shape(s))
		}
		classes := fc.shape[0]
		params = append(params,
			torchParam{"fc.weight", "predictions/kernel", []int{classes, f}, true},
			torchParam{"fc.bias", "predictions/bias", []int{classes}, false})
	}

	// Names and shapes first: nothing is read from a file that is not the
	// network it must be.
	want := make(map[string]bool, len(params))
	for _, q := range params {
		want[q.torch] = true
		v, ok := p.tensors[q.torch]
		if !ok {
			return nil, fmt.Errorf("tensor %q missing", q.torch)
		}
		t, ok := v.(*tensorRef)
		if !ok {
			return nil, fmt.Errorf("tensor %q: a %T, not a tensor", q.torch, v)
		}
		if !slices.Equal(t.shape, q.shape) {
			return nil, fmt.Errorf("tensor %q: want shape %v, got %v", q.torch, tensor.Shape(q.shape), tensor.Shape(t.shape))
		}
	}
	var extra []string
	for _, n := range p.names {
		if !want[n] && !strings.HasSuffix(n, ".num_batches_tracked") {
			extra = append(extra, n)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		more := ""
		if len(extra) > 1 {
			more = fmt.Sprintf(" (and %d more)", len(extra)-1)
		}
		return nil, fmt.Errorf("unexpected tensor %q%s: not a torchvision ResNet50 state dict", extra[0], more)
	}

	m := make(map[string]*tensor.Dense, len(params)+1)
	for _, q := range params {
		d, err := p.read(q.torch, p.tensors[q.torch].(*tensorRef))
		if err != nil {
			return nil, err
		}
		for i, v := range d {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("tensor %q: element %d is %v: weights must be finite", q.torch, i, v)
			}
			if v < 0 && strings.HasSuffix(q.torch, ".running_var") {
				return nil, fmt.Errorf("tensor %q: element %d is %v: a variance cannot be negative", q.torch, i, v)
			}
		}
		shape := q.shape
		if q.transpose {
			d, shape = toKeras(d, q.shape)
		}
		m[q.keras] = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d))
	}
	m[variantKey+string(Torchvision)] = tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{1}))
	return FromTensors(path, m)
}

// toKeras transposes a convolution kernel from PyTorch's (out, in, kh, kw)
// to Keras' (kh, kw, in, out), or a dense kernel from (out, in) to
// (in, out).
func toKeras(d []float32, s []int) ([]float32, []int) {
	out := make([]float32, len(d))
	if len(s) == 2 {
		o, in := s[0], s[1]
		for i := range o {
			for j := range in {
				out[j*o+i] = d[i*in+j]
			}
		}
		return out, []int{in, o}
	}
	o, in, kh, kw := s[0], s[1], s[2], s[3]
	for a := range o {
		for b := range in {
			for y := range kh {
				for x := range kw {
					out[((y*kw+x)*in+b)*o+a] = d[((a*in+b)*kh+y)*kw+x]
				}
			}
		}
	}
	return out, []int{kh, kw, in, o}
}
