// Package checkpoints saves and restores training state as folders of NumPy
// .npy files, written atomically and verified when read.
//
// # Layout
//
// A checkpoint is a folder holding one .npy file per tensor and a JSON
// manifest:
//
//	step-000123/
//	  manifest.json
//	  run.yaml                    the run's configuration (Manifest.Run), if given
//	  dense_0/kernel.npy          head parameters, under their Keras names
//	  dense_0/bias.npy
//	  …
//	  adam_m/dense_0/kernel.npy   Adam's first moments
//	  adam_v/dense_0/kernel.npy   Adam's second moments
//	  …                           (or sgd_momentum/…: SGD's momentum buffers)
//
// A tensor named "a/b/c" is stored in a/b/c.npy (FilePath): the names are
// the folder structure, so `numpy.load("step-000123/dense_0/kernel.npy")`
// works and a name maps to one file without escaping rules. Names are
// slash-separated components of letters, digits, '_', '-' and '.'. The
// files are .npy version 1.0, little-endian float32 in C order, the header
// padded to 64 bytes as NumPy pads it (written by gotransfer/internal/tensorio).
//
// manifest.json holds the format version, the epoch, the global step, the
// step within the epoch, the optimizer's step, the seed, the class names,
// the hash of the configuration, metrics such as "val_loss", and for every
// tensor its name, file, shape and the sha256 of the file, and the sha256 of
// run.yaml. Scalars live in the manifest, not in .npy files.
//
// # Writing atomically
//
// Save writes everything into a temporary folder next to the target (same
// parent, so on the same file system), syncs every file and folder, renames
// the temporary folder to the target and syncs the parent. A checkpoint
// folder therefore either does not exist or is complete: a crash, a full
// disk or an unwritable folder leaves at most a temporary folder behind
// (names starting with ".tmp-"), which a Manager removes, and never touches
// the previous checkpoints.
//
// # Reading and verifying
//
// Load reads the manifest strictly (unknown fields are errors), checks the
// sha256 of every file, parses each .npy and compares its shape with the
// manifest, and refuses files the manifest does not list. The first failure
// is returned as one error naming the checkpoint and the file, e.g.
//
//	checkpoint runs/x/checkpoints/step-000400: file dense_0/kernel.npy: sha256 9f…, manifest says 3c…: the file is corrupt or truncated
//
// LoadTensors reads and verifies only the tensors it is asked for (a
// trained head's parameters for prediction, not the optimizer's state,
// which is twice their size and may be missing from a copied run); the
// manifest and the check for unlisted files are the same.
//
// A round trip is exact: Load then Save writes byte-identical files, and
// every float32 (NaN payloads and signed zeros included) comes back with the
// same bits.
//
// # Manager
//
// A Manager looks after <run>/checkpoints: Save names each checkpoint after
// its global step (step-000123; the caller decides when to save: every N
// steps and at each epoch end), keeps the Keep newest and the best one by a
// metric (val_loss by default, lower is better; the best is never deleted),
// and maintains two symbolic links, "last" to the newest checkpoint and
// "best" to the best one, each replaced atomically (a new link under a
// temporary name renamed over the old). Saving the step that was just saved
// again (an epoch that ends on a checkpoint step) replaces that checkpoint,
// on Linux with one renameat2(RENAME_EXCHANGE) so the name never goes
// missing. Old checkpoints are renamed away before they are deleted, so a
// half-deleted folder never looks like a checkpoint.
//
// Latest returns the newest checkpoint: the one "last" names if it is
// complete, otherwise the complete checkpoint of the highest step, after
// removing the leftovers of interrupted saves. Best does the same for
// "best". With no checkpoint both return an error wrapping
// ErrNoCheckpoint, but where step folders whose manifest does not read
// are there (damaged since: Save leaves none), Latest returns the newest
// one's error instead, so that a resume does not take damage for a fresh
// start. LatestIntact returns the checkpoint to resume from: the newest
// that loads and verifies whole, with the newer ones that do not (damaged
// since they were written); SetAside renames such a one to
// corrupt-step-NNNNNN, out of the manager's sight (Keep never deletes it),
// and points the links at what is left.
package checkpoints
