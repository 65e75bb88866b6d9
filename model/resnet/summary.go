package resnet

import "gotransfer/model"

// Layers lists the network's layers as Keras' ResNet50 builds them, with
// their output shapes for an h x w input: 175 layers without the top, and
// avg_pool and a predictions layer of classes outputs with it when
// classes > 0 (177 in all, as Keras reports for the full model). A
// torchvision network is listed with the same Keras names, its strides
// where torchvision puts them and no convolution biases.
func (a *Arch) Layers(h, wd, classes int) []model.Layer {
	conv := func(c ConvSpec, h, w int) (model.Layer, model.Layer, int, int) {
		oh, ow := outSize(h, c.K, c.Stride, c.Pad), outSize(w, c.K, c.Stride, c.Pad)
		shape := []int{oh, ow, c.Out}
		params := c.K * c.K * c.In * c.Out
		if a.ConvBias {
			params += c.Out
		}
		return model.Layer{Name: c.Name + "_conv", Type: "Conv2D", Shape: shape, Params: params},
			model.Layer{Name: c.Name + "_bn", Type: "BatchNormalization", Shape: shape, Params: 4 * c.Out, NonTrainable: 2 * c.Out},
			oh, ow
	}
	act := func(name string, shape []int) model.Layer {
		return model.Layer{Name: name, Type: "Activation", Shape: shape}
	}
	ls := []model.Layer{
		{Name: "input_layer", Type: "InputLayer", Shape: []int{h, wd, 3}},
		{Name: "conv1_pad", Type: "ZeroPadding2D", Shape: []int{h + 6, wd + 6, 3}},
	}
	cv, bn, h, wd := conv(a.Stem, h, wd)
	ls = append(ls, cv, bn, act("conv1_relu", cv.Shape),
		model.Layer{Name: "pool1_pad", Type: "ZeroPadding2D", Shape: []int{h + 2, wd + 2, a.Stem.Out}})
	h, wd = outSize(h, 3, 2, 1), outSize(wd, 3, 2, 1)
	ls = append(ls, model.Layer{Name: "pool1_pool", Type: "MaxPooling2D", Shape: []int{h, wd, a.Stem.Out}})
	for _, b := range a.Blocks {
		// Keras creates the shortcut's layers first.
		if b.Shortcut != nil {
			cv, bn, _, _ := conv(*b.Shortcut, h, wd)
			ls = append(ls, cv, bn)
		}
		cv1, bn1, h1, w1 := conv(b.Convs[0], h, wd)
		cv2, bn2, h2, w2 := conv(b.Convs[1], h1, w1)
		cv3, bn3, h3, w3 := conv(b.Convs[2], h2, w2)
		ls = append(ls, cv1, bn1, act(b.Convs[0].Name+"_relu", cv1.Shape),
			cv2, bn2, act(b.Convs[1].Name+"_relu", cv2.Shape),
			cv3, bn3,
			model.Layer{Name: b.Name + "_add", Type: "Add", Shape: cv3.Shape},
			act(b.Name+"_out", cv3.Shape))
		h, wd = h3, w3
	}
	if classes > 0 {
		f := a.FeatureDim()
		ls = append(ls,
			model.Layer{Name: "avg_pool", Type: "GlobalAveragePooling2D", Shape: []int{f}},
			model.Layer{Name: "predictions", Type: "Dense", Shape: []int{classes}, Params: f*classes + classes})
	}
	return ls
}
