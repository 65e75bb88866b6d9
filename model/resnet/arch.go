package resnet

import "fmt"

// Variant names the flavour of ResNet50 a weights file holds.
type Variant string

const (
	// Keras is keras.applications.ResNet50 ("v1"): the stride of a stage's
	// first block sits on its first 1x1 convolution, convolutions carry a
	// bias, BatchNorm epsilon is 1.001e-5, inputs are 'caffe'-preprocessed.
	Keras Variant = "keras"

	// Torchvision is torchvision.models.resnet50 ("v1.5"): the stride of a
	// stage's first block sits on its 3x3 convolution (the projection
	// shortcut keeps it too), convolutions have no bias, BatchNorm epsilon
	// is 1e-5, inputs are 'torch'-preprocessed.
	Torchvision Variant = "torchvision"
)

// BatchNormalization epsilons: Keras' ResNet50 uses 1.001e-5 (cuDNN wants
// more than 1e-5), PyTorch's default is 1e-5.
const (
	kerasBNEpsilon = 1.001e-5
	torchBNEpsilon = 1e-5
)

// Preprocess is the image preprocessing the variant's pretrained weights
// expect, as dataset.Config.Preprocess names it: "caffe" for Keras (BGR,
// minus the ImageNet means), "torch" for torchvision (RGB/255, minus the
// ImageNet mean, over its standard deviation). It is "" for an unknown
// variant.
func (v Variant) Preprocess() string {
	switch v {
	case Keras:
		return "caffe"
	case Torchvision:
		return "torch"
	}
	return ""
}

// ConvSpec is one convolution of the network and the BatchNorm after it.
type ConvSpec struct {
	Name           string // Keras prefix: "conv1", "conv2_block1_0", ...
	K, Stride, Pad int    // square kernel, stride and symmetric zero padding
	In, Out        int    // channels
}

// Block is one bottleneck residual block.
type Block struct {
	Name     string    // "conv2_block1"
	Shortcut *ConvSpec // the projection (_0) in a stage's first block, else nil
	Convs    [3]ConvSpec
}

// Arch is the layer plan of a ResNet50 of a given width: every convolution
// with its Keras name, in execution order. Width 64 is the real network;
// narrower widths keep the topology and names with fewer channels.
type Arch struct {
	Variant Variant
	Width   int
	Stem    ConvSpec
	Blocks  []Block

	// Epsilon is the BatchNorm epsilon the variant was trained with; the
	// engines fold it into the convolutions.
	Epsilon float64
	// ConvBias says whether convolutions carry a bias (Keras) or not
	// (torchvision, where the BatchNorm's beta does that job).
	ConvBias bool
}

// stages lists ResNet50's four stages: name, base filters at width 64,
// blocks and stride.
var stages = [...]struct {
	name            string
	filters, blocks int
	stride          int
}{{"conv2", 64, 3, 1}, {"conv3", 128, 4, 2}, {"conv4", 256, 6, 2}, {"conv5", 512, 3, 2}}

// NewArch returns the plan of a ResNet50 whose stem has width output
// channels (64 for the real network).
func NewArch(v Variant, width int) (*Arch, error) {
	a := &Arch{Variant: v, Width: width}
	switch v {
	case Keras:
		a.Epsilon, a.ConvBias = kerasBNEpsilon, true
	case Torchvision:
		a.Epsilon, a.ConvBias = torchBNEpsilon, false
	default:
		return nil, fmt.Errorf("resnet: unknown variant %q: want %q or %q", v, Keras, Torchvision)
	}
	if width < 1 || width > 1024 {
		return nil, fmt.Errorf("resnet: width %d out of range [1, 1024]", width)
	}
	// Keras pads with ZeroPadding2D(3) before a valid 7x7/2 convolution;
	// torchvision's padding=3 is the same thing.
	a.Stem = ConvSpec{Name: "conv1", K: 7, Stride: 2, Pad: 3, In: 3, Out: width}
	in := width
	for _, st := range stages {
		f := st.filters * width / 64
		for b := 1; b <= st.blocks; b++ {
			stride := 1
			if b == 1 {
				stride = st.stride
			}
			name := fmt.Sprintf("%s_block%d", st.name, b)
			blk := Block{Name: name}
			if b == 1 {
				blk.Shortcut = &ConvSpec{Name: name + "_0", K: 1, Stride: stride, In: in, Out: 4 * f}
			}
			// v1 strides the first 1x1 convolution, which then skips
			// three quarters of its input; v1.5 strides the 3x3 instead.
			s1, s2 := stride, 1
			if v == Torchvision {
				s1, s2 = 1, stride
			}
			blk.Convs = [3]ConvSpec{
				{Name: name + "_1", K: 1, Stride: s1, In: in, Out: f},
				{Name: name + "_2", K: 3, Stride: s2, Pad: 1, In: f, Out: f},
				{Name: name + "_3", K: 1, Stride: 1, In: f, Out: 4 * f},
			}
			a.Blocks = append(a.Blocks, blk)
			in = 4 * f
		}
	}
	return a, nil
}

// Convs lists every convolution in execution order (a block's shortcut
// before its main path).
func (a *Arch) Convs() []ConvSpec {
	out := []ConvSpec{a.Stem}
	for _, b := range a.Blocks {
		if b.Shortcut != nil {
			out = append(out, *b.Shortcut)
		}
		out = append(out, b.Convs[:]...)
	}
	return out
}

// FeatureDim is the number of pooled features: 2048 at width 64.
func (a *Arch) FeatureDim() int { return a.Blocks[len(a.Blocks)-1].Convs[2].Out }

// FeatureMapName is the Tap name of the last block's output,
// "conv5_block3_out": the feature maps (7x7 for a 224x224 input) that
// global average pooling turns into the features.
func (a *Arch) FeatureMapName() string { return a.Blocks[len(a.Blocks)-1].Name + "_out" }

// outSize is the spatial size after a convolution or pool.
func outSize(in, k, stride, pad int) int { return (in+2*pad-k)/stride + 1 }

// blockBuffers picks, for a block whose input is in buffer cur of the
// engine's four, the buffers of its shortcut (the input itself without a
// projection) and of its two inner activations. The block's output goes to
// t1, free again once the 3x3 convolution has read it.
func blockBuffers(cur int, projection bool) (short, t1, t2 int) {
	var free [3]int
	k := 0
	for j := range 4 {
		if j != cur {
			free[k] = j
			k++
		}
	}
	short = cur
	if projection {
		short = free[2]
	}
	return short, free[0], free[1]
}
