// Package pipeline trains a classifier on a labelled image folder: it ties
// the dataset, the frozen backbone, the feature cache, the head and the
// checkpoints together.
//
// Data flows
//
//	dataset (scan, split, decode, preprocess)
//	  -> model/resnet (frozen ResNet50 features)
//	  -> features (on-disk cache, keyed by image bytes, preprocessing, weights)
//	  -> model/head (dense head, Adam or SGD)
//	  -> checkpoints (npy folders, atomic)
//
// Train runs all of it from a configs.Config. Features are extracted once:
// a first run pays the backbone for every image, later epochs and later
// runs (another head, another learning rate) read the cache. Extraction is
// resumable shard by shard, training step by step: a run killed at any
// moment and resumed ends with the same bytes as one never interrupted.
// The Trainer does what Keras' fit does with its usual callbacks: Adam
// (with weight decay) or SGD (PyTorch's, with momentum), label smoothing,
// dropout, class weights, early stopping, ReduceLROnPlateau or a
// learning-rate schedule (on the rate of the optimizer in use), a
// checkpoint at every epoch's end (or every so many steps) and one when
// interrupted. A checkpoint names its optimizer and holds its state; a
// resume with another optimizer is refused. Options.FindLR runs the
// learning-rate range test (LRFinder) on the same features instead.
//
// LoadClassifier puts a trained run back together from a checkpoint (or
// the run folder: its best checkpoint), reading only the head's parameters
// and finding the backbone weights it was trained with (where training
// read them, beside the checkpoints for a run moved to another machine, or
// where ClassifierOptions.Weights says; always checked by their sha256):
// Predict and PredictFolder classify image files, Decode and PredictPixels
// images that are not files (an HTTP service batches requests with them),
// Evaluate scores a labelled folder (Keras' evaluate, with the top-5
// accuracy for more than 5 classes, plus per-class precision, recall and
// F1, the confusion matrix and every image's scores; a class without a
// folder there is scored with no images); with ClassifierOptions.TTA all
// of them average each image's probabilities with its mirror image's. Explain computes an image's Grad-CAM heatmap (model/gradcam):
// where the backbone's last feature maps hold the evidence for a class.
// ExportONNX writes the same classifier as an ONNX model (model/onnx),
// resizing and preprocessing included.
//
// The run folder holds:
//
//	config.yaml          the configuration of the run's latest start
//	checkpoints/         step-NNNNNN folders, and the links last and best
//	metrics.jsonl        one line per epoch: losses, accuracies, the validation ROC AUC
//	                     (two classes), the validation top-5 accuracy (more than 5
//	                     classes), learning rate, speed
//	metrics.csv          the same as CSV, like Keras' CSVLogger (epochs from 1)
//	metrics.png          the loss and accuracy curves (and the learning rate, if it changed)
//	tensorboard/         the same per epoch as TensorBoard event files, train/ and
//	                     validation/ as Keras' TensorBoard callback writes them
//	confusion.txt        the validation confusion matrix at the end, and per-class
//	                     precision, recall and F1, with the accuracy and their macro
//	                     and weighted averages
//	confusion.png        the same matrix drawn, each cell's count and share of its row
//	roc.png              the validation ROC curve of class 1, for two classes
//	mistakes.png         the 16 most confident validation mistakes, the pictures with
//	                     their true and predicted classes (none: no file)
//	skipped.jsonl        the image files that could not be used, and why
//	backbone.npz         the calibrated random weights, for runs without backbone.weights
//	lr_find.png, .csv    the learning-rate range test (train --find-lr)
//	train.lock           flock'ed by the training running in the folder, so that a
//	                     second is refused; it stays after (never delete it: a new file
//	                     could be locked while the old one is held); --find-lr takes
//	                     no lock; without flock (Windows) nothing is refused
package pipeline
