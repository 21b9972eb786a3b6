package jobs

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
)

// Resolve fills the spec's defaults and validates it against its dataset,
// the engine's limits and the server's time cap, returning an
// *engine.ValidationError whose field paths start at the request root
// ("model_name", "validation.fraction", "network.hidden[0].units",
// "training.max_duration_seconds"). Other errors are the store's. The
// resolved spec has Version SpecVersion and a training.precision
// (DefaultPrecision when it has none), except that a version 1 spec
// without training.precision stays version 1 with none, which means
// float64; a spec of a newer version is refused on "version". Resolving a
// resolved spec changes nothing.
//
// A job whose engine.EstimateMemory exceeds Options.JobMaxMemory is refused
// with errors on the fields to change (training.batch_size,
// network.hidden[i].units or dataset_id), stating the estimate.
func (m *Manager) Resolve(ctx context.Context, s Spec) (Spec, error) {
	rs, _, err := m.resolve(ctx, s)
	return rs, err
}

// resolve is Resolve, also returning the resolved job's memory estimate.
func (m *Manager) resolve(ctx context.Context, s Spec) (Spec, int64, error) {
	var verr engine.ValidationError
	add := func(field, format string, args ...any) {
		verr.Errors = append(verr.Errors, engine.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}

	switch {
	case s.Version < 0 || s.Version > SpecVersion:
		add("version", "must be between 1 and %d, the job spec versions this server reads, or left out; got %d", SpecVersion, s.Version)
	case s.Version == 1 && s.Training.Precision == "":
		// As it was written before precision existed: float64, with the
		// config (and so the checkpoint fingerprint) it had then.
	default:
		// A version 1 spec that names its precision means the same at
		// version 2, and an older build, which would ignore the field,
		// refuses it there.
		s.Version = SpecVersion
		if s.Training.Precision == "" {
			s.Training.Precision = DefaultPrecision(s.Version)
		}
	}

	// The store's name rule, checked here so that the error names the
	// field at submission instead of the job failing at the end of training.
	if !store.ValidModelName(s.ModelName) {
		if s.ModelName == "" {
			add("model_name", "is required")
		} else {
			add("model_name", "must match %s (lower-case letters, digits, '.', '_', '-'; at most %d)",
				store.ModelNamePattern, store.MaxModelNameLen)
		}
	}

	var meta store.DatasetMeta
	var mem int64
	haveData := false
	if s.DatasetID == "" {
		add("dataset_id", "is required")
	} else {
		md, ok, err := m.datasetMeta(ctx, s.DatasetID)
		switch {
		case err != nil:
			return Spec{}, 0, err
		case !ok:
			add("dataset_id", "no dataset with id %q", s.DatasetID)
		default:
			meta, haveData = md, true
		}
	}

	hasValidation := false
	var valMeta *store.DatasetMeta
	if v := s.Validation; v != nil {
		switch {
		case v.DatasetID != "" && v.Fraction != 0:
			add("validation", "set fraction or dataset_id, not both")
		case v.DatasetID != "":
			hasValidation = true
			vm, ok, err := m.datasetMeta(ctx, v.DatasetID)
			switch {
			case err != nil:
				return Spec{}, 0, err
			case !ok:
				add("validation.dataset_id", "no dataset with id %q", v.DatasetID)
			case haveData && vm.Features != meta.Features:
				add("validation.dataset_id", "has %d features; the training dataset has %d", vm.Features, meta.Features)
			case haveData && vm.Task != meta.Task:
				add("validation.dataset_id", "is a %s dataset; the training dataset is %s", vm.Task, meta.Task)
			default:
				m.checkCells(add, "validation.dataset_id", vm)
				valMeta = &vm
			}
		case math.IsNaN(v.Fraction) || v.Fraction < 0 || v.Fraction >= 1:
			add("validation.fraction", "must be at least 0 and less than 1")
		case v.Fraction > 0:
			hasValidation = true
		default:
			// Fraction 0 and no dataset: no validation, said once.
			s.Validation = nil
		}
	}

	limit := m.opt.MaxDuration.Seconds()
	switch d := s.Training.MaxDurationSeconds; {
	case d == 0:
		s.Training.MaxDurationSeconds = limit
	case math.IsNaN(d) || d < 0:
		add("training.max_duration_seconds", "must be positive")
	case d > limit:
		add("training.max_duration_seconds", "must be at most %g (the server's limit)", limit)
	}

	if haveData {
		m.checkCells(add, "dataset_id", meta)
		if v := s.Validation; hasValidation && v.Fraction > 0 {
			checkSplit(add, meta, v.Fraction)
		}
		task := engine.Task(meta.Task)
		cfg := s.config().Resolve(task, hasValidation)
		if err := cfg.Validate(task, meta.Features, outputs(meta), m.opt.Limits); err != nil {
			var ev *engine.ValidationError
			if !errors.As(err, &ev) {
				return Spec{}, 0, fmt.Errorf("validate config: %w", err)
			}
			verr.Errors = append(verr.Errors, requestFields(ev.Errors)...)
		}
		if es := cfg.Training.EarlyStopping; !hasValidation && es != nil && (es.Enabled == nil || *es.Enabled) {
			add("training.early_stopping", "early stopping needs validation data: set validation.fraction or validation.dataset_id, or set early_stopping.enabled to false")
		}
		checkClassWeight(add, meta, cfg.Training.ClassWeight)
		if valMeta != nil {
			checkSameColumns(add, meta, *valMeta)
		}
		width := m.checkWidth(&verr, cfg, task, meta)
		s.Network, s.Training.TrainingConfig, s.Preprocessing = cfg.Network, cfg.Training, cfg.Preprocessing
		if len(verr.Errors) == 0 {
			est := estimateMemory(cfg, task, meta, valMeta, s.Validation, width, m.threads)
			if err := engine.CheckMemory(cfg, est, m.opt.Limits.MaxMemory); err != nil {
				var ev *engine.ValidationError
				errors.As(err, &ev)
				verr.Errors = append(verr.Errors, ev.Errors...)
			}
			mem = est.Total
		}
	}

	if len(verr.Errors) > 0 {
		return Spec{}, 0, &verr
	}
	return s, mem, nil
}

// dataShape is what engine.EstimateMemory needs to know of a job's
// datasets, from their metadata: val is the separate validation set's, or
// nil.
func dataShape(meta store.DatasetMeta, val *store.DatasetMeta, v *ValidationSpec) engine.DataShape {
	d := engine.DataShape{Rows: meta.Rows, Features: meta.Features, Outputs: outputs(meta),
		Labels: len(meta.Classes) > 0, ValFraction: v != nil && v.Fraction > 0}
	if !d.Labels {
		d.TargetColumns = len(meta.TargetNames)
	}
	for _, c := range meta.Classes {
		d.LabelBytes = max(d.LabelBytes, len(c))
	}
	if val != nil {
		d.ValRows = val.Rows
		for _, c := range val.Classes {
			d.LabelBytes = max(d.LabelBytes, len(c))
		}
	}
	return d
}

// estimate is the memory estimate of a resolved spec from its datasets'
// metadata, for a job recovered at Start; ok is false when a dataset
// cannot be looked up (the job then fails when it loads it).
func (m *Manager) estimate(ctx context.Context, s Spec) (est engine.MemoryEstimate, cfg engine.Config, ok bool) {
	meta, found, err := m.datasetMeta(ctx, s.DatasetID)
	if err != nil || !found {
		return est, cfg, false
	}
	var valMeta *store.DatasetMeta
	if v := s.Validation; v != nil && v.DatasetID != "" {
		vm, found, err := m.datasetMeta(ctx, v.DatasetID)
		if err != nil || !found {
			return est, cfg, false
		}
		valMeta = &vm
	}
	task := engine.Task(meta.Task)
	hasVal := s.Validation != nil && (s.Validation.DatasetID != "" || s.Validation.Fraction > 0)
	cfg = s.config().Resolve(task, hasVal)
	width := 0
	if meta.Typed {
		width, _ = engine.EncodedWidthBound(meta.Columns, cfg.Prep())
	}
	return estimateMemory(cfg, task, meta, valMeta, s.Validation, width, m.threads), cfg, true
}

// defaultConfig is the engine config, unresolved, of a new job that sets
// no option: the engine's defaults, in the job's default precision.
func defaultConfig() engine.Config {
	return engine.Config{Training: engine.TrainingConfig{Precision: DefaultPrecision(SpecVersion)}}
}

// maxCapLabelBytes is the class-label length MaxCellsFor allows for.
// Longer labels only make a dataset at the cap heavier per row; Submit's
// memory check still holds each job to its own estimate.
const maxCapLabelBytes = 16

// MaxCellsFor is the largest dataset, in cells (rows × features), whose
// job with the default network and training settings and a held-out
// validation fraction fits jobMaxMemory bytes, at most DefaultMaxCells. It
// takes the costliest shape per cell: one feature per row, since the
// per-row targets and indices weigh most against a single value, with
// either a numeric target or class labels of up to maxCapLabelBytes bytes.
// A server that accepts datasets up to this size can train each of them
// with the defaults. A jobMaxMemory of 0 or less gives DefaultMaxCells.
func MaxCellsFor(jobMaxMemory int64) int64 {
	if jobMaxMemory <= 0 {
		return DefaultMaxCells
	}
	fits := func(cells int64) bool {
		numeric := engine.DataShape{Rows: int(cells), Features: 1, Outputs: 1, TargetColumns: 1, ValFraction: true}
		labels := engine.DataShape{Rows: int(cells), Features: 1, Outputs: 1, Labels: true, LabelBytes: maxCapLabelBytes, ValFraction: true}
		return engine.EstimateMemory(defaultConfig(), engine.TaskRegression, numeric).Total <= jobMaxMemory &&
			engine.EstimateMemory(defaultConfig(), engine.TaskBinary, labels).Total <= jobMaxMemory
	}
	lo, hi := int64(0), DefaultMaxCells+1 // fits(lo), and hi is past the cap
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if fits(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// requestFields renames the engine's paths of data problems to the spec's
// fields that name that data: the training data is "dataset_id" and a
// separate validation set "validation.dataset_id". Config paths are the
// same in both.
func requestFields(fes []engine.FieldError) []engine.FieldError {
	out := make([]engine.FieldError, len(fes))
	for i, fe := range fes {
		switch fe.Field {
		case engine.FieldData:
			fe.Field = "dataset_id"
		case engine.FieldValidationSet:
			fe.Field = "validation.dataset_id"
		}
		out[i] = fe
	}
	return out
}

// datasetMeta looks a dataset up; ok is false when the id names none.
func (m *Manager) datasetMeta(ctx context.Context, id string) (meta store.DatasetMeta, ok bool, err error) {
	meta, err = m.st.DatasetMeta(ctx, id)
	switch {
	case err == nil:
		return meta, true, nil
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalidName):
		return meta, false, nil
	default:
		return meta, false, fmt.Errorf("dataset %s: %w", id, err)
	}
}

// checkCells applies the rows × features cap before anything is loaded.
func (m *Manager) checkCells(add func(field, format string, args ...any), field string, meta store.DatasetMeta) {
	maxCells := m.opt.Limits.MaxCells
	if cells := int64(meta.Rows) * int64(meta.Features); maxCells > 0 && cells > maxCells {
		add(field, "dataset has %d rows × %d features = %d values; the server allows at most %d",
			meta.Rows, meta.Features, cells, maxCells)
	}
}

// checkSplit rejects a held-out validation fraction that leaves no
// validation or no training rows, counted by the engine's own split rule
// (stratified by class for labelled targets), so that the job fails at
// submission and not when it starts. A labelled dataset stored before
// datasets had class counts is left to the engine's check at start.
func checkSplit(add func(field, format string, args ...any), meta store.DatasetMeta, fraction float64) {
	groups, stratified := []int{meta.Rows}, false
	if len(meta.Classes) > 0 {
		if len(meta.ClassCounts) != len(meta.Classes) {
			return
		}
		groups, stratified = meta.ClassCounts, true
	}
	train, val := engine.SplitSizes(groups, stratified, fraction)
	if train == 0 || val == 0 {
		add("validation.fraction", "a fraction of %v of %d rows leaves %d validation and %d training rows; both need at least 1",
			fraction, meta.Rows, val, train)
	}
}

// outputs is the width of the output layer for a dataset: one unit per
// class for multiclass, one for a binary task with class labels, one per
// target column otherwise.
func outputs(meta store.DatasetMeta) int {
	switch {
	case engine.Task(meta.Task) == engine.TaskMulticlass:
		return len(meta.Classes)
	case engine.Task(meta.Task) == engine.TaskBinary && len(meta.Classes) > 0:
		return 1
	default:
		return len(meta.TargetNames)
	}
}
