// Package resnet is a frozen ResNet50 backbone: its weights (loading,
// checking, BatchNorm folding) and the engines that run it.
//
// # Variants
//
// Two flavours of ResNet50 are supported, told apart by Variant:
//
//   - Keras: keras.applications.ResNet50 ("v1"). A stage's stride sits on
//     its first block's first 1x1 convolution; convolutions have a bias;
//     BatchNorm epsilon 1.001e-5; inputs 'caffe'-preprocessed (BGR, minus
//     the ImageNet means).
//   - Torchvision: torchvision.models.resnet50 ("v1.5"). The stride sits on
//     the first block's 3x3 convolution (the projection shortcut keeps it
//     too); convolutions have no bias; BatchNorm epsilon 1e-5; inputs
//     'torch'-preprocessed (RGB/255, minus the ImageNet mean, over its
//     standard deviation). Variant.Preprocess says which.
//
// Both are described by an Arch and held by Weights under one naming
// scheme, Keras': torchvision's names are mapped on import.
//
// # Weights files
//
// Load reads the project's .npz, PyTorch .pth and Keras .h5 files, told
// apart by their content.
//
// The .npz holds one float32 (or float64) array per weight, keyed by Keras
// weight name: conv1_conv/kernel (7, 7, 3, 64) in HWIO layout,
// conv1_conv/bias, conv1_bn/{gamma,beta,moving_mean,moving_variance}, and so
// on through conv5_block3_3_bn, a block's projection shortcut being
// convS_block1_0_{conv,bn}; and, with the ImageNet top,
// predictions/kernel (2048, classes) and predictions/bias. Width 64 is the
// real network; narrower stems (as in the test goldens) scale every layer.
// A torchvision file has no _conv/bias arrays (all-zero ones are accepted
// and dropped) and holds the marker array "variant/torchvision" (float32,
// [1]); a file without a marker is Keras. numpy reads it as any .npz.
//
// A .pth is a torchvision ResNet50 state dict as torch.save writes it, in
// the zip format of PyTorch >= 1.6 or the older single-file format:
// torchvision's own resnet50-0676ba61.pth (IMAGENET1K_V1) and
// resnet50-11ad3fa6.pth (IMAGENET1K_V2), or a fine-tuned model's
// model.state_dict() (also inside a checkpoint's "state_dict" or "model"
// entry, and with nn.DataParallel's "module." prefix). The pickle in it is
// interpreted, never executed: only dicts and tensors can be built, every
// length is checked against the bytes present, and no tensor data is read
// before every name and shape has been checked against the architecture.
// Weights.Save writes the .npz of any weights, so a .pth needs reading
// only once.
//
// A .h5 is a Keras ResNet50 in Keras' legacy HDF5 weights layout (what
// save_weights writes, and what keras.applications downloads): both
// official releases of resnet50_weights_tf_dim_ordering_tf_kernels{,_notop}.h5,
// or a whole model saved with model.save (its model_weights group). The
// root attribute layer_names lists the layers; each layer's group has an
// attribute weight_names (either attribute may be split into name0,
// name1, ...) naming its datasets. The older release's Caffe-style layer
// names (conv1, bn_conv1, res2a_branch2a, bn2a_branch1, fc1000) and Keras 1
// weight names (W, b, running_mean, running_std) are mapped to today's;
// a weight's role comes from its name, or from its position where the
// names say nothing, as in Keras' own loader. The file is read by
// internal/hdf5, a pure-Go reader of the HDF5 subset h5py writes by
// default; chunked (compressed) datasets and other unsupported structures
// are refused with an error naming the object.
//
// The scripts export_keras_resnet50.py and export_torchvision.py write the
// .npz from Keras' .h5 files and from a .pth with Python; neither is needed
// to load them. keras_h5.go is the reference for the .h5 mapping, which the
// Python exporter mirrors (a test checks they agree).
package resnet
