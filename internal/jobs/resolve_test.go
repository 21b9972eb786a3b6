package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
)

func TestResolve(t *testing.T) {
	e := newEnv(t, Options{Workers: 1, MaxDuration: time.Hour, Limits: engine.Limits{MaxParams: 1000}}, testHooks{})
	bin := mustDataset(t, e.st, binaryData(40))
	reg := mustDataset(t, e.st, regressionData(30))
	binVal := mustDataset(t, e.st, binaryData(20))
	const missing = "00000000-0000-4000-8000-000000000000"

	tests := []struct {
		name   string
		edit   func(*Spec)
		fields []string // the validation error's fields; nil means valid
	}{
		{"defaults", func(*Spec) {}, nil},
		{"model name upper case", func(s *Spec) { s.ModelName = "Iris" }, []string{"model_name"}},
		{"model name empty", func(s *Spec) { s.ModelName = "" }, []string{"model_name"}},
		{"model name path", func(s *Spec) { s.ModelName = "../x" }, []string{"model_name"}},
		{"dataset missing", func(s *Spec) { s.DatasetID = missing }, []string{"dataset_id"}},
		{"dataset not an id", func(s *Spec) { s.DatasetID = "../../etc/passwd" }, []string{"dataset_id"}},
		{"dataset empty", func(s *Spec) { s.DatasetID = "" }, []string{"dataset_id"}},
		{"fraction 1", func(s *Spec) { s.Validation = &ValidationSpec{Fraction: 1} }, []string{"validation.fraction"}},
		{"fraction negative", func(s *Spec) { s.Validation = &ValidationSpec{Fraction: -0.1} }, []string{"validation.fraction"}},
		// binaryData(40) has about 20 rows per class: 0.01 × 20 rounds to 0
		// in each (engine.SplitSizes, stratified).
		{"fraction leaves no validation rows", func(s *Spec) { s.Validation = &ValidationSpec{Fraction: 0.01} }, []string{"validation.fraction"}},
		// regressionData(30) splits unstratified: round(0.99 × 30) = 30 held out.
		{"fraction leaves no training rows", func(s *Spec) {
			s.DatasetID = reg
			s.Validation = &ValidationSpec{Fraction: 0.99}
		}, []string{"validation.fraction"}},
		{"fraction and dataset", func(s *Spec) { s.Validation = &ValidationSpec{Fraction: 0.2, DatasetID: binVal} }, []string{"validation"}},
		{"validation dataset shape", func(s *Spec) { s.Validation = &ValidationSpec{DatasetID: reg} }, []string{"validation.dataset_id"}},
		{"validation dataset missing", func(s *Spec) { s.Validation = &ValidationSpec{DatasetID: missing} }, []string{"validation.dataset_id"}},
		{"validation dataset ok", func(s *Spec) { s.Validation = &ValidationSpec{DatasetID: binVal} }, nil},
		{"duration over cap", func(s *Spec) { s.Training.MaxDurationSeconds = 3601 }, []string{"training.max_duration_seconds"}},
		{"duration negative", func(s *Spec) { s.Training.MaxDurationSeconds = -1 }, []string{"training.max_duration_seconds"}},
		{"hidden units zero", func(s *Spec) { s.Network.Hidden[0].Units = 0 }, []string{"network.hidden[0].units"}},
		{"early stopping without validation", func(s *Spec) { s.Training.EarlyStopping = &engine.EarlyStoppingConfig{Patience: new(3)} },
			[]string{"training.early_stopping"}},
		{"early stopping with validation", func(s *Spec) {
			s.Validation = &ValidationSpec{Fraction: 0.2}
			s.Training.EarlyStopping = &engine.EarlyStoppingConfig{Patience: new(3)}
		}, nil},
		{"spec version 1", func(s *Spec) { s.Version = 1 }, nil},
		{"spec version newer than the server's", func(s *Spec) { s.Version = SpecVersion + 1 }, []string{"version"}},
		{"spec version negative", func(s *Spec) { s.Version = -1 }, []string{"version"}},
		{"two problems", func(s *Spec) { s.ModelName = "X"; s.Training.MaxDurationSeconds = -1 },
			[]string{"model_name", "training.max_duration_seconds"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := smallSpec("m", bin, 3)
			tt.edit(&s)
			got, err := e.m.Resolve(context.Background(), s)
			if tt.fields == nil {
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				if got.Training.MaxDurationSeconds <= 0 || got.Training.MaxDurationSeconds > 3600 {
					t.Errorf("max_duration_seconds = %g, want in (0, 3600]", got.Training.MaxDurationSeconds)
				}
				return
			}
			fields := fieldsOf(t, err)
			for _, f := range tt.fields {
				if !slices.Contains(fields, f) {
					t.Errorf("fields %v lack %q", fields, f)
				}
			}
		})
	}
}

func TestResolveFillsDefaults(t *testing.T) {
	e := newEnv(t, Options{Workers: 1, MaxDuration: time.Hour}, testHooks{})
	bin := mustDataset(t, e.st, binaryData(40))
	s := smallSpec("m", bin, 3)
	s.Training.MaxDurationSeconds = 0
	got, err := e.m.Resolve(context.Background(), s)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if got.Training.MaxDurationSeconds != 3600 {
		t.Errorf("max_duration_seconds = %g, want the server cap 3600", got.Training.MaxDurationSeconds)
	}
	if got.Version != SpecVersion {
		t.Errorf("version = %d, want SpecVersion %d", got.Version, SpecVersion)
	}
	// The engine's documented defaults for a binary task.
	if got.Network.OutputActivation != engine.Sigmoid || got.Network.Loss != engine.BinaryCrossEntropy {
		t.Errorf("output %q loss %q, want sigmoid and binary_cross_entropy", got.Network.OutputActivation, got.Network.Loss)
	}
	if got.Training.Optimizer.Name != "adam" || got.Training.Shuffle == nil || got.Training.Standardize == nil {
		t.Errorf("training defaults not filled: %+v", got.Training.TrainingConfig)
	}
	// Without validation data early stopping is off.
	if es := got.Training.EarlyStopping; es != nil {
		t.Errorf("early stopping %+v without validation data", es)
	}
}

// TestResolvePrecision: a new spec without training.precision gets
// float32, an explicit one is kept, and a version 1 spec (written before
// the field existed) without one stays version 1 with none, which the
// engine trains in float64; the config JSON of such a spec, of which a
// checkpoint's fingerprint is taken, is the one it had. Resolving the
// resolved spec again changes nothing.
func TestResolvePrecision(t *testing.T) {
	e := newEnv(t, Options{Workers: 1, MaxDuration: time.Hour}, testHooks{})
	bin := mustDataset(t, e.st, binaryData(40))
	tests := []struct {
		name          string
		version       int
		precision     engine.Precision
		wantVersion   int
		wantPrecision engine.Precision
	}{
		{"new spec", 0, "", SpecVersion, engine.Float32},
		{"new spec asking float64", 0, engine.Float64, SpecVersion, engine.Float64},
		{"new spec asking float32", 0, engine.Float32, SpecVersion, engine.Float32},
		{"version 2 spec", 2, "", 2, engine.Float32},
		{"version 2 spec asking float64", 2, engine.Float64, 2, engine.Float64},
		{"version 1 spec", 1, "", 1, ""},
		{"version 1 spec asking float64", 1, engine.Float64, SpecVersion, engine.Float64},
		{"version 1 spec asking float32", 1, engine.Float32, SpecVersion, engine.Float32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := smallSpec("m", bin, 3)
			s.Version, s.Training.Precision = tt.version, tt.precision
			got, err := e.m.Resolve(context.Background(), s)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if got.Version != tt.wantVersion || got.Training.Precision != tt.wantPrecision {
				t.Errorf("resolved version %d precision %q, want %d %q", got.Version, got.Training.Precision, tt.wantVersion, tt.wantPrecision)
			}
			again, err := e.m.Resolve(context.Background(), got)
			if err != nil {
				t.Fatalf("Resolve of the resolved spec: %v", err)
			}
			if !reflect.DeepEqual(again, got) {
				t.Errorf("resolving the resolved spec changed it:\n got %+v\nwant %+v", again, got)
			}
			b, err := encodeSpec(got)
			if err != nil {
				t.Fatal(err)
			}
			var stored struct {
				Version  int `json:"version"`
				Training map[string]json.RawMessage
			}
			if err := json.Unmarshal(b, &stored); err != nil {
				t.Fatal(err)
			}
			_, hasPrecision := stored.Training["precision"]
			if stored.Version != tt.wantVersion || hasPrecision != (tt.wantPrecision != "") {
				t.Errorf("stored spec %s: want version %d, precision present %v", b, tt.wantVersion, tt.wantPrecision != "")
			}
		})
	}

	t.Run("unknown precision", func(t *testing.T) {
		s := smallSpec("m", bin, 3)
		s.Training.Precision = "float16"
		_, err := e.m.Resolve(context.Background(), s)
		if f := fieldsOf(t, err); !slices.Contains(f, "training.precision") {
			t.Fatalf("fields %v, want training.precision", f)
		}
		var ve *engine.ValidationError
		errors.As(err, &ve)
		for _, fe := range ve.Errors {
			if fe.Field == "training.precision" && (!strings.Contains(fe.Message, `"float32"`) || !strings.Contains(fe.Message, `"float64"`)) {
				t.Errorf("training.precision: %q does not name float32 and float64", fe.Message)
			}
		}
	})
}

// TestDefaultPrecision: float64 only for the version written before
// training.precision existed.
func TestDefaultPrecision(t *testing.T) {
	for v, want := range map[int]engine.Precision{0: engine.Float32, 1: engine.Float64, 2: engine.Float32} {
		if got := DefaultPrecision(v); got != want {
			t.Errorf("DefaultPrecision(%d) = %q, want %q", v, got, want)
		}
	}
}

// TestParameterCap: a network over the server's parameter cap is refused
// before anything is written or run.
func TestParameterCap(t *testing.T) {
	// 2 inputs -> 64 tanh -> 1 output has 2*64+64+64+1 = 257 parameters.
	e := newEnv(t, Options{Workers: 1, Limits: engine.Limits{MaxParams: 100}}, testHooks{})
	bin := mustDataset(t, e.st, binaryData(40))
	s := smallSpec("big", bin, 3)
	s.Network.Hidden[0].Units = 64
	_, err := e.m.Submit(context.Background(), s)
	if len(fieldsOf(t, err)) == 0 {
		t.Fatalf("Submit over the parameter cap: %v, want field errors", err)
	}
	if recs, _ := e.st.ListJobs(context.Background()); len(recs) != 0 {
		t.Errorf("%d job records written for a refused job", len(recs))
	}
}

// TestCellCap: rows × features over the cap is refused with the dataset
// named.
func TestCellCap(t *testing.T) {
	e := newEnv(t, Options{Workers: 1, Limits: engine.Limits{MaxCells: 50}}, testHooks{})
	bin := mustDataset(t, e.st, binaryData(40)) // 40 × 2 = 80 cells
	_, err := e.m.Submit(context.Background(), smallSpec("m", bin, 3))
	if f := fieldsOf(t, err); !slices.Contains(f, "dataset_id") {
		t.Fatalf("fields %v, want dataset_id", f)
	}
	var ve *engine.ValidationError
	if !errors.As(err, &ve) {
		t.Fatal("not a validation error")
	}
}

// TestLoadSpecVersions: a stored spec without a version (as records
// written before specs carried one) and one of SpecVersion load; one of a
// newer version is refused instead of being read with fields it may not
// mean.
func TestLoadSpecVersions(t *testing.T) {
	tests := []struct {
		name    string
		spec    string
		wantErr bool
	}{
		{"no version", `{"model_name":"m","dataset_id":"d","network":{"hidden":[{"units":4,"activation":"relu"}]},"training":{"epochs":3}}`, false},
		{"version 1", `{"version":1,"model_name":"m","dataset_id":"d","training":{"epochs":3}}`, false},
		{"version 2", `{"version":2,"model_name":"m","dataset_id":"d","training":{"epochs":3,"precision":"float32"}}`, false},
		{"version 3", `{"version":3,"model_name":"m","dataset_id":"d","training":{"epochs":3}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &store.JobRecord{ID: "j", ModelName: "m", DatasetID: "d", Status: string(Queued), Spec: json.RawMessage(tt.spec)}
			j, err := loadJob(rec)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "spec version 3") {
					t.Fatalf("loadJob = %v, want an error naming spec version 3", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadJob: %v", err)
			}
			if j.spec.ModelName != "m" || j.spec.Training.Epochs != 3 {
				t.Errorf("loaded spec %+v, want model m with 3 epochs", j.spec)
			}
			// A spec without a version is version 1, and says so.
			if j.spec.Version < 1 {
				t.Errorf("loaded spec version %d, want 1 or more", j.spec.Version)
			}
			if tt.name == "no version" && j.spec.Version != 1 {
				t.Errorf("a spec without a version loaded as version %d, want 1", j.spec.Version)
			}
		})
	}
}

// TestErrTextNamesRequestFields: a job refused by the engine when it
// starts names the data by the spec's field, not by the engine's own path.
func TestErrTextNamesRequestFields(t *testing.T) {
	// A data set without rows: the engine reports it on engine.FieldData.
	_, err := engine.NewTrainer(engine.Config{}, engine.TaskRegression, engine.Data{Features: 2}, engine.Validation{}, engine.Options{})
	if err == nil {
		t.Fatal("NewTrainer accepted a data set without rows")
	}
	got := errText(err)
	if !strings.Contains(got, "dataset_id: ") || strings.Contains(got, engine.FieldData+": ") {
		t.Errorf("errText = %q, want the problem on dataset_id", got)
	}
}
