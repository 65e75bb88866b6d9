package onnx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
	"gorgonia.org/tensor"

	"gotransfer/internal/atomicfile"
	"gotransfer/internal/tensorio"
	"gotransfer/model/resnet"
)

// Opset is the ONNX operator set the models use (ONNX Runtime has run it
// since 1.6; IR version 7).
const Opset = 13

// Dense is one dense layer of a head: Kernel (in, out) and Bias (out), as
// Keras stores them.
type Dense struct {
	Kernel, Bias *tensor.Dense
}

// Preprocess is the affine map that turns a resized RGB pixel into the
// network's input, channel by channel: out[Perm[c]] = v·Mul[c] + Add[c] for
// the value v (0..255) of RGB channel c (dataset's 'caffe', 'torch' and
// 'none' preprocessing are such maps).
type Preprocess struct {
	Perm     [3]int
	Mul, Add [3]float32
}

// Model is what Marshal exports: a ResNet50 and, optionally, a dense head.
type Model struct {
	Backbone   *resnet.Weights
	Preprocess Preprocess
	// Height and Width are the size the images are resized to (bilinear,
	// half-pixel centres, no antialiasing: dataset's resize); 0 takes them
	// as they come.
	Height, Width int
	// CropToAspectRatio crops each image to the centred box of the aspect
	// ratio Width:Height before resizing, as dataset (and Keras'
	// smart_resize) do.
	CropToAspectRatio bool
	// Head holds the hidden layers (ReLU) and the last (softmax) of a
	// trained head; without one, the backbone's own predictions layer
	// gives the probabilities if it has one.
	Head []Dense
	// Classes names the classes, written into the model's metadata.
	Classes []string
}

// Marshal encodes m as an ONNX model (opset 13). Its input "images" is a
// float32 (N, H, W, 3) batch of decoded RGB images of any size, values
// 0-255; its outputs are "features", the (N, F) pooled features, and, with
// a head or a predictions layer, "probabilities", (N, classes). The graph
// crops and resizes the images as m says, preprocesses them, and runs the
// network, its BatchNorms folded into the convolutions.
func Marshal(m Model) ([]byte, error) {
	var b bytes.Buffer
	if err := Write(&b, m); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Write writes m as Marshal encodes it, the weights straight from their
// tensors (a model is about as large as its weights: it is not held twice).
func Write(w io.Writer, m Model) error {
	graph, err := build(m)
	if err != nil {
		return err
	}
	size := 0
	for _, p := range graph {
		size += len(p)
	}
	var b []byte
	b = appendVarintField(b, 1, 7) // ir_version
	b = appendString(b, 2, "gotransfer")
	b = appendMessage(b, 8, appendString(appendVarintField(nil, 2, Opset), 1, "")) // opset_import
	b = protowire.AppendTag(b, 7, protowire.BytesType)                             // graph
	b = protowire.AppendVarint(b, uint64(size))
	if _, err := w.Write(b); err != nil {
		return err
	}
	for _, p := range graph {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	b = b[:0]
	for i, c := range m.Classes {
		kv := appendString(appendString(nil, 1, "class_"+strconv.Itoa(i)), 2, c)
		b = appendMessage(b, 14, kv) // metadata_props
	}
	_, err = w.Write(b)
	return err
}

// WriteFile writes m to the file at path, atomically.
func WriteFile(path string, m Model) error {
	if err := atomicfile.Write(path, func(w io.Writer) error { return Write(w, m) }); err != nil {
		return fmt.Errorf("onnx: %w", err)
	}
	return nil
}

// graph accumulates a GraphProto's nodes and initializers: the
// initializers as pieces whose concatenation is their encoding, the data
// of each one piece of its own, in place.
type graph struct {
	nodes []byte
	inits [][]byte
	n     int // names made so far
}

// initializer appends the TensorProto whose fields but raw_data are
// header, and raw_data raw.
func (g *graph) initializer(header, raw []byte) {
	body := len(header) + protowire.SizeTag(9) + protowire.SizeBytes(len(raw))
	b := protowire.AppendTag(nil, 5, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(body))
	b = append(b, header...)
	b = protowire.AppendTag(b, 9, protowire.BytesType) // raw_data, little-endian
	b = protowire.AppendVarint(b, uint64(len(raw)))
	g.inits = append(g.inits, b, raw)
}

func (g *graph) name(prefix string) string {
	g.n++
	return prefix + "_" + strconv.Itoa(g.n)
}

// node appends a node and returns its (single) output's name.
func (g *graph) node(op string, inputs []string, out string, attrs ...[]byte) string {
	if out == "" {
		out = g.name(op)
	}
	var n []byte
	for _, in := range inputs {
		n = appendString(n, 1, in)
	}
	n = appendString(n, 2, out)
	n = appendString(n, 3, out)
	n = appendString(n, 4, op)
	for _, a := range attrs {
		n = appendMessage(n, 5, a)
	}
	g.nodes = appendMessage(g.nodes, 1, n)
	return out
}

// init appends a float32 initializer and returns its name.
func (g *graph) init(name string, dims []int, data []float32) string {
	var t []byte
	for _, d := range dims {
		t = appendVarintField(t, 1, uint64(d))
	}
	t = appendVarintField(t, 2, 1) // FLOAT
	t = appendString(t, 8, name)
	g.initializer(t, tensorio.Float32Bytes(data))
	return name
}

// initInt64 appends an int64 initializer and returns its name.
func (g *graph) initInt64(name string, data []int64) string {
	var t []byte
	t = appendVarintField(t, 1, uint64(len(data)))
	t = appendVarintField(t, 2, 7) // INT64
	t = appendString(t, 8, name)
	raw := make([]byte, 0, 8*len(data))
	for _, v := range data {
		raw = append(raw, byte(v), byte(v>>8), byte(v>>16), byte(v>>24), byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56))
	}
	g.initializer(t, raw)
	return name
}

func attrInts(name string, v ...int) []byte {
	a := appendString(nil, 1, name)
	for _, x := range v {
		a = appendVarintField(a, 8, uint64(int64(x)))
	}
	return appendVarintField(a, 20, 7) // INTS
}

func attrString(name, v string) []byte {
	a := appendString(nil, 1, name)
	a = appendString(a, 4, v)
	return appendVarintField(a, 20, 3) // STRING
}

func attrInt(name string, v int) []byte {
	a := appendString(nil, 1, name)
	a = appendVarintField(a, 3, uint64(int64(v)))
	return appendVarintField(a, 20, 2) // INT
}

// conv appends a convolution with its BatchNorm folded in, and a ReLU if
// relu, and returns the output's name.
func (g *graph) conv(w *resnet.Weights, c resnet.ConvSpec, x string, relu bool) (string, error) {
	kernel := w.Tensor(c.Name + "_conv/kernel")
	gamma, beta := w.Tensor(c.Name+"_bn/gamma"), w.Tensor(c.Name+"_bn/beta")
	mean, variance := w.Tensor(c.Name+"_bn/moving_mean"), w.Tensor(c.Name+"_bn/moving_variance")
	if kernel == nil || gamma == nil || beta == nil || mean == nil || variance == nil {
		return "", fmt.Errorf("onnx: convolution %s: weights missing", c.Name)
	}
	k := kernel.Float32s() // HWIO
	var bias []float32
	if t := w.Tensor(c.Name + "_conv/bias"); t != nil {
		bias = t.Float32s()
	}
	oihw := make([]float32, len(k))
	b := make([]float32, c.Out)
	for o := range c.Out {
		scale := float64(gamma.Float32s()[o]) / math.Sqrt(float64(variance.Float32s()[o])+w.Arch.Epsilon)
		cb := 0.0
		if bias != nil {
			cb = float64(bias[o])
		}
		b[o] = float32((cb-float64(mean.Float32s()[o]))*scale + float64(beta.Float32s()[o]))
		for i := range c.In {
			for y := range c.K {
				for x := range c.K {
					oihw[((o*c.In+i)*c.K+y)*c.K+x] = float32(float64(k[((y*c.K+x)*c.In+i)*c.Out+o]) * scale)
				}
			}
		}
	}
	wName := g.init(c.Name+"/weight", []int{c.Out, c.In, c.K, c.K}, oihw)
	bName := g.init(c.Name+"/bias", []int{c.Out}, b)
	out := g.node("Conv", []string{x, wName, bName}, c.Name,
		attrInts("kernel_shape", c.K, c.K), attrInts("strides", c.Stride, c.Stride), attrInts("pads", c.Pad, c.Pad, c.Pad, c.Pad))
	if relu {
		out = g.node("Relu", []string{out}, c.Name+"_relu")
	}
	return out, nil
}

// resize appends the nodes that crop (if crop) and resize the NCHW images
// x to h x w as dataset does, and returns the result's name.
func (g *graph) resize(x string, h, w int, crop bool) string {
	shape := g.node("Shape", []string{x}, "images_shape")
	dim := func(i int64) string {
		return g.node("Gather", []string{shape, g.initInt64(g.name("axis"), []int64{i})}, "")
	}
	n := dim(0)
	if crop {
		// Keras' smart_resize: ch = min(H, W·h/w), cw = min(W, H·w/h)
		// (whole numbers, at least 1), centred.
		c := func(v int) string { return g.initInt64(g.name("const"), []int64{int64(v)}) }
		H, W := dim(2), dim(3)
		side := func(full, other string, num, den int) string {
			v := g.node("Div", []string{g.node("Mul", []string{other, c(num)}, ""), c(den)}, "")
			return g.node("Max", []string{g.node("Min", []string{full, v}, ""), c(1)}, "")
		}
		ch, cw := side(H, W, h, w), side(W, H, w, h)
		y0 := g.node("Div", []string{g.node("Sub", []string{H, ch}, ""), c(2)}, "")
		x0 := g.node("Div", []string{g.node("Sub", []string{W, cw}, ""), c(2)}, "")
		starts := g.node("Concat", []string{y0, x0}, "", attrInt("axis", 0))
		ends := g.node("Concat", []string{g.node("Add", []string{y0, ch}, ""), g.node("Add", []string{x0, cw}, "")}, "", attrInt("axis", 0))
		x = g.node("Slice", []string{x, starts, ends, g.initInt64("crop_axes", []int64{2, 3})}, "cropped")
	}
	sizes := g.node("Concat", []string{n, g.initInt64("resize_chw", []int64{3, int64(h), int64(w)})}, "resize_sizes", attrInt("axis", 0))
	return g.node("Resize", []string{x, "", "", sizes}, "resized",
		attrString("mode", "linear"), attrString("coordinate_transformation_mode", "half_pixel"))
}

// build returns the GraphProto of m, in pieces to be written in turn.
func build(m Model) ([][]byte, error) {
	w := m.Backbone
	if w == nil {
		return nil, errors.New("onnx: no backbone")
	}
	if m.CropToAspectRatio && (m.Height <= 0 || m.Width <= 0) {
		return nil, errors.New("onnx: cropping to the aspect ratio needs the size")
	}
	g := &graph{}
	// NCHW from the start: ONNX Runtime resizes NCHW correctly in every
	// version (its NHWC linear resize was wrong before 1.12).
	x := g.node("Transpose", []string{"images"}, "nchw", attrInts("perm", 0, 3, 1, 2))
	if m.Height > 0 && m.Width > 0 {
		x = g.resize(x, m.Height, m.Width, m.CropToAspectRatio)
	}
	// Preprocessing, after the resize as in dataset: the affine map channel
	// by channel, then the channels reordered.
	p := m.Preprocess
	if p.Mul != [3]float32{1, 1, 1} {
		x = g.node("Mul", []string{x, g.init("preprocess/mul", []int{1, 3, 1, 1}, p.Mul[:])}, "preprocess_mul")
	}
	if p.Add != [3]float32{} {
		x = g.node("Add", []string{x, g.init("preprocess/add", []int{1, 3, 1, 1}, p.Add[:])}, "preprocess_add")
	}
	if p.Perm != [3]int{0, 1, 2} {
		var src [3]int64 // out channel k comes from channel c with Perm[c] = k
		for c, k := range p.Perm {
			src[k] = int64(c)
		}
		x = g.node("Gather", []string{x, g.initInt64("preprocess/channels", src[:])}, "preprocess_channels", attrInt("axis", 1))
	}

	a := w.Arch
	x, err := g.conv(w, a.Stem, x, true)
	if err != nil {
		return nil, err
	}
	// Keras pads with zeros before its max pooling, ONNX with -Inf: the
	// same maximum after a ReLU.
	x = g.node("MaxPool", []string{x}, "pool1", attrInts("kernel_shape", 3, 3), attrInts("strides", 2, 2), attrInts("pads", 1, 1, 1, 1))
	for _, blk := range a.Blocks {
		short := x
		if blk.Shortcut != nil {
			if short, err = g.conv(w, *blk.Shortcut, x, false); err != nil {
				return nil, err
			}
		}
		y := x
		for i, c := range blk.Convs {
			if y, err = g.conv(w, c, y, i < 2); err != nil {
				return nil, err
			}
		}
		x = g.node("Add", []string{y, short}, blk.Name+"_add")
		x = g.node("Relu", []string{x}, blk.Name+"_out")
	}
	x = g.node("GlobalAveragePool", []string{x}, "avg_pool")
	features := g.node("Flatten", []string{x}, "features", attrInt("axis", 1))

	probs := ""
	switch {
	case len(m.Head) > 0:
		h, width := features, a.FeatureDim()
		for i, d := range m.Head {
			if d.Kernel == nil || d.Bias == nil {
				return nil, fmt.Errorf("onnx: dense layer %d: kernel or bias missing", i)
			}
			ks := d.Kernel.Shape()
			if len(ks) != 2 || ks[0] != width || ks[1] < 1 || d.Bias.Shape().TotalSize() != ks[1] {
				return nil, fmt.Errorf("onnx: dense layer %d: kernel %v and bias %v do not take %d inputs", i, ks, d.Bias.Shape(), width)
			}
			width = ks[1]
			kName := g.init("dense_"+strconv.Itoa(i)+"/kernel", ks, d.Kernel.Float32s())
			bName := g.init("dense_"+strconv.Itoa(i)+"/bias", []int{ks[1]}, d.Bias.Float32s())
			h = g.node("Gemm", []string{h, kName, bName}, "dense_"+strconv.Itoa(i))
			if i < len(m.Head)-1 {
				h = g.node("Relu", []string{h}, "dense_"+strconv.Itoa(i)+"_relu")
			}
		}
		if len(m.Classes) > 0 && len(m.Classes) != width {
			return nil, fmt.Errorf("onnx: %d class names for %d outputs", len(m.Classes), width)
		}
		probs = g.node("Softmax", []string{h}, "probabilities", attrInt("axis", 1))
	case w.Classes > 0:
		kName := g.init("predictions/kernel", []int{a.FeatureDim(), w.Classes}, w.Tensor("predictions/kernel").Float32s())
		bName := g.init("predictions/bias", []int{w.Classes}, w.Tensor("predictions/bias").Float32s())
		h := g.node("Gemm", []string{features, kName, bName}, "predictions")
		probs = g.node("Softmax", []string{h}, "probabilities", attrInt("axis", 1))
	}

	gp := appendString(g.nodes, 2, "gotransfer_resnet50")
	pieces := append([][]byte{gp}, g.inits...)
	gp = appendMessage(nil, 11, valueInfo("images", "N", 0, 0, 3))
	gp = appendMessage(gp, 12, valueInfo("features", "N", a.FeatureDim()))
	if probs != "" {
		classes := w.Classes
		if len(m.Head) > 0 {
			classes = m.Head[len(m.Head)-1].Kernel.Shape()[1]
		}
		gp = appendMessage(gp, 12, valueInfo("probabilities", "N", classes))
	}
	return append(pieces, gp), nil
}

// valueInfo is a float32 tensor's ValueInfoProto: its first dimension
// named batch, the others fixed (0: free).
func valueInfo(name, batch string, dims ...int) []byte {
	var shape []byte
	shape = appendMessage(shape, 1, appendString(nil, 2, batch))
	for i, d := range dims {
		if d > 0 {
			shape = appendMessage(shape, 1, appendVarintField(nil, 1, uint64(d)))
		} else {
			shape = appendMessage(shape, 1, appendString(nil, 2, name+"_"+strconv.Itoa(i+1)))
		}
	}
	tt := appendMessage(appendVarintField(nil, 1, 1), 2, shape) // elem_type FLOAT, shape
	return appendMessage(appendString(nil, 1, name), 2, appendMessage(nil, 1, tt))
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendMessage(b []byte, num protowire.Number, m []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}
