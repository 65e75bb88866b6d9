// Package hdf5 reads the subset of HDF5 that h5py writes with its default
// settings, enough for Keras' HDF5 weight files: groups, string
// attributes and float datasets. Pure Go, read-only, no libhdf5.
//
//	f, err := hdf5.Open("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
//	layers, err := f.Root().Attr("layer_names")
//	d, err := f.Root().Dataset("conv1_conv/conv1_conv/kernel:0")
//	values, err := d.Float32s() // row-major, of shape d.Shape()
//
// # Supported
//
//   - Superblock versions 0 and 1 (h5py's default, libver 'earliest') and
//     2 and 3 (libver 'latest'), with 8-byte addresses and lengths; a user
//     block before the superblock.
//   - Object headers of version 1 and 2 ("OHDR"), continuation blocks
//     followed. Checksums are not verified.
//   - Old-style groups: a symbol table message, a version 1 B-tree of any
//     depth, symbol table nodes, names in the local heap. New-style
//     compact groups: link messages in the object header. Hard links only.
//   - Datasets of little-endian IEEE float32 or float64 (read as float32),
//     any rank, in contiguous or compact layout (data layout message
//     versions 1 to 4); dataspace messages versions 1 and 2.
//   - Attributes (attribute message versions 1 to 3) of fixed-length
//     strings, or variable-length strings from the global heap: scalars or
//     arrays, read as []string. An empty attribute of any type reads as
//     no strings.
//
// # Not supported
//
// Anything else gets an error that names the file, the object and what is
// not supported: chunked (hence compressed) and virtual layouts, external
// storage, integer, big-endian, compound and other datatypes, shared or
// committed datatypes, soft and external links, and dense link or
// attribute storage (fractal heaps, used by libver 'latest' files for
// groups of more than 8 members or objects of more than 8 attributes).
//
// Keras' habit of splitting an attribute too big for an object header
// into name0, name1, ... is the caller's business: here they are separate
// attributes.
//
// # Robustness
//
// Every address and length read from the file is checked against the file
// size before it is used or anything is allocated, and walks over B-trees
// and continuation blocks stop on loops, so a truncated or corrupt file
// gives an error, never a panic or an allocation beyond the file's size.
// The tests truncate and change the golden files byte by byte; FuzzWalk
// goes further with go test -fuzz.
//
// Errors read "hdf5: FILE: OBJECT: what", for example
// "hdf5: x.h5: dataset conv1/kernel:0: chunked layout is not supported";
// those for a missing member or attribute match ErrNotFound, those for
// what this package does not read ErrUnsupported.
package hdf5
