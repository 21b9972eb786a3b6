package engine

import (
	"math"
	"sync/atomic"

	"github.com/backpropd/backpropd/internal/kernels"
)

// optimizer updates a network's parameters from its gradients. Every update
// is one pass over each weight and bias vector.
//
//   - sgd: v ← μv + g; p ← p - lr·v, or p ← p - lr·(g + μv) with Nesterov
//     (PyTorch's formulation); plain p ← p - lr·g without momentum.
//   - adam: m ← β1·m + (1-β1)·g; v ← β2·v + (1-β2)·g²;
//     p ← p - lr/(1-β1ᵗ) · m / (√v/√(1-β2ᵗ) + ε), with t the number of
//     update steps so far (not epochs).
//   - rmsprop: s ← ρ·s + (1-ρ)·g²; p ← p - lr·g/(√s + ε).
//
// L2 weight decay adds l2·w to the gradient of every weight (not of the
// biases) before the update, the gradient of (l2/2)·Σw²; L1 adds
// l1·sign(w), the subgradient of l1·Σ|w| that is 0 at w = 0.
type optimizer struct {
	cfg  OptimizerConfig
	l2   float64
	l1   float64
	segs []segment
	step int64
	// beta1, beta2 and rho are the config's values, read once so that the
	// update loop does not chase pointers; 0 where they do not apply.
	beta1, beta2, rho float64
	// m and v are the first and second moment vectors (adam), the velocity
	// in m (sgd with momentum) or the mean square in v (rmsprop); nil when
	// unused.
	m, v []float64
}

// segment is a stretch of the parameter vector with one pair of
// regularization rates: a layer's weights (l2, l1) or biases (0, 0).
type segment struct {
	off, n int
	l2, l1 float64
}

func newOptimizer(cfg OptimizerConfig, l2, l1 float64, net *network) *optimizer {
	o := &optimizer{cfg: cfg, l2: l2, l1: l1, beta1: orZero(cfg.Beta1), beta2: orZero(cfg.Beta2), rho: orZero(cfg.Rho)}
	off := 0
	for _, l := range net.layers {
		o.segs = append(o.segs, segment{off, len(l.w), l2, l1}, segment{off + len(l.w), len(l.b), 0, 0})
		off += len(l.w) + len(l.b)
	}
	params := len(net.params)
	switch cfg.Name {
	case optSGD:
		if cfg.Momentum != 0 {
			o.m = make([]float64, params)
		}
	case optAdam:
		o.m = make([]float64, params)
		o.v = make([]float64, params)
	case optRMSProp:
		o.v = make([]float64, params)
	}
	return o
}

// orZero is *p, or 0 when p is nil.
func orZero(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

// moments lists the optimizer's state vectors in a fixed order.
func (o *optimizer) moments() [][]float64 {
	var ms [][]float64
	if o.m != nil {
		ms = append(ms, o.m)
	}
	if o.v != nil {
		ms = append(ms, o.v)
	}
	return ms
}

// updateChunk is the number of parameters one goroutine updates at a time
// when the update is shared out; every element is independent, so the
// result does not depend on the split.
const updateChunk = 4096

// update applies one step with learning rate lr, sharing the elements out
// over pool's goroutines when there are enough of them.
func (o *optimizer) update(net *network, lr float64, pool *gemmPool) {
	o.step++
	var c1, c2 float64
	if o.cfg.Name == optAdam {
		c1 = 1 - math.Pow(o.beta1, float64(o.step))
		c2 = math.Sqrt(1 - math.Pow(o.beta2, float64(o.step)))
	}
	n := len(net.params)
	if pool == nil || blasOwnsThreads || n < 2*updateChunk {
		o.updateRange(net, 0, n, lr, c1, c2)
		return
	}
	u := &pool.upd
	u.o, u.net, u.lr, u.c1, u.c2 = o, net, lr, c1, c2
	u.chunks = (n + updateChunk - 1) / updateChunk
	u.next.Store(0)
	pool.dispatch(u, u.chunks)
	u.o, u.net = nil, nil
}

// updateRange updates parameters lo up to hi.
func (o *optimizer) updateRange(net *network, lo, hi int, lr, c1, c2 float64) {
	for _, s := range o.segs {
		a, b := max(lo, s.off), min(hi, s.off+s.n)
		if a < b {
			if s.l1 != 0 {
				addL1(net.grads[a:b], net.params[a:b], s.l1)
			}
			o.apply(a, net.params[a:b], net.grads[a:b], lr, s.l2, c1, c2)
		}
	}
}

// updateOp is an optimizer update shared out in chunks over a pool.
type updateOp struct {
	o          *optimizer
	net        *network
	lr, c1, c2 float64
	chunks     int
	next       atomic.Int64
}

func (u *updateOp) run() {
	n := len(u.net.params)
	for {
		i := int(u.next.Add(1) - 1)
		if i >= u.chunks {
			return
		}
		lo := i * updateChunk
		u.o.updateRange(u.net, lo, min(lo+updateChunk, n), u.lr, u.c1, u.c2)
	}
}

// apply updates the parameter segment p starting at offset off.
func (o *optimizer) apply(off int, p, g []float64, lr, l2, c1, c2 float64) {
	g = g[:len(p)]
	switch o.cfg.Name {
	case optSGD:
		mu := o.cfg.Momentum
		if o.m == nil {
			for i, gi := range g {
				p[i] -= lr * (gi + l2*p[i])
			}
			return
		}
		v := o.m[off : off+len(p)]
		if o.cfg.Nesterov {
			for i, gi := range g {
				gi += l2 * p[i]
				v[i] = mu*v[i] + gi
				p[i] -= lr * (gi + mu*v[i])
			}
			return
		}
		for i, gi := range g {
			gi += l2 * p[i]
			v[i] = mu*v[i] + gi
			p[i] -= lr * v[i]
		}
	case optAdam:
		adamUpdate(p, g, o.m[off:off+len(p)], o.v[off:off+len(p)], o.beta1, o.beta2, l2, lr/c1, c2, o.cfg.Epsilon)
	case optRMSProp:
		rho, eps := o.rho, o.cfg.Epsilon
		s := o.v[off : off+len(p)]
		for i, gi := range g {
			gi += l2 * p[i]
			s[i] = rho*s[i] + (1-rho)*gi*gi
			p[i] -= lr * gi / (math.Sqrt(s[i]) + eps)
		}
	}
}

// addL1 adds l1·sign(w) to the gradient g of the weights w, in place:
// +l1 for a positive weight, -l1 for a negative one, nothing at 0. Like
// L2 it comes after clipping, so clip_norm bounds the loss's gradient only.
func addL1(g, w []float64, l1 float64) {
	g = g[:len(w)]
	for i, v := range w {
		switch {
		case v > 0:
			g[i] += l1
		case v < 0:
			g[i] -= l1
		}
	}
}

// clipGradients scales the gradient vector so that its Euclidean norm is at
// most maxNorm, and returns the norm before clipping.
func clipGradients(g []float64, maxNorm float64) float64 {
	var ss float64
	for _, v := range g {
		ss += v * v
	}
	norm := math.Sqrt(ss)
	if norm > maxNorm {
		s := maxNorm / norm
		for i := range g {
			g[i] *= s
		}
	}
	return norm
}

// learningRate is the schedule's rate for the 0-based epoch out of epochs:
// constant lr; step lr·γ^⌊epoch/step_size⌋; cosine
// min_lr + (lr-min_lr)·(1+cos(π·epoch/epochs))/2, as PyTorch's
// CosineAnnealingLR with T_max = epochs.
func learningRate(t TrainingConfig, epoch int) float64 {
	lr := t.Optimizer.LearningRate
	s := t.LRSchedule
	switch s.Name {
	case schedStep:
		return lr * math.Pow(s.Gamma, float64(epoch/s.StepSize))
	case schedCosine:
		return s.MinLR + (lr-s.MinLR)*(1+math.Cos(math.Pi*float64(epoch)/float64(t.Epochs)))/2
	}
	return lr
}

// adamUpdate applies one Adam step to the parameter segment p with
// gradients g and moments m and v; step is lr/(1-β1ᵗ) and c2 is
// √(1-β2ᵗ). kernels.Adam runs it with AVX2 or AVX-512 where the CPU has
// them, with the bits of the plain Go loop
// (gi += l2·p; m = b1·m + (1-b1)·gi; v = b2·v + (1-b2)·gi·gi;
// p -= step·m/(√v/c2 + eps)) at every level. A build with another vector
// kernel may replace it, provided the kernel gives the same bits (the
// resume and determinism tests compare bits).
var adamUpdate = kernels.Adam
