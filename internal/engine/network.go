package engine

import (
	"math"
	"math/rand/v2"
	"sync"
	"unsafe"

	"gonum.org/v1/gonum/blas"

	"github.com/backpropd/backpropd/internal/kernels"
)

// layer is one dense layer: A_out = f(A_in·W + b), with W stored row-major
// in×out so that a batch of row-major inputs multiplies it directly.
type layer[T float] struct {
	in, out int
	act     Activation
	slope   T
	w, b    []T // views into network.params
	gw, gb  []T // views into network.grads (nil for inference)
}

// network is a stack of layers whose weights and biases live in one flat
// vector, so that optimizers, clipping, checks and serialization are single
// passes over it. T is the precision of every number it holds.
type network[T float] struct {
	layers []layer[T]
	params []T
	grads  []T
	loss   Loss
	ar     *arith[T]
}

// layerSpec describes one layer's shape.
type layerSpec struct {
	In         int        `json:"in"`
	Out        int        `json:"out"`
	Activation Activation `json:"activation"`
	Slope      float64    `json:"slope,omitempty"`
}

// architecture lists the layers a resolved, valid config gives for the
// data's features and outputs.
func architecture(n NetworkConfig, features, outputs int) []layerSpec {
	specs := make([]layerSpec, 0, len(n.Hidden)+1)
	in := features
	for _, l := range n.Hidden {
		s := layerSpec{In: in, Out: l.Units, Activation: l.Activation}
		if l.Activation == LeakyReLU {
			s.Slope = defaultSlope
			if l.Slope != nil {
				s.Slope = *l.Slope
			}
		}
		specs = append(specs, s)
		in = l.Units
	}
	out := layerSpec{In: in, Out: outputs, Activation: n.OutputActivation}
	if out.Activation == LeakyReLU {
		out.Slope = defaultSlope
	}
	return append(specs, out)
}

func countParams(specs []layerSpec) int {
	n := 0
	for _, s := range specs {
		n += (s.In + 1) * s.Out
	}
	return n
}

// newNetwork lays the layers out over params (allocated when nil) and, when
// withGrads, over a gradient vector of the same shape.
func newNetwork[T float](specs []layerSpec, loss Loss, params []T, withGrads bool) *network[T] {
	total := countParams(specs)
	if params == nil {
		params = make([]T, total)
	}
	net := &network[T]{layers: make([]layer[T], len(specs)), params: params, loss: loss, ar: arithOf[T]()}
	if withGrads {
		net.grads = make([]T, total)
	}
	off := 0
	for i, s := range specs {
		l := layer[T]{in: s.In, out: s.Out, act: s.Activation, slope: T(s.Slope)}
		nw := s.In * s.Out
		l.w = params[off : off+nw : off+nw]
		l.b = params[off+nw : off+nw+s.Out : off+nw+s.Out]
		if withGrads {
			l.gw = net.grads[off : off+nw : off+nw]
			l.gb = net.grads[off+nw : off+nw+s.Out : off+nw+s.Out]
		}
		off += nw + s.Out
		net.layers[i] = l
	}
	return net
}

// initialize draws every weight from U(-limit, limit), with limit
// sqrt(6/(in+out)) for Glorot and sqrt(6/in) for He, and zeroes the biases.
// The draws are float64 whatever T, rounded to T, so that both precisions
// start from the same weights as nearly as T can hold them.
func (net *network[T]) initialize(rng *rand.Rand, init Init) {
	for _, l := range net.layers {
		limit := math.Sqrt(6 / float64(l.in+l.out))
		if init == He {
			limit = math.Sqrt(6 / float64(l.in))
		}
		for i := range l.w {
			l.w[i] = T((2*rng.Float64() - 1) * limit)
		}
		clear(l.b)
	}
}

func (net *network[T]) outputs() int { return net.layers[len(net.layers)-1].out }
func (net *network[T]) inputs() int  { return net.layers[0].in }

// workspace holds the per-batch buffers of one network for up to rows rows:
// acts[0] is the (standardized) input batch and acts[i+1] the output of
// layer i; deltas[i] is dL/dZ of layer i; y holds the batch's targets.
type workspace[T float] struct {
	rows   int
	acts   [][]T
	deltas [][]T
	y      []T
	w      []T // per-row loss weights, nil without class weights
	ones   []T
}

// widest is the most values one row takes in any layer's input or output.
func (net *network[T]) widest() int {
	w := net.inputs()
	for _, l := range net.layers {
		w = max(w, l.out)
	}
	return w
}

// inferWorkspace holds the two activation buffers of inference for up to
// rows rows: each layer reads one and writes the other, so the memory is
// 2 × rows × widest values whatever the depth. For float32, row is one
// row of network inputs in float64, where cells are encoded before they
// are scaled into a; float64 encodes into a itself.
type inferWorkspace[T float] struct {
	rows int
	a, b []T
	row  []float64
}

func newInferWorkspace[T float](net *network[T], rows int) *inferWorkspace[T] {
	n := rows * net.widest()
	ws := &inferWorkspace[T]{rows: rows, a: make([]T, n), b: make([]T, n)}
	if precisionOf[T]() == Float32 {
		ws.row = make([]float64, net.inputs())
	}
	return ws
}

// encodeRow is where row r of w network inputs is encoded in float64
// before scaleRow writes it into a: a's row itself for float64 (scaling
// then runs in place), the staging row for float32.
func (ws *inferWorkspace[T]) encodeRow(r, w int) []float64 {
	if ws.row != nil {
		return ws.row[:w]
	}
	a := ws.a[r*w : (r+1)*w]
	return unsafe.Slice((*float64)(unsafe.Pointer(unsafe.SliceData(a))), len(a))
}

// infer runs the first rows rows of ws.a (rows × inputs, row-major)
// through the network, alternating between ws.a and ws.b, and returns the
// output, rows × outputs, which aliases one of them. With pack non-nil
// the products run on package kernels in its packing buffers; otherwise
// on the installed BLAS, serially.
func (net *network[T]) infer(ws *inferWorkspace[T], rows int, pack *kernels.Workspace[T]) []T {
	var serial *gemmPool[T] // inference runs on the request's goroutine
	in, out := ws.a, ws.b
	for _, l := range net.layers {
		o := out[:rows*l.out]
		if pack != nil {
			net.ar.kgemm(pack, false, false, rows, l.out, l.in, in[:rows*l.in], l.in, l.w, l.out, 0, o, l.out)
		} else {
			serial.gemm(false, false, rows, l.out, l.in, in[:rows*l.in], l.in, l.w, l.out, 0, o, l.out)
		}
		biasActivate(o, l.b, rows, l.out, l.act, l.slope)
		in, out = out, in
	}
	return in[:rows*net.outputs()]
}

// inferKernelRows is the fewest rows of one inference pass that run on
// package kernels: their products pack the weight matrix, k×n values,
// on every call, which for a handful of rows costs as much as the
// multiplication it speeds up. Measured on the 784-256-128-10 network
// (AVX-512): the kernels break even with gonum at about 4 rows and are
// 2 to 6 times faster from 8 rows on.
const inferKernelRows = 8

// Packing buffers for predictions on package kernels, one per concurrent
// pass, shared by every model of the precision.
var (
	pack64 = sync.Pool{New: func() any { return kernels.NewWorkspace[float64]() }}
	pack32 = sync.Pool{New: func() any { return kernels.NewWorkspace[float32]() }}
)

// packPool is T's pool of packing buffers.
func packPool[T float]() *sync.Pool {
	if precisionOf[T]() == Float32 {
		return &pack32
	}
	return &pack64
}

// getPack takes packing buffers from T's pool for a prediction whose
// passes run up to rows rows, or returns nil when they stay on the BLAS
// (no kernels, or fewer than inferKernelRows rows). Give them back with
// putPack.
func getPack[T float](rows int) *kernels.Workspace[T] {
	if !useKernels() || rows < inferKernelRows {
		return nil
	}
	return packPool[T]().Get().(*kernels.Workspace[T])
}

func putPack[T float](pack *kernels.Workspace[T]) {
	if pack != nil {
		packPool[T]().Put(pack)
	}
}

// inferPass is infer with pack for a pass of at least inferKernelRows
// rows and on the BLAS for a shorter one.
func (net *network[T]) inferPass(ws *inferWorkspace[T], rows int, pack *kernels.Workspace[T]) []T {
	if rows < inferKernelRows {
		pack = nil
	}
	return net.infer(ws, rows, pack)
}

// newWorkspace allocates buffers for batches of up to rows rows; training
// buffers (deltas, targets) only when training.
func newWorkspace[T float](net *network[T], rows int, training bool) *workspace[T] {
	ws := &workspace[T]{rows: rows, acts: make([][]T, len(net.layers)+1)}
	ws.acts[0] = make([]T, rows*net.inputs())
	for i, l := range net.layers {
		ws.acts[i+1] = make([]T, rows*l.out)
	}
	if training {
		ws.deltas = make([][]T, len(net.layers))
		for i, l := range net.layers {
			ws.deltas[i] = make([]T, rows*l.out)
		}
		ws.y = make([]T, rows*net.outputs())
		ws.ones = make([]T, rows)
		for i := range ws.ones {
			ws.ones[i] = 1
		}
	}
	return ws
}

// forward runs the first rows rows of ws.acts[0] through the network; the
// output is ws.acts[len(layers)]. One GEMM per layer, then bias and
// activation in one pass.
func (net *network[T]) forward(ws *workspace[T], rows int, pool *gemmPool[T]) []T {
	return net.forwardDrop(ws, rows, pool, nil, nil)
}

// forwardDrop is forward with the hidden layers' dropout drop (nil for
// none), its masks drawn from src (see biasActivateDrop). Input dropout
// is applied by gather, which writes the inputs.
func (net *network[T]) forwardDrop(ws *workspace[T], rows int, pool *gemmPool[T], drop *dropout, src *rand.PCG) []T {
	for i, l := range net.layers {
		in, out := ws.acts[i], ws.acts[i+1]
		pool.gemm(false, false, rows, l.out, l.in, in, l.in, l.w, l.out, 0, out, l.out)
		if drop != nil && i < len(drop.hidden) && drop.hidden[i].on() {
			biasActivateDrop(out, l.b, rows, l.out, l.act, l.slope, &drop.hidden[i], src)
			continue
		}
		biasActivate(out, l.b, rows, l.out, l.act, l.slope)
	}
	return ws.acts[len(net.layers)][:rows*net.outputs()]
}

// backward computes the loss of the last forward pass against ws.y and the
// gradient of that mean loss with respect to every parameter into
// net.grads. Per layer: dW = A_inᵀ·dZ and dA_in = dZ·Wᵀ by GEMM, db = dZᵀ·1
// by GEMV. drop is the dropout of that forward pass, nil for none.
func (net *network[T]) backward(ws *workspace[T], rows int, pool *gemmPool[T], drop *dropout) (loss float64) {
	last := len(net.layers) - 1
	lo := net.layers[last]
	loss = lossGrad(ws.deltas[last], ws.acts[last+1], ws.y, ws.w, rows, lo.out, net.loss, lo.act, lo.slope)
	gemv := net.ar.gemv
	for i := last; i >= 0; i-- {
		l := net.layers[i]
		dz, in := ws.deltas[i], ws.acts[i]
		pool.gemm(true, false, l.in, l.out, rows, in, l.in, dz, l.out, 0, l.gw, l.out)
		gemv(blas.Trans, rows, l.out, 1, dz, l.out, ws.ones, 1, 0, l.gb, 1)
		if i > 0 {
			prev := net.layers[i-1]
			pool.gemm(false, true, rows, l.in, l.out, dz, l.out, l.w, l.out, 0, ws.deltas[i-1], l.in)
			if drop != nil && drop.hidden[i-1].on() {
				activationGradDrop(ws.deltas[i-1], in, rows, l.in, prev.act, prev.slope, &drop.hidden[i-1])
				continue
			}
			pool.activationGrad(ws.deltas[i-1], in, rows, l.in, prev.act, prev.slope)
		}
	}
	return loss
}
