package engine_test

import (
	"context"
	"fmt"
	"log"

	"github.com/backpropd/backpropd/internal/engine"
)

// Example trains a small network on XOR, then predicts the four points
// back, with their class labels.
func Example() {
	data := engine.Data{
		Rows: 4, Features: 2,
		X:            []float64{0, 0, 0, 1, 1, 0, 1, 1},
		FeatureNames: []string{"a", "b"},
		Labels:       []string{"same", "different", "different", "same"},
	}
	cfg := engine.Config{
		Network: engine.NetworkConfig{Hidden: []engine.LayerConfig{{Units: 8, Activation: engine.Tanh}}},
		Training: engine.TrainingConfig{
			Epochs: 300, BatchSize: 4,
			Optimizer: engine.OptimizerConfig{Name: "adam", LearningRate: 0.05},
		},
	}
	tr, err := engine.NewTrainer(cfg, engine.TaskBinary, data, engine.Validation{}, engine.Options{Threads: 1})
	if err != nil {
		log.Fatal(err)
	}
	if err := tr.Run(context.Background(), nil); err != nil {
		log.Fatal(err)
	}
	model := tr.Model()

	probs := make([]float64, data.Rows*model.Outputs())
	if err := model.Predict(probs, data.X, data.Rows); err != nil {
		log.Fatal(err)
	}
	labels := make([]string, data.Rows)
	if err := model.Labels(labels, probs, data.Rows); err != nil {
		log.Fatal(err)
	}
	fmt.Println("classes:", model.Classes())
	for i, l := range labels {
		fmt.Printf("%v -> %s (p(%s) %.1f)\n", data.X[2*i:2*i+2], l, model.Classes()[1], probs[i])
	}
	// Output:
	// classes: [different same]
	// [0 0] -> same (p(same) 1.0)
	// [0 1] -> different (p(same) 0.0)
	// [1 0] -> different (p(same) 0.0)
	// [1 1] -> same (p(same) 1.0)
}
