package engine

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchTrainer is the benchmark network of docs/performance.md: 784-256-128-10 relu,
// softmax + cross_entropy, adam, batch 64, on synthetic Fashion-MNIST-sized
// rows (the data's values do not change the arithmetic).
func benchTrainer(b testing.TB, threads int) *Trainer {
	return benchTrainerIn(b, threads, "")
}

// benchTrainerIn is benchTrainer in precision p.
func benchTrainerIn(b testing.TB, threads int, p Precision) *Trainer {
	const rows, features, classes = 1024, 784, 10
	rng := rand.New(rand.NewPCG(1, 1))
	d := Data{Rows: rows, Features: features, X: make([]float64, rows*features), Labels: make([]string, rows)}
	for i := range d.X {
		d.X[i] = rng.Float64()
	}
	for i := range d.Labels {
		d.Labels[i] = fmt.Sprint(i % classes)
	}
	cfg := Config{
		Network: NetworkConfig{Hidden: []LayerConfig{{Units: 256, Activation: ReLU}, {Units: 128, Activation: ReLU}}},
		Training: TrainingConfig{
			Epochs: 1, BatchSize: 64, Standardize: boolp(false),
			Optimizer: OptimizerConfig{Name: "adam", LearningRate: 0.001},
			Precision: p,
		},
	}
	return mustTrainer(b, cfg, TaskMulticlass, d, Validation{}, Options{Threads: threads})
}

// BenchmarkTrainStep times one mini-batch step (gather, forward, backward,
// update) in each precision and reports samples/s.
func BenchmarkTrainStep(b *testing.B) {
	for _, p := range []Precision{Float32, Float64} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", p, threads), func(b *testing.B) {
				tr := benchTrainerIn(b, threads, p)
				tr.core.start(threads)
				defer tr.core.stop()
				idx := tr.data.trainIdx
				batch := tr.batch
				b.ReportAllocs()
				b.ResetTimer()
				s := 0
				for range b.N {
					if s+batch > len(idx) {
						s = 0
					}
					tr.core.step(tr, idx[s:s+batch], 0.001)
					s += batch
				}
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "samples/s")
			})
		}
	}
}

// BenchmarkPredict times Predict on the benchmark network for one row and
// for 256 rows, in each precision, and reports rows/s.
func BenchmarkPredict(b *testing.B) {
	for _, p := range []Precision{Float32, Float64} {
		m := benchTrainerIn(b, 1, p).Model()
		for _, rows := range []int{1, 256} {
			b.Run(fmt.Sprintf("%s/rows=%d", p, rows), func(b *testing.B) { benchPredict(b, m, rows) })
		}
	}
}

func benchPredict(b *testing.B, m *Model, rows int) {
	x := make([]float64, rows*m.Features())
	for i := range x {
		x[i] = float64(i%7) / 7
	}
	dst := make([]float64, rows*m.Outputs())
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := m.Predict(dst, x, rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "rows/s")
}
