package jobs

import (
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

// Upper bounds of the network inputs one feature column encodes as, by
// kind: a number is its scaled value plus a missing indicator when it has
// blanks; a category one input per kept level (at most
// PreprocessingConfig.MaxLevels) plus its "missing" and "other" levels; a
// date-time its year, month, day of month, weekday and hour, the sine and
// cosine of month and weekday, and a missing indicator.
const (
	datetimeInputs = 9
	categoryExtra  = 2
)

// columnWidth bounds the inputs the feature column c encodes as.
func columnWidth(c table.Summary, pre engine.PreprocessingConfig) int {
	missing := 0
	if c.Missing > 0 {
		missing = 1
	}
	switch c.Type {
	case table.Category:
		return min(c.Distinct, pre.MaxLevels) + categoryExtra
	case table.Datetime:
		return datetimeInputs + missing
	default:
		return 1 + missing
	}
}

// encodedWidth bounds the network inputs of a dataset, from its column
// summaries, and gives the feature column that encodes widest (-1 when
// there is none); a dataset without summaries for each of its features
// (one stored before datasets had them) is as wide as its features.
func encodedWidth(meta store.DatasetMeta, pre engine.PreprocessingConfig) (width, widest int) {
	widest = -1
	features, most := 0, 0
	for i, c := range meta.Columns {
		if c.Role != table.Feature {
			continue
		}
		features++
		w := columnWidth(c, pre)
		width += w
		if w > most {
			most, widest = w, i
		}
	}
	if features != meta.Features {
		return meta.Features, -1
	}
	return width, widest
}

// params is the number of weights and biases of network n with in inputs
// and outs outputs, as the engine counts them; it saturates at
// math.MaxInt64.
func params(n engine.NetworkConfig, in, outs int) int64 {
	var total int64
	prev := int64(in)
	add := func(units int64) {
		if prev+1 > 0 && units > 0 && prev+1 > (math.MaxInt64-total)/units {
			total = math.MaxInt64
		} else {
			total += (prev + 1) * units
		}
		prev = units
	}
	for _, l := range n.Hidden {
		add(int64(max(l.Units, 0)))
	}
	add(int64(max(outs, 0)))
	return total
}

// checkWidth refuses a job whose network, with the inputs the dataset's
// columns encode as, would exceed the server's cap on weights and biases,
// naming the column that encodes widest; it returns the encoded width
// bound. A network already over the cap with one input per feature is the
// engine's to report.
func (m *Manager) checkWidth(add func(field, format string, args ...any), cfg engine.Config, meta store.DatasetMeta) int {
	width, widest := encodedWidth(meta, cfg.Prep())
	limit := int64(m.opt.Limits.MaxParams)
	outs := outputs(meta)
	if limit <= 0 || widest < 0 || width <= meta.Features || params(cfg.Network, meta.Features, outs) > limit {
		return width
	}
	if p := params(cfg.Network, width, outs); p > limit {
		c := meta.Columns[widest]
		add("dataset_id", "column %q (%s, %d distinct values) encodes as up to %d inputs, which bring the network to %d inputs and %d weights and biases; the limit is %d: lower preprocessing.max_levels, ignore the column at upload, or use fewer units in network.hidden[0]",
			c.Name, c.Type, c.Distinct, columnWidth(c, cfg.Prep()), width, p, limit)
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

// estimateMemory is the job's engine.EstimateMemory with the encoded
// width as its input width, plus, for datasets stored as typed columns,
// those columns as they are held while the job runs.
func estimateMemory(cfg engine.Config, task engine.Task, meta store.DatasetMeta, val *store.DatasetMeta, v *ValidationSpec, width int) engine.MemoryEstimate {
	shape := dataShape(meta, val, v)
	shape.Features = max(width, meta.Features)
	est := engine.EstimateMemory(cfg, task, shape)
	extra := typedBytes(meta)
	if val != nil {
		extra = sat(extra, typedBytes(*val))
	}
	est.Data = sat(est.Data, extra)
	est.Total = sat(est.Total, extra)
	return est
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
