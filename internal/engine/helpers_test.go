package engine

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// Data sets for the tests. Each is generated from a fixed PCG seed, so the
// tests are deterministic.

func xorData() Data {
	return Data{Rows: 4, Features: 2, X: []float64{0, 0, 0, 1, 1, 0, 1, 1}, Labels: []string{"no", "yes", "yes", "no"}}
}

// sineData samples y = sin(x) at n evenly spaced x in [-π, π].
func sineData(n int) Data {
	d := Data{Rows: n, Features: 1, X: make([]float64, n), Targets: make([]float64, n)}
	for i := range n {
		x := -math.Pi + 2*math.Pi*float64(i)/float64(n-1)
		d.X[i], d.Targets[i] = x, math.Sin(x)
	}
	return d
}

// moonsData draws n points of scikit-learn's two interleaving half circles
// with Gaussian noise of standard deviation noise.
func moonsData(n int, noise float64, seed uint64) Data {
	rng := rand.New(rand.NewPCG(seed, 1))
	d := Data{Rows: n, Features: 2, X: make([]float64, 2*n), Labels: make([]string, n)}
	for i := range n {
		t := math.Pi * rng.Float64()
		x, y, label := math.Cos(t), math.Sin(t), "upper"
		if i%2 == 1 {
			x, y, label = 1-math.Cos(t), 0.5-math.Sin(t), "lower"
		}
		d.X[2*i] = x + noise*rng.NormFloat64()
		d.X[2*i+1] = y + noise*rng.NormFloat64()
		d.Labels[i] = label
	}
	return d
}

// blobsData draws n points from k Gaussian clusters in f dimensions, labels
// "c0".."c{k-1}".
func blobsData(n, f, k int, seed uint64) Data {
	rng := rand.New(rand.NewPCG(seed, 2))
	centers := make([]float64, k*f)
	for i := range centers {
		centers[i] = 4 * rng.NormFloat64()
	}
	d := Data{Rows: n, Features: f, X: make([]float64, n*f), Labels: make([]string, n)}
	for i := range n {
		c := i % k
		for j := range f {
			d.X[i*f+j] = centers[c*f+j] + rng.NormFloat64()
		}
		d.Labels[i] = string(rune('a' + c))
	}
	return d
}

// randomRegression draws n rows of f standard normal features and k
// targets that are a fixed nonlinear function of them.
func randomRegression(n, f, k int, seed uint64) Data {
	rng := rand.New(rand.NewPCG(seed, 3))
	d := Data{Rows: n, Features: f, X: make([]float64, n*f), Targets: make([]float64, n*k)}
	for i := range d.X {
		d.X[i] = rng.NormFloat64()
	}
	for i := range n {
		for j := range k {
			x := d.X[i*f+j%f]
			d.Targets[i*k+j] = math.Sin(x) + 0.1*float64(j)*x
		}
	}
	return d
}

func mustTrainer(tb testing.TB, cfg Config, task Task, d Data, val Validation, opt Options) *Trainer {
	tb.Helper()
	tr, err := NewTrainer(cfg, task, d, val, opt)
	if err != nil {
		tb.Fatalf("NewTrainer: %v", err)
	}
	return tr
}

func mustRun(tb testing.TB, tr *Trainer) *Model {
	tb.Helper()
	if err := tr.Run(context.Background(), nil); err != nil {
		tb.Fatalf("Run: %v", err)
	}
	return tr.Model()
}

func mustPredict(tb testing.TB, m *Model, d Data) []float64 {
	tb.Helper()
	out := make([]float64, d.Rows*m.Outputs())
	if err := m.Predict(out, d.X, d.Rows); err != nil {
		tb.Fatalf("Predict: %v", err)
	}
	return out
}

// accuracy is the fraction of rows of d whose predicted label is right.
func accuracy(tb testing.TB, m *Model, d Data) float64 {
	tb.Helper()
	probs := mustPredict(tb, m, d)
	labels := make([]string, d.Rows)
	if err := m.Labels(labels, probs, d.Rows); err != nil {
		tb.Fatalf("Labels: %v", err)
	}
	right := 0
	for i, l := range labels {
		if l == d.Labels[i] {
			right++
		}
	}
	return float64(right) / float64(d.Rows)
}

// rSquared is 1 - SS_res/SS_tot of column j of k-column predictions.
func rSquared(pred, truth []float64, k, j int) float64 {
	var mean float64
	n := len(truth) / k
	for i := range n {
		mean += truth[i*k+j]
	}
	mean /= float64(n)
	var res, tot float64
	for i := range n {
		e := pred[i*k+j] - truth[i*k+j]
		res += e * e
		d := truth[i*k+j] - mean
		tot += d * d
	}
	return 1 - res/tot
}

func hidden(units int, act Activation, n int) []LayerConfig {
	l := make([]LayerConfig, n)
	for i := range l {
		l[i] = LayerConfig{Units: units, Activation: act}
	}
	return l
}

func seed(s int64) *int64 { return &s }

func boolp(b bool) *bool { return &b }

// paramsOf is the weights and biases of a *Trainer (live) or a *Model,
// widened to float64: exact for float32, so comparing bits still
// compares the weights bit for bit.
func paramsOf(x any) []float64 {
	switch x := x.(type) {
	case *Trainer:
		switch c := x.core.(type) {
		case *core[float32]:
			return widened(c.net.params)
		case *core[float64]:
			return c.net.params
		}
	case *Model:
		if x.n32 != nil {
			return widened(x.n32.params)
		}
		return x.n64.params
	}
	panic("paramsOf: not a trainer or a model")
}

func widened[T float](v []T) []float64 {
	out := make([]float64, len(v))
	widen(out, v)
	return out
}
