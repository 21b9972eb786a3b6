package api

import (
	"encoding/json"
	"fmt"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/ingest"
	"github.com/backpropd/backpropd/internal/jobs"
)

// jobRequest is the body of POST /v1/jobs: the wire form of a job, which
// is not the stored jobs.Spec. Every option is a pointer that is nil when
// the field is absent or JSON null, so that check can tell an explicit
// value from a missing one: null asks for the default like an absent
// field does, while an explicit value that the engine would read as unset
// and replace by a default is refused. Small data sets may come inline as
// "data" instead of "dataset_id".
type jobRequest struct {
	Version    *int               `json:"version,omitempty"`
	ModelName  string             `json:"model_name"`
	DatasetID  string             `json:"dataset_id,omitempty"`
	Data       *ingest.JSONData   `json:"data,omitempty"`
	Validation *validationRequest `json:"validation,omitempty"`
	Network    networkRequest     `json:"network"`
	Training   trainingRequest    `json:"training"`
	// Preprocessing nil takes the defaults, with the scaling that
	// training.standardize gives.
	Preprocessing *preprocessingRequest `json:"preprocessing,omitempty"`
}

type preprocessingRequest struct {
	Scaling      *string `json:"scaling,omitempty"`
	Impute       *string `json:"impute,omitempty"`
	MinLevelRows *int    `json:"min_level_rows,omitempty"`
	MaxLevels    *int    `json:"max_levels,omitempty"`
}

type validationRequest struct {
	Fraction  *float64 `json:"fraction,omitempty"`
	DatasetID string   `json:"dataset_id,omitempty"`
}

type networkRequest struct {
	// Hidden nil (absent or null) takes the default layers; an empty list
	// asks for none.
	Hidden           []layerRequest `json:"hidden"`
	OutputActivation *string        `json:"output_activation,omitempty"`
	Loss             *string        `json:"loss,omitempty"`
	Init             *string        `json:"init,omitempty"`
	InputDropout     *float64       `json:"input_dropout,omitempty"`
}

type layerRequest struct {
	Units      *int     `json:"units,omitempty"`
	Activation *string  `json:"activation,omitempty"`
	Slope      *float64 `json:"slope,omitempty"`
	Dropout    *float64 `json:"dropout,omitempty"`
}

type trainingRequest struct {
	Epochs             *int                  `json:"epochs,omitempty"`
	BatchSize          *int                  `json:"batch_size,omitempty"`
	Shuffle            *bool                 `json:"shuffle,omitempty"`
	Seed               *int64                `json:"seed,omitempty"`
	Standardize        *bool                 `json:"standardize,omitempty"`
	Optimizer          optimizerRequest      `json:"optimizer"`
	L2                 *float64              `json:"l2,omitempty"`
	L1                 *float64              `json:"l1,omitempty"`
	LRSchedule         scheduleRequest       `json:"lr_schedule"`
	ClipNorm           *float64              `json:"clip_norm,omitempty"`
	EarlyStopping      *earlyStoppingRequest `json:"early_stopping,omitempty"`
	MaxDurationSeconds *float64              `json:"max_duration_seconds,omitempty"`
	ClassWeight        *engine.ClassWeight   `json:"class_weight,omitempty"`
	// Precision nil takes jobs.DefaultPrecision of the request's version;
	// the engine refuses a value other than float32 and float64.
	Precision *string `json:"precision,omitempty"`
}

type optimizerRequest struct {
	Name         *string  `json:"name,omitempty"`
	LearningRate *float64 `json:"learning_rate,omitempty"`
	Momentum     *float64 `json:"momentum,omitempty"`
	Nesterov     *bool    `json:"nesterov,omitempty"`
	Beta1        *float64 `json:"beta1,omitempty"`
	Beta2        *float64 `json:"beta2,omitempty"`
	Rho          *float64 `json:"rho,omitempty"`
	Epsilon      *float64 `json:"epsilon,omitempty"`
}

type scheduleRequest struct {
	Name     *string  `json:"name,omitempty"`
	StepSize *int     `json:"step_size,omitempty"`
	Gamma    *float64 `json:"gamma,omitempty"`
	MinLR    *float64 `json:"min_lr,omitempty"`
}

type earlyStoppingRequest struct {
	Enabled     *bool    `json:"enabled,omitempty"`
	Patience    *int     `json:"patience,omitempty"`
	MinDelta    *float64 `json:"min_delta,omitempty"`
	RestoreBest *bool    `json:"restore_best,omitempty"`
}

// check returns the request's problems that need no dataset: the data
// given once, a model name, every layer's units, and no explicit value
// that resolving would replace by a default ("epochs": 0 would otherwise
// train 10 epochs). The job manager validates the rest when it resolves
// the spec against its dataset.
func (r *jobRequest) check() []FieldError {
	var fields []FieldError
	switch {
	case r.Data != nil && r.DatasetID != "":
		fields = append(fields, FieldError{Field: "data", Message: "must not be set together with dataset_id; give either dataset_id or data"})
	case r.Data == nil && r.DatasetID == "":
		fields = append(fields, FieldError{Field: "dataset_id", Message: `required (or give the data inline as "data")`})
	}
	if r.ModelName == "" {
		fields = append(fields, FieldError{Field: "model_name", Message: "required"})
	}
	refuseZero(&fields, "version", r.Version, jobs.SpecVersion)

	// The defaults the engine would fill in, for the values the request
	// names: learning rate and epsilon depend on the optimizer, step_size
	// and gamma on the schedule.
	cfg := r.config()
	def := cfg.Resolve(engine.TaskRegression, false)
	byTask := func(field func(engine.NetworkConfig) string) string {
		var s [3]string
		for i, task := range []engine.Task{engine.TaskRegression, engine.TaskBinary, engine.TaskMulticlass} {
			s[i] = field(cfg.Resolve(task, false).Network)
		}
		return fmt.Sprintf("set by the task: %s for regression, %s for binary, %s for multiclass", s[0], s[1], s[2])
	}

	n := r.Network
	for i, l := range n.Hidden {
		f := fmt.Sprintf("network.hidden[%d].", i)
		if l.Units == nil {
			fields = append(fields, FieldError{Field: f + "units", Message: "required: the number of units of the layer"})
		}
		refuseZero(&fields, f+"activation", l.Activation, string(def.Network.Hidden[i].Activation))
	}
	if n.OutputActivation != nil && *n.OutputActivation == "" {
		fields = append(fields, zeroRefused("network.output_activation", "", byTask(func(n engine.NetworkConfig) string { return string(n.OutputActivation) })))
	}
	if n.Loss != nil && *n.Loss == "" {
		fields = append(fields, zeroRefused("network.loss", "", byTask(func(n engine.NetworkConfig) string { return string(n.Loss) })))
	}
	refuseZero(&fields, "network.init", n.Init, string(def.Network.Init))

	t, dt := r.Training, def.Training
	refuseZero(&fields, "training.epochs", t.Epochs, dt.Epochs)
	refuseZero(&fields, "training.batch_size", t.BatchSize, dt.BatchSize)
	refuseZero(&fields, "training.optimizer.name", t.Optimizer.Name, dt.Optimizer.Name)
	refuseZero(&fields, "training.optimizer.learning_rate", t.Optimizer.LearningRate, dt.Optimizer.LearningRate)
	refuseZero(&fields, "training.optimizer.epsilon", t.Optimizer.Epsilon, dt.Optimizer.Epsilon)
	refuseZero(&fields, "training.lr_schedule.name", t.LRSchedule.Name, dt.LRSchedule.Name)
	refuseZero(&fields, "training.lr_schedule.step_size", t.LRSchedule.StepSize, dt.LRSchedule.StepSize)
	refuseZero(&fields, "training.lr_schedule.gamma", t.LRSchedule.Gamma, dt.LRSchedule.Gamma)
	refuseZero(&fields, "training.precision", t.Precision, string(jobs.DefaultPrecision(val(r.Version))))
	if p := r.Preprocessing; p != nil {
		if p.Scaling != nil && t.Standardize != nil {
			// A spec that names both could contradict itself; one field
			// says it all.
			fields = append(fields, FieldError{Field: "preprocessing.scaling",
				Message: "must not be given together with training.standardize; give only preprocessing.scaling (training.standardize true means standard, false none)"})
		}
		dp := engine.Config{Preprocessing: &engine.PreprocessingConfig{}}.Prep()
		refuseZero(&fields, "preprocessing.scaling", p.Scaling, dp.Scaling)
		refuseZero(&fields, "preprocessing.impute", p.Impute, dp.Impute)
		refuseZero(&fields, "preprocessing.min_level_rows", p.MinLevelRows, dp.MinLevelRows)
		refuseZero(&fields, "preprocessing.max_levels", p.MaxLevels, dp.MaxLevels)
	}
	if d := t.MaxDurationSeconds; d != nil && *d == 0 {
		// The default is the server's limit, which the job manager holds.
		fields = append(fields, zeroRefused("training.max_duration_seconds", 0, "the server's limit"))
	}
	return fields
}

// refuseZero adds a problem on field when the request gives the zero value
// explicitly and resolving would replace it by def: a zero there cannot
// be told from an absent field once the request is a spec. A zero whose
// default is zero changes nothing and is allowed.
func refuseZero[T comparable](fields *[]FieldError, field string, given *T, def T) {
	var zero T
	if given != nil && *given == zero && def != zero {
		*fields = append(*fields, zeroRefused(field, zero, jsonText(def)))
	}
}

func zeroRefused(field string, zero any, def string) FieldError {
	return FieldError{Field: field,
		Message: fmt.Sprintf("%s is not allowed here; leave the field out to take the default (%s)", jsonText(zero), def)}
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// config is the request's network and training as an engine config,
// unresolved: absent fields are the engine's unset values.
func (r *jobRequest) config() engine.Config {
	n, t := r.Network, r.Training
	var c engine.Config
	if n.Hidden != nil {
		c.Network.Hidden = make([]engine.LayerConfig, len(n.Hidden))
		for i, l := range n.Hidden {
			c.Network.Hidden[i] = engine.LayerConfig{Units: val(l.Units), Activation: engine.Activation(val(l.Activation)), Slope: clone(l.Slope), Dropout: val(l.Dropout)}
		}
	}
	c.Network.OutputActivation = engine.Activation(val(n.OutputActivation))
	c.Network.Loss = engine.Loss(val(n.Loss))
	c.Network.Init = engine.Init(val(n.Init))
	c.Network.InputDropout = val(n.InputDropout)

	ct := &c.Training
	ct.Epochs, ct.BatchSize = val(t.Epochs), val(t.BatchSize)
	ct.Shuffle, ct.Seed, ct.Standardize = clone(t.Shuffle), clone(t.Seed), clone(t.Standardize)
	o := t.Optimizer
	ct.Optimizer = engine.OptimizerConfig{
		Name: val(o.Name), LearningRate: val(o.LearningRate), Momentum: val(o.Momentum), Nesterov: val(o.Nesterov),
		Beta1: clone(o.Beta1), Beta2: clone(o.Beta2), Rho: clone(o.Rho), Epsilon: val(o.Epsilon),
	}
	ct.L2, ct.L1, ct.ClipNorm = val(t.L2), val(t.L1), val(t.ClipNorm)
	ct.Precision = engine.Precision(val(t.Precision))
	s := t.LRSchedule
	ct.LRSchedule = engine.ScheduleConfig{Name: val(s.Name), StepSize: val(s.StepSize), Gamma: val(s.Gamma), MinLR: val(s.MinLR)}
	if es := t.EarlyStopping; es != nil {
		ct.EarlyStopping = &engine.EarlyStoppingConfig{
			Enabled: clone(es.Enabled), Patience: clone(es.Patience), MinDelta: val(es.MinDelta), RestoreBest: clone(es.RestoreBest),
		}
	}
	if w := t.ClassWeight; w != nil {
		cw := engine.ClassWeight{Balanced: w.Balanced}
		if w.Weights != nil {
			cw.Weights = make(map[string]float64, len(w.Weights))
			for k, v := range w.Weights {
				cw.Weights[k] = v
			}
		}
		ct.ClassWeight = &cw
	}
	if p := r.Preprocessing; p != nil {
		c.Preprocessing = &engine.PreprocessingConfig{
			Scaling: val(p.Scaling), Impute: val(p.Impute), MinLevelRows: val(p.MinLevelRows), MaxLevels: val(p.MaxLevels),
		}
	}
	return c
}

// spec is the request as the job manager takes it, with datasetID as its
// training data (the request's, or its inline data once stored).
func (r *jobRequest) spec(datasetID string) jobs.Spec {
	cfg := r.config()
	s := jobs.Spec{
		Version:   val(r.Version),
		ModelName: r.ModelName,
		DatasetID: datasetID,
		Network:   cfg.Network,
		Training:  jobs.TrainingSpec{TrainingConfig: cfg.Training, MaxDurationSeconds: val(r.Training.MaxDurationSeconds)},

		Preprocessing: cfg.Preprocessing,
	}
	if v := r.Validation; v != nil {
		s.Validation = &jobs.ValidationSpec{Fraction: val(v.Fraction), DatasetID: v.DatasetID}
	}
	return s
}

// val is *p, or the zero value for nil.
func val[T any](p *T) T {
	var v T
	if p != nil {
		v = *p
	}
	return v
}

// clone is a fresh copy of p, or nil, so that a spec shares no pointer
// with the request.
func clone[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
