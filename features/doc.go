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
//	<root>/<key hash>/key.json                     the settings, for people
//	<root>/<key hash>/shard-<16 hex digits>.npy    features (n, F) float32, numpy-loadable
//	<root>/<key hash>/shard-<16 hex digits>.json   the sha256 of each row's image file, and its path;
//	                                               the .npy's sha256, checked when it is read
//
// Images are looked up by the sha256 of their file's bytes, so renaming or
// moving a file keeps its features, and two copies of one image share them.
//
// A shard is named by the first 16 hex digits of the sha256 of its .json,
// so several processes (a learning-rate sweep, predict --evaluate) can add
// to one folder at once: different shards never share a name, and
// processes writing the same shard write the same files. Caches made before
// this numbered their shards (shard-000000, ...); they are read as they
// are, and new shards are added beside them.
//
// An image in several shards (from two paths, or from caches written before
// extraction took the lock below) takes its row from the first shard in
// this order: numbered shards in number order, then the others by name. So
// the row used never depends on the order shards were written or listed in.
//
// # Extracting into a shared folder
//
// An image's features differ in their last bits with the batch they are
// computed in, so each image must be computed once: two rows of it, from
// two processes, would let a reopened cache (a resumed run) read other bits
// than the run that computed one of them trained on. Extraction therefore
// holds the folder's lock, an advisory flock on <root>/<key hash>/extract.lock
// (Cache.Lock; none on platforms without flock), calls Cache.Refresh to see
// the shards others stored meanwhile, and computes only what is still
// missing. Runs started at once on the same data (a learning-rate sweep,
// predict --evaluate during train) wait for one another's extraction and
// then reuse it. Reading (Get) takes no lock, and a run whose images are
// all cached writes nothing, so a complete cache may be shared read-only. The lock file stays in the
// folder; a killed holder's lock goes with its process.
//
// # Crash safety
//
// A shard is written to temporary files, synced, and renamed into place,
// the .json last: a shard exists once its .json does. A run killed during
// extraction keeps every shard it finished and goes on from there. Open
// ignores the leftovers of an unfinished shard (temporary files, an .npy
// without its .json) and removes them once they are ten minutes old: a
// shard is written in well under a second, so a younger leftover may be
// another process's shard in progress.
package features
