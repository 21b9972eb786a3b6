package engine

import (
	"fmt"
	"math"
	"slices"
)

// Optimizer and schedule names.
const (
	optSGD     = "sgd"
	optAdam    = "adam"
	optRMSProp = "rmsprop"

	schedConstant = "constant"
	schedStep     = "step"
	schedCosine   = "cosine"
)

// Hard limits that hold whatever Limits say: they keep every size
// computation far from integer overflow.
const (
	hardMaxUnits    = 65536
	hardMaxLayers   = 1024
	hardMaxFeatures = 1 << 24
	hardMaxEpochs   = 1_000_000
	hardMaxBatch    = 1 << 20
	defaultSlope    = 0.01
	defaultPatience = 5
)

// Resolve fills every unset field of c (a nil pointer, or a zero plain
// value; see Config) with its default for task and returns the result; c
// itself is not modified and shares no pointer with the result. An explicit
// zero in a pointer field is kept. hasValidation says whether
// validation data exists: early stopping defaults to on (patience 5,
// min_delta 0, restore_best) with it and to off (nil) without it. Resolve
// does not validate, and resolving a resolved config changes nothing.
//
// Defaults: one hidden layer of 64 relu units when Hidden is nil (an empty,
// non-nil list means no hidden layer); relu for a layer without activation
// and slope 0.01 for leaky_relu; output activation and loss from the task;
// glorot initialization; 10 epochs, batch 32, shuffle, seed 1,
// standardization; adam with learning rate 0.001, beta1 0.9, beta2 0.999,
// epsilon 1e-8 (sgd: learning rate 0.01, momentum 0; rmsprop: learning rate
// 0.001, rho 0.9, epsilon 1e-8); a constant schedule (step: step_size 10,
// gamma 0.1; cosine: min_lr 0). An explicit Preprocessing gets its unset
// fields (scaling from standardize, median imputation, min_level_rows 5,
// max_levels 50) and an unset standardize follows its scaling; a nil one
// stays nil (see PreprocessingConfig).
func (c Config) Resolve(task Task, hasValidation bool) Config {
	n := &c.Network
	if n.Hidden == nil {
		n.Hidden = []LayerConfig{{Units: 64, Activation: ReLU}}
	} else {
		n.Hidden = slices.Clone(n.Hidden)
	}
	for i := range n.Hidden {
		l := &n.Hidden[i]
		if l.Activation == "" {
			l.Activation = ReLU
		}
		if l.Slope != nil {
			l.Slope = ptr(*l.Slope)
		} else if l.Activation == LeakyReLU {
			l.Slope = ptr(defaultSlope)
		}
	}
	if n.OutputActivation == "" {
		n.OutputActivation = defaultOutput(task)
	}
	if n.Loss == "" {
		n.Loss = defaultLoss(task)
	}
	if n.Init == "" {
		n.Init = Glorot
	}

	t := &c.Training
	if t.Epochs == 0 {
		t.Epochs = 10
	}
	if t.BatchSize == 0 {
		t.BatchSize = 32
	}
	t.Shuffle = orDefault(t.Shuffle, true)
	t.Seed = orDefault(t.Seed, 1)
	c.resolvePreprocessing()
	t.Standardize = orDefault(t.Standardize, true)
	t.ClassWeight = t.ClassWeight.clone()

	o := &t.Optimizer
	if o.Name == "" {
		o.Name = optAdam
	}
	// Cloned whatever the optimizer: where they do not apply, Validate
	// judges them.
	o.Beta1, o.Beta2, o.Rho = clonePtr(o.Beta1), clonePtr(o.Beta2), clonePtr(o.Rho)
	switch o.Name {
	case optSGD:
		if o.LearningRate == 0 {
			o.LearningRate = 0.01
		}
	case optAdam:
		if o.LearningRate == 0 {
			o.LearningRate = 0.001
		}
		o.Beta1 = orDefault(o.Beta1, 0.9)
		o.Beta2 = orDefault(o.Beta2, 0.999)
		if o.Epsilon == 0 {
			o.Epsilon = 1e-8
		}
	case optRMSProp:
		if o.LearningRate == 0 {
			o.LearningRate = 0.001
		}
		o.Rho = orDefault(o.Rho, 0.9)
		if o.Epsilon == 0 {
			o.Epsilon = 1e-8
		}
	}

	s := &t.LRSchedule
	if s.Name == "" {
		s.Name = schedConstant
	}
	if s.Name == schedStep {
		if s.StepSize == 0 {
			s.StepSize = 10
		}
		if s.Gamma == 0 {
			s.Gamma = 0.1
		}
	}

	if t.EarlyStopping == nil {
		if hasValidation {
			t.EarlyStopping = &EarlyStoppingConfig{Enabled: ptr(true), Patience: ptr(defaultPatience), RestoreBest: ptr(true)}
		}
	} else {
		es := *t.EarlyStopping
		es.Enabled = orDefault(es.Enabled, true)
		es.Patience = orDefault(es.Patience, defaultPatience)
		es.RestoreBest = orDefault(es.RestoreBest, true)
		t.EarlyStopping = &es
	}
	return c
}

func defaultOutput(task Task) Activation {
	switch task {
	case TaskBinary:
		return Sigmoid
	case TaskMulticlass:
		return Softmax
	}
	return Identity
}

func defaultLoss(task Task) Loss {
	switch task {
	case TaskBinary:
		return BinaryCrossEntropy
	case TaskMulticlass:
		return CrossEntropy
	}
	return MSE
}

func ptr[T any](v T) *T { return &v }

// orDefault returns a fresh pointer to *p, or to def when p is nil, so a
// resolved config never shares pointers with its input.
func orDefault[T any](p *T, def T) *T {
	if p != nil {
		return ptr(*p)
	}
	return ptr(def)
}

// earlyStopping reports whether the resolved config stops early.
func (c Config) earlyStopping() bool {
	es := c.Training.EarlyStopping
	return es != nil && (es.Enabled == nil || *es.Enabled)
}

// Validate checks a resolved config against the task, the data shape and the
// limits, returning a *ValidationError that names every bad field, or nil.
// features is the number of input columns; outputs is the width of the
// output layer (classes for multiclass, 1 for binary with class labels,
// target columns otherwise). Checks that need to know whether validation
// data exists are in ValidateFor. Problems with the data's shape are
// reported on FieldData.
func (c Config) Validate(task Task, features, outputs int, lim Limits) error {
	var p problems
	c.validate(&p, task, features, outputs, lim)
	return p.err()
}

// ValidateFor is Validate plus the checks that depend on whether validation
// data exists: early stopping asked for without validation data is an
// error on "training.early_stopping". NewTrainer calls it.
func (c Config) ValidateFor(task Task, features, outputs int, hasValidation bool, lim Limits) error {
	var p problems
	c.validate(&p, task, features, outputs, lim)
	if !hasValidation && c.earlyStopping() {
		p.add("training.early_stopping", earlyStoppingNeedsValidation)
	}
	return p.err()
}

func (c Config) validate(p *problems, task Task, features, outputs int, lim Limits) {
	switch task {
	case TaskRegression, TaskBinary, TaskMulticlass:
	default:
		p.add("task", "unknown task %q (want regression, binary or multiclass)", task)
	}
	if features < 1 || features > hardMaxFeatures {
		p.add(FieldData, "the data has %d feature columns; want 1 to %d", features, hardMaxFeatures)
	}
	if outputs < 1 || outputs > hardMaxUnits {
		p.add(FieldData, "the network would have %d outputs; want 1 to %d", outputs, hardMaxUnits)
	}
	c.Network.validate(p, task, outputs, lim)
	c.Training.validate(p, lim)
	c.validatePreprocessing(p)
	c.Training.validateClassWeight(p)

	if params, ok := c.Network.numParams(features, outputs); ok {
		limit := lim.MaxParams
		if limit > 0 && params > int64(limit) {
			p.add("network.hidden", "the network has %d weights and biases; the limit is %d", params, limit)
		}
	}
}

func (n NetworkConfig) validate(p *problems, task Task, outputs int, lim Limits) {
	maxLayers := hardMaxLayers
	if lim.MaxLayers > 0 && lim.MaxLayers < maxLayers {
		maxLayers = lim.MaxLayers
	}
	if len(n.Hidden) > maxLayers {
		p.add("network.hidden", "%d hidden layers; at most %d are allowed", len(n.Hidden), maxLayers)
	}
	maxUnits := hardMaxUnits
	if lim.MaxUnits > 0 && lim.MaxUnits < maxUnits {
		maxUnits = lim.MaxUnits
	}
	for i, l := range n.Hidden {
		f := fmt.Sprintf("network.hidden[%d]", i)
		if l.Units < 1 || l.Units > maxUnits {
			p.add(f+".units", "must be between 1 and %d, got %d", maxUnits, l.Units)
		}
		switch {
		case l.Activation == Softmax:
			p.add(f+".activation", "softmax is allowed only as the output activation")
		case !knownActivation(l.Activation):
			p.add(f+".activation", "unknown activation %q (want identity, relu, leaky_relu, sigmoid or tanh)", l.Activation)
		}
		dropoutRange(p, f+".dropout", l.Dropout)
		if l.Slope != nil {
			switch {
			case l.Activation != LeakyReLU:
				p.add(f+".slope", "slope applies only to leaky_relu, not to %s", l.Activation)
			case !(*l.Slope >= 0 && *l.Slope < 1):
				p.add(f+".slope", "must be at least 0 and less than 1, got %v", *l.Slope)
			}
		}
	}

	dropoutRange(p, "network.input_dropout", n.InputDropout)

	out := n.OutputActivation
	if !knownActivation(out) && out != Softmax {
		p.add("network.output_activation", "unknown activation %q (want identity, relu, leaky_relu, sigmoid, tanh or softmax)", out)
	}
	switch {
	case task == TaskMulticlass && knownActivation(out):
		p.add("network.output_activation", "a multiclass network needs output_activation softmax, not %s", out)
	case task == TaskBinary && (knownActivation(out) || out == Softmax) && out != Sigmoid:
		p.add("network.output_activation", "a binary network needs output_activation sigmoid, not %s", out)
	case out == Softmax && outputs == 1:
		p.add("network.output_activation", "softmax over a single output is always 1; use sigmoid")
	}

	switch n.Loss {
	case MSE:
	case CrossEntropy:
		if task == TaskRegression {
			p.add("network.loss", "cross_entropy is for multiclass tasks, not regression; use mse")
		} else if out != Softmax {
			p.add("network.loss", "cross_entropy requires output_activation softmax, not %s", out)
		}
	case BinaryCrossEntropy:
		if task == TaskRegression {
			p.add("network.loss", "binary_cross_entropy is for binary tasks, not regression; use mse")
		} else if out != Sigmoid {
			p.add("network.loss", "binary_cross_entropy requires output_activation sigmoid, not %s", out)
		}
	default:
		p.add("network.loss", "unknown loss %q (want mse, binary_cross_entropy or cross_entropy)", n.Loss)
	}

	switch n.Init {
	case Glorot, He:
	default:
		p.add("network.init", "unknown initialization %q (want glorot or he)", n.Init)
	}
}

// dropoutRange checks a dropout probability: at least 0 and below 1,
// since dropping every unit leaves nothing to scale up.
func dropoutRange(p *problems, field string, v float64) {
	if !(v >= 0 && v < 1) {
		p.add(field, "must be at least 0 and below 1, got %v", v)
	}
}

func knownActivation(a Activation) bool {
	switch a {
	case Identity, ReLU, LeakyReLU, Sigmoid, Tanh:
		return true
	}
	return false
}

// numParams counts weights and biases; ok is false when a layer width is
// out of range (already reported), so the count would mean nothing.
func (n NetworkConfig) numParams(features, outputs int) (params int64, ok bool) {
	if features < 1 || features > hardMaxFeatures || outputs < 1 || outputs > hardMaxUnits || len(n.Hidden) > hardMaxLayers {
		return 0, false
	}
	in := int64(features)
	for _, l := range n.Hidden {
		if l.Units < 1 || l.Units > hardMaxUnits {
			return 0, false
		}
		params += (in + 1) * int64(l.Units)
		in = int64(l.Units)
	}
	return params + (in+1)*int64(outputs), true
}

// precision is the Precision training runs in: empty means Float64.
func (t TrainingConfig) precision() Precision {
	if t.Precision == "" {
		return Float64
	}
	return t.Precision
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func (t TrainingConfig) validate(p *problems, lim Limits) {
	maxEpochs := hardMaxEpochs
	if lim.MaxEpochs > 0 && lim.MaxEpochs < maxEpochs {
		maxEpochs = lim.MaxEpochs
	}
	if t.Epochs < 1 || t.Epochs > maxEpochs {
		p.add("training.epochs", "must be between 1 and %d, got %d", maxEpochs, t.Epochs)
	}
	maxBatch := hardMaxBatch
	if lim.MaxBatch > 0 && lim.MaxBatch < maxBatch {
		maxBatch = lim.MaxBatch
	}
	if t.BatchSize < 1 || t.BatchSize > maxBatch {
		p.add("training.batch_size", "must be between 1 and %d, got %d", maxBatch, t.BatchSize)
	}
	if !finite(t.L2) || t.L2 < 0 || t.L2 > 1 {
		p.add("training.l2", "must be between 0 and 1, got %v", t.L2)
	}
	if !finite(t.L1) || t.L1 < 0 || t.L1 > 1 {
		p.add("training.l1", "must be between 0 and 1, got %v", t.L1)
	}
	switch t.Precision {
	case "", Float32, Float64:
	default:
		p.add("training.precision", "must be %q or %q, got %s", Float32, Float64, QuoteName(string(t.Precision)))
	}
	if !finite(t.ClipNorm) || t.ClipNorm < 0 {
		p.add("training.clip_norm", "must be a finite number >= 0 (0 turns clipping off), got %v", t.ClipNorm)
	}

	o := t.Optimizer
	const f = "training.optimizer."
	if !finite(o.LearningRate) || o.LearningRate <= 0 || o.LearningRate > 10 {
		p.add(f+"learning_rate", "must be greater than 0 and at most 10, got %v", o.LearningRate)
	}
	notFor := func(field string, v float64) {
		if v != 0 {
			p.add(f+field, "does not apply to optimizer %s", o.Name)
		}
	}
	// An explicit zero where a pointer field does not apply is accepted
	// like a zero plain field: it changes nothing.
	notForPtr := func(field string, v *float64) {
		if v != nil {
			notFor(field, *v)
		}
	}
	unit := func(field string, v float64) { // [0, 1)
		if !(v >= 0 && v < 1) {
			p.add(f+field, "must be at least 0 and less than 1, got %v", v)
		}
	}
	unitPtr := func(field string, v *float64) {
		if v == nil {
			p.add(f+field, "is not set: the configuration is not resolved")
			return
		}
		unit(field, *v)
	}
	eps := func(v float64) {
		if !(v > 0 && v <= 1) {
			p.add(f+"epsilon", "must be greater than 0 and at most 1, got %v", v)
		}
	}
	switch o.Name {
	case optSGD:
		unit("momentum", o.Momentum)
		if o.Nesterov && o.Momentum == 0 {
			p.add(f+"nesterov", "nesterov needs momentum greater than 0")
		}
		notForPtr("beta1", o.Beta1)
		notForPtr("beta2", o.Beta2)
		notForPtr("rho", o.Rho)
		notFor("epsilon", o.Epsilon)
	case optAdam:
		unitPtr("beta1", o.Beta1)
		unitPtr("beta2", o.Beta2)
		eps(o.Epsilon)
		notFor("momentum", o.Momentum)
		notForPtr("rho", o.Rho)
	case optRMSProp:
		unitPtr("rho", o.Rho)
		eps(o.Epsilon)
		notFor("momentum", o.Momentum)
		notForPtr("beta1", o.Beta1)
		notForPtr("beta2", o.Beta2)
	default:
		p.add(f+"name", "unknown optimizer %q (want sgd, adam or rmsprop)", o.Name)
	}
	if o.Nesterov && o.Name != optSGD {
		p.add(f+"nesterov", "nesterov applies only to sgd with momentum")
	}

	s := t.LRSchedule
	const sf = "training.lr_schedule."
	notForS := func(field string, bad bool) {
		if bad {
			p.add(sf+field, "does not apply to schedule %s", s.Name)
		}
	}
	switch s.Name {
	case schedConstant:
		notForS("step_size", s.StepSize != 0)
		notForS("gamma", s.Gamma != 0)
		notForS("min_lr", s.MinLR != 0)
	case schedStep:
		if s.StepSize < 1 {
			p.add(sf+"step_size", "must be at least 1, got %d", s.StepSize)
		}
		if !(s.Gamma > 0 && s.Gamma <= 1) {
			p.add(sf+"gamma", "must be greater than 0 and at most 1, got %v", s.Gamma)
		}
		notForS("min_lr", s.MinLR != 0)
	case schedCosine:
		if !finite(s.MinLR) || s.MinLR < 0 || (finite(o.LearningRate) && o.LearningRate > 0 && s.MinLR >= o.LearningRate) {
			p.add(sf+"min_lr", "must be at least 0 and less than the learning rate %v, got %v", o.LearningRate, s.MinLR)
		}
		notForS("step_size", s.StepSize != 0)
		notForS("gamma", s.Gamma != 0)
	default:
		p.add(sf+"name", "unknown schedule %q (want constant, step or cosine)", s.Name)
	}

	if es := t.EarlyStopping; es != nil && (es.Enabled == nil || *es.Enabled) {
		const ef = "training.early_stopping."
		switch {
		case es.Patience == nil:
			p.add(ef+"patience", "is not set: the configuration is not resolved")
		case *es.Patience < 0:
			p.add(ef+"patience", "must be at least 0, got %d", *es.Patience)
		}
		if !finite(es.MinDelta) || es.MinDelta < 0 {
			p.add(ef+"min_delta", "must be a finite number >= 0, got %v", es.MinDelta)
		}
	}
	if t.Shuffle == nil || t.Seed == nil || t.Standardize == nil {
		p.add("training", "the configuration is not resolved (shuffle, seed and standardize must be set)")
	}
}
