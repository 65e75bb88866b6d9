// Package dataset turns a folder of labeled images into batches of network
// inputs: streaming, with bounded memory, deterministic given a seed, and
// robust to messy folders (bad files are skipped and reported, never fatal).
//
// # Layout and labels
//
// Images live in Root/<class>/**/<file>. [Scan] lists them without reading
// them:
//
//   - Extensions are those Keras' image_dataset_from_directory accepts, in any
//     case (.jpg .jpeg .png .gif .bmp), plus .webp, .tif and .tiff as
//     torchvision's ImageFolder; other files are not read, and counted by
//     extension (Index.Ignored: a class of .heic phone photos says so). The
//     format is then detected from the contents, so a PNG named .jpg is
//     fine.
//   - Class names are the sorted non-hidden sub-folders of Root (Keras' order),
//     unless [Config].Classes lists them (which fixes the order; other
//     folders are ignored). Label i is Classes[i].
//   - Hidden files and folders (name starting with ".") are ignored.
//   - Symbolic links are ignored unless FollowSymlinks is set; then each
//     folder is walked at most once per class (by real path), which stops
//     loops.
//   - Scan fails if Root has fewer than Config.MinClasses classes (two, as
//     training needs, unless set: 1 scores a test folder holding one of a
//     run's classes) or a class has no image file.
//
// # Split and shuffle
//
// A file is in the validation split if u < ValidationSplit, where u in [0, 1)
// is the first 53 bits of sha256(Seed as 8 little-endian bytes || path
// relative to Root). The split of a file therefore depends only on (Seed, its
// relative path): adding images never moves an existing one between training
// and validation, and each class gets ValidationSplit of its files on
// average (stratified in expectation, not exactly). [Shuffle] gives the order
// of an epoch as a pure function of (seed, epoch) (SplitMix64 and
// Fisher-Yates, fixed here, independent of the Go release), so a resumed run
// sees the same order.
//
// Data that comes split already (train/ and validation/ folders) sets
// ValidationRoot instead: it must hold a folder for each class and no other
// (classes not listed in Config.Classes are ignored, as in Root), every
// image of Root is a training image, and the validation samples' paths are
// relative to Root too ("../validation/cats/1.jpg"), so that all samples
// open the same way. The two folders may not overlap.
//
// # Decoding and preprocessing
//
// [Stream] decodes with Config.Workers goroutines (default runtime.NumCPU())
// and yields [Batch] values in exactly the order of the samples it is given,
// whatever the number of workers. Besides the batch being filled, at most
// 2*Workers+2 decoded images wait in memory, so memory stays flat whatever
// the dataset size; a consumer done with a batch may call [Batch.Release] to
// recycle its memory for a later batch (optional; it saves a large
// allocation per batch and keeps the peak RSS lower and steadier). For each
// file it:
//
//  1. reads the bytes and computes their sha256 (Batch.Digests; a feature
//     cache downstream is keyed by image bytes);
//  2. reads the header only (image.DecodeConfig; libjpeg-turbo's for the JPEG
//     layouts Go's decoder lacks) and skips images of more than
//     Config.MaxPixels pixels (default 50 megapixels) before decoding any;
//  3. decodes JPEG, PNG, GIF (first frame), BMP, WebP or TIFF and converts to 8-bit
//     RGB: grayscale, palette, CMYK/YCCK JPEG, 16-bit (high byte kept) and
//     alpha images; alpha is dropped and colours are kept un-premultiplied,
//     as PIL's convert("RGB") does (a GIF's transparent pixels keep their
//     colour from the table). Lossy WebPs convert their YCbCr as libwebp
//     does (chroma upsampling, VP8's limited range): PIL's pixels. Colour,
//     grey, CMYK and YCCK JPEGs (not RGB-coded ones, Adobe transform 0,
//     which Go's decoder reads) decode with libjpeg-turbo (cgo, linked
//     statically on Linux) with its defaults (accurate integer IDCT, smooth
//     chroma upsampling), as PIL does: PIL's pixels, bit for bit, and 2-4x
//     faster than Go's image/jpeg on large photos. 4-component JPEGs decode
//     to CMYK (libjpeg converting YCCK), taken as Adobe's inverted CMYK
//     whatever their markers say and converted to RGB with PIL's
//     arithmetic, as PIL's JPEG plugin and convert("RGB") do; libjpeg-turbo
//     also reads the CMYK files PIL writes with subsampling and those
//     without an Adobe marker, which Go's decoder refuses. TensorFlow's
//     decode_image (Keras' image_dataset_from_directory) picks the fast
//     integer IDCT instead: about a level apart on average, up to ~11 on a
//     high-quality 4:4:4 photo. Any JPEG libjpeg-turbo warns about (bytes
//     after the scan, a premature end) goes to Go's decoder, which decides
//     (it upsamples subsampled chroma without smoothing, over 10 levels
//     from PIL at edges, 33 on a YCCK photo). With
//     FastJPEG, libjpeg-turbo decodes a large JPEG at 1/2, 1/4 or 1/8 scale
//     in the DCT domain, the smallest that still leaves Height x Width
//     (after the EXIF rotation): about twice as fast on 12-megapixel photos,
//     no longer Keras' pixels;
//  4. applies the JPEG EXIF orientation (parsed from the APP1 segment),
//     unless IgnoreEXIF is set (Keras ignores it);
//  5. optionally centre-crops to the target aspect ratio (CropToAspectRatio,
//     as Keras' crop_to_aspect_ratio);
//  6. optionally cuts a random crop out of that (RandomCrop: one copy of
//     PyTorch's RandomResizedCrop, drawn from the seed, the file's sha256
//     and the copy number, so the same every time);
//  7. resizes to Height x Width (default 224x224) bilinearly with half-pixel
//     centres and no antialiasing, as tf.image.resize (and PyTorch's
//     interpolate with align_corners=False) do, and applies the
//     preprocessing in the same pass:
//     "caffe" (default; Keras ResNet50): RGB->BGR, minus 103.939, 116.779,
//     123.68; "torch": /255, minus mean (0.485, 0.456, 0.406), divided by std
//     (0.229, 0.224, 0.225); "none": RGB in 0..255;
//  8. optionally mirrors the result left to right (HorizontalFlip, or
//     RandomCrop.Flip on a coin of the crop's draw).
//
// Batch.Images is a *tensor.Dense of float32, shape (N, Height, Width, 3)
// (NHWC), with Labels, Paths (relative to Root) and Digests alongside. [Load]
// does the same for one file, for prediction on single images.
//
// # Bad files
//
// Empty, truncated, corrupt, not-an-image-despite-the-extension, unsupported
// or too large files, and files that cannot be read, are skipped: their error
// wraps [ErrBadImage] and its message is the reason. Stream records each in a
// [SkipLog], which records it once however many epochs meet it, logs the
// first [MaxLogged] (log/slog, Warn; then one line that the others are not
// logged) and writes a JSON-lines report of all with [SkipLog.WriteReport]. A stream ends
// with an error wrapping [ErrNoUsableImages] only if every sample of some
// class was skipped. [Check] scans and decodes everything once and returns a
// printable [Summary] (classes, usable images per class and split, skipped
// files with reasons, files with the same bytes as another, across the
// split or the classes): what `train --check-data` shows. It also returns an
// error wrapping ErrNoUsableImages for a class with no usable image, or
// with none for training (the split put them all in validation), which
// training refuses.
//
// # Synthetic data
//
// [Synthesize] writes a deterministic two-class dataset (cats: soft blobs
// with no edges; dogs: large rectangles of coarse high-contrast checks;
// random colours, positions, sizes, image sizes, JPEG or PNG) for tests,
// smoke runs and demos. The classes differ by texture even after resizing to
// 64x64, so that the features of a random backbone separate them too. The
// command `go run ./scripts/synthdata -out DIR -n N -seed S` wraps it.
//
// # Speed and memory
//
// BenchmarkDecodeResize (one worker) and BenchmarkStream (all CPUs) measure
// read + sha256 + decode + resize + preprocess of 500x375 JPEGs, the typical
// Kaggle Dogs vs Cats size, in images/s:
//
//	go test ./dataset -run '^$' -bench . -benchtime 400x
//
// scripts/dataset_rss.sh checks that the peak RSS of streaming 10,000 images
// is within 10% of that for 1,000 (medians of 3 runs each, through the
// TestStreamRSS helper, which is skipped in ordinary test runs).
package dataset
