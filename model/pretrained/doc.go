// Package pretrained finds the published ImageNet weights of ResNet50 by
// name and downloads them once, as keras.applications and torchvision do.
//
// # Names
//
// A configuration's backbone.weights (and predict's --weights) may name
// published weights instead of a file:
//
//   - "imagenet": Keras' ResNet50 (keras.applications, 'caffe'
//     preprocessing) with backbone.variant keras, its _notop file for
//     training and the full one (with the ImageNet classifier) for
//     predict's ImageNet classes; torchvision's IMAGENET1K_V2 with
//     backbone.variant torchvision (torchvision's DEFAULT);
//   - "IMAGENET1K_V1", "IMAGENET1K_V2": torchvision's two releases.
//
// Files lists them, with where they are published and their digests.
//
// # Where the files go
//
// A Fetcher looks for the file, by its published name, in its folder (by
// default the user's cache folder, ~/.cache/gotransfer/weights on Linux)
// and then in the folders where Keras and PyTorch keep what they download
// ($KERAS_HOME/models or ~/.keras/models; $TORCH_HOME/hub/checkpoints or
// ~/.cache/torch/hub/checkpoints), so that weights a Keras or PyTorch
// program fetched already are used as they are. A file whose digest is not
// the published one is passed over (with a warning).
//
// Otherwise it downloads the file into its folder: into name.part first,
// resumed from where it stopped when a download was interrupted (an HTTP
// range request; a server that ignores it sends the whole file again),
// then checked against the published digest (the md5 Keras checks, the
// sha256 prefix torch.hub checks) and renamed into place, so a file under
// its published name is always whole. A file that fails the check is
// removed. Processes that need the same file at once take turns (a lock
// file beside it) and the later ones find it downloaded.
//
// GOTRANSFER_WEIGHTS_MIRROR=URL fetches URL/<published name> instead of the
// publisher's address (an internal mirror for machines without internet
// access); the digests are checked all the same. On a machine with no
// access at all, copy the file into the folder or give its path instead
// of a name.
package pretrained
