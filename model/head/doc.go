// Package head is the trainable part of the transfer-learning pipeline: a
// dense classifier on frozen ResNet50 features, built as a gorgonia
// expression graph and trained with the project's own Adam or SGD.
//
// # The network
//
// The head is the one of the Keras original:
//
//	features (N, D) → Dense(h1, ReLU) → … → Dense(hk, ReLU) → Dense(C) → softmax
//
// with D = 2048 (ResNet50's pooled features), hidden widths 1024, 1024, 1024,
// 512 and C classes by default: 4,723,202 trainable parameters for two
// classes, as Keras' model.summary() counts them. The loss is the softmax
// cross-entropy computed from the logits (with a max-shifted log-sum-exp),
// averaged over the batch.
//
// # Label smoothing and class weights
//
// The loss of row i is Σ_j t_ij·(logsumexp(z_i) − z_ij) for a target row
// t_i, whose gradient is p_ij·Σ_k t_ik − t_ij: the targets carry both
// settings. SetLabelSmoothing(ε) makes them y·(1−ε) + ε/C (y one-hot),
// as Keras' CategoricalCrossentropy(label_smoothing=ε) and PyTorch's
// CrossEntropyLoss(label_smoothing=ε); TrainStep and Evaluate both use
// them (Keras' validation loss is the compiled, smoothed loss), Forward,
// predictions and accuracies do not depend on them. SetClassWeights(w)
// multiplies a training row's targets by w[y_i], so the batch loss is
// (1/N) Σ_i w[y_i]·loss_i: Keras' class_weight, smoothing included.
// PyTorch's CrossEntropyLoss(weight=w, label_smoothing=ε) differs on two
// counts, and is not what the head computes: it weighs the smoothing term
// of class j by w[j] rather than by the label's weight, and its mean
// divides by Σ_i w[y_i] rather than by N. The project's class weights were
// Keras' before smoothing existed; following PyTorch for the smoothing
// term alone would match neither framework. Without class weights the two
// frameworks agree, and so does the head.
//
// # Dropout
//
// With Config.Dropout = rate > 0, training multiplies each hidden layer's
// ReLU output by a mask, as Keras' Dropout(rate) after each hidden Dense
// (not on the input features, not on the logits): a unit is dropped (0)
// with probability rate and kept scaled by 1/(1−rate) (inverted dropout),
// so Forward and Evaluate, which never drop, need no rescaling. The mask of
// hidden layer l in the step the optimizer takes from step s is a pure
// function of (Config.Seed, s, l, unit): element i of the row-major (N,
// width) mask takes the i-th draw of a PCG seeded with (Config.Seed, a
// dropout constant mixed with s and l). A head and optimizer restored from
// a checkpoint (Adam's step included) therefore draw the same masks, and a
// resumed run stays bit for bit the same, provided the head has the same
// seed. The dense operator applies the mask after its ReLU and its
// gradient operator multiplies by it; the masks live in the training
// graph, filled before each run, so they cost no allocation.
//
// Parameters are named as Keras names them, "dense_0/kernel" (shape (in,
// out)), "dense_0/bias" (shape (out)), …, "dense_K/kernel" and "dense_K/bias"
// for the output layer; Params lists them in that order, and SetParams loads
// them back with their names and shapes checked. These are the names of the
// golden references in /work/shared/golden/head_d64 and of the checkpoints.
//
// # Initialization
//
// Kernels start Glorot-uniform and biases at zero. The draws come from one
// math/rand/v2 PCG stream seeded with (Config.Seed, 0x676f7472616e7366),
// layer by layer, each kernel in row-major order; each element takes one
// Float64 u and becomes float32((2u−1)·sqrt(6/(fan_in+fan_out))). The same
// seed always gives the same weights.
//
// # Gorgonia graphs
//
// gorgonia graphs have fixed shapes and batches do not (the last batch of an
// epoch is smaller), so the head builds one graph per batch size and mode
// (training, or inference for Forward and Evaluate), compiles it into a
// TapeMachine and caches it (the 8 most recently used). Every graph's
// parameter nodes are bound to the head's own parameter tensors, so all of
// them see the same weights without copying.
//
// The graph is made of the operators of this package, which implement
// gorgonia.Op and gorgonia.SDOp: a dense layer with its activation fused
// (y = relu(x·W + b)), and the softmax cross-entropy. gorgonia.Grad builds the
// backward graph from their symbolic derivatives and the tape machine runs
// forward and backward passes in one go. The custom operators are there for
// speed and memory: each one owns its output buffer, allocated when its graph
// is built, so a warm TrainStep allocates no tensor (gorgonia's built-in
// operators allocate their outputs on every run of a machine); the first
// layer's input gradient, which nothing needs, is never computed; and the
// cross-entropy does not go through tensor's LogSoftMax, which shifts every
// row by the first row's maximum. All the gradients of the kernels and biases
// are written into one set of tensors shared by the graphs, which is what
// the optimizer reads (Grads shows them).
//
// Matrix products go through gorgonia.WhichBLAS(): gonum's pure-Go BLAS by
// default, OpenBLAS once a command calls gorgonia.Use(openblas.Implementation{})
// (see gotransfer/internal/openblas).
//
// # Adam
//
// Adam follows the Keras formula (lr 1e-3, beta1 0.9, beta2 0.999, epsilon
// 1e-7 by default; see Adam for the update). AdamConfig.WeightDecay adds the
// decoupled weight decay of Keras 3's Adam(weight_decay=...) and PyTorch's
// AdamW: before the update every parameter w, kernels and biases alike,
// becomes w − lr·weight_decay·w, with the learning rate in use (a schedule
// that lowers it lowers the decay too). gorgonia's own AdamSolver keeps
// its moments and step private, so it could never be checkpointed; this one
// exports them: Step, Moments and State (named "adam_m/<param>" and
// "adam_v/<param>"), and SetState to restore them. A head restored with
// SetParams and an optimizer restored with SetState continue bit for bit as
// if training had never stopped. The update is element-wise and split across
// GOMAXPROCS goroutines; the split does not change the result.
//
// # SGD
//
// SGD follows PyTorch's torch.optim.SGD (without dampening): the gradient
// g becomes g + wd·w (SGDConfig.WeightDecay, coupled: an L2 penalty, not
// AdamW's decoupled decay), then with momentum μ > 0 the buffer b = μ·b + g
// (zero at first, which is PyTorch's b = g at the first step) replaces it,
// or g + μ·b with Nesterov momentum, and w becomes w − lr·g. The defaults
// are Keras' SGD's: lr 0.01, no momentum (PyTorch has no default rate;
// its transfer-learning tutorial uses lr 0.001 and momentum 0.9). Its state
// is the momentum buffers, "sgd_momentum/<param>" (none without momentum),
// and its step, which picks the dropout masks as Adam's does. Against
// testdata/sgd_ref.py's float64 torch.optim.SGD trajectories the weights
// agree to about 3e-7 of each tensor's largest magnitude.
//
// Both optimizers implement Optimizer, which TrainStep takes: a name, the
// learning rate (LR, SetLR, for the schedules), the step, and the state
// with SetState for checkpoints. Their element-wise updates are written in
// C (adam_kernel.go, sgd_kernel.go) where cgo and amd64 are there, so that
// they run 8 floats at a time (Go computes Adam's square root and division
// one at a time: they were 40% of a batch-32 step), with every operation
// rounded as the Go formula rounds it (no fused multiply-add): the same
// bits, which TestAdamKernelBits and TestSGDKernelBits check against the
// formula in Go; elsewhere the Go loops run.
//
// # Numerics
//
// Everything is float32 except the step size of Adam and the log-sum-exp of
// the loss, which are computed in float64. Against the float64 PyTorch
// reference of head_ref.py (40 Adam steps of a 64-32-32-32-16-2 head) the
// losses agree to about 4e-7 relative and the final weights and moments to
// about 1e-5 of each tensor's largest magnitude.
//
// # Input gradients
//
// LogitGradient runs one feature vector forward and back, outside the
// gorgonia graphs, in float64: the logits and the gradient of one class's
// logit with respect to the features, which Grad-CAM (model/gradcam) needs
// and training never computes. A test holds it against central differences
// of Forward.
//
// # Concurrency and errors
//
// A Head's methods may be called from several goroutines; they run one at a
// time. An optimizer must not be shared between goroutines. Errors name what was
// wrong with which input; gorgonia panics while building or running a graph
// are recovered and returned as errors.
package head
