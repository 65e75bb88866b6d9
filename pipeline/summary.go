package pipeline

import (
	"fmt"
	"io"

	"gotransfer/model"
	"gotransfer/model/head"
	"gotransfer/model/resnet"
)

// TransferModel is the title of a transfer model's summary.
const TransferModel = "resnet50_transfer"

// TransferLayers lists the layers of a transfer model as Keras'
// model.summary() would for the Keras original: the backbone of plan arch
// without its top, for height x width images, frozen (all its parameters
// non-trainable), global average pooling, then the head's layers.
func TransferLayers(arch *resnet.Arch, height, width int, h *head.Head) []model.Layer {
	layers := arch.Layers(height, width, 0)
	for i := range layers {
		layers[i].NonTrainable = layers[i].Params
	}
	layers = append(layers, model.Layer{Name: "avg_pool", Type: "GlobalAveragePooling2D", Shape: []int{arch.FeatureDim()}})
	return append(layers, h.Layers()...)
}

// WriteTransferSummary prints the layers of a transfer model
// (TransferLayers) and their parameter counts, titled TransferModel.
func WriteTransferSummary(w io.Writer, arch *resnet.Arch, height, width int, h *head.Head) error {
	return model.WriteSummary(w, TransferModel, TransferLayers(arch, height, width, h))
}

// WriteRunSummary prints the model a checkpoint was trained as (path as
// for LoadClassifier), as WriteTransferSummary does: the backbone as the
// run had it (its variant and width), for the run's image size, then the
// checkpoint's head. It reads the checkpoint alone, not the backbone
// weights, which need not be on this machine.
func WriteRunSummary(w io.Writer, path string) error {
	checkpointDir, ck, info, err := readRun(path)
	if err != nil {
		return err
	}
	arch, err := runArch(info)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", checkpointDir, err)
	}
	h, err := runHead(ck, info, arch.FeatureDim())
	if err != nil {
		return err
	}
	size := info.Config.Data.ImageSize
	return WriteTransferSummary(w, arch, size[0], size[1], h)
}

// runArch is the plan of the backbone a run was trained on: of the
// configured variant (random weights are Keras'), of the width whose
// features the run recorded (ResNet50 has 2048 at width 64).
func runArch(info RunInfo) (*resnet.Arch, error) {
	variant := resnet.Variant(info.Config.Backbone.Variant)
	if info.Config.Backbone.Weights == "" {
		variant = resnet.Keras // resnet.Random's
	}
	arch, err := resnet.NewArch(variant, info.FeatureDim*64/2048)
	if err != nil || arch.FeatureDim() != info.FeatureDim {
		return nil, fmt.Errorf("its backbone's %d features are no ResNet50's", info.FeatureDim)
	}
	return arch, nil
}
