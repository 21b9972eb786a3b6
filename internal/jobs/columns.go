package jobs

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
	"github.com/backpropd/backpropd/internal/table"
)

// config is the engine config of s, unresolved.
func (s Spec) config() engine.Config {
	return engine.Config{Network: s.Network, Training: s.Training.TrainingConfig, Preprocessing: s.Preprocessing}
}

// checkWidth refuses a job whose network, with the inputs the dataset's
// columns encode as (engine.EncodedWidthBound over its column summaries),
// would exceed the server's cap on weights and biases, naming the column
// that encodes widest (engine.CheckEncodedWidth); it returns the bound, 0
// for a dataset without a summary of each feature (one stored as X, or
// before datasets had summaries), which encodes as its features.
func (m *Manager) checkWidth(verr *engine.ValidationError, cfg engine.Config, task engine.Task, meta store.DatasetMeta) int {
	features := 0
	for _, c := range meta.Columns {
		if c.Role == table.Feature {
			features++
		}
	}
	if !meta.Typed || features != meta.Features {
		return 0
	}
	width, _ := engine.EncodedWidthBound(meta.Columns, cfg.Prep())
	if err := engine.CheckEncodedWidth(cfg, task, meta.Columns, outputs(meta), m.opt.Limits); err != nil {
		var ev *engine.ValidationError
		if errors.As(err, &ev) {
			verr.Errors = append(verr.Errors, ev.Errors...)
		}
	}
	return width
}

// checkClassWeight refuses class weights for a dataset without class
// labels, and a weight for a class the dataset does not have, naming it.
func checkClassWeight(add func(field, format string, args ...any), meta store.DatasetMeta, w *engine.ClassWeight) {
	const field = "training.class_weight"
	if w == nil {
		return
	}
	if len(meta.Classes) == 0 {
		add(field, "applies only to datasets with class labels; this dataset's task is %s", meta.Task)
		return
	}
	keys := make([]string, 0, len(w.Weights))
	for k := range w.Weights {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(meta.Classes, k) {
			add(fmt.Sprintf("%s[%q]", field, k), "is not a class of the dataset; its classes are %s", classList(meta.Classes))
		}
	}
}

// classList quotes up to 10 classes for an error message.
func classList(classes []string) string {
	const most = 10
	q := make([]string, 0, min(len(classes), most))
	for _, c := range classes[:min(len(classes), most)] {
		q = append(q, fmt.Sprintf("%q", c))
	}
	s := strings.Join(q, ", ")
	if len(classes) > most {
		s += fmt.Sprintf(" and %d more", len(classes)-most)
	}
	return s
}

// checkSameColumns refuses a separate validation set whose feature
// columns differ in name or type from the training set's, when both have
// column summaries.
func checkSameColumns(add func(field, format string, args ...any), train, val store.DatasetMeta) {
	features := func(m store.DatasetMeta) []table.Summary {
		var out []table.Summary
		for _, c := range m.Columns {
			if c.Role == table.Feature {
				out = append(out, c)
			}
		}
		return out
	}
	tf, vf := features(train), features(val)
	if len(tf) == 0 || len(vf) == 0 || len(tf) != len(vf) {
		return // the feature counts are checked already
	}
	for i := range tf {
		if tf[i].Name != vf[i].Name || tf[i].Type != vf[i].Type {
			add("validation.dataset_id", "feature %d is %q (%s); the training dataset's is %q (%s)",
				i+1, vf[i].Name, vf[i].Type, tf[i].Name, tf[i].Type)
			return
		}
	}
}

// estimateMemory is the job's engine.EstimateMemory on threads
// goroutines (each holds its own packing buffers); width is the encoded
// width bound of a typed dataset (0 for X), whose columns, and those of a
// typed validation set, are counted from their metadata.
func estimateMemory(cfg engine.Config, task engine.Task, meta store.DatasetMeta, val *store.DatasetMeta, v *ValidationSpec, width, threads int) engine.MemoryEstimate {
	shape := dataShape(meta, val, v)
	shape.Width = width
	shape.Threads = threads
	shape.ColumnBytes = typedBytes(meta)
	if val != nil {
		shape.ColumnBytes = sat(shape.ColumnBytes, typedBytes(*val))
	}
	return engine.EstimateMemory(cfg, task, shape)
}

// columnOverhead is a table.Column's own size with its slice headers.
const columnOverhead = 128

// typedBytes bounds the memory of a typed dataset's columns once loaded:
// its data file's bytes (values, codes and level tables; the targets
// are counted again, which errs high), a string header per level and each
// column's own struct. A dataset stored as X weighs 0 here: EstimateMemory
// counts X.
func typedBytes(meta store.DatasetMeta) int64 {
	if !meta.Typed {
		return 0
	}
	n := sat(meta.SizeBytes, int64(meta.Features)*columnOverhead)
	for _, c := range meta.Columns {
		if c.Role == table.Feature && c.Type == table.Category {
			n = sat(n, 16*int64(c.Distinct))
		}
	}
	return n
}

// sat is a+b, saturating at math.MaxInt64.
func sat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
