package engine

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/floats"
)

// TestGradientCheck compares backpropagation's gradient of every parameter
// tensor (each layer's weights and biases) with central differences
// (gonum's fd.Central, h = 1e-5) of the same mean loss, for every hidden
// activation and every output activation and loss the engine accepts. The
// tolerance is on the relative error ‖g_bp − g_fd‖ / (‖g_bp‖ + ‖g_fd‖):
// below 1e-6 for smooth networks, below 1e-4 where relu or leaky_relu put a
// kink (central differences of a kink within h of a unit would fail; with
// random inputs none is that close).
func TestGradientCheck(t *testing.T) {
	outputs := []struct {
		act  Activation
		loss Loss
		k    int
	}{
		{Identity, MSE, 2},
		{Sigmoid, BinaryCrossEntropy, 3},
		{Softmax, CrossEntropy, 4},
		{Softmax, MSE, 3},
		{Sigmoid, MSE, 2},
		{Tanh, MSE, 2},
		{ReLU, MSE, 2},
		{LeakyReLU, MSE, 2},
	}
	for _, hidden := range []Activation{Identity, ReLU, LeakyReLU, Sigmoid, Tanh} {
		for _, out := range outputs {
			name := fmt.Sprintf("%s/%s+%s", hidden, out.act, out.loss)
			t.Run(name, func(t *testing.T) {
				kinks := hidden == ReLU || hidden == LeakyReLU || out.act == ReLU || out.act == LeakyReLU
				tol := 1e-6
				if kinks {
					tol = 1e-4
				}
				checkGradient(t, hidden, out.act, out.loss, out.k, tol, false, 0)
			})
		}
	}
}

// TestGradientCheckClassWeights is TestGradientCheck with a loss weight
// per row (drawn from U(0.2, 3), as class weights give them), for every
// output activation and loss, with tanh hidden layers: the same central
// differences, h = 1e-5, relative error below 1e-6 (below 1e-4 for the
// relu and leaky_relu outputs' kinks).
func TestGradientCheckClassWeights(t *testing.T) {
	for _, out := range []struct {
		act  Activation
		loss Loss
		k    int
	}{
		{Identity, MSE, 2},
		{Sigmoid, BinaryCrossEntropy, 1},
		{Sigmoid, BinaryCrossEntropy, 3},
		{Softmax, CrossEntropy, 4},
		{Softmax, MSE, 3},
		{ReLU, MSE, 2},
	} {
		t.Run(fmt.Sprintf("%s+%s/%d", out.act, out.loss, out.k), func(t *testing.T) {
			tol := 1e-6
			if out.act == ReLU {
				tol = 1e-4
			}
			checkGradient(t, Tanh, out.act, out.loss, out.k, tol, true, 0)
		})
	}
}

// checkGradient compares backpropagation with central differences for a
// network of two hidden layers; with drop > 0 both hidden layers have
// that dropout, their masks drawn once and then held fixed, so that the
// loss is a differentiable function of the parameters.
// TestGradientCheckDropout is TestGradientCheck with dropout 0.4 after
// both hidden layers, for every hidden activation: the masks are drawn once
// and reused by every evaluation of the loss, which makes it a smooth
// function of the parameters (kinks aside), checked by the same central
// differences, h = 1e-5, relative error below 1e-6 (1e-4 with relu and
// leaky_relu). It holds the backward pass's m·f'(z), computed from the
// dropped output, to the forward pass.
func TestGradientCheckDropout(t *testing.T) {
	for _, hidden := range []Activation{Identity, ReLU, LeakyReLU, Sigmoid, Tanh} {
		for _, out := range []struct {
			act  Activation
			loss Loss
			k    int
		}{{Identity, MSE, 2}, {Softmax, CrossEntropy, 3}} {
			t.Run(fmt.Sprintf("%s/%s", hidden, out.act), func(t *testing.T) {
				tol := 1e-6
				if hidden == ReLU || hidden == LeakyReLU {
					tol = 1e-4
				}
				checkGradient(t, hidden, out.act, out.loss, out.k, tol, false, 0.4)
			})
		}
	}
}

// TestGradientCheckL1 checks the step the optimizer takes with l1 and l2
// against central differences (h = 1e-5) of the regularized objective
// loss + l1·Σ|w| + (l2/2)·Σw² over the weights (not the biases): with sgd
// at learning rate 1 and no momentum, p - p' is that objective's
// (sub)gradient. Every weight is moved at least 0.05 away from 0 first,
// so |w| is differentiable within h of every point evaluated. Relative
// error below 1e-6 (tanh hidden layers, smooth); leaving l1 out of the
// step would give an error near l1·√weights / ‖g‖, far above it.
func TestGradientCheckL1(t *testing.T) {
	const rows, in, k, l1, l2 = 6, 3, 2, 0.03, 0.01
	specs := []layerSpec{{In: in, Out: 5, Activation: Tanh}, {In: 5, Out: k, Activation: Identity}}
	net := newNetwork[float64](specs, MSE, nil, true)
	rng := rand.New(rand.NewPCG(3, 17))
	net.initialize(rng, Glorot)
	isWeight := make([]bool, len(net.params))
	off := 0
	for _, l := range net.layers {
		for i := range l.w {
			l.w[i] = math.Copysign(0.05+math.Abs(l.w[i]), l.w[i])
			isWeight[off+i] = true
		}
		for i := range l.b {
			l.b[i] = 0.3 * rng.NormFloat64()
		}
		off += len(l.w) + len(l.b)
	}
	ws := newWorkspace(net, rows, true)
	for i := range ws.acts[0] {
		ws.acts[0][i] = rng.NormFloat64()
	}
	for i := range ws.y {
		ws.y[i] = rng.Float64()
	}
	x0 := append([]float64(nil), net.params...)
	net.forward(ws, rows, nil)
	net.backward(ws, rows, nil, nil)
	newOptimizer(OptimizerConfig{Name: optSGD}, l2, l1, net).update(net, 1, nil)
	got := make([]float64, len(x0))
	floats.SubTo(got, x0, net.params)

	f := func(p []float64) float64 {
		copy(net.params, p)
		obj := lossOnly(net.forward(ws, rows, nil), ws.y, nil, rows, k, MSE)
		for i, w := range p {
			if isWeight[i] {
				obj += l1*math.Abs(w) + l2/2*w*w
			}
		}
		return obj
	}
	want := fd.Gradient(nil, f, x0, &fd.Settings{Formula: fd.Central, Step: 1e-5})
	diff := make([]float64, len(got))
	floats.SubTo(diff, got, want)
	if rel := floats.Norm(diff, 2) / (floats.Norm(got, 2) + floats.Norm(want, 2)); !(rel < 1e-6) {
		t.Errorf("relative error %.3g, want < 1e-6\nstep    %v\ncentral %v", rel, got, want)
	}
}

func checkGradient(t *testing.T, hidden, outAct Activation, loss Loss, k int, tol float64, weighted bool, drop float64) {
	t.Helper()
	const rows, in = 6, 3
	slope := 0.1
	specs := []layerSpec{
		{In: in, Out: 5, Activation: hidden},
		{In: 5, Out: 4, Activation: hidden},
		{In: 4, Out: k, Activation: outAct},
	}
	for i := range specs {
		if specs[i].Activation == LeakyReLU {
			specs[i].Slope = slope
		}
	}
	net := newNetwork[float64](specs, loss, nil, true)
	rng := rand.New(rand.NewPCG(7, 11))
	net.initialize(rng, Glorot)
	for _, l := range net.layers { // non-zero biases, so their gradients are tested at a general point
		for i := range l.b {
			l.b[i] = rng.NormFloat64() * 0.3
		}
	}
	ws := newWorkspace(net, rows, true)
	for i := range ws.acts[0] {
		ws.acts[0][i] = rng.NormFloat64()
	}
	if weighted {
		ws.w = make([]float64, rows)
		for r := range ws.w {
			ws.w[r] = 0.2 + 2.8*rng.Float64()
		}
	}
	for r := range rows {
		y := ws.y[r*k : r*k+k]
		switch loss {
		case CrossEntropy:
			y[rng.IntN(k)] = 1
		case BinaryCrossEntropy:
			for j := range y {
				y[j] = float64(rng.IntN(2))
			}
		default:
			for j := range y {
				y[j] = rng.Float64()
			}
		}
	}

	var d *dropout
	src := rand.NewPCG(5, 13)
	if drop > 0 {
		d = &dropout{hidden: []layerDrop{newLayerDrop(drop, rows*5), newLayerDrop(drop, rows*4)}}
	} else {
		src = nil
	}
	net.forwardDrop(ws, rows, nil, d, src)
	net.backward(ws, rows, nil, d)
	got := append([]float64(nil), net.grads...)
	if d != nil {
		for i, h := range d.hidden {
			if kept := bytes.Count(h.mask, []byte{1}); kept == 0 || kept == len(h.mask) {
				t.Fatalf("hidden layer %d keeps %d of %d units: the check needs both kept and dropped ones", i, kept, len(h.mask))
			}
		}
	}

	x0 := append([]float64(nil), net.params...)
	f := func(p []float64) float64 {
		copy(net.params, p)
		out := net.forwardDrop(ws, rows, nil, d, nil) // nil: the same masks
		return lossOnly(out, ws.y, ws.w, rows, k, loss)
	}
	want := fd.Gradient(nil, f, x0, &fd.Settings{Formula: fd.Central, Step: 1e-5})
	copy(net.params, x0)

	off := 0
	for i, l := range net.layers {
		for _, seg := range []struct {
			name string
			n    int
		}{{"weights", len(l.w)}, {"biases", len(l.b)}} {
			g, w := got[off:off+seg.n], want[off:off+seg.n]
			off += seg.n
			den := floats.Norm(g, 2) + floats.Norm(w, 2)
			if den == 0 {
				continue // e.g. every relu unit dead: both gradients are exactly 0
			}
			diff := make([]float64, seg.n)
			floats.SubTo(diff, g, w)
			if rel := floats.Norm(diff, 2) / den; !(rel < tol) {
				t.Errorf("layer %d %s: relative error %.3g, want < %g\nbackprop %v\ncentral  %v", i, seg.name, rel, tol, g, w)
			}
		}
	}
	if math.IsNaN(got[0]) {
		t.Fatal("NaN gradient")
	}
}
