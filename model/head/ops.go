package head

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"
	"slices"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// This file holds the gorgonia operators of the head. Each one implements
// gorgonia.Op; the forward ones (dense, xent) also implement gorgonia.SDOp,
// so gorgonia.Grad builds the backward graph from their SymDiff methods and
// the TapeMachine runs it.
//
// Every operator owns its output tensor, allocated once when the graph for a
// batch size is built, and Do writes into it and returns it: a tape machine is
// Reset before each run, which forgets every register, so operators that
// allocated in Do would allocate every step. The gradient operators of the
// kernels and biases write into the head's gradient tensors, which all the
// graphs share. The operators report CallsExtern() == false so that the
// compiler inserts no alloc instructions in front of them.
//
// Matrix products go through gorgonia.WhichBLAS(), so whatever gorgonia.Use
// installed (OpenBLAS, say) serves the head too.

var (
	tvA    = hm.TypeVariable('a')
	matA   = gorgonia.TensorType{Dims: 2, Of: tvA}
	vecA   = gorgonia.TensorType{Dims: 1, Of: tvA}
	scalar = tensor.ScalarShape()
)

// opBase holds what every operator of the head answers the same way.
type opBase struct {
	name  string       // unique within a graph, e.g. "dense_0/grad_kernel"
	arity int          // number of inputs
	typ   hm.Type      // gorgonia type signature
	shape tensor.Shape // output shape, fixed by the graph's batch size
}

// checkArity reports an error unless n, the number of inputs given to Do
// (what "") or SymDiff (what "symdiff"), is the op's arity.
func (op *opBase) checkArity(n int, what string) error {
	if n == op.arity {
		return nil
	}
	prefix, noun := op.name+": ", "inputs"
	if what != "" {
		prefix += what + ": "
	}
	if op.arity == 1 {
		noun = "input"
	}
	return fmt.Errorf("%swant %d %s, got %d", prefix, op.arity, noun, n)
}

func (op *opBase) Arity() int    { return op.arity }
func (op *opBase) Type() hm.Type { return op.typ }
func (op *opBase) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return op.shape.Clone(), nil
}
func (op *opBase) ReturnsPtr() bool     { return false }
func (op *opBase) CallsExtern() bool    { return false }
func (op *opBase) OverwritesInput() int { return -1 }
func (op *opBase) String() string       { return op.name }
func (op *opBase) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "gotransfer/head.%s%v", op.name, op.shape)
}
func (op *opBase) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

// f32s returns the float32 elements of v after checking that it is a dense
// float32 tensor of the given shape.
func f32s(v gorgonia.Value, want tensor.Shape, op, what string) ([]float32, error) {
	d, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("%s: %s: want *tensor.Dense, got %T", op, what, v)
	}
	if d.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("%s: %s: want float32, got %v", op, what, d.Dtype())
	}
	if !sameShape(d.Shape(), want) {
		return nil, fmt.Errorf("%s: %s: want shape %v, got %v", op, what, want, d.Shape())
	}
	if d.IsView() {
		return nil, fmt.Errorf("%s: %s: views are not supported", op, what)
	}
	return d.Float32s()[:want.TotalSize()], nil
}

func scalarF32(v gorgonia.Value, op, what string) (float32, error) {
	switch d := v.Data().(type) {
	case float32:
		return d, nil
	case []float32:
		if len(d) == 1 {
			return d[0], nil
		}
	}
	return 0, fmt.Errorf("%s: %s: want a float32 scalar, got %T %v", op, what, v, v.Shape())
}

func newF32(shape ...int) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
}

// denseOp computes y = act(x·W + b) for x (n,in), W (in,out), b (out), and
// with a dropout mask m, y = relu(x·W + b) ⊙ m.
type denseOp struct {
	opBase
	n, in, out int
	relu       bool
	needDX     bool          // whether x's gradient is wanted (false for the first layer)
	mask       *tensor.Dense // (n,out) dropout mask (0 or 1/(1−rate)) filled by the head before each run; nil: none
	y          *tensor.Dense // (n,out), owned
	gradW      *tensor.Dense // (in,out), the head's shared gradient of W
	gradB      *tensor.Dense // (out), the head's shared gradient of b
}

// newDenseOp makes a dense layer; mask, if not nil, applies dropout after
// the ReLU (relu must be set).
func newDenseOp(name string, n, in, out int, relu, needDX bool, mask, gradW, gradB *tensor.Dense) *denseOp {
	return &denseOp{
		opBase: opBase{name: name, arity: 3, typ: hm.NewFnType(matA, matA, vecA, matA), shape: tensor.Shape{n, out}},
		n:      n, in: in, out: out, relu: relu, needDX: needDX, mask: mask,
		y: newF32(n, out), gradW: gradW, gradB: gradB,
	}
}

func (op *denseOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	if err := op.checkArity(len(inputs), ""); err != nil {
		return nil, err
	}
	x, err := f32s(inputs[0], tensor.Shape{op.n, op.in}, op.name, "input")
	if err != nil {
		return nil, err
	}
	w, err := f32s(inputs[1], tensor.Shape{op.in, op.out}, op.name, "kernel")
	if err != nil {
		return nil, err
	}
	b, err := f32s(inputs[2], tensor.Shape{op.out}, op.name, "bias")
	if err != nil {
		return nil, err
	}
	y := op.y.Float32s()
	for i := 0; i < op.n; i++ {
		copy(y[i*op.out:(i+1)*op.out], b)
	}
	gorgonia.WhichBLAS().Sgemm(blas.NoTrans, blas.NoTrans, op.n, op.out, op.in, 1, x, op.in, w, op.out, 1, y, op.out)
	if op.relu {
		var m []float32 // nil: no dropout
		if op.mask != nil {
			m = op.mask.Float32s()[:len(y)]
		}
		for i, v := range y {
			switch {
			case v < 0:
				y[i] = 0
			case m != nil:
				y[i] = v * m[i]
			}
		}
	}
	return op.y, nil
}

func (op *denseOp) DiffWRT(int) []bool { return []bool{op.needDX, true, true} }

func (op *denseOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	if err := op.checkArity(len(inputs), "symdiff"); err != nil {
		return nil, err
	}
	gz := grad // gradient with respect to the pre-activation x·W + b
	if op.relu {
		rg := &reluGradOp{
			opBase: opBase{name: op.name + "/relu_grad", arity: 2, typ: hm.NewFnType(matA, matA, matA), shape: tensor.Shape{op.n, op.out}},
			mask:   op.mask, dz: newF32(op.n, op.out),
		}
		var err error
		if gz, err = gorgonia.ApplyOp(rg, output, grad); err != nil {
			return nil, fmt.Errorf("%s: symdiff: %w", op.name, err)
		}
	}
	ret := make(gorgonia.Nodes, 3)
	var err error
	if op.needDX {
		gx := &gradXOp{
			opBase: opBase{name: op.name + "/grad_input", arity: 2, typ: hm.NewFnType(matA, matA, matA), shape: tensor.Shape{op.n, op.in}},
			n:      op.n, in: op.in, out: op.out, dx: newF32(op.n, op.in),
		}
		if ret[0], err = gorgonia.ApplyOp(gx, gz, inputs[1]); err != nil {
			return nil, fmt.Errorf("%s: symdiff: %w", op.name, err)
		}
	}
	gw := &gradWOp{
		opBase: opBase{name: op.name + "/grad_kernel", arity: 2, typ: hm.NewFnType(matA, matA, matA), shape: tensor.Shape{op.in, op.out}},
		n:      op.n, in: op.in, out: op.out, dw: op.gradW,
	}
	if ret[1], err = gorgonia.ApplyOp(gw, inputs[0], gz); err != nil {
		return nil, fmt.Errorf("%s: symdiff: %w", op.name, err)
	}
	gb := &gradBOp{
		opBase: opBase{name: op.name + "/grad_bias", arity: 1, typ: hm.NewFnType(matA, vecA), shape: tensor.Shape{op.out}},
		n:      op.n, out: op.out, db: op.gradB,
	}
	if ret[2], err = gorgonia.ApplyOp(gb, gz); err != nil {
		return nil, fmt.Errorf("%s: symdiff: %w", op.name, err)
	}
	return ret, nil
}

// reluGradOp computes dz = dy ⊙ [y > 0] from the ReLU output y and its
// gradient dy (the gradient at 0 is 0, as in PyTorch and TensorFlow), and
// with a dropout mask m, dz = dy ⊙ m ⊙ [y > 0] (y = relu(z) ⊙ m is positive
// exactly where z is and the unit was kept).
type reluGradOp struct {
	opBase
	mask *tensor.Dense // the forward op's dropout mask; nil: none
	dz   *tensor.Dense
}

func (op *reluGradOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	if err := op.checkArity(len(inputs), ""); err != nil {
		return nil, err
	}
	y, err := f32s(inputs[0], op.shape, op.name, "output")
	if err != nil {
		return nil, err
	}
	dy, err := f32s(inputs[1], op.shape, op.name, "gradient")
	if err != nil {
		return nil, err
	}
	dz := op.dz.Float32s()
	var m []float32 // nil: no dropout
	if op.mask != nil {
		m = op.mask.Float32s()[:len(y)]
	}
	for i, v := range y {
		switch {
		case !(v > 0):
			dz[i] = 0
		case m != nil:
			dz[i] = dy[i] * m[i]
		default:
			dz[i] = dy[i]
		}
	}
	return op.dz, nil
}

// gradXOp computes dx = dz·Wᵀ.
type gradXOp struct {
	opBase
	n, in, out int
	dx         *tensor.Dense
}

func (op *gradXOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	if err := op.checkArity(len(inputs), ""); err != nil {
		return nil, err
	}
	dz, err := f32s(inputs[0], tensor.Shape{op.n, op.out}, op.name, "gradient")
	if err != nil {
		return nil, err
	}
	w, err := f32s(inputs[1], tensor.Shape{op.in, op.out}, op.name, "kernel")
	if err != nil {
		return nil, err
	}
	gorgonia.WhichBLAS().Sgemm(blas.NoTrans, blas.Trans, op.n, op.in, op.out, 1, dz, op.out, w, op.out, 0, op.dx.Float32s(), op.in)
	return op.dx, nil
}

// gradWOp computes dW = xᵀ·dz into the head's gradient of the kernel.
type gradWOp struct {
	opBase
	n, in, out int
	dw         *tensor.Dense
}

func (op *gradWOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	if err := op.checkArity(len(inputs), ""); err != nil {
		return nil, err
	}
	x, err := f32s(inputs[0], tensor.Shape{op.n, op.in}, op.name, "input")
	if err != nil {
		return nil, err
	}
	dz, err := f32s(inputs[1], tensor.Shape{op.n, op.out}, op.name, "gradient")
	if err != nil {
		return nil, err
	}
	gorgonia.WhichBLAS().Sgemm(blas.Trans, blas.NoTrans, op.in, op.out, op.n, 1, x, op.in, dz, op.out, 0, op.dw.Float32s(), op.out)
	return op.dw, nil
}

// gradBOp computes db = Σ_rows dz into the head's gradient of the bias.
type gradBOp struct {
	opBase
	n, out int
	db     *tensor.Dense
}

func (op *gradBOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	if err := op.checkArity(len(inputs), ""); err != nil {
		return nil, err
	}
	dz, err := f32s(inputs[0], tensor.Shape{op.n, op.out}, op.name, "gradient")
	if err != nil {
		return nil, err
	}
	db := op.db.Float32s()[:op.out]
	copy(db, dz[:op.out])
	for i := 1; i < op.n; i++ {
		row := dz[i*op.out : (i+1)*op.out]
		for j, v := range row {
			db[j] += v
		}
	}
	return op.db, nil
}

// xentOp computes the mean softmax cross-entropy of logits z (n,c) against
// target distributions t (n,c) (one-hot rows for hard labels):
//
//	loss = (1/n) Σ_i Σ_j t_ij (logsumexp(z_i) − z_ij)
//
// with a max-shifted log-sum-exp, and keeps the softmax probabilities.
type xentOp struct {
	opBase
	n, c  int
	probs *tensor.Dense // (n,c), softmax of the logits of the last run
	loss  gorgonia.F32
}

func newXentOp(n, c int) *xentOp {
	return &xentOp{
		opBase: opBase{name: "xent", arity: 2, typ: hm.NewFnType(matA, matA, tvA), shape: scalar},
		n:      n, c: c, probs: newF32(n, c),
	}
}

func (op *xentOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	if err := op.checkArity(len(inputs), ""); err != nil {
		return nil, err
	}
	z, err := f32s(inputs[0], tensor.Shape{op.n, op.c}, op.name, "logits")
	if err != nil {
		return nil, err
	}
	t, err := f32s(inputs[1], tensor.Shape{op.n, op.c}, op.name, "targets")
	if err != nil {
		return nil, err
	}
	p := op.probs.Float32s()
	var total float64
	for i := 0; i < op.n; i++ {
		zi, ti, pi := z[i*op.c:(i+1)*op.c], t[i*op.c:(i+1)*op.c], p[i*op.c:(i+1)*op.c]
		lse := logSumExp(zi)
		for j, v := range zi {
			pi[j] = float32(math.Exp(float64(v) - lse))
			if ti[j] != 0 {
				total += float64(ti[j]) * (lse - float64(v))
			}
		}
	}
	op.loss = gorgonia.F32(total / float64(op.n))
	return &op.loss, nil
}

func (op *xentOp) DiffWRT(int) []bool { return []bool{true, false} }

func (op *xentOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	if err := op.checkArity(len(inputs), "symdiff"); err != nil {
		return nil, err
	}
	g := &xentGradOp{
		opBase: opBase{name: "xent/grad", arity: 3, typ: hm.NewFnType(matA, matA, tvA, matA), shape: tensor.Shape{op.n, op.c}},
		n:      op.n, c: op.c, dz: newF32(op.n, op.c),
	}
	dz, err := gorgonia.ApplyOp(g, inputs[0], inputs[1], grad)
	if err != nil {
		return nil, fmt.Errorf("%s: symdiff: %w", op.name, err)
	}
	return gorgonia.Nodes{dz, nil}, nil
}

// xentGradOp computes dz_ij = g·(p_ij·Σ_k t_ik − t_ij)/n, the gradient of
// xentOp's loss scaled by the incoming scalar gradient g.
type xentGradOp struct {
	opBase
	n, c int
	dz   *tensor.Dense
}

func (op *xentGradOp) Do(inputs ...gorgonia.Value) (gorgonia.Value, error) {
	if err := op.checkArity(len(inputs), ""); err != nil {
		return nil, err
	}
	z, err := f32s(inputs[0], tensor.Shape{op.n, op.c}, op.name, "logits")
	if err != nil {
		return nil, err
	}
	t, err := f32s(inputs[1], tensor.Shape{op.n, op.c}, op.name, "targets")
	if err != nil {
		return nil, err
	}
	g, err := scalarF32(inputs[2], op.name, "gradient")
	if err != nil {
		return nil, err
	}
	scale := float64(g) / float64(op.n)
	dz := op.dz.Float32s()
	for i := 0; i < op.n; i++ {
		zi, ti, di := z[i*op.c:(i+1)*op.c], t[i*op.c:(i+1)*op.c], dz[i*op.c:(i+1)*op.c]
		lse := logSumExp(zi)
		var tsum float64
		for _, v := range ti {
			tsum += float64(v)
		}
		for j, v := range zi {
			p := math.Exp(float64(v) - lse)
			di[j] = float32(scale * (p*tsum - float64(ti[j])))
		}
	}
	return op.dz, nil
}

// logSumExp returns log Σ exp(z_j), shifted by the row maximum.
func logSumExp(z []float32) float64 {
	m := float64(z[0])
	for _, v := range z[1:] {
		if float64(v) > m {
			m = float64(v)
		}
	}
	if math.IsInf(m, 0) {
		return m
	}
	var s float64
	for _, v := range z {
		s += math.Exp(float64(v) - m)
	}
	return m + math.Log(s)
}

var (
	_ gorgonia.SDOp = (*denseOp)(nil)
	_ gorgonia.SDOp = (*xentOp)(nil)
	_ gorgonia.Op   = (*reluGradOp)(nil)
	_ gorgonia.Op   = (*gradXOp)(nil)
	_ gorgonia.Op   = (*gradWOp)(nil)
	_ gorgonia.Op   = (*gradBOp)(nil)
	_ gorgonia.Op   = (*xentGradOp)(nil)
)

// sameShape compares shapes exactly (tensor.Shape.Eq deems (n) and (1, n)
// equal).
func sameShape(a, b tensor.Shape) bool { return slices.Equal(a, b) }
