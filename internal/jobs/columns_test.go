package jobs

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
	"github.com/backpropd/backpropd/internal/table"
)

// typedData is a binary problem of rows rows stored as typed columns: a
// number column "x" with a blank every fourth row and a category column
// "zip" of zips distinct levels (row i has level i mod zips), with the
// column summaries an upload reports for them and for the target.
func typedData(rows, zips int) *store.Dataset {
	x := table.Column{Name: "x", Kind: table.Number, Values: make([]float64, rows)}
	zip := table.Column{Name: "zip", Kind: table.Category, Codes: make([]int32, rows)}
	for l := range zips {
		zip.Levels = append(zip.Levels, fmt.Sprintf("%05d", 10000+l))
	}
	d := &store.Dataset{Meta: store.DatasetMeta{
		Name: "typed", Rows: rows, Features: 2, TargetNames: []string{"label"},
		Task: "binary", Classes: []string{"no", "yes"},
	}, Columns: []table.Column{x, zip}}
	missing := 0
	for i := range rows {
		x.Values[i] = float64(i%7) - 3
		if i%4 == 3 {
			x.Values[i] = math.NaN()
			missing++
		}
		zip.Codes[i] = int32(i % zips)
		d.Labels = append(d.Labels, d.Meta.Classes[i%2])
	}
	d.Meta.Columns = []table.Summary{
		{Name: "x", Type: table.Number, Role: table.Feature, Reason: "every cell is a number", Missing: missing, Distinct: 7},
		{Name: "zip", Type: table.Category, Role: table.Feature, Reason: "declared categorical", Distinct: min(rows, zips)},
		{Name: "label", Type: table.Category, Role: table.Target, Reason: "the target", Distinct: 2},
	}
	return d
}

// TestResolveTypedColumns checks the submit-time checks of the job's
// preprocessing, class weights and encoded width, each naming its field.
func TestResolveTypedColumns(t *testing.T) {
	// One hidden layer of 4 units and one output: (inputs+1)·4 + 5 weights
	// and biases. The two raw features need 17, under the cap of 100; zip's
	// 1000 levels encode as up to 50 (max_levels) + 1 ("other"; it has no
	// blanks) inputs and x as 2 (value and missing indicator), 53 in all,
	// which need 221 (engine.EncodedWidthBound); with max_levels 10 the 13
	// inputs need 61.
	e := newEnv(t, Options{Workers: 1, MaxDuration: time.Hour, Limits: engine.Limits{MaxParams: 100}}, testHooks{})
	typed := mustDataset(t, e.st, typedData(1000, 1000))
	reg := mustDataset(t, e.st, regressionData(30))
	tests := []struct {
		name  string
		edit  func(*Spec)
		field string // "" means valid
		msg   string
	}{
		{"too wide: names the column", func(*Spec) {}, "preprocessing.max_levels",
			`the inputs encode to 53 network inputs, 51 of them from column "zip"; the network then has 221 weights and biases, over the limit of 100`},
		{"fewer levels fit", func(s *Spec) { s.Preprocessing = &engine.PreprocessingConfig{MaxLevels: 10} }, "", ""},
		{"balanced classes", func(s *Spec) {
			s.Preprocessing = &engine.PreprocessingConfig{MaxLevels: 10}
			s.Training.ClassWeight = &engine.ClassWeight{Balanced: true}
		}, "", ""},
		{"weights of known classes", func(s *Spec) {
			s.Preprocessing = &engine.PreprocessingConfig{MaxLevels: 10}
			s.Training.ClassWeight = &engine.ClassWeight{Weights: map[string]float64{"yes": 3}}
		}, "", ""},
		{"weight of an unknown class", func(s *Spec) {
			s.Preprocessing = &engine.PreprocessingConfig{MaxLevels: 10}
			s.Training.ClassWeight = &engine.ClassWeight{Weights: map[string]float64{"yes": 3, "maybe": 1}}
		}, `training.class_weight["maybe"]`, `is not a class of the dataset; its classes are "no", "yes"`},
		{"zero weight", func(s *Spec) {
			s.Preprocessing = &engine.PreprocessingConfig{MaxLevels: 10}
			s.Training.ClassWeight = &engine.ClassWeight{Weights: map[string]float64{"no": 0}}
		}, `training.class_weight["no"]`, "must be greater than 0"},
		{"negative weight", func(s *Spec) {
			s.Preprocessing = &engine.PreprocessingConfig{MaxLevels: 10}
			s.Training.ClassWeight = &engine.ClassWeight{Weights: map[string]float64{"yes": -2}}
		}, `training.class_weight["yes"]`, "must be greater than 0"},
		{"class weights on a regression", func(s *Spec) {
			s.DatasetID = reg
			s.Training.ClassWeight = &engine.ClassWeight{Balanced: true}
		}, "training.class_weight", "applies only to datasets with class labels; this dataset's task is regression"},
		{"scaling contradicts standardize", func(s *Spec) {
			s.Preprocessing = &engine.PreprocessingConfig{Scaling: engine.ScalingMinMax, MaxLevels: 10}
			s.Training.Standardize = new(true)
		}, "preprocessing.scaling", "contradicts training.standardize"},
		{"unknown scaling", func(s *Spec) { s.Preprocessing = &engine.PreprocessingConfig{Scaling: "log", MaxLevels: 10} },
			"preprocessing.scaling", `unknown scaling "log"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := smallSpec("m", typed, 2)
			tt.edit(&s)
			_, err := e.m.Resolve(context.Background(), s)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				return
			}
			var ve *engine.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Resolve: %v; want a validation error on %s", err, tt.field)
			}
			for _, fe := range ve.Errors {
				if fe.Field == tt.field && strings.Contains(fe.Message, tt.msg) {
					return
				}
			}
			t.Errorf("errors %v; want %s: ...%s...", ve.Errors, tt.field, tt.msg)
		})
	}
}

// TestResolveKeepsPreprocessing checks that a resolved spec holds its
// preprocessing with the defaults filled in and its class weights, and
// that they survive the job record.
func TestResolveKeepsPreprocessing(t *testing.T) {
	e := newEnv(t, Options{Workers: 1, MaxDuration: time.Hour}, testHooks{})
	id := mustDataset(t, e.st, typedData(40, 3))
	s := smallSpec("m", id, 2)
	s.Preprocessing = &engine.PreprocessingConfig{Scaling: engine.ScalingMinMax}
	s.Training.ClassWeight = &engine.ClassWeight{Weights: map[string]float64{"yes": 2}}
	got, err := e.m.Resolve(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	// The defaults of engine.PreprocessingConfig: median imputation, 5 rows
	// and 50 levels.
	want := engine.PreprocessingConfig{Scaling: engine.ScalingMinMax, Impute: engine.ImputeMedian, MinLevelRows: 5, MaxLevels: 50}
	if got.Preprocessing == nil || *got.Preprocessing != want {
		t.Fatalf("resolved preprocessing %+v, want %+v", got.Preprocessing, want)
	}
	if got.Training.Standardize == nil || *got.Training.Standardize {
		t.Errorf("resolved standardize %v; minmax scaling means false", got.Training.Standardize)
	}
	b, err := encodeSpec(got)
	if err != nil {
		t.Fatal(err)
	}
	j, err := loadJob(&store.JobRecord{ID: "x", Status: string(Queued), Spec: b})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(j.spec.Preprocessing, got.Preprocessing) || !reflect.DeepEqual(j.spec.Training.ClassWeight, got.Training.ClassWeight) {
		t.Errorf("stored spec %s decodes to preprocessing %+v and class weights %+v", b, j.spec.Preprocessing, j.spec.Training.ClassWeight)
	}
}

// TestMemoryEstimateCountsTypedData checks that a typed dataset's job
// estimate counts the encoded width and the typed columns: it is above
// the engine's estimate for one input per feature by at least the
// columns' data file, and it grows with max_levels.
func TestMemoryEstimateCountsTypedData(t *testing.T) {
	e := newEnv(t, Options{Workers: 1, MaxDuration: time.Hour}, testHooks{})
	d := typedData(2000, 500)
	id := mustDataset(t, e.st, d)
	meta, err := e.st.DatasetMeta(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !meta.Typed {
		t.Fatal("a dataset of typed columns is not marked typed")
	}
	estimate := func(maxLevels int) int64 {
		s := smallSpec("m", id, 2)
		s.Preprocessing = &engine.PreprocessingConfig{MaxLevels: maxLevels}
		_, mem, err := e.m.resolve(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		return mem
	}
	s := smallSpec("m", id, 2)
	s.Preprocessing = &engine.PreprocessingConfig{MaxLevels: 50}
	cfg := s.config().Resolve(engine.TaskBinary, false)
	raw := engine.EstimateMemory(cfg, engine.TaskBinary, dataShape(meta, nil, nil)).Total
	got50, got10 := estimate(50), estimate(10)
	if got50 < raw+meta.SizeBytes {
		t.Errorf("estimate %d with 50 levels; want at least %d (two raw inputs) + %d (the typed columns' file)", got50, raw, meta.SizeBytes)
	}
	if got10 >= got50 {
		t.Errorf("estimate %d with 10 levels, %d with 50; the wider encoding must cost more", got10, got50)
	}
}

// TestEngineDataOfTypedDataset checks that a loaded typed dataset reaches
// the engine as its columns, with no X and no feature names, and an X
// dataset as before.
func TestEngineDataOfTypedDataset(t *testing.T) {
	e := newEnv(t, Options{Workers: 1}, testHooks{})
	typed := mustDataset(t, e.st, typedData(12, 3))
	plain := mustDataset(t, e.st, binaryData(12))
	train, _, task, err := e.m.loadData(context.Background(), Spec{DatasetID: typed})
	if err != nil {
		t.Fatal(err)
	}
	want := typedData(12, 3)
	if task != engine.TaskBinary || train.X != nil || train.FeatureNames != nil || len(train.Columns) != 2 ||
		train.Features != 2 || train.Rows != 12 || !slices.Equal(train.Labels, want.Labels) {
		t.Fatalf("typed data reached the engine as %+v", train)
	}
	for i, c := range train.Columns {
		w := want.Columns[i]
		if c.Name != w.Name || c.Kind != w.Kind || !slices.Equal(c.Codes, w.Codes) || len(c.Values) != len(w.Values) {
			t.Errorf("column %d: %+v, want %+v", i, c, w)
		}
	}
	train, _, _, err = e.m.loadData(context.Background(), Spec{DatasetID: plain})
	if err != nil {
		t.Fatal(err)
	}
	if train.Columns != nil || len(train.X) != 24 || len(train.FeatureNames) != 2 {
		t.Errorf("X data reached the engine with %d columns, %d values, names %q", len(train.Columns), len(train.X), train.FeatureNames)
	}
}

// TestValidationSetColumnsMatch checks that a separate validation set
// whose feature columns differ in type from the training set's is
// refused, naming the column.
func TestValidationSetColumnsMatch(t *testing.T) {
	e := newEnv(t, Options{Workers: 1, MaxDuration: time.Hour}, testHooks{})
	train := mustDataset(t, e.st, typedData(40, 3))
	other := typedData(20, 3)
	other.Meta.Columns[1].Type = table.Number
	val := mustDataset(t, e.st, other)
	s := smallSpec("m", train, 2)
	s.Validation = &ValidationSpec{DatasetID: val}
	_, err := e.m.Resolve(context.Background(), s)
	var ve *engine.ValidationError
	if !errors.As(err, &ve) || len(ve.Errors) != 1 || ve.Errors[0].Field != "validation.dataset_id" ||
		ve.Errors[0].Message != `feature 2 is "zip" (number); the training dataset's is "zip" (category)` {
		t.Fatalf("Resolve: %v; want one error on validation.dataset_id naming zip", err)
	}
}
