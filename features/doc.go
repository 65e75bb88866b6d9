// Package features is the on-disk cache of backbone features.
//
// The backbone is frozen, so an image's features depend only on the image's
// bytes, the preprocessing and the weights. The cache stores them once and
// every later epoch, and every later run with another head or learning
// rate, reads them instead of running ResNet50 again. A Keras or PyTorch
// user who follows the usual tutorial pays the backbone on every epoch; here
// only the first run pays it.
//
// # Layout
//
// A cache root holds one folder per Key (weights digest and preprocessing
// settings), named by the key's hash:
//
//	<root>/<key hash>/key.json           the settings, for people
//	<root>/<key hash>/shard-000000.npy   features (n, F) float32, numpy-loadable
//	<root>/<key hash>/shard-000000.json  the sha256 of each row's image file, and its path
//
// Images are looked up by the sha256 of their file's bytes, so renaming or
// moving a file keeps its features, and two copies of one image share them.
//
// # Crash safety
//
// A shard is written to temporary files, synced, and renamed into place,
// the .json last: a shard exists once its .json does. A run killed during
// extraction keeps every shard it finished and goes on from there; the
// leftovers of an unfinished shard are removed when the cache is opened.
package features
