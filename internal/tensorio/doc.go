// Package tensorio reads and writes NumPy .npy and .npz files as
// gorgonia.org/tensor values.
//
// It is the project's one way in and out of NumPy's formats: weights
// (.npz archives keyed by Keras weight names), golden references in tests,
// the feature cache and checkpoints all go through it. It reads the .npy
// header itself, versions 1 to 3 as NumPy writes and reads them
// (codeberg.org/sbinet/npyio's reader, which it used before, panics on
// malformed headers and misreads some valid ones; the model/head golden
// test still reads its .npz with npyio), and adds what those callers need:
//
//   - float32 and float64 arrays in C or Fortran order are accepted; every
//     array comes back as a C-ordered float32 *tensor.Dense;
//   - the shape in a header is checked against the bytes actually present
//     before anything is allocated, so a corrupt or hostile header cannot ask
//     for gigabytes (where the size is unknown, memory grows with the data
//     actually read), and data the header does not account for is refused;
//   - errors name the file and the array.
//
// Arrays of other types (integers, objects, strings) are rejected with an
// error rather than read, because nothing in the project stores them.
package tensorio
