package engine

import (
	"errors"
	"fmt"
	"strings"
)

// ErrDiverged is wrapped by the error Run returns when the loss or the
// weights stop being finite numbers.
var ErrDiverged = errors.New("training diverged")

// ErrNewerFormat is wrapped by the *FormatError DecodeModel and
// RestoreState return for data in a format version newer than this build
// reads.
var ErrNewerFormat = errors.New("format newer than this build reads")

// FormatError reports a model file or training state written in a format
// version newer than this build reads; nothing else in it was decoded. It
// wraps ErrNewerFormat. Callers that know the file's name add it.
type FormatError struct {
	What    string // "model" or "training state"
	Version uint32 // found in the data
	Newest  uint32 // the newest version this build reads
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%s format version %d is newer than this build reads (%d); upgrade backpropd", e.What, e.Version, e.Newest)
}

// Unwrap returns ErrNewerFormat.
func (e *FormatError) Unwrap() error { return ErrNewerFormat }

// FieldError is one problem with a Config or with data, located by a path
// in the engine's own terms: a JSON path in Config's encoding
// ("network.hidden[1].units", "training.optimizer.learning_rate"), "task",
// FieldData for the training data, or the Validation's "validation.fraction"
// and FieldValidationSet. A caller that takes a request of another shape
// renames these paths to its own (internal/jobs names the data by its
// dataset ids).
type FieldError struct {
	Field   string
	Message string
}

// Paths of the data arguments in FieldErrors.
const (
	FieldData          = "data"           // the training Data
	FieldValidationSet = "validation.set" // Validation.Set
)

// earlyStoppingNeedsValidation is the problem of early stopping asked for
// without validation data, on "training.early_stopping".
const earlyStoppingNeedsValidation = "early stopping needs validation data: give a validation fraction or set, or set early_stopping.enabled to false"

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
