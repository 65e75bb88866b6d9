// Package model holds what the networks of this project share; the networks
// themselves live in its sub-packages:
//
//   - model/resnet: the frozen ResNet50 feature extractor (weights loading
//     with BatchNorm folding, and the CPU engine; the CUDA engine with
//     -tags gotransfer_cuda);
//   - model/head: the trainable dense classifier on top of the features,
//     built on gorgonia, with the project's own Adam;
//   - model/gradcam: Grad-CAM heatmaps, where a classifier found the
//     evidence for a class, and their drawing over the image;
//   - model/onnx: the export of the backbone and head to ONNX;
//   - model/imagenet: the 1000 ImageNet class names, for the pretrained
//     network's own predictions.
//
// This package itself describes layers for Keras-like summaries: each
// network lists its layers as Layer values and WriteSummary prints them as
// Keras' model.summary() does, so `predict --summary` and `train --summary`
// show one familiar table.
package model
