// Package onnx exports a ResNet50 and its trained dense head as an ONNX
// model, so that a classifier trained here runs wherever ONNX Runtime (or
// TensorRT, OpenVINO, onnxruntime-web, ...) does.
//
// # The model
//
// One input, "images": a float32 (N, H, W, 3) batch of decoded RGB images
// of any size (the same within a batch), values 0-255, rotated as their
// EXIF orientation says where the run did so (dataset's default). The
// graph then does the rest:
//
//	images → Transpose             to NCHW
//	       → Slice                 the centred box of the run's aspect ratio,
//	                               if it cropped (Keras' smart_resize)
//	       → Resize                to the run's size: bilinear, half-pixel
//	                               centres, no antialiasing (dataset's resize,
//	                               tf.image.resize's)
//	       → Mul, Add, Gather      the preprocessing ('caffe': BGR minus the
//	                               ImageNet means; 'torch': /255, minus mean,
//	                               over std)
//	       → Conv, Relu, MaxPool   the stem, BatchNorm folded into the Conv
//	       → 16 bottleneck blocks  Conv, Relu, Add, Relu
//	       → GlobalAveragePool, Flatten        output "features" (N, 2048)
//	       → Gemm, Relu, ..., Gemm, Softmax    output "probabilities" (N, classes)
//
// "probabilities" comes from the trained head (Model.Head) or, without
// one, from the weights' ImageNet predictions layer; weights with neither
// give "features" only. The class names go into the model's metadata
// (class_0, class_1, ...).
//
// Operator set 13, IR version 7. The tests run the exports with ONNX
// Runtime (internal/ortrun; CI pins 1.30, and 1.11 passes them too) and
// hold them against Keras' and torchvision's float64 references, and
// against predict on images of several sizes, cropped or not. The resize
// is done in NCHW: ONNX Runtime's NHWC linear resize gave wrong numbers,
// or crashed, before 1.12.
//
// # Encoding
//
// The protobuf is written directly with protowire (field numbers from
// onnx.proto), weights as raw little-endian initializers streamed from
// their tensors: no ONNX or protobuf code generation is needed, and the
// model is never held in memory twice. The file is the size of the
// weights: about 113 MB for the full network with the default head.
package onnx
