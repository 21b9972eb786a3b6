package engine

import (
	"math"
	"math/rand/v2"
)

// dropout is the inverted dropout of one trainer: in training, each input
// and each output of a hidden layer with a dropout probability p is zeroed
// with probability p and otherwise scaled by 1/(1-p), so that its
// expectation is the value prediction uses unchanged. Masks are drawn from
// the trainer's PCG stream, one 64-bit draw per value, in a fixed order
// (the batch's inputs row by row, then each hidden layer's outputs row by
// row, first layer first), on the trainer's goroutine: a run's masks, and
// so its result, do not depend on the thread count, and the stream's
// state at an epoch boundary, which checkpoints hold, fixes every later
// mask. The draws are made in the passes that already write the values
// (standardization, bias and activation), so dropout adds no pass over the
// batch.
type dropout struct {
	input  layerDrop
	hidden []layerDrop // one per hidden layer; p 0 where off
}

// layerDrop is the dropout of one set of values.
type layerDrop struct {
	p float64
	// thr is p·2⁶⁴: a value is kept when a uniform 64-bit draw is at
	// least thr.
	thr uint64
	// scale is the factor of a dropped (0) and a kept (1) value.
	scale [2]float64
	keep  float64 // 1-p
	// mask is 1 for a kept value of the last batch, 0 for a dropped one,
	// rows × units; nil for the inputs, whose mask the backward pass does
	// not need, and where p is 0.
	mask []uint8
}

func newLayerDrop(p float64, n int) layerDrop {
	d := layerDrop{p: p, thr: uint64(math.Ldexp(p, 64)), scale: [2]float64{0, 1 / (1 - p)}, keep: 1 - p}
	if n > 0 {
		d.mask = make([]uint8, n)
	}
	return d
}

// on reports whether the values are dropped out at all.
func (d *layerDrop) on() bool { return d.p != 0 }

// newDropout allocates the masks of net's hidden layers for batches of up
// to rows rows, or returns nil when cfg drops nothing.
func newDropout[T float](cfg NetworkConfig, net *network[T], rows int) *dropout {
	if !cfg.usesDropout() {
		return nil
	}
	d := &dropout{input: newLayerDrop(cfg.InputDropout, 0), hidden: make([]layerDrop, len(cfg.Hidden))}
	for i, l := range cfg.Hidden {
		n := 0
		if l.Dropout != 0 {
			n = rows * net.layers[i].out
		}
		d.hidden[i] = newLayerDrop(l.Dropout, n)
	}
	return d
}

// usesDropout reports whether any input or hidden layer has dropout.
func (n NetworkConfig) usesDropout() bool {
	if n.InputDropout != 0 {
		return true
	}
	for _, l := range n.Hidden {
		if l.Dropout != 0 {
			return true
		}
	}
	return false
}

// dropoutBytes is the memory of the masks newDropout allocates for
// batches of batch rows: one byte per hidden unit with dropout and row.
func dropoutBytes(n NetworkConfig, batch int64) int64 {
	var units int64
	for _, l := range n.Hidden {
		if l.Dropout != 0 {
			units = sat(units, int64(max(l.Units, 0)))
		}
	}
	return mul(batch, units)
}

// at draws whether value j of the row whose mask is mr is kept, records
// it and returns its factor; with src nil it returns the factor of the
// mask already recorded (the gradient check holds masks fixed this way).
func (d *layerDrop) at(mr []uint8, j int, src *rand.PCG) float64 {
	if src != nil {
		var k uint8
		if src.Uint64() >= d.thr {
			k = 1
		}
		mr[j] = k
	}
	return d.scale[mr[j]]
}

// factor draws whether one input is kept and returns its factor.
func (d *layerDrop) factor(src *rand.PCG) float64 {
	if src.Uint64() >= d.thr {
		return d.scale[1]
	}
	return 0
}

// biasActivateDrop is biasActivate for a hidden layer with dropout d, in
// the same single pass: z becomes A = m ⊙ f(Z + b), with m 0 or 1/(1-p)
// per value, drawn from src (or, with src nil, the masks of the last
// call). Softmax, an output activation only, is not accepted.
func biasActivateDrop[T float](z, b []T, rows, cols int, act Activation, slope T, d *layerDrop, src *rand.PCG) {
	z = z[:rows*cols]
	b = b[:cols]
	mask := d.mask[:rows*cols]
	for r := 0; r < len(z); r += cols {
		row, mr := z[r:r+cols], mask[r:r+cols]
		switch act {
		case Identity:
			for j, bj := range b {
				row[j] = (row[j] + bj) * T(d.at(mr, j, src))
			}
		case ReLU:
			for j, bj := range b {
				row[j] = max(row[j]+bj, 0) * T(d.at(mr, j, src))
			}
		case LeakyReLU:
			for j, bj := range b {
				v := row[j] + bj
				if v < 0 {
					v *= slope
				}
				row[j] = v * T(d.at(mr, j, src))
			}
		case Sigmoid:
			for j, bj := range b {
				row[j] = sigmoid(row[j]+bj) * T(d.at(mr, j, src))
			}
		case Tanh:
			for j, bj := range b {
				row[j] = T(math.Tanh(float64(row[j]+bj))) * T(d.at(mr, j, src))
			}
		default:
			panic("engine: dropout after activation " + string(act))
		}
	}
}

// activationGradDrop is activationGrad for a layer whose output a went
// through dropout d: it multiplies d (dL/dA) in place by dA/dZ = m·f'(Z).
// Where f' is a function of f, it is taken at f = a·(1-p) for a kept
// value (a is m·f); a dropped one has a = 0 and gets 0. So sigmoid's
// m·f·(1-f) is a·(1 - a·(1-p)) and tanh's m·(1-f²) is m - a²·(1-p).
func activationGradDrop[T float](g, a []T, rows, cols int, act Activation, slope T, d *layerDrop) {
	g = g[:rows*cols]
	a = a[:len(g)]
	mask := d.mask[:len(g)]
	keep := T(d.keep)
	scale := [2]T{T(d.scale[0]), T(d.scale[1])}
	switch act {
	case Identity:
		for i, k := range mask {
			g[i] *= scale[k]
		}
	case ReLU:
		s := scale[1]
		for i, v := range a {
			if v > 0 { // only kept values are positive
				g[i] *= s
			} else {
				g[i] = 0
			}
		}
	case LeakyReLU:
		for i, v := range a {
			f := scale[mask[i]]
			if v <= 0 {
				f *= slope
			}
			g[i] *= f
		}
	case Sigmoid:
		for i, v := range a {
			g[i] *= v * (1 - v*keep)
		}
	case Tanh:
		for i, v := range a {
			g[i] *= scale[mask[i]] - v*v*keep
		}
	default:
		panic("engine: dropout after activation " + string(act))
	}
}
