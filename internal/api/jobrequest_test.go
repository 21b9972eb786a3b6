package api

import (
	"bytes"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/jobs"
)

// TestJobRequestCheck: check refuses exactly the explicit values that
// resolving would replace by a default, naming the field and that default,
// and allows null, absent fields and zeros whose default is zero. The
// defaults quoted are the engine's documented ones (engine.Config.Resolve:
// 10 epochs, batch 32, adam, relu, glorot, sgd learning rate 0.01, epsilon
// 1e-8, step schedule step_size 10 and gamma 0.1).
func TestJobRequestCheck(t *testing.T) {
	tests := []struct {
		name  string
		body  string // the fields after model_name and dataset_id
		field string // "" means no problem
		msg   string
	}{
		{"defaults", ``, "", ""},
		{"null epochs takes the default", `,"training":{"epochs":null}`, "", ""},
		{"null optimizer takes the default", `,"training":{"optimizer":null}`, "", ""},
		{"explicit zero epochs", `,"training":{"epochs":0}`, "training.epochs", "0 is not allowed here; leave the field out to take the default (10)"},
		{"explicit zero batch size", `,"training":{"batch_size":0}`, "training.batch_size", "default (32)"},
		{"explicit zero sgd learning rate", `,"training":{"optimizer":{"name":"sgd","learning_rate":0}}`, "training.optimizer.learning_rate", "default (0.01)"},
		{"explicit zero adam learning rate", `,"training":{"optimizer":{"learning_rate":0}}`, "training.optimizer.learning_rate", "default (0.001)"},
		{"explicit zero rmsprop epsilon", `,"training":{"optimizer":{"name":"rmsprop","epsilon":0}}`, "training.optimizer.epsilon", "default (1e-8)"},
		{"zero epsilon for sgd changes nothing", `,"training":{"optimizer":{"name":"sgd","epsilon":0}}`, "", ""},
		{"zero learning rate of an unknown optimizer is left to the engine", `,"training":{"optimizer":{"name":"lbfgs","learning_rate":0}}`, "", ""},
		{"empty optimizer name", `,"training":{"optimizer":{"name":""}}`, "training.optimizer.name", `default ("adam")`},
		{"zero momentum is the default", `,"training":{"optimizer":{"name":"sgd","momentum":0}}`, "", ""},
		{"zero beta1 is a value", `,"training":{"optimizer":{"beta1":0}}`, "", ""},
		{"zero step size", `,"training":{"lr_schedule":{"name":"step","step_size":0}}`, "training.lr_schedule.step_size", "default (10)"},
		{"zero gamma", `,"training":{"lr_schedule":{"name":"step","gamma":0}}`, "training.lr_schedule.gamma", "default (0.1)"},
		{"zero gamma of a constant schedule changes nothing", `,"training":{"lr_schedule":{"name":"constant","gamma":0}}`, "", ""},
		{"empty schedule name", `,"training":{"lr_schedule":{"name":""}}`, "training.lr_schedule.name", `default ("constant")`},
		{"zero l2 is the default", `,"training":{"l2":0,"clip_norm":0}`, "", ""},
		{"zero patience is a value", `,"training":{"early_stopping":{"patience":0,"min_delta":0}}`, "", ""},
		{"zero time limit", `,"training":{"max_duration_seconds":0}`, "training.max_duration_seconds", "the server's limit"},
		{"empty activation", `,"network":{"hidden":[{"units":4},{"units":4,"activation":""}]}`, "network.hidden[1].activation", `default ("relu")`},
		{"layer without units", `,"network":{"hidden":[{"activation":"tanh"}]}`, "network.hidden[0].units", "required"},
		{"no hidden layers", `,"network":{"hidden":[]}`, "", ""},
		{"empty output activation", `,"network":{"output_activation":""}`, "network.output_activation", "identity for regression, sigmoid for binary, softmax for multiclass"},
		{"empty loss", `,"network":{"loss":""}`, "network.loss", "mse for regression, binary_cross_entropy for binary, cross_entropy for multiclass"},
		{"empty init", `,"network":{"init":""}`, "network.init", `default ("glorot")`},
		{"version 1", `,"version":1`, "", ""},
		{"version 0", `,"version":0`, "version", "default (2)"},
		{"empty precision", `,"training":{"precision":""}`, "training.precision", `default ("float32")`},
		{"empty precision of a version 1 spec", `,"version":1,"training":{"precision":""}`, "training.precision", `default ("float64")`},
		{"precision float64", `,"training":{"precision":"float64"}`, "", ""},
		{"validation fraction 0 means none", `,"validation":{"fraction":0}`, "", ""},
		{"scaling alone", `,"preprocessing":{"scaling":"minmax"}`, "", ""},
		{"standardize alone", `,"training":{"standardize":false}`, "", ""},
		{"scaling and standardize", `,"preprocessing":{"scaling":"none"},"training":{"standardize":false}`,
			"preprocessing.scaling", "must not be given together with training.standardize"},
		{"null scaling with standardize", `,"preprocessing":{"scaling":null},"training":{"standardize":true}`, "", ""},
		// The defaults of engine.PreprocessingConfig: standard scaling, median
		// imputation, 5 rows, 50 levels.
		{"empty scaling", `,"preprocessing":{"scaling":""}`, "preprocessing.scaling", `default ("standard")`},
		{"empty impute", `,"preprocessing":{"impute":""}`, "preprocessing.impute", `default ("median")`},
		{"zero min level rows", `,"preprocessing":{"min_level_rows":0}`, "preprocessing.min_level_rows", "default (5)"},
		{"zero max levels", `,"preprocessing":{"max_levels":0}`, "preprocessing.max_levels", "default (50)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var req jobRequest
			if err := decodeStrict([]byte(`{"model_name":"m","dataset_id":"d"`+tc.body+`}`), &req); err != nil {
				t.Fatalf("decode: %v", err)
			}
			got := req.check()
			if tc.field == "" {
				if len(got) != 0 {
					t.Fatalf("check = %+v, want no problem", got)
				}
				return
			}
			if len(got) != 1 || got[0].Field != tc.field || !strings.Contains(got[0].Message, tc.msg) {
				t.Fatalf("check = %+v, want one problem on %s containing %q", got, tc.field, tc.msg)
			}
		})
	}
}

// TestJobRequestCheckTopLevel: the data is given exactly once and the
// model is named, all problems reported together.
func TestJobRequestCheckTopLevel(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		fields []string
	}{
		{"nothing", `{}`, []string{"dataset_id", "model_name"}},
		{"both data and dataset", `{"model_name":"m","dataset_id":"d","data":{"features":[[1]],"targets":[1]}}`, []string{"data"}},
		{"null model name", `{"model_name":null,"dataset_id":"d","training":{"epochs":0}}`, []string{"model_name", "training.epochs"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var req jobRequest
			if err := decodeStrict([]byte(tc.body), &req); err != nil {
				t.Fatalf("decode: %v", err)
			}
			var got []string
			for _, fe := range req.check() {
				got = append(got, fe.Field)
			}
			if !reflect.DeepEqual(got, tc.fields) {
				t.Errorf("fields %q, want %q", got, tc.fields)
			}
		})
	}
}

// TestJobRequestSpec: the request converts to the spec the job manager
// resolves, every given value kept and absent ones left unset for it.
func TestJobRequestSpec(t *testing.T) {
	body := `{"version":1,"model_name":"m","dataset_id":"d","validation":{"fraction":0.25},
	  "network":{"hidden":[{"units":8,"activation":"leaky_relu","slope":0,"dropout":0.25}],"loss":"mse","input_dropout":0.1},
	  "training":{"epochs":3,"shuffle":false,"seed":7,"l1":0.001,"precision":"float64","optimizer":{"name":"adam","beta1":0},
	    "lr_schedule":{"name":"cosine","min_lr":0.0001},"early_stopping":{"patience":0},"max_duration_seconds":60}}`
	var req jobRequest
	if err := decodeStrict([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	want := jobs.Spec{
		Version: 1, ModelName: "m", DatasetID: "stored",
		Validation: &jobs.ValidationSpec{Fraction: 0.25},
		Network: engine.NetworkConfig{
			Hidden:       []engine.LayerConfig{{Units: 8, Activation: engine.LeakyReLU, Slope: new(0.0), Dropout: 0.25}},
			Loss:         engine.MSE,
			InputDropout: 0.1,
		},
		Training: jobs.TrainingSpec{
			TrainingConfig: engine.TrainingConfig{
				Epochs: 3, Shuffle: new(false), Seed: new(int64(7)), L1: 0.001, Precision: engine.Float64,
				Optimizer:     engine.OptimizerConfig{Name: "adam", Beta1: new(0.0)},
				LRSchedule:    engine.ScheduleConfig{Name: "cosine", MinLR: 0.0001},
				EarlyStopping: &engine.EarlyStoppingConfig{Patience: new(0)},
			},
			MaxDurationSeconds: 60,
		},
	}
	got := req.spec("stored")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("spec =\n%+v\nwant\n%+v", got, want)
	}
	// The spec shares no pointer with the request.
	*req.Training.Seed = 8
	if *got.Training.Seed != 7 {
		t.Error("the spec's seed changed with the request's")
	}
}

// TestJobSpecVersion: a job's spec says its version; a request of that
// version, or none, is accepted, and one of a version the server does not
// know is refused on "version".
func TestJobSpecVersion(t *testing.T) {
	env := newTestEnv(t, Config{})
	ds := uploadIris(t, env)
	j := submitJob(t, env, map[string]any{"model_name": "v", "dataset_id": ds.ID, "training": map[string]any{"epochs": 1}})
	if j.Spec.Version != jobs.SpecVersion {
		t.Errorf("spec version %d, want %d", j.Spec.Version, jobs.SpecVersion)
	}
	waitJob(t, env, j.ID)
	res := doJSON(t, env.h, http.MethodPost, "/v1/jobs", map[string]any{"version": jobs.SpecVersion + 1, "model_name": "v", "dataset_id": ds.ID})
	if p := res.Problem(t); res.Status != http.StatusBadRequest || !problemMentions(p, "version") {
		t.Fatalf("a newer spec version: %d %+v, want 400 on version", res.Status, p)
	}
}

// TestJobNullTakesDefault: JSON null asks for the default exactly as an
// absent field does (here on the fields the contract marks nullable).
func TestJobNullTakesDefault(t *testing.T) {
	env := newTestEnv(t, Config{})
	ds := uploadIris(t, env)
	j := submitJob(t, env, map[string]any{"model_name": "n", "dataset_id": ds.ID,
		"network":  map[string]any{"hidden": nil},
		"training": map[string]any{"epochs": 1, "seed": nil, "shuffle": nil, "optimizer": map[string]any{"beta1": nil}}})
	// The engine's documented defaults (engine.Config.Resolve): one hidden
	// layer of 64 relu units, seed 1, shuffling, adam's beta1 0.9.
	n, tr := j.Spec.Network, j.Spec.Training
	if len(n.Hidden) != 1 || n.Hidden[0].Units != 64 || n.Hidden[0].Activation != engine.ReLU ||
		tr.Seed == nil || *tr.Seed != 1 || tr.Shuffle == nil || !*tr.Shuffle ||
		tr.Optimizer.Beta1 == nil || *tr.Optimizer.Beta1 != 0.9 {
		t.Errorf("resolved spec %+v %+v, want the defaults", n, tr.TrainingConfig)
	}
	waitJob(t, env, j.ID)
}

// TestJobPreprocessingAndClassWeight submits jobs with preprocessing and
// class weights through the router: accepted ones show them resolved in
// the job's spec; bad ones are a 400 naming the field and, for a weight
// of an unknown class, the class.
func TestJobPreprocessingAndClassWeight(t *testing.T) {
	env := newTestEnv(t, Config{})
	ds := uploadIris(t, env)
	j := submitJob(t, env, map[string]any{"model_name": "p", "dataset_id": ds.ID,
		"preprocessing": map[string]any{"scaling": "minmax", "max_levels": 20},
		"training":      map[string]any{"epochs": 1, "class_weight": map[string]any{"setosa": 2}}})
	// The defaults of engine.PreprocessingConfig fill what the request left out.
	want := engine.PreprocessingConfig{Scaling: "minmax", Impute: "median", MinLevelRows: 5, MaxLevels: 20}
	if p := j.Spec.Preprocessing; p == nil || *p != want {
		t.Errorf("spec preprocessing %+v, want %+v", p, want)
	}
	if w := j.Spec.Training.ClassWeight; w == nil || w.Weights["setosa"] != 2 {
		t.Errorf("spec class weights %+v, want setosa 2", w)
	}
	waitJob(t, env, j.ID)
	balanced := submitJob(t, env, map[string]any{"model_name": "b", "dataset_id": ds.ID,
		"training": map[string]any{"epochs": 1, "class_weight": "balanced"}})
	if w := balanced.Spec.Training.ClassWeight; w == nil || !w.Balanced {
		t.Errorf("spec class weights %+v, want balanced", w)
	}
	waitJob(t, env, balanced.ID)

	bad := []struct {
		name  string
		body  map[string]any
		field string
		msg   string
	}{
		{"unknown class", map[string]any{"training": map[string]any{"class_weight": map[string]any{"setosa": 1, "daisy": 2}}},
			`training.class_weight["daisy"]`, "is not a class of the dataset"},
		{"zero weight", map[string]any{"training": map[string]any{"class_weight": map[string]any{"setosa": 0}}},
			`training.class_weight["setosa"]`, "must be greater than 0"},
		{"negative weight", map[string]any{"training": map[string]any{"class_weight": map[string]any{"virginica": -1}}},
			`training.class_weight["virginica"]`, "must be greater than 0"},
		{"scaling and standardize", map[string]any{"preprocessing": map[string]any{"scaling": "standard"}, "training": map[string]any{"standardize": true}},
			"preprocessing.scaling", "must not be given together with training.standardize"},
		{"unknown scaling", map[string]any{"preprocessing": map[string]any{"scaling": "log"}},
			"preprocessing.scaling", `unknown scaling "log"`},
		{"unknown imputation", map[string]any{"preprocessing": map[string]any{"impute": "mode"}},
			"preprocessing.impute", `unknown imputation "mode"`},
		{"negative max levels", map[string]any{"preprocessing": map[string]any{"max_levels": -1}},
			"preprocessing.max_levels", "must be between 1"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			body := map[string]any{"model_name": "x", "dataset_id": ds.ID}
			for k, v := range tc.body {
				body[k] = v
			}
			res := doJSON(t, env.h, http.MethodPost, "/v1/jobs", body)
			p := res.Problem(t)
			if res.Status != http.StatusBadRequest || !problemHas(p, tc.field, tc.msg) {
				t.Fatalf("%d %+v; want 400 on %s saying %q", res.Status, p, tc.field, tc.msg)
			}
		})
	}
	res := doJSON(t, env.h, http.MethodPost, "/v1/jobs", map[string]any{"model_name": "x", "dataset_id": ds.ID,
		"training": map[string]any{"class_weight": "even"}})
	if p := res.Problem(t); res.Status != http.StatusBadRequest || !strings.Contains(p.Detail, `class_weight: "even" is not "balanced"`) {
		t.Fatalf("class_weight \"even\": %d %+v; want 400 saying what class_weight takes", res.Status, p)
	}
}

// problemHas reports whether p has an error on field whose message
// contains msg.
func problemHas(p Problem, field, msg string) bool {
	for _, e := range p.Errors {
		if e.Field == field && strings.Contains(e.Message, msg) {
			return true
		}
	}
	return false
}

// TestJobDropoutAndL1 submits jobs with dropout and L1 through the router:
// an accepted one trains and shows the settings in its spec; out-of-range
// values are a 400 naming the field
// and the range, and store no job.
func TestJobDropoutAndL1(t *testing.T) {
	env := newTestEnv(t, Config{})
	ds := uploadIris(t, env)
	j := submitJob(t, env, map[string]any{"model_name": "drop", "dataset_id": ds.ID,
		"network":  map[string]any{"input_dropout": 0.1, "hidden": []any{map[string]any{"units": 16, "dropout": 0.5}, map[string]any{"units": 8}}},
		"training": map[string]any{"epochs": 2, "l1": 0.0001}})
	n := j.Spec.Network
	if n.InputDropout != 0.1 || len(n.Hidden) != 2 || n.Hidden[0].Dropout != 0.5 || n.Hidden[1].Dropout != 0 || j.Spec.Training.L1 != 0.0001 {
		t.Errorf("spec %+v, l1 %v; want input_dropout 0.1, dropout 0.5 and 0, l1 0.0001", n, j.Spec.Training.L1)
	}
	if done := waitJob(t, env, j.ID); done.Status != jobs.Succeeded {
		t.Fatalf("job %s: %s", done.Status, done.Error)
	}

	before := doJSON(t, env.h, http.MethodGet, "/v1/jobs", nil).Body
	bad := []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"dropout of 1", map[string]any{"network": map[string]any{"hidden": []any{map[string]any{"units": 4}, map[string]any{"units": 4, "dropout": 1}}}},
			"network.hidden[1].dropout"},
		{"negative dropout", map[string]any{"network": map[string]any{"hidden": []any{map[string]any{"units": 4, "dropout": -0.2}}}},
			"network.hidden[0].dropout"},
		{"input dropout above 1", map[string]any{"network": map[string]any{"input_dropout": 1.5}},
			"network.input_dropout"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			body := map[string]any{"model_name": "x", "dataset_id": ds.ID}
			for k, v := range tc.body {
				body[k] = v
			}
			res := doJSON(t, env.h, http.MethodPost, "/v1/jobs", body)
			p := res.Problem(t)
			if res.Status != http.StatusBadRequest || !problemHas(p, tc.field, "must be at least 0 and below 1") {
				t.Fatalf("%d %+v; want 400 on %s saying it must be at least 0 and below 1", res.Status, p, tc.field)
			}
		})
	}
	res := doJSON(t, env.h, http.MethodPost, "/v1/jobs", map[string]any{"model_name": "x", "dataset_id": ds.ID, "training": map[string]any{"l1": -1}})
	if p := res.Problem(t); res.Status != http.StatusBadRequest || !problemHas(p, "training.l1", "must be between 0 and 1") {
		t.Fatalf("l1 -1: %d %+v; want 400 on training.l1", res.Status, p)
	}
	if after := doJSON(t, env.h, http.MethodGet, "/v1/jobs", nil).Body; !bytes.Equal(after, before) {
		t.Errorf("refused jobs changed the job list:\nbefore %s\nafter  %s", before, after)
	}
}

// TestJobPrecision submits jobs through the router: a job that leaves
// training.precision out is float32, one that asks for float64 keeps it,
// and a version 1 spec without it stays version 1 with none (float64). The
// model each trains says its precision in its metadata. An unknown
// precision is a 400 on training.precision naming the values allowed.
func TestJobPrecision(t *testing.T) {
	env := newTestEnv(t, Config{})
	ds := uploadIris(t, env)
	tests := []struct {
		name          string
		body          map[string]any
		wantVersion   int
		wantPrecision engine.Precision // in the resolved spec
		wantModel     string           // the model metadata's precision
	}{
		{"default", map[string]any{"training": map[string]any{"epochs": 1}}, jobs.SpecVersion, engine.Float32, "float32"},
		{"float64", map[string]any{"training": map[string]any{"epochs": 1, "precision": "float64"}}, jobs.SpecVersion, engine.Float64, "float64"},
		{"float32", map[string]any{"training": map[string]any{"epochs": 1, "precision": "float32"}}, jobs.SpecVersion, engine.Float32, "float32"},
		{"version 1", map[string]any{"version": 1, "training": map[string]any{"epochs": 1}}, 1, "", "float64"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("p%d", i)
			tt.body["model_name"], tt.body["dataset_id"] = name, ds.ID
			j := submitJob(t, env, tt.body)
			if j.Spec.Version != tt.wantVersion || j.Spec.Training.Precision != tt.wantPrecision {
				t.Errorf("spec version %d precision %q, want %d %q", j.Spec.Version, j.Spec.Training.Precision, tt.wantVersion, tt.wantPrecision)
			}
			if done := waitJob(t, env, j.ID); done.Status != jobs.Succeeded {
				t.Fatalf("job ended %s: %s", done.Status, done.Error)
			}
			res := doJSON(t, env.h, http.MethodGet, "/v1/models/"+name, nil)
			var meta struct {
				Precision *string `json:"precision"`
			}
			res.JSON(t, &meta)
			if res.Status != http.StatusOK || meta.Precision == nil || *meta.Precision != tt.wantModel {
				t.Errorf("GET model: %d %s, want precision %q", res.Status, res.Body, tt.wantModel)
			}
		})
	}

	t.Run("unknown", func(t *testing.T) {
		before := snapshotDir(t, env.dir)
		res := doJSON(t, env.h, http.MethodPost, "/v1/jobs", map[string]any{"model_name": "bad", "dataset_id": ds.ID,
			"training": map[string]any{"precision": "float16"}})
		if res.Status != http.StatusBadRequest {
			t.Fatalf("status %d, want 400: %s", res.Status, res.Body)
		}
		p := res.Problem(t)
		found := false
		for _, e := range p.Errors {
			if e.Field == "training.precision" {
				found = true
				for _, s := range []string{`"float32"`, `"float64"`, `"float16"`} {
					if !strings.Contains(e.Message, s) {
						t.Errorf("training.precision: %q does not say %s", e.Message, s)
					}
				}
			}
		}
		if !found {
			t.Errorf("problem %+v has no error on training.precision", p)
		}
		if after := snapshotDir(t, env.dir); !reflect.DeepEqual(after, before) {
			t.Errorf("a refused job changed the data directory")
		}
	})
}
