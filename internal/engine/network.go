package engine

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// layer is one dense layer: A_out = f(A_in·W + b), with W stored row-major
// in×out so that a batch of row-major inputs multiplies it directly.
type layer struct {
	in, out int
	act     Activation
	slope   float64
	w, b    []float64 // views into network.params
	gw, gb  []float64 // views into network.grads (nil for inference)
}

// network is a stack of layers whose weights and biases live in one flat
// vector, so that optimizers, clipping, checks and serialization are single
// passes over it.
type network struct {
	layers []layer
	params []float64
	grads  []float64
	loss   Loss
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
func newNetwork(specs []layerSpec, loss Loss, params []float64, withGrads bool) *network {
	total := countParams(specs)
	if params == nil {
		params = make([]float64, total)
	}
	net := &network{layers: make([]layer, len(specs)), params: params, loss: loss}
	if withGrads {
		net.grads = make([]float64, total)
	}
	off := 0
	for i, s := range specs {
		l := layer{in: s.In, out: s.Out, act: s.Activation, slope: s.Slope}
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
func (net *network) initialize(rng *rand.Rand, init Init) {
	for _, l := range net.layers {
		limit := math.Sqrt(6 / float64(l.in+l.out))
		if init == He {
			limit = math.Sqrt(6 / float64(l.in))
		}
		for i := range l.w {
			l.w[i] = (2*rng.Float64() - 1) * limit
		}
		clear(l.b)
	}
}

func (net *network) outputs() int { return net.layers[len(net.layers)-1].out }
func (net *network) inputs() int  { return net.layers[0].in }

// workspace holds the per-batch buffers of one network for up to rows rows:
// acts[0] is the (standardized) input batch and acts[i+1] the output of
// layer i; deltas[i] is dL/dZ of layer i; y holds the batch's targets.
type workspace struct {
	rows   int
	acts   [][]float64
	deltas [][]float64
	y      []float64
	w      []float64 // per-row loss weights, nil without class weights
	ones   []float64
}

// widest is the most values one row takes in any layer's input or output.
func (net *network) widest() int {
	w := net.inputs()
	for _, l := range net.layers {
		w = max(w, l.out)
	}
	return w
}

// inferWorkspace holds the two activation buffers of inference for up to
// rows rows: each layer reads one and writes the other, so the memory is
// 2 × rows × widest values whatever the depth.
type inferWorkspace struct {
	rows int
	a, b []float64
}

func newInferWorkspace(net *network, rows int) *inferWorkspace {
	n := rows * net.widest()
	return &inferWorkspace{rows: rows, a: make([]float64, n), b: make([]float64, n)}
}

// infer runs the first rows rows of ws.a (rows × inputs, row-major)
// through the network, alternating between ws.a and ws.b, and returns the
// output, rows × outputs, which aliases one of them.
func (net *network) infer(ws *inferWorkspace, rows int) []float64 {
	var serial *gemmPool // inference runs on the request's goroutine
	in, out := ws.a, ws.b
	for _, l := range net.layers {
		o := out[:rows*l.out]
		serial.gemm(false, false, rows, l.out, l.in, in[:rows*l.in], l.in, l.w, l.out, 0, o, l.out)
		biasActivate(o, l.b, rows, l.out, l.act, l.slope)
		in, out = out, in
	}
	return in[:rows*net.outputs()]
}

// newWorkspace allocates buffers for batches of up to rows rows; training
// buffers (deltas, targets) only when training.
func newWorkspace(net *network, rows int, training bool) *workspace {
	ws := &workspace{rows: rows, acts: make([][]float64, len(net.layers)+1)}
	ws.acts[0] = make([]float64, rows*net.inputs())
	for i, l := range net.layers {
		ws.acts[i+1] = make([]float64, rows*l.out)
	}
	if training {
		ws.deltas = make([][]float64, len(net.layers))
		for i, l := range net.layers {
			ws.deltas[i] = make([]float64, rows*l.out)
		}
		ws.y = make([]float64, rows*net.outputs())
		ws.ones = make([]float64, rows)
		for i := range ws.ones {
			ws.ones[i] = 1
		}
	}
	return ws
}

// forward runs the first rows rows of ws.acts[0] through the network; the
// output is ws.acts[len(layers)]. One GEMM per layer, then bias and
// activation in one pass.
func (net *network) forward(ws *workspace, rows int, pool *gemmPool) []float64 {
	return net.forwardDrop(ws, rows, pool, nil, nil)
}

// forwardDrop is forward with the hidden layers' dropout drop (nil for
// none), its masks drawn from src (see biasActivateDrop). Input dropout
// is applied by gather, which writes the inputs.
func (net *network) forwardDrop(ws *workspace, rows int, pool *gemmPool, drop *dropout, src *rand.PCG) []float64 {
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
func (net *network) backward(ws *workspace, rows int, pool *gemmPool, drop *dropout) (loss float64) {
	last := len(net.layers) - 1
	lo := net.layers[last]
	loss = lossGrad(ws.deltas[last], ws.acts[last+1], ws.y, ws.w, rows, lo.out, net.loss, lo.act, lo.slope)
	impl := blas64.Implementation()
	for i := last; i >= 0; i-- {
		l := net.layers[i]
		dz, in := ws.deltas[i], ws.acts[i]
		pool.gemm(true, false, l.in, l.out, rows, in, l.in, dz, l.out, 0, l.gw, l.out)
		impl.Dgemv(blas.Trans, rows, l.out, 1, dz, l.out, ws.ones, 1, 0, l.gb, 1)
		if i > 0 {
			prev := net.layers[i-1]
			pool.gemm(false, true, rows, l.in, l.out, dz, l.out, l.w, l.out, 0, ws.deltas[i-1], l.in)
			if drop != nil && drop.hidden[i-1].on() {
				activationGradDrop(ws.deltas[i-1], in, rows, l.in, prev.act, prev.slope, &drop.hidden[i-1])
				continue
			}
			activationGrad(ws.deltas[i-1], in, rows, l.in, prev.act, prev.slope)
		}
	}
	return loss
}
