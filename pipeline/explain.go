package pipeline

import (
	"fmt"
	"image"

	"gorgonia.org/tensor"

	"gotransfer/dataset"
	"gotransfer/model/gradcam"
	"gotransfer/model/head"
	"gotransfer/model/resnet"
)

// Explanation is Grad-CAM's account of one image's classification (see
// package gradcam): where in the image the backbone's last feature maps
// support a class.
type Explanation struct {
	// Probabilities are the image's class probabilities, as Predict
	// returns them (with TTA, averaged with the mirror image's; the map
	// is of the image as it is).
	Probabilities []float32
	// Class is the label explained.
	Class int
	// Heatmap is the Grad-CAM map, Rows x Cols values in [0, 1],
	// row-major: one per cell of the backbone's last feature grid (7x7 for
	// 224x224 images).
	Heatmap    []float32
	Rows, Cols int
	// View is the image as it was read: the picture and the region of it
	// the network was shown. Overlay draws on its Image.
	View *dataset.View

	drawn bool // Overlay has drawn on View.Image
}

// OverlayAlpha is the weight of the heatmap's colours in Overlay, as in
// Keras' Grad-CAM example.
const OverlayAlpha = 0.4

// Explain classifies one image file and computes the Grad-CAM heatmap of
// label class, or of the most probable class when class is -1.
func (c *Classifier) Explain(path string, class int) (*Explanation, error) {
	if err := c.checkClass(class); err != nil {
		return nil, fmt.Errorf("explain %s: %w", path, err)
	}
	view, err := dataset.LoadView(c.data, path)
	if err != nil {
		return nil, err
	}
	e, err := c.explain(view, class)
	if err != nil {
		return nil, fmt.Errorf("explain %s: %w", path, err)
	}
	return e, nil
}

// ExplainData is Explain for an image file's content (an upload, say). It
// is safe for concurrent use.
func (c *Classifier) ExplainData(data []byte, class int) (*Explanation, error) {
	if err := c.checkClass(class); err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	view, err := dataset.DecodeView(c.data, data)
	if err != nil {
		return nil, err
	}
	e, err := c.explain(view, class)
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	return e, nil
}

func (c *Classifier) checkClass(class int) error {
	if class < -1 || class >= len(c.Classes) {
		return fmt.Errorf("class %d, want -1 (the most probable) or [0, %d)", class, len(c.Classes))
	}
	return nil
}

// explain runs the backbone on view, keeping its last feature maps, and
// weighs them by the gradient of class's logit (-1: the most probable).
func (c *Classifier) explain(view *dataset.View, class int) (*Explanation, error) {
	if err := c.begin(); err != nil {
		return nil, err
	}
	defer c.end()
	mapName := c.backbone.Weights().Arch.FeatureMapName()
	var maps *tensor.Dense
	x := tensor.New(tensor.WithShape(1, c.data.Height, c.data.Width, 3), tensor.WithBacking(view.Pixels))
	f, err := c.backbone.FeaturesWithTaps(x, func(name string, a *tensor.Dense) {
		if name == mapName {
			maps = a
		}
	})
	if err != nil {
		return nil, err
	}
	if maps == nil {
		return nil, fmt.Errorf("the backbone reported no %s activation", mapName)
	}
	probs, err := c.head.Forward(f)
	if err != nil {
		return nil, err
	}
	p := probs.Data().([]float32)
	if c.tta {
		// The prediction as the classifier makes it (with the mirror
		// image); the map is of the image as it is.
		mirrored := append([]float32(nil), view.Pixels...)
		dataset.Mirror(mirrored, c.data.Height, c.data.Width)
		fm, err := c.backbone.Features(tensor.New(tensor.WithShape(1, c.data.Height, c.data.Width, 3), tensor.WithBacking(mirrored)))
		if err != nil {
			return nil, err
		}
		mean, err := c.ttaForward(sideBySide(f.Float32s(), fm.Float32s(), 1, c.backbone.FeatureDim()))
		if err != nil {
			return nil, err
		}
		p = mean.Float32s()
	}
	if class == -1 {
		class = head.Argmax(p)
	}
	_, grad, err := c.head.LogitGradient(f.Data().([]float32), class)
	if err != nil {
		return nil, err
	}
	s := maps.Shape() // (1, rows, cols, depth)
	heat, err := gradcam.Heatmap(maps.Data().([]float32), s[1], s[2], s[3], grad)
	if err != nil {
		return nil, err
	}
	return &Explanation{Probabilities: p, Class: class, Heatmap: heat, Rows: s[1], Cols: s[2], View: view}, nil
}

// Overlay draws the heatmap over the image (gradcam.Draw, at
// OverlayAlpha): on the region the network was shown, the rest dimmed. It
// draws on View.Image itself, which it returns, so that a photo of tens of
// megapixels is not held twice; later calls return the same picture.
func (e *Explanation) Overlay() (*image.RGBA, error) {
	if !e.drawn {
		if err := gradcam.Draw(e.View.Image, e.View.Box, e.View.Mirrored, e.Heatmap, e.Rows, e.Cols, OverlayAlpha); err != nil {
			return nil, err
		}
		e.drawn = true
	}
	return e.View.Image, nil
}

// maxJPEGSide is the longest side a JPEG can have (its sizes are 16-bit).
const maxJPEGSide = 1<<16 - 1

// FitJPEG returns m, or, where a side is longer than a JPEG can have
// (65535 pixels: the Grad-CAM picture of a long panorama), m scaled down
// to fit (thumbnail: each pixel the mean of those it covers).
func FitJPEG(m *image.RGBA) *image.RGBA {
	if max(m.Rect.Dx(), m.Rect.Dy()) <= maxJPEGSide {
		return m
	}
	return thumbnail(m, maxJPEGSide)
}

// NewWeightsClassifier makes a Classifier of pretrained weights' own
// classifier, the 'predictions' layer of ImageNet weights: a head without
// hidden layers that holds its kernel and bias, so that Explain draws
// Grad-CAM for ImageNet's classes, as Keras' Grad-CAM example does (with a
// linear head, Grad-CAM is the class activation map, CAM). classes names
// the layer's outputs; data says how images are read. Such a Classifier
// has no run: Evaluate is not for it.
func NewWeightsClassifier(w *resnet.Weights, device string, data dataset.Config, classes []string) (*Classifier, error) {
	if w.Classes == 0 {
		return nil, fmt.Errorf("weights %s have no predictions layer (a 'notop' file): they classify nothing", w.Source)
	}
	if len(classes) != w.Classes {
		return nil, fmt.Errorf("weights %s: %d class names for %d classes", w.Source, len(classes), w.Classes)
	}
	h, err := head.New(head.Config{InputDim: w.Arch.FeatureDim(), Hidden: []int{}, Classes: w.Classes})
	if err != nil {
		return nil, err
	}
	if err := h.SetParams([]head.Param{{Name: head.KernelName(0), Value: w.Tensor("predictions/kernel")}, {Name: head.BiasName(0), Value: w.Tensor("predictions/bias")}}); err != nil {
		return nil, fmt.Errorf("weights %s: %w", w.Source, err)
	}
	bb, err := resnet.New(w, device)
	if err != nil {
		return nil, err
	}
	data = data.WithDefaults()
	return &Classifier{Classes: classes, backbone: bb, head: h, data: data}, nil
}
