package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
)

// Scaling and imputation names of PreprocessingConfig.
const (
	ScalingStandard = "standard" // (x - mean) / std over the training rows
	ScalingMinMax   = "minmax"   // (x - min) / (max - min) over the training rows
	ScalingNone     = "none"

	ImputeMedian = "median"
	ImputeMean   = "mean"
)

// Defaults of PreprocessingConfig's level rules. A level seen on fewer
// than DefaultMinLevelRows training rows says little on its own and goes
// into the "other" level; DefaultMaxLevels one-hot columns per category
// column keep a 50-level column at 50 inputs, while a zip-code-like column
// with thousands of levels cannot blow the network's width up.
const (
	DefaultMinLevelRows = 5
	DefaultMaxLevels    = 50

	maxMinLevelRows = 1 << 30
)

// PreprocessingConfig is how inputs are prepared before they reach the
// network; it is learned on the training rows only and stored in the
// model.
//
// Scaling is "standard" (the default), "minmax" or "none"; it replaces
// training.standardize, which maps true to standard and false to none.
// Impute is the value a missing number or date-time takes: "median" (the
// default) or "mean" of the column's training rows. A category level
// seen on fewer than MinLevelRows training rows (default 5), or beyond
// the MaxLevels most frequent levels (default 50), is encoded as the
// column's "other" level.
//
// A nil Config.Preprocessing keeps its meaning from before the field
// existed: Resolve leaves it nil, and the scaling follows
// training.standardize, so the stored configs of earlier builds encode,
// and fingerprint, as before.
type PreprocessingConfig struct {
	Scaling      string `json:"scaling,omitempty"`
	Impute       string `json:"impute,omitempty"`
	MinLevelRows int    `json:"min_level_rows,omitempty"`
	MaxLevels    int    `json:"max_levels,omitempty"`
}

// ClassWeight weights each training row's loss by its class: Balanced
// gives class c the weight n / (k · n_c), where n is the number of
// training rows, k the number of classes and n_c the rows of class c (as
// scikit-learn's class_weight="balanced"); Weights maps class labels to
// weights, and a class it leaves out weighs 1. Its JSON is the string
// "balanced" or an object of weights. It applies to tasks with class
// labels only.
type ClassWeight struct {
	Balanced bool               `json:"-"`
	Weights  map[string]float64 `json:"-"`
}

// ClassWeightBalanced is the JSON string of a balanced ClassWeight.
const ClassWeightBalanced = "balanced"

// MarshalJSON writes "balanced" or the object of weights, keys sorted.
func (w ClassWeight) MarshalJSON() ([]byte, error) {
	if w.Balanced {
		return json.Marshal(ClassWeightBalanced)
	}
	if w.Weights == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(w.Weights)
}

// UnmarshalJSON reads "balanced" or an object mapping class labels to
// numbers.
func (w *ClassWeight) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s != ClassWeightBalanced {
			return fmt.Errorf("class_weight: %q is not %q or an object of class weights", s, ClassWeightBalanced)
		}
		*w = ClassWeight{Balanced: true}
		return nil
	}
	var m map[string]float64
	if err := json.Unmarshal(b, &m); err != nil {
		return errors.New(`class_weight: want "balanced" or an object mapping class labels to numbers`)
	}
	if m == nil {
		m = map[string]float64{}
	}
	*w = ClassWeight{Weights: m}
	return nil
}

func (w *ClassWeight) clone() *ClassWeight {
	if w == nil {
		return nil
	}
	c := ClassWeight{Balanced: w.Balanced}
	if w.Weights != nil {
		c.Weights = make(map[string]float64, len(w.Weights))
		for k, v := range w.Weights {
			c.Weights[k] = v
		}
	}
	return &c
}

func (p *PreprocessingConfig) clone() *PreprocessingConfig {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

// resolvePreprocessing fills an explicit Preprocessing's unset fields:
// the scaling from training.standardize (true or unset: standard; false:
// none), median imputation and the level defaults. An unset standardize
// then follows the scaling (true for standard only), so that a resolved
// config never contradicts itself unless the caller gave both.
func (c *Config) resolvePreprocessing() {
	p := c.Preprocessing
	if p == nil {
		return
	}
	p = p.clone()
	t := &c.Training
	if p.Scaling == "" {
		p.Scaling = ScalingStandard
		if t.Standardize != nil && !*t.Standardize {
			p.Scaling = ScalingNone
		}
	}
	if t.Standardize == nil {
		t.Standardize = ptr(p.Scaling == ScalingStandard)
	}
	if p.Impute == "" {
		p.Impute = ImputeMedian
	}
	if p.MinLevelRows == 0 {
		p.MinLevelRows = DefaultMinLevelRows
	}
	if p.MaxLevels == 0 {
		p.MaxLevels = DefaultMaxLevels
	}
	c.Preprocessing = p
}

// Prep is the preprocessing c trains with, every field set: its explicit
// Preprocessing resolved, or, without one, the scaling training.standardize
// gives (standard unless it is false) and the defaults.
func (c Config) Prep() PreprocessingConfig {
	if c.Preprocessing != nil {
		cc := c
		cc.resolvePreprocessing()
		return *cc.Preprocessing
	}
	p := PreprocessingConfig{Scaling: ScalingStandard, Impute: ImputeMedian, MinLevelRows: DefaultMinLevelRows, MaxLevels: DefaultMaxLevels}
	if s := c.Training.Standardize; s != nil && !*s {
		p.Scaling = ScalingNone
	}
	return p
}

func (c Config) validatePreprocessing(p *problems) {
	pre := c.Preprocessing
	if pre == nil {
		return
	}
	const f = "preprocessing."
	switch pre.Scaling {
	case ScalingStandard, ScalingMinMax, ScalingNone:
		if s := c.Training.Standardize; s != nil && *s != (pre.Scaling == ScalingStandard) {
			p.add(f+"scaling", "%s contradicts training.standardize %v (true means standard, false none); give only preprocessing.scaling", pre.Scaling, *s)
		}
	default:
		p.add(f+"scaling", "unknown scaling %q (want standard, minmax or none)", pre.Scaling)
	}
	switch pre.Impute {
	case ImputeMedian, ImputeMean:
	default:
		p.add(f+"impute", "unknown imputation %q (want median or mean)", pre.Impute)
	}
	if pre.MinLevelRows < 1 || pre.MinLevelRows > maxMinLevelRows {
		p.add(f+"min_level_rows", "must be between 1 and %d, got %d", maxMinLevelRows, pre.MinLevelRows)
	}
	if pre.MaxLevels < 1 || pre.MaxLevels > hardMaxUnits {
		p.add(f+"max_levels", "must be between 1 and %d, got %d", hardMaxUnits, pre.MaxLevels)
	}
}

// maxClassWeight bounds an explicit class weight: larger ones only
// scale the loss into overflow.
const maxClassWeight = 1e6

func (t TrainingConfig) validateClassWeight(p *problems) {
	w := t.ClassWeight
	if w == nil || w.Balanced {
		return
	}
	keys := make([]string, 0, len(w.Weights))
	for k := range w.Weights {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := w.Weights[k]
		if !(v > 0 && v <= maxClassWeight) {
			p.add(fmt.Sprintf("training.class_weight[%q]", k), "must be greater than 0 and at most %g, got %v", float64(maxClassWeight), v)
		}
	}
}

// classWeights gives the weight of each class for the training rows idx
// of src, or nil without class weights. Problems (weights for classes the
// data lacks, weights without class labels) go to p.
func classWeights(p *problems, w *ClassWeight, src *source, idx []int, classes []string) []float64 {
	if w == nil {
		return nil
	}
	const f = "training.class_weight"
	if src.cls == nil {
		p.add(f, "applies only to tasks with class labels")
		return nil
	}
	k := len(classes)
	weights := make([]float64, k)
	if w.Balanced {
		counts := make([]int, k)
		for _, r := range idx {
			counts[src.cls[r]]++
		}
		for c, n := range counts {
			weights[c] = 1
			if n > 0 {
				weights[c] = float64(len(idx)) / (float64(k) * float64(n))
			}
		}
		return weights
	}
	for c := range weights {
		weights[c] = 1
	}
	keys := make([]string, 0, len(w.Weights))
	for l := range w.Weights {
		keys = append(keys, l)
	}
	sort.Strings(keys)
	for _, l := range keys {
		c, ok := slices.BinarySearch(classes, l)
		if !ok {
			p.add(fmt.Sprintf("%s[%q]", f, l), "is not a class of the training data%s", classList(classes))
			continue
		}
		weights[c] = w.Weights[l]
	}
	return weights
}
