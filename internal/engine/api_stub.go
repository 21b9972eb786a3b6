package engine

// This file fixes the engine's exported surface so that internal/jobs and
// internal/api can be written against it. The engine implementation replaces
// every body here; signatures change only together with their callers.

import (
	"context"
	"errors"
	"time"
)

var errUnimplemented = errors.New("engine: not implemented yet")

// FieldError is one problem with a Config or with data, located by a JSON
// path relative to the config, for example "network.hidden[1].units" or
// "training.optimizer.learning_rate".
type FieldError struct {
	Field   string
	Message string
}

// ValidationError lists every problem found in a Config or data set.
type ValidationError struct {
	Errors []FieldError
}

func (e *ValidationError) Error() string { return "invalid configuration" }

// Limits caps what one training run may allocate. Zero fields mean "no cap".
type Limits struct {
	MaxParams int   // total weights and biases
	MaxCells  int64 // rows × features of the training data
	MaxLayers int
	MaxUnits  int
	MaxEpochs int
	MaxBatch  int
}

// Resolve fills every unset field of c with its default for task and returns
// the result. hasValidation says whether validation data exists: early
// stopping defaults to on (patience 5, min_delta 0, restore_best) with it
// and to off without it. It does not validate.
func (c Config) Resolve(task Task, hasValidation bool) Config { return c }

// Validate checks a resolved config against the task, the data shape and the
// limits, returning a *ValidationError that names every bad field, or nil.
// outputs is the width of the output layer (classes for multiclass, target
// columns otherwise).
func (c Config) Validate(task Task, features, outputs int, lim Limits) error { return errUnimplemented }

// Data is an in-memory training or validation set. X is row-major,
// Rows × Features. Exactly one of Targets (Rows × len(TargetNames), numeric)
// or Labels (Rows class labels) is set: Labels for binary and multiclass
// tasks with string classes, Targets for regression and for multi-label
// binary (0/1 columns).
type Data struct {
	Rows, Features int
	X              []float64
	FeatureNames   []string
	TargetNames    []string
	Targets        []float64
	Labels         []string
}

// Validation says where validation data comes from: a held-out Fraction of
// the training data (stratified for classifiers, deterministic from the
// seed), or a separate Set. Both zero means no validation.
type Validation struct {
	Fraction float64
	Set      *Data
}

// Epoch is one entry of the training history. Accuracy fields are NaN-free
// pointers: nil when they do not apply.
type Epoch struct {
	Epoch            int           `json:"epoch"` // 1-based
	Loss             float64       `json:"loss"`
	ValLoss          *float64      `json:"val_loss,omitempty"`
	Accuracy         *float64      `json:"accuracy,omitempty"`
	ValAccuracy      *float64      `json:"val_accuracy,omitempty"`
	LearningRate     float64       `json:"learning_rate"`
	Duration         time.Duration `json:"-"`
	DurationSeconds  float64       `json:"duration_seconds"`
	SamplesPerSecond float64       `json:"samples_per_second"`
}

// Options are the run-time knobs of a Trainer that are not part of the
// model's configuration.
type Options struct {
	// Threads is the parallelism this run may use for its matrix products;
	// 0 means 1.
	Threads int
	// Limits are checked by NewTrainer before anything large is allocated.
	Limits Limits
}

// Trainer runs backpropagation for one configuration and data set. It is not
// safe for concurrent use, except Stop.
type Trainer struct{}

// NewTrainer validates cfg (after Resolve; it resolves again, which is
// idempotent) against task and data, splits off
// validation data, fits standardization on the training split and allocates
// every buffer the training loop needs.
func NewTrainer(cfg Config, task Task, train Data, val Validation, opt Options) (*Trainer, error) {
	return nil, errUnimplemented
}

// Config returns the resolved configuration.
func (t *Trainer) Config() Config { return Config{} }

// Run trains until the configured epochs are done, early stopping triggers,
// onEpoch returns true, Stop is called, or ctx is done. onEpoch (may be nil)
// runs after every epoch with that epoch's history entry. Run returns
// ctx.Err() within one mini-batch of cancellation, and an error naming the
// epoch when the loss or weights become NaN or Inf. After a nil return,
// Model gives the trained model. Run may be called again after a Restore.
func (t *Trainer) Run(ctx context.Context, onEpoch func(Epoch) (stop bool)) error {
	return errUnimplemented
}

// Stop asks a running Run to return at the end of the current mini-batch,
// keeping the weights trained so far. It is safe to call from any goroutine.
func (t *Trainer) Stop() {}

// StoppedEarly reports whether the last Run ended before its planned epochs
// (early stopping, onEpoch or Stop).
func (t *Trainer) StoppedEarly() bool { return false }

// EpochsDone is the number of completed epochs.
func (t *Trainer) EpochsDone() int { return 0 }

// History returns a copy of the per-epoch history so far.
func (t *Trainer) History() []Epoch { return nil }

// MarshalState encodes the full training state at the last completed epoch
// boundary: weights, optimizer moments and step, random-number state, epoch,
// history, early-stopping bookkeeping and best weights. Call it from onEpoch
// or after Run returns; after a Run interrupted mid-epoch it still encodes
// the last epoch boundary, so resuming from it is bit-identical.
func (t *Trainer) MarshalState() ([]byte, error) { return nil, errUnimplemented }

// RestoreState loads a state written by MarshalState for the same config and
// data. A run resumed from it ends bit-identical to an uninterrupted run.
func (t *Trainer) RestoreState(b []byte) error { return errUnimplemented }

// Model returns the trained model (best weights when early stopping restored
// them).
func (t *Trainer) Model() *Model { return nil }

// Summary is the training summary stored inside a model file.
type Summary struct {
	Epochs       int      `json:"epochs"`
	Loss         float64  `json:"loss"`
	ValLoss      *float64 `json:"val_loss,omitempty"`
	Accuracy     *float64 `json:"accuracy,omitempty"`
	ValAccuracy  *float64 `json:"val_accuracy,omitempty"`
	StoppedEarly bool     `json:"stopped_early"`
	TrainRows    int      `json:"train_rows"`
}

// Model is a trained network ready for inference. It is immutable and safe
// for concurrent use.
type Model struct{}

// Task returns the model's task.
func (m *Model) Task() Task { return "" }

// Features is the number of input columns.
func (m *Model) Features() int { return 0 }

// FeatureNames are the input column names, in order.
func (m *Model) FeatureNames() []string { return nil }

// TargetNames are the target column names (regression and multi-label).
func (m *Model) TargetNames() []string { return nil }

// Outputs is the width of one prediction row.
func (m *Model) Outputs() int { return 0 }

// Classes are the class labels of a classifier, indexed like its outputs;
// nil for regression and multi-label models.
func (m *Model) Classes() []string { return nil }

// Config returns the resolved configuration the model was trained with.
func (m *Model) Config() Config { return Config{} }

// Summary returns the training summary.
func (m *Model) Summary() Summary { return Summary{} }

// NumParams is the number of weights and biases.
func (m *Model) NumParams() int { return 0 }

// Predict computes outputs for rows×Features() row-major inputs x into dst,
// which must hold rows×Outputs() values: probabilities for classifiers
// (softmax rows, or sigmoid per output), values for regression. It applies
// the stored standardization. It returns an error, never panics, on wrong
// sizes.
func (m *Model) Predict(dst, x []float64, rows int) error { return errUnimplemented }

// Labels writes, for each row of probabilities from Predict, the label of
// the most probable class (for binary, Classes()[1] when p >= 0.5) into dst.
func (m *Model) Labels(dst []string, probs []float64, rows int) error { return errUnimplemented }

// MarshalBinary encodes the model in the versioned, checksummed, data-only
// model format. Decoding the result gives a bit-identical model.
func (m *Model) MarshalBinary() ([]byte, error) { return nil, errUnimplemented }

// DecodeModel decodes a model file, checking sizes against caps before
// allocating and verifying its checksum. Malformed input gives an error,
// never a panic.
func DecodeModel(b []byte) (*Model, error) { return nil, errUnimplemented }
