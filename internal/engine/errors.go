package engine

import (
	"errors"
	"fmt"
	"strings"
)

// ErrDiverged is wrapped by the error Run returns when the loss or the
// weights stop being finite numbers.
var ErrDiverged = errors.New("training diverged")

// FieldError is one problem with a Config or with data, located by a JSON
// path relative to the job request, for example "network.hidden[1].units",
// "training.optimizer.learning_rate" or "validation.fraction". Problems
// with the training data itself are reported on "dataset_id", and those of
// a separate validation set on "validation.dataset_id".
type FieldError struct {
	Field   string
	Message string
}

// String gives "field: message".
func (e FieldError) String() string { return e.Field + ": " + e.Message }

// ValidationError lists every problem found in a Config or data set.
type ValidationError struct {
	Errors []FieldError
}

// Error lists every field error, separated by semicolons.
func (e *ValidationError) Error() string {
	if len(e.Errors) == 0 {
		return "invalid configuration"
	}
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.String()
	}
	return "invalid configuration: " + strings.Join(parts, "; ")
}

// problems collects field errors; its err is nil when there were none.
type problems []FieldError

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// err returns the problems as a *ValidationError, each distinct one once,
// or nil when there are none.
func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	seen := make(map[FieldError]bool, len(p))
	var out []FieldError
	for _, fe := range p {
		if !seen[fe] {
			seen[fe] = true
			out = append(out, fe)
		}
	}
	return &ValidationError{Errors: out}
}

// Limits caps what one training run may allocate. Zero fields mean "no cap"
// beyond the engine's own hard limits (65536 units per layer, 1024 layers).
type Limits struct {
	MaxParams int   // total weights and biases
	MaxCells  int64 // rows × features of the training data
	MaxLayers int   // hidden layers
	MaxUnits  int   // units of one hidden layer
	MaxEpochs int
	MaxBatch  int
	// MaxMemory caps the run's EstimateMemory, in bytes: NewTrainer
	// refuses a run over it, naming the fields to change, before it
	// allocates the network or the batch buffers.
	MaxMemory int64
}
