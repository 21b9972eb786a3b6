package engine

import (
	"math"
	"testing"
)

// The learning tests train small networks on problems with a known answer;
// each names its bar.

func TestLearnXOR(t *testing.T) {
	cfg := Config{
		Network:  NetworkConfig{Hidden: hidden(8, Tanh, 1)},
		Training: TrainingConfig{Epochs: 300, BatchSize: 4, Optimizer: OptimizerConfig{LearningRate: 0.05}},
	}
	d := xorData()
	m := mustRun(t, mustTrainer(t, cfg, TaskBinary, d, Validation{}, Options{}))
	if got := accuracy(t, m, d); got != 1 {
		t.Errorf("XOR accuracy = %v, want 1 (all four points)", got)
	}
	if got, want := m.Classes(), []string{"no", "yes"}; got[0] != want[0] || got[1] != want[1] {
		t.Errorf("Classes() = %q, want %q (byte order)", got, want)
	}
}

func TestLearnSine(t *testing.T) {
	cfg := Config{
		Network:  NetworkConfig{Hidden: hidden(32, Tanh, 2)},
		Training: TrainingConfig{Epochs: 200, BatchSize: 16, Optimizer: OptimizerConfig{LearningRate: 0.01}},
	}
	m := mustRun(t, mustTrainer(t, cfg, TaskRegression, sineData(200), Validation{}, Options{}))
	test := sineData(157) // other points of the same curve
	if r2 := rSquared(mustPredict(t, m, test), test.Targets, 1, 0); !(r2 > 0.99) {
		t.Errorf("sine R² = %.4f on unseen points, want > 0.99", r2)
	}
}

func TestLearnTwoMoons(t *testing.T) {
	cfg := Config{
		Network:  NetworkConfig{Hidden: hidden(32, ReLU, 2)},
		Training: TrainingConfig{Epochs: 60, BatchSize: 32, Optimizer: OptimizerConfig{LearningRate: 0.01}},
	}
	tr := mustTrainer(t, cfg, TaskBinary, moonsData(1000, 0.1, 1), Validation{Fraction: 0.2}, Options{})
	m := mustRun(t, tr)
	test := moonsData(1000, 0.1, 99) // fresh points, never seen in training
	if got := accuracy(t, m, test); !(got > 0.97) {
		t.Errorf("two-moons held-out accuracy = %.4f, want > 0.97 (noise 0.1 leaves the moons separable)", got)
	}
	h := tr.History()
	if last := h[len(h)-1]; last.ValAccuracy == nil || last.Accuracy == nil || last.ValLoss == nil {
		t.Errorf("classifier history entry lacks accuracy or validation figures: %+v", last)
	}
}

func TestLearnMultiOutputRegression(t *testing.T) {
	const k = 3
	cfg := Config{
		Network:  NetworkConfig{Hidden: hidden(32, Tanh, 1)},
		Training: TrainingConfig{Epochs: 60, BatchSize: 32, Optimizer: OptimizerConfig{LearningRate: 0.01}},
	}
	m := mustRun(t, mustTrainer(t, cfg, TaskRegression, randomRegression(600, 4, k, 1), Validation{}, Options{}))
	if m.Outputs() != k {
		t.Fatalf("Outputs() = %d, want %d", m.Outputs(), k)
	}
	test := randomRegression(300, 4, k, 2)
	pred := mustPredict(t, m, test)
	for j := range k {
		if r2 := rSquared(pred, test.Targets, k, j); !(r2 > 0.95) {
			t.Errorf("target %d: R² = %.4f on fresh rows, want > 0.95", j, r2)
		}
	}
}

// TestSoftmaxInitialLoss: for inputs unrelated to the labels and logits of
// small variance σ², the expected cross-entropy of K classes at random
// initialization is about ln K + σ²/2 (second-order expansion of
// log-sum-exp); Glorot initialization gives σ² ≈ 0.5 at these widths, so the
// initial loss must lie between ln K and ln K + 0.3.
func TestSoftmaxInitialLoss(t *testing.T) {
	for _, k := range []int{3, 10} {
		d := randomRegression(2000, 20, 1, 5)
		d.Targets, d.Labels = nil, make([]string, d.Rows)
		for i := range d.Labels {
			d.Labels[i] = string(rune('a' + i%k))
		}
		cfg := Config{Network: NetworkConfig{Hidden: hidden(64, ReLU, 1)}}
		m := mustTrainer(t, cfg, TaskMulticlass, d, Validation{}, Options{}).Model()
		probs := mustPredict(t, m, d)
		classes := m.Classes()
		var loss float64
		for i, l := range d.Labels {
			for c, name := range classes {
				if name == l {
					loss -= math.Log(probs[i*k+c])
				}
			}
		}
		loss /= float64(d.Rows)
		if want := math.Log(float64(k)); !(loss > want-0.02 && loss < want+0.3) {
			t.Errorf("K=%d: initial cross-entropy %.4f, want between ln K = %.4f and ln K + 0.3", k, loss, want)
		}
	}
}
