package engine

// Task is the kind of problem a network solves. It picks the default output
// activation and loss.
type Task string

// Tasks.
const (
	TaskRegression Task = "regression" // identity + mse by default
	TaskBinary     Task = "binary"     // sigmoid + binary_cross_entropy by default
	TaskMulticlass Task = "multiclass" // softmax + cross_entropy by default
)

// Activation names a layer's elementwise (or, for softmax, row-wise) nonlinearity.
type Activation string

// Activations.
const (
	Identity  Activation = "identity"
	ReLU      Activation = "relu"
	LeakyReLU Activation = "leaky_relu"
	Sigmoid   Activation = "sigmoid"
	Tanh      Activation = "tanh"
	Softmax   Activation = "softmax" // output layer only
)

// Loss names a training objective.
type Loss string

// Losses.
const (
	MSE                Loss = "mse"
	BinaryCrossEntropy Loss = "binary_cross_entropy"
	CrossEntropy       Loss = "cross_entropy"
)

// Init names a weight initialization scheme. Biases always start at zero.
type Init string

// Initializations.
const (
	Glorot Init = "glorot" // Glorot (Xavier) uniform
	He     Init = "he"     // He uniform
)

// Precision is the floating-point type a network's weights, activations
// and gradients are stored and multiplied in.
type Precision string

// Precisions. float32 halves the memory and model files and doubles the
// SIMD lanes; float64 is what training did before Precision existed, and
// what an empty Precision means.
const (
	Float32 Precision = "float32"
	Float64 Precision = "float64"
)

// LayerConfig is one hidden dense layer.
type LayerConfig struct {
	Units      int        `json:"units"`
	Activation Activation `json:"activation"`
	// Slope is leaky_relu's negative slope; nil means 0.01. Rejected for
	// other activations.
	Slope *float64 `json:"slope,omitempty"`
	// Dropout is the probability, 0 <= p < 1, that training zeroes each
	// of the layer's outputs in a mini-batch; the kept ones are scaled by
	// 1/(1-p) (inverted dropout), so prediction uses every unit as is.
	// 0 turns it off.
	Dropout float64 `json:"dropout,omitempty"`
}

// NetworkConfig is the architecture. Input and output widths come from the
// data, not from here.
type NetworkConfig struct {
	Hidden           []LayerConfig `json:"hidden"`
	OutputActivation Activation    `json:"output_activation"`
	Loss             Loss          `json:"loss"`
	Init             Init          `json:"init"`
	// InputDropout is Dropout applied to the network's inputs (after
	// preprocessing); 0 turns it off.
	InputDropout float64 `json:"input_dropout,omitempty"`
}

// OptimizerConfig selects and tunes the weight-update rule.
// Name is "sgd", "adam" or "rmsprop". Fields that do not apply to the chosen
// optimizer must be zero or, for pointers, nil or zero.
type OptimizerConfig struct {
	Name         string   `json:"name"`
	LearningRate float64  `json:"learning_rate"`
	Momentum     float64  `json:"momentum,omitempty"` // sgd
	Nesterov     bool     `json:"nesterov,omitempty"` // sgd, requires momentum > 0
	Beta1        *float64 `json:"beta1,omitempty"`    // adam, default 0.9
	Beta2        *float64 `json:"beta2,omitempty"`    // adam, default 0.999
	Rho          *float64 `json:"rho,omitempty"`      // rmsprop, default 0.9
	Epsilon      float64  `json:"epsilon,omitempty"`  // adam 1e-8, rmsprop 1e-8
}

// ScheduleConfig is a learning-rate schedule evaluated once per epoch.
// Name is "constant", "step" (lr * gamma^floor(epoch/step_size)) or
// "cosine" (from lr down to min_lr over all epochs).
type ScheduleConfig struct {
	Name     string  `json:"name"`
	StepSize int     `json:"step_size,omitempty"` // step, default 10
	Gamma    float64 `json:"gamma,omitempty"`     // step, default 0.1
	MinLR    float64 `json:"min_lr,omitempty"`    // cosine, default 0
}

// EarlyStoppingConfig stops training when validation loss has not improved
// by more than MinDelta for Patience epochs.
type EarlyStoppingConfig struct {
	// Enabled nil means true; false turns early stopping off even though
	// validation data exists.
	Enabled *bool `json:"enabled,omitempty"`
	// Patience nil means 5. As in Keras, training stops once the number
	// of epochs since the last improvement reaches max(Patience, 1), so 0
	// and 1 both stop at the first epoch without improvement.
	Patience    *int    `json:"patience,omitempty"`
	MinDelta    float64 `json:"min_delta"`
	RestoreBest *bool   `json:"restore_best,omitempty"` // nil means true
}

// TrainingConfig holds the hyperparameters of one training run.
// Pointer fields distinguish "unset" (take the default) from an explicit
// zero value.
type TrainingConfig struct {
	Epochs      int    `json:"epochs"`      // default 10
	BatchSize   int    `json:"batch_size"`  // default 32
	Shuffle     *bool  `json:"shuffle"`     // default true
	Seed        *int64 `json:"seed"`        // default 1
	Standardize *bool  `json:"standardize"` // default true

	Optimizer  OptimizerConfig `json:"optimizer"`   // default adam, lr 0.001
	L2         float64         `json:"l2"`          // weight decay on weights, not biases
	LRSchedule ScheduleConfig  `json:"lr_schedule"` // default constant
	ClipNorm   float64         `json:"clip_norm"`   // global gradient-norm clip; 0 is off
	// L1 adds l1·Σ|w| over the weights (not the biases) to the objective:
	// l1·sign(w) is added to each weight's gradient, 0 at w = 0. Like l2
	// it is between 0 and 1.
	L1 float64 `json:"l1,omitempty"`
	// Precision is float32 or float64; empty means float64, so that a
	// stored config from before the field existed trains, resumes and
	// predicts as it did. Resolve leaves it as it is: the service's job
	// resolution picks float32 for new jobs.
	Precision Precision `json:"precision,omitempty"`

	// EarlyStopping defaults to on when there is validation data and to
	// off (nil) without; asking for it without validation data is an error.
	EarlyStopping *EarlyStoppingConfig `json:"early_stopping,omitempty"`

	// ClassWeight weights each row's loss by its class ("balanced" or a
	// map of weights); nil weighs every row 1.
	ClassWeight *ClassWeight `json:"class_weight,omitempty"`
}

// Config is a complete training configuration.
//
// Its JSON tags are a stored format, not only a convenience: a model file
// holds its resolved Config encoded with them (see MarshalBinary), and the
// FieldErrors of Validate are paths in that encoding. A field's JSON name
// therefore never changes; new fields are added with defaults that keep an
// older encoding's meaning.
//
// Unset fields take defaults in Resolve. A field is a pointer, with nil
// meaning "unset", exactly when zero (or false) is a valid value that
// differs from its default: leaky_relu's slope, adam's beta1 and beta2,
// rmsprop's rho, early stopping's patience, enabled and restore_best, and
// shuffle, seed and standardize. Every other field is a plain value whose
// zero means "unset": either its default is zero itself (momentum, l2, l1,
// clip_norm, dropout, input_dropout, min_lr, min_delta), or zero is
// outside its valid range (units, epochs, batch_size, learning_rate,
// epsilon, step_size, gamma), so an explicit zero there cannot be told
// from a missing value and callers that see the request (the API's own
// request type) must refuse it themselves.
type Config struct {
	Network  NetworkConfig  `json:"network"`
	Training TrainingConfig `json:"training"`
	// Preprocessing is how inputs are prepared (scaling, imputation,
	// category levels); nil keeps the behaviour from before it existed
	// (see PreprocessingConfig).
	Preprocessing *PreprocessingConfig `json:"preprocessing,omitempty"`
}
