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
//
// The moments are in the network's precision T; the rates and the bias
// corrections are computed in float64 and rounded to T once per step.
type optimizer[T float] struct {
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
	m, v []T
}

// segment is a stretch of the parameter vector with one pair of
// regularization rates: a layer's weights (l2, l1) or biases (0, 0).
type segment struct {
	off, n int
	l2, l1 float64
}

func newOptimizer[T float](cfg OptimizerConfig, l2, l1 float64, net *network[T]) *optimizer[T] {
	o := &optimizer[T]{cfg: cfg, l2: l2, l1: l1, beta1: orZero(cfg.Beta1), beta2: orZero(cfg.Beta2), rho: orZero(cfg.Rho)}
	off := 0
	for _, l := range net.layers {
		o.segs = append(o.segs, segment{off, len(l.w), l2, l1}, segment{off + len(l.w), len(l.b), 0, 0})
		off += len(l.w) + len(l.b)
	}
	params := len(net.params)
	switch cfg.Name {
	case optSGD:
		if cfg.Momentum != 0 {
			o.m = make([]T, params)
		}
	case optAdam:
		o.m = make([]T, params)
		o.v = make([]T, params)
	case optRMSProp:
		o.v = make([]T, params)
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
func (o *optimizer[T]) moments() [][]T {
	var ms [][]T
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
func (o *optimizer[T]) update(net *network[T], lr float64, pool *gemmPool[T]) {
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
func (o *optimizer[T]) updateRange(net *network[T], lo, hi int, lr, c1, c2 float64) {
	for _, s := range o.segs {
		a, b := max(lo, s.off), min(hi, s.off+s.n)
		if a < b {
			if s.l1 != 0 {
				addL1(net.grads[a:b], net.params[a:b], T(s.l1))
			}
			o.apply(a, net.params[a:b], net.grads[a:b], lr, s.l2, c1, c2)
		}
	}
}

// updateOp is an optimizer update shared out in chunks over a pool.
type updateOp[T float] struct {
	o          *optimizer[T]
	net        *network[T]
	lr, c1, c2 float64
	chunks     int
	next       atomic.Int64
}

func (u *updateOp[T]) run(int) {
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
func (o *optimizer[T]) apply(off int, p, g []T, lr64, l264, c1, c2 float64) {
	g = g[:len(p)]
	lr, l2 := T(lr64), T(l264)
	switch o.cfg.Name {
	case optSGD:
		mu := T(o.cfg.Momentum)
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
		arithOf[T]().adam(p, g, o.m[off:off+len(p)], o.v[off:off+len(p)], T(o.beta1), T(o.beta2), l2, T(lr64/c1), T(c2), T(o.cfg.Epsilon))
	case optRMSProp:
		rho, eps := T(o.rho), T(o.cfg.Epsilon)
		s := o.v[off : off+len(p)]
		for i, gi := range g {
			gi += l2 * p[i]
			s[i] = rho*s[i] + (1-rho)*gi*gi
			p[i] -= lr * gi / (T(math.Sqrt(float64(s[i]))) + eps)
		}
	}
}

// addL1 adds l1·sign(w) to the gradient g of the weights w, in place:
// +l1 for a positive weight, -l1 for a negative one, nothing at 0. Like
// L2 it comes after clipping, so clip_norm bounds the loss's gradient only.
func addL1[T float](g, w []T, l1 T) {
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
// most maxNorm, and returns the norm before clipping. The norm is summed
// in float64 whatever T.
func clipGradients[T float](g []T, maxNorm float64) float64 {
	var ss float64
	for _, v := range g {
		ss += float64(v) * float64(v)
	}
	norm := math.Sqrt(ss)
	if norm > maxNorm {
		s := T(maxNorm / norm)
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
// resume and determinism tests compare bits). It is float64's; float32
// networks run kernels.Adam32 in every build.
var adamUpdate = kernels.Adam
