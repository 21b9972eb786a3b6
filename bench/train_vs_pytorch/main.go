// Command train_vs_pytorch trains the benchmark network in backpropd's
// engine on Fashion-MNIST and prints one JSON line with samples/s and test
// accuracy, in the same schema as train_torch.py. run.sh builds it twice,
// with and without the openblas tag, and compares both with PyTorch in
// float32 and float64.
//
// The network and training match train_torch.py: 784-256-128-10 relu,
// softmax cross-entropy, Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8) with
// the learning-rate schedule -schedule (per epoch, as PyTorch's
// CosineAnnealingLR for "cosine"), Glorot uniform weights, zero biases,
// batch 64 reshuffled every epoch, in the precision -precision. Pixels are
// divided by 255 and the engine's standardization is off, so both sides see
// the same inputs.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"time"

	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/idx"
	"github.com/backpropd/backpropd/internal/kernels"
	"github.com/backpropd/backpropd/internal/openblas"
)

type result struct {
	Impl             string  `json:"impl"`
	Build            string  `json:"build"`
	Threads          int     `json:"threads"`
	Precision        string  `json:"precision"`
	BLASCore         string  `json:"blas_core,omitempty"` // OpenBLAS's kernel set, openblas build only
	Kernels          string  `json:"kernels,omitempty"`   // package kernels' level, default build only
	Epochs           int     `json:"epochs"`
	TrainRows        int     `json:"train_rows"`
	Seconds          float64 `json:"seconds"`
	SamplesPerSecond float64 `json:"samples_per_second"`
	FinalLoss        float64 `json:"final_epoch_loss"`
	TestAccuracy     float64 `json:"test_accuracy"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "train_vs_pytorch:", err)
		os.Exit(1)
	}
}

func run() error {
	dataDir := flag.String("data", "/usr/share/datasets/fashion-mnist", "directory with the Fashion-MNIST IDX files")
	epochs := flag.Int("epochs", 3, "training epochs")
	batch := flag.Int("batch", 64, "mini-batch size")
	threads := flag.Int("threads", 1, "matrix-product parallelism (engine Options.Threads, and OpenBLAS threads in the openblas build)")
	seed := flag.Int64("seed", 1, "random seed")
	trainRows := flag.Int("train-rows", 0, "use only the first N training rows (0: all)")
	schedule := flag.String("schedule", "constant", `learning-rate schedule, once per epoch: "constant" or "cosine" (to 0 over the epochs)`)
	precision := flag.String("precision", "float64", `training precision: "float32" or "float64"`)
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the training run to this file")
	flag.Parse()
	if p := engine.Precision(*precision); p != engine.Float32 && p != engine.Float64 {
		return fmt.Errorf("-precision: must be %q or %q, got %q", engine.Float32, engine.Float64, *precision)
	}

	openblas.Use() // the engine does this itself in the openblas build; harmless twice
	if openblas.Enabled {
		openblas.SetThreads(*threads)
	}
	train, err := load(*dataDir, "train", *trainRows)
	if err != nil {
		return err
	}
	test, err := load(*dataDir, "t10k", 0)
	if err != nil {
		return err
	}

	shuffle, standardize := true, false
	cfg := engine.Config{
		Network: engine.NetworkConfig{
			Hidden: []engine.LayerConfig{
				{Units: 256, Activation: engine.ReLU},
				{Units: 128, Activation: engine.ReLU},
			},
			OutputActivation: engine.Softmax,
			Loss:             engine.CrossEntropy,
			Init:             engine.Glorot,
		},
		Training: engine.TrainingConfig{
			Epochs:      *epochs,
			BatchSize:   *batch,
			Shuffle:     &shuffle,
			Seed:        seed,
			Standardize: &standardize,
			Optimizer: engine.OptimizerConfig{
				Name: "adam", LearningRate: 1e-3, Beta1: new(0.9), Beta2: new(0.999), Epsilon: 1e-8,
			},
			LRSchedule: engine.ScheduleConfig{Name: *schedule},
			Precision:  engine.Precision(*precision),
		},
	}
	cfg = cfg.Resolve(engine.TaskMulticlass, false)
	tr, err := engine.NewTrainer(cfg, engine.TaskMulticlass, train, engine.Validation{}, engine.Options{Threads: *threads})
	if err != nil {
		return fmt.Errorf("new trainer: %w", err)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	start := time.Now()
	err = tr.Run(context.Background(), nil)
	secs := time.Since(start).Seconds()
	pprof.StopCPUProfile() // a no-op without -cpuprofile
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	hist := tr.History()
	if len(hist) != *epochs {
		return fmt.Errorf("trained %d epochs, want %d", len(hist), *epochs)
	}

	m := tr.Model()
	probs := make([]float64, test.Rows*m.Outputs())
	if err := m.Predict(probs, test.X, test.Rows); err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	labels := make([]string, test.Rows)
	if err := m.Labels(labels, probs, test.Rows); err != nil {
		return fmt.Errorf("labels: %w", err)
	}
	correct := 0
	for i, l := range labels {
		if l == test.Labels[i] {
			correct++
		}
	}

	// The default build's products run on package kernels' micro-kernels
	// where the CPU has them, on gonum's pure-Go BLAS otherwise.
	level := kernels.Active().String()
	build := "pure Go, kernels " + level
	core := ""
	if openblas.Enabled {
		build = fmt.Sprintf("%s (%d thread(s))", openblas.Config(), openblas.Threads())
		core, level = openblas.CoreName(), ""
	}
	build = fmt.Sprintf("%s, blas64=%T, blas32=%T, GOMAXPROCS=%d", build, blas64.Implementation(), blas32.Implementation(), runtime.GOMAXPROCS(0))
	return json.NewEncoder(os.Stdout).Encode(result{
		Impl:             "backpropd",
		Build:            build,
		Threads:          *threads,
		Precision:        string(cfg.Training.Precision),
		BLASCore:         core,
		Kernels:          level,
		Epochs:           *epochs,
		TrainRows:        train.Rows,
		Seconds:          secs,
		SamplesPerSecond: float64(*epochs*train.Rows) / secs,
		FinalLoss:        hist[len(hist)-1].Loss,
		TestAccuracy:     float64(correct) / float64(test.Rows),
	})
}

// load reads prefix-images-idx3-ubyte.gz and prefix-labels-idx1-ubyte.gz,
// scales pixels to [0, 1] and names the classes "0" to "9".
func load(dir, prefix string, limit int) (engine.Data, error) {
	images, err := idx.ReadFile(filepath.Join(dir, prefix+"-images-idx3-ubyte.gz"))
	if err != nil {
		return engine.Data{}, err
	}
	labels, err := idx.ReadFile(filepath.Join(dir, prefix+"-labels-idx1-ubyte.gz"))
	if err != nil {
		return engine.Data{}, err
	}
	if len(images.Dims) != 3 || len(labels.Dims) != 1 || images.Dims[0] != labels.Dims[0] {
		return engine.Data{}, fmt.Errorf("%s: images %v and labels %v do not pair up", prefix, images.Dims, labels.Dims)
	}
	rows, features := images.Dims[0], images.Dims[1]*images.Dims[2]
	x, err := images.Float64s(make([]float64, rows*features), 1.0/255)
	if err != nil {
		return engine.Data{}, err
	}
	if limit > 0 && limit < rows {
		rows = limit
		x = x[:rows*features]
	}
	names := make([]string, 10)
	for i := range names {
		names[i] = strconv.Itoa(i)
	}
	y := make([]string, rows)
	for i := range y {
		c := labels.Data[i]
		if int(c) >= len(names) {
			return engine.Data{}, fmt.Errorf("%s: label %d of row %d is not a class 0-9", prefix, c, i)
		}
		y[i] = names[c]
	}
	fnames := make([]string, features)
	for i := range fnames {
		fnames[i] = "px" + strconv.Itoa(i)
	}
	return engine.Data{Rows: rows, Features: features, X: x, FeatureNames: fnames, Labels: y}, nil
}
