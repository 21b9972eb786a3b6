package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/backpropd/backpropd/internal/allocbound"
	"github.com/backpropd/backpropd/internal/store"
)

// predictResponse is the /v1 predict response as a client reads it.
type predictResponse struct {
	ModelName     string            `json:"model_name"`
	ModelVersion  int               `json:"model_version"`
	Predictions   []json.RawMessage `json:"predictions"`
	Probabilities [][]float64       `json:"probabilities"`
	Classes       []string          `json:"classes"`
	Targets       []string          `json:"targets"`
}

// enginePredict is the oracle for the HTTP path: the engine's own Predict
// (and Labels) on the same rows.
func enginePredict(t *testing.T, tm *trainedModel, x []float64, rows int) ([]float64, []string) {
	t.Helper()
	out := make([]float64, rows*tm.model.Outputs())
	if err := tm.model.Predict(out, x, rows); err != nil {
		t.Fatalf("engine Predict: %v", err)
	}
	if tm.model.Classes() == nil {
		return out, nil
	}
	labels := make([]string, rows)
	if err := tm.model.Labels(labels, out, rows); err != nil {
		t.Fatalf("engine Labels: %v", err)
	}
	return out, labels
}

func rowsJSON(x []float64, rows, features int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s", mustJSON(x[i*features:(i+1)*features]))
	}
	b.WriteByte(']')
	return b.String()
}

func objectsJSON(x []float64, rows int, names []string) string {
	var objs []map[string]float64
	for i := range rows {
		o := map[string]float64{}
		for j, n := range names {
			o[n] = x[i*len(names)+j]
		}
		objs = append(objs, o)
	}
	return mustJSON(objs)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestPredictClassifier(t *testing.T) {
	e := newModelEnv(t)
	tm := mustTrain(t, "classifier")
	e.putModel("iris", tm)
	const rows = 6
	x := tm.data.X[:rows*4]
	wantOut, wantLabels := enginePredict(t, tm, x, rows)

	for _, tc := range []struct{ name, target, body string }{
		{"arrays", "/v1/models/iris/predict", `{"inputs":` + rowsJSON(x, rows, 4) + `}`},
		{"objects", "/v1/models/iris/predict", `{"inputs":` + objectsJSON(x, rows, irisFeatures) + `}`},
		{"instances", "/v1/models/iris/predict", `{"instances":` + rowsJSON(x, rows, 4) + `}`},
		{"version", "/v1/models/iris/versions/1/predict", `{"inputs":` + rowsJSON(x, rows, 4) + `}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.obs.rows
			res := e.postJSON(t, tc.target, tc.body)
			if res.Status != http.StatusOK {
				t.Fatalf("status %d: %s", res.Status, res.Body)
			}
			var got predictResponse
			res.JSON(t, &got)
			if got.ModelName != "iris" || got.ModelVersion != 1 {
				t.Errorf("model %s v%d, want iris v1", got.ModelName, got.ModelVersion)
			}
			if !slices.Equal(got.Classes, tm.model.Classes()) {
				t.Errorf("classes = %v, want %v", got.Classes, tm.model.Classes())
			}
			if len(got.Predictions) != rows || len(got.Probabilities) != rows {
				t.Fatalf("%d predictions, %d probability rows, want %d", len(got.Predictions), len(got.Probabilities), rows)
			}
			for i := range rows {
				var label string
				if err := json.Unmarshal(got.Predictions[i], &label); err != nil || label != wantLabels[i] {
					t.Errorf("prediction %d = %s, want %q", i, got.Predictions[i], wantLabels[i])
				}
				// Exact: the response carries the engine's float64s in
				// shortest round-trip form.
				if want := wantOut[i*3 : i*3+3]; !slices.Equal(got.Probabilities[i], want) {
					t.Errorf("probabilities %d = %v, want %v", i, got.Probabilities[i], want)
				}
				sum := 0.0
				for _, p := range got.Probabilities[i] {
					sum += p
				}
				if math.Abs(sum-1) > 1e-12 {
					t.Errorf("row %d probabilities sum to %v, want 1 (softmax, tolerance 1e-12)", i, sum)
				}
			}
			if e.obs.rows-before != rows || e.obs.model != "iris" {
				t.Errorf("observer saw %d rows of %q, want %d of iris", e.obs.rows-before, e.obs.model, rows)
			}
		})
	}
	t.Run("learned", func(t *testing.T) {
		// The synthetic clusters are 4+ standard deviations apart, so the
		// trained classifier labels the cluster centres correctly.
		res := e.postJSON(t, "/v1/models/iris/predict",
			`{"inputs":[[5.0,3.4,1.5,0.2],[5.9,2.8,4.3,1.3],[6.6,3.0,5.6,2.0]]}`)
		var got predictResponse
		res.JSON(t, &got)
		want := []string{`"setosa"`, `"versicolor"`, `"virginica"`}
		for i, p := range got.Predictions {
			if string(p) != want[i] {
				t.Errorf("centre %d labelled %s, want %s", i, p, want[i])
			}
		}
	})
}

func TestPredictRegression(t *testing.T) {
	for _, kind := range []string{"regressor", "multi"} {
		t.Run(kind, func(t *testing.T) {
			e := newModelEnv(t)
			tm := mustTrain(t, kind)
			e.putModel("lin", tm)
			const rows = 5
			x := tm.data.X[:rows*2]
			wantOut, _ := enginePredict(t, tm, x, rows)
			res := e.postJSON(t, "/v1/models/lin/predict", `{"inputs":`+rowsJSON(x, rows, 2)+`}`)
			if res.Status != http.StatusOK {
				t.Fatalf("status %d: %s", res.Status, res.Body)
			}
			var got predictResponse
			res.JSON(t, &got)
			if got.Probabilities != nil || got.Classes != nil {
				t.Errorf("regression response has classifier fields: %s", res.Body)
			}
			outputs := tm.model.Outputs()
			if !slices.Equal(got.Targets, tm.model.TargetNames()) {
				t.Errorf("targets = %v, want %v", got.Targets, tm.model.TargetNames())
			}
			for i, p := range got.Predictions {
				want := wantOut[i*outputs : (i+1)*outputs]
				if outputs == 1 {
					var v float64
					if err := json.Unmarshal(p, &v); err != nil || v != want[0] {
						t.Errorf("prediction %d = %s, want the number %v", i, p, want[0])
					}
					continue
				}
				var v []float64
				if err := json.Unmarshal(p, &v); err != nil || !slices.Equal(v, want) {
					t.Errorf("prediction %d = %s, want the array %v", i, p, want)
				}
			}
		})
	}
}

func TestPredictBinary(t *testing.T) {
	e := newModelEnv(t)
	tm := mustTrain(t, "binary")
	e.putModel("setosa", tm)
	const rows = 6
	x := tm.data.X[:rows*4]
	p, labels := enginePredict(t, tm, x, rows)
	res := e.postJSON(t, "/v1/models/setosa/predict", `{"inputs":`+rowsJSON(x, rows, 4)+`}`)
	if res.Status != http.StatusOK {
		t.Fatalf("status %d: %s", res.Status, res.Body)
	}
	var got predictResponse
	res.JSON(t, &got)
	if !slices.Equal(got.Classes, tm.model.Classes()) || len(got.Classes) != 2 {
		t.Fatalf("classes = %v, want the model's two %v", got.Classes, tm.model.Classes())
	}
	for i := range rows {
		// One sigmoid output p is the probability of classes[1]; the
		// response gives both, [1-p, p], in the order of classes.
		want := []float64{1 - p[i], p[i]}
		if !slices.Equal(got.Probabilities[i], want) {
			t.Errorf("row %d probabilities %v, want %v", i, got.Probabilities[i], want)
		}
		if string(got.Predictions[i]) != `"`+labels[i]+`"` {
			t.Errorf("row %d label %s, want %q", i, got.Predictions[i], labels[i])
		}
	}
}

func TestPredictMultiLabel(t *testing.T) {
	e := newModelEnv(t)
	tm := mustTrain(t, "multilabel")
	e.putModel("tags", tm)
	const rows = 4
	x := tm.data.X[:rows*4]
	p, _ := enginePredict(t, tm, x, rows)
	res := e.postJSON(t, "/v1/models/tags/predict", `{"inputs":`+rowsJSON(x, rows, 4)+`}`)
	if res.Status != http.StatusOK {
		t.Fatalf("status %d: %s", res.Status, res.Body)
	}
	var got predictResponse
	res.JSON(t, &got)
	if got.Classes != nil || got.Probabilities != nil || !slices.Equal(got.Targets, []string{"is_setosa", "is_virginica"}) {
		t.Errorf("classes %v, probabilities %v, targets %v; want only targets [is_setosa is_virginica]",
			got.Classes, got.Probabilities, got.Targets)
	}
	for i, pred := range got.Predictions {
		// Per row, the probability of each label being 1.
		var v []float64
		if err := json.Unmarshal(pred, &v); err != nil || !slices.Equal(v, p[i*2:i*2+2]) {
			t.Errorf("row %d = %s, want %v", i, pred, p[i*2:i*2+2])
		}
	}
}

// TestPredictBadInput sends every kind of bad predict body and checks the
// status and the field named. The model takes the four iris features.
func TestPredictBadInput(t *testing.T) {
	e := newModelEnv(t)
	e.putModel("iris", mustTrain(t, "classifier"))
	ok := "[5.1,3.5,1.4,0.2]"
	for _, tc := range []struct {
		name, body string
		field      string // "" when the body is malformed as a whole
	}{
		{"empty inputs", `{"inputs":[]}`, "inputs"},
		{"no inputs", `{}`, "inputs"},
		{"null inputs", `{"inputs":null}`, "inputs"},
		{"both fields", `{"inputs":[` + ok + `],"instances":[` + ok + `]}`, "instances"},
		{"inputs not an array", `{"inputs":{"sepal_length":1}}`, "inputs"},
		{"row not an array", `{"inputs":[` + ok + `,5.1]}`, "inputs[1]"},
		{"too few features", `{"inputs":[` + ok + `,[1,2,3]]}`, "inputs[1]"},
		{"too many features", `{"inputs":[[1,2,3,4,5]]}`, "inputs[0]"},
		{"empty row", `{"inputs":[[]]}`, "inputs[0]"},
		{"string value", `{"inputs":[` + ok + `,` + ok + `,` + ok + `,[1,"2",3,4]]}`, "inputs[3][1]"},
		{"NaN as string", `{"inputs":[[1,2,"NaN",4]]}`, "inputs[0][2]"},
		{"Infinity as string", `{"inputs":[[1,2,3,"Infinity"]]}`, "inputs[0][3]"},
		{"overflow", `{"inputs":[[1e999,2,3,4]]}`, "inputs[0][0]"},
		{"negative overflow", `{"inputs":[[1,-1e400,3,4]]}`, "inputs[0][1]"},
		{"null value", `{"inputs":[[1,null,3,4]]}`, "inputs[0][1]"},
		{"bool value", `{"inputs":[[1,2,true,4]]}`, "inputs[0][2]"},
		{"nested value", `{"inputs":[[1,2,[3],4]]}`, "inputs[0][2]"},
		{"object missing feature", `{"inputs":[{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4}]}`,
			"inputs[0].petal_width"},
		{"object unknown feature", `{"inputs":[{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2,"colour":1}]}`,
			"inputs[0].colour"},
		{"object bad value", `{"inputs":[{"sepal_length":5.1,"sepal_width":"x","petal_length":1.4,"petal_width":0.2}]}`,
			"inputs[0].sepal_width"},
		{"object overflow", `{"inputs":[{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1e999,"petal_width":0.2}]}`,
			"inputs[0].petal_length"},
		{"object duplicate key", `{"inputs":[{"sepal_length":5.1,"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}]}`,
			"inputs[0].sepal_length"},
		{"instances bad value", `{"instances":[[1,2,3,"four"]]}`, "instances[0][3]"},
		{"unknown top-level field", `{"inputs":[` + ok + `],"signature_name":"x"}`, "signature_name"},
		{"wrong type", `{"inputs":"5.1,3.5"}`, "inputs"},
		{"NaN literal", `{"inputs":[[NaN,1,2,3]]}`, ""},
		{"Infinity literal", `{"inputs":[[Infinity,1,2,3]]}`, ""},
		{"malformed", `{"inputs":[[1,2,3,4]`, ""},
		{"trailing data", `{"inputs":[` + ok + `]} {}`, ""},
		{"invalid UTF-8", "{\"inputs\":[[1,2,3,4]],\"x\":\"\xff\"}", ""},
		{"deep nesting", `{"inputs":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.call(t, http.MethodPost, "/v1/models/iris/predict", "application/json", []byte(tc.body))
			if res.Status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", res.Status, res.Body)
			}
			p := res.Problem(t)
			if p.Detail == "" {
				t.Errorf("problem has no detail")
			}
			if tc.field == "" {
				return
			}
			if len(p.Errors) == 0 || p.Errors[0].Field != tc.field {
				t.Errorf("errors = %+v, want the first naming %s", p.Errors, tc.field)
			}
		})
	}
	t.Run("many bad values are listed up to a cap", func(t *testing.T) {
		row := `["a","b","c","d"]`
		body := `{"inputs":[` + strings.TrimSuffix(strings.Repeat(row+",", 100), ",") + `]}`
		res := e.call(t, http.MethodPost, "/v1/models/iris/predict", "application/json", []byte(body))
		p := res.Problem(t)
		if res.Status != http.StatusBadRequest || len(p.Errors) != maxFieldErrors {
			t.Errorf("status %d with %d errors, want 400 with %d", res.Status, len(p.Errors), maxFieldErrors)
		}
	})
	for _, tc := range []struct {
		name, target, contentType, body string
		status                          int
	}{
		{"unknown model", "/v1/models/nope/predict", "application/json", `{"inputs":[` + ok + `]}`, http.StatusNotFound},
		{"unknown version", "/v1/models/iris/versions/7/predict", "application/json", `{"inputs":[` + ok + `]}`, http.StatusNotFound},
		{"text body", "/v1/models/iris/predict", "text/plain", "5.1,3.5,1.4,0.2", http.StatusUnsupportedMediaType},
		{"no content type", "/v1/models/iris/predict", "", `{"inputs":[` + ok + `]}`, http.StatusUnsupportedMediaType},
		{"wrong method", "/v1/models/iris/predict", "", "", http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := http.MethodPost
			if tc.status == http.StatusMethodNotAllowed {
				method = http.MethodGet
			}
			res := e.call(t, method, tc.target, tc.contentType, []byte(tc.body))
			if res.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.Status, tc.status, res.Body)
			}
			res.Problem(t)
		})
	}
	t.Run("body over the request limit", func(t *testing.T) {
		srv := New(Options{Store: e.store, Jobs: e.jobs, Config: Config{MaxRequestBytes: 64}})
		body := `{"inputs":[` + strings.TrimSuffix(strings.Repeat(ok+",", 10), ",") + `]}`
		req := httptest.NewRequest(http.MethodPost, "/v1/models/iris/predict", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d, want 413: %s", rec.Code, rec.Body)
		}
	})
}

// BenchmarkPredictSingleRow measures one-row predictions through the real
// router and middleware, as clients send them.
func BenchmarkPredictSingleRow(b *testing.B) {
	e := newModelEnv(b)
	e.putModel("iris", mustTrain(b, "classifier"))
	body := []byte(`{"inputs":[[5.1,3.5,1.4,0.2]]}`)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/models/iris/predict", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

// FuzzPredictRequest feeds arbitrary bodies to the /v1 predict decoders
// for a four-feature model. Properties: no panic; each decoder allocates
// at most requestBound (hardening_fuzz_test.go); the fast path agrees with
// the strict decoder on what is valid; rows that decode are finite, sized
// rows × features, and re-encode to a body that decodes to the same values.
func FuzzPredictRequest(f *testing.F) {
	for _, seed := range []string{
		`{"inputs":[[5.1,3.5,1.4,0.2]]}`,
		`{"instances":[[5.1,3.5,1.4,0.2],[6,3,5,2]]}`,
		`{"inputs":[{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}]}`,
		`{"inputs":[{"sepal_length":5.1,"sepal_length":1}]}`,
		`{"INPUTS":[[1,2,3,4]]}`,
		`{"inputs":[[1e999,2,3,4]]}`,
		`{"inputs":[[1,"2",3,4]],"x":1}`,
		`{"inputs":[],"instances":null}`,
		`{"inputs":[[1,2,3]]} {}`,
		`[[1,2,3,4]]`,
		"{\"inputs\":[[1,2,3,4]],\"s\":\"\xff\"}",
		`{"inputs":[{"a\u0062":1,"\"":2}]}`,
	} {
		f.Add([]byte(seed))
	}
	tm := mustTrain(f, "classifier")
	sm, err := newServedModel(store.ModelMeta{Name: "iris", Version: 1}, tm.model)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req predictRequest
		var err error
		allocbound.Check(t, "decodePredictRequest", len(body), requestBound, func() { req, err = decodePredictRequest(body) })
		var strict predictRequest
		strictErr := decodeStrict(body, &strict)
		if (err == nil) != (strictErr == nil) {
			t.Fatalf("fast decoder err %v, strict decoder err %v", err, strictErr)
		}
		if err != nil {
			assertClientError(t, err)
			return
		}
		if !bytes.Equal(req.Inputs, strict.Inputs) || !bytes.Equal(req.Instances, strict.Instances) {
			t.Fatalf("fast decoder read %q/%q, strict %q/%q", req.Inputs, req.Instances, strict.Inputs, strict.Instances)
		}
		raw := req.Inputs
		if isAbsent(raw) {
			raw = req.Instances
		}
		if isAbsent(raw) {
			return
		}
		var x []float64
		var rows int
		allocbound.Check(t, "decodeRows", len(raw), requestBound, func() {
			x, rows, err = decodeRows(raw, "inputs", sm, nil, DefaultMaxPredictRows)
		})
		if err != nil {
			assertClientError(t, err)
			return
		}
		if rows == 0 {
			return // an empty array: predictRows refuses it for both surfaces
		}
		if len(x) != rows*4 {
			t.Fatalf("%d rows, %d values", rows, len(x))
		}
		for _, v := range x {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("non-finite value %v decoded", v)
			}
		}
		again, rows2, err := decodeRows([]byte(rowsJSON(x, rows, 4)), "inputs", sm, nil, DefaultMaxPredictRows)
		if err != nil || rows2 != rows || !slices.Equal(again, x) {
			t.Fatalf("re-encoded rows decode to %v (%v), want %v", again, err, x)
		}
	})
}

// assertClientError fails unless err is a 4xx *Error naming what is wrong.
func assertClientError(t *testing.T, err error) {
	t.Helper()
	status, detail, _, _ := statusOf(err)
	if status < 400 || status >= 500 || detail == "" {
		t.Fatalf("error %v maps to %d %q, want a 4xx with a detail", err, status, detail)
	}
}

// TestPredictConcurrent predicts from many goroutines while versions are
// imported and deleted (run it with -race). Every answer is a 200 from a
// version that existed, or a 404 for one deleted meanwhile; never a 5xx.
func TestPredictConcurrent(t *testing.T) {
	e := newModelEnv(t)
	tm := mustTrain(t, "classifier")
	e.putModel("iris", tm)
	body := []byte(`{"inputs":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]}`)
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				target := "/v1/models/iris/predict"
				if i%2 == 1 {
					target = "/v1/models/iris/versions/1/predict"
				}
				req := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				e.h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK && rec.Code != http.StatusNotFound {
					errs <- fmt.Sprintf("goroutine %d request %d: %d %s", g, i, rec.Code, rec.Body)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			req := httptest.NewRequest(http.MethodPost, "/v1/models/iris/versions", bytes.NewReader(tm.file))
			req.Header.Set("Content-Type", "application/octet-stream")
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, req)
			if rec.Code != http.StatusCreated {
				errs <- fmt.Sprintf("import: %d %s", rec.Code, rec.Body)
				return
			}
			var meta store.ModelMeta
			json.Unmarshal(rec.Body.Bytes(), &meta)
			req = httptest.NewRequest(http.MethodDelete, fmt.Sprintf("/v1/models/iris/versions/%d", meta.Version), nil)
			rec = httptest.NewRecorder()
			e.h.ServeHTTP(rec, req)
			if rec.Code != http.StatusNoContent {
				errs <- fmt.Sprintf("delete: %d %s", rec.Code, rec.Body)
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	// After the churn only version 1 is left, and latest serves it.
	var got predictResponse
	e.postJSON(t, "/v1/models/iris/predict", string(body)).JSON(t, &got)
	if got.ModelVersion != 1 {
		t.Errorf("latest after the churn is version %d, want 1", got.ModelVersion)
	}
}

// The row cap (Config.MaxPredictRows) holds on /v1 in each input form and
// on /v2 for flat and nested data: exactly the cap is served, one row more
// is a 400 naming the field, before any output is allocated.
func TestPredictRowCap(t *testing.T) {
	e := newModelEnv(t)
	tm := mustTrain(t, "classifier")
	e.putModel("iris", tm)
	const limit = 3
	h := New(Options{Config: Config{MaxPredictRows: limit}, Store: e.store, Jobs: e.jobs, Observer: e.obs}).Handler()

	row := "[5.1,3.5,1.4,0.2]"
	obj := `{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}`
	rows := func(r string, n int) string { return "[" + strings.TrimSuffix(strings.Repeat(r+",", n), ",") + "]" }
	for _, tc := range []struct {
		name, body, field string
		n                 int
	}{
		{"arrays", `{"inputs":%s}`, "inputs", 0},
		{"objects", `{"inputs":%s}`, "inputs", 1},
		{"instances", `{"instances":%s}`, "instances", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := row
			if tc.n == 1 {
				r = obj
			}
			at := doRaw(t, h, http.MethodPost, "/v1/models/iris/predict", "application/json", []byte(fmt.Sprintf(tc.body, rows(r, limit))))
			if at.Status != http.StatusOK {
				t.Fatalf("%d rows (the cap): status %d: %s", limit, at.Status, at.Body)
			}
			over := doRaw(t, h, http.MethodPost, "/v1/models/iris/predict", "application/json", []byte(fmt.Sprintf(tc.body, rows(r, limit+1))))
			if over.Status != http.StatusBadRequest {
				t.Fatalf("%d rows: status %d, want 400: %s", limit+1, over.Status, over.Body)
			}
			p := over.Problem(t)
			if len(p.Errors) == 0 || p.Errors[0].Field != tc.field || !strings.Contains(p.Errors[0].Message, "--max-predict-rows") {
				t.Fatalf("problem does not name %s and the limit: %+v", tc.field, p)
			}
		})
	}
	for _, tc := range []struct{ name, data string }{
		{"v2 flat", strings.TrimSuffix(strings.Repeat("5.1,3.5,1.4,0.2,", limit+1), ",")},
		{"v2 nested", strings.TrimPrefix(strings.TrimSuffix(rows(row, limit+1), "]"), "[")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := func(n int, data string) []byte {
				return []byte(fmt.Sprintf(`{"inputs":[{"name":"input","datatype":"FP64","shape":[%d,4],"data":[%s]}]}`, n, data))
			}
			over := doRaw(t, h, http.MethodPost, "/v2/models/iris/infer", "application/json", body(limit+1, tc.data))
			if over.Status != http.StatusBadRequest || !strings.Contains(string(over.Body), "--max-predict-rows") {
				t.Fatalf("%d rows: status %d, want 400 naming the limit: %s", limit+1, over.Status, over.Body)
			}
			at := doRaw(t, h, http.MethodPost, "/v2/models/iris/infer", "application/json",
				body(limit, strings.TrimSuffix(strings.Repeat("5.1,3.5,1.4,0.2,", limit), ",")))
			if at.Status != http.StatusOK {
				t.Fatalf("%d rows (the cap): status %d: %s", limit, at.Status, at.Body)
			}
		})
	}
}
