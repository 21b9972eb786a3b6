package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/backpropd/backpropd/internal/engine"
)

// trainShape trains, for one epoch, a regression model on two rows of
// len(names) features with the given hidden layers: a model of a shape,
// for tests of what a request costs.
func trainShape(tb testing.TB, names []string, hidden []engine.LayerConfig) *trainedModel {
	tb.Helper()
	f := len(names)
	data := engine.Data{Rows: 2, Features: f, X: make([]float64, 2*f), FeatureNames: names, Targets: []float64{0, 1}}
	for i := range data.X {
		data.X[i] = float64(i % 3)
	}
	cfg := engine.Config{
		Network:  engine.NetworkConfig{Hidden: hidden},
		Training: engine.TrainingConfig{Epochs: 1, BatchSize: 2, Optimizer: engine.OptimizerConfig{Name: "sgd", LearningRate: 0.01}},
	}.Resolve(engine.TaskRegression, false)
	tr, err := engine.NewTrainer(cfg, engine.TaskRegression, data, engine.Validation{}, engine.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	if err := tr.Run(context.Background(), nil); err != nil {
		tb.Fatal(err)
	}
	m := tr.Model()
	file, err := m.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	return &trainedModel{model: m, file: file, data: data}
}

// serveAlloc serves one request straight to h and returns the answer and
// the bytes allocated meanwhile (runtime.MemStats.TotalAlloc).
func serveAlloc(h http.Handler, path, body string) (*httptest.ResponseRecorder, uint64) {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", jsonCT)
	rec := httptest.NewRecorder()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	h.ServeHTTP(rec, req)
	runtime.ReadMemStats(&after)
	return rec, after.TotalAlloc - before.TotalAlloc
}

// TestPredictRowsCheckedBeforeAllocation: on a 1,000,000-feature model,
// bodies of 25 empty rows (87 bytes and less) used to allocate 8 MB per
// row before their 400. They must be refused allocating under 1 MB: the
// object rows' column bitset is 1,000,000 / 8 = 125 KB, the rest is the
// answer. A /v2 shape claiming a million values in a body of a few bytes
// is refused in the same budget.
func TestPredictRowsCheckedBeforeAllocation(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a 1,000,000-feature model")
	}
	const features = 1_000_000
	names := make([]string, features)
	for i := range names {
		names[i] = "f" + strconv.Itoa(i)
	}
	e := newModelEnv(t)
	e.putModel("wide", trainShape(t, names, []engine.LayerConfig{}))
	h := e.srv.Handler()
	// Load the model into the cache, so that its decoding is not counted.
	if rec, _ := serveAlloc(h, "/v1/models/wide/predict", `{"inputs":[[]]}`); rec.Code != http.StatusBadRequest {
		t.Fatalf("warm-up: %d %s", rec.Code, rec.Body)
	}
	const limit = 1 << 20
	for _, tc := range []struct{ name, path, body, want string }{
		{"25 empty arrays", "/v1/models/wide/predict", `{"inputs":[` + strings.Repeat(`[],`, 24) + `[]]}`, "inputs[0]: has 0 values"},
		{"25 empty objects", "/v1/models/wide/predict", `{"inputs":[` + strings.Repeat(`{},`, 24) + `{}]}`, "inputs[0].f0: missing"},
		{"25 short objects", "/v1/models/wide/predict", `{"inputs":[` + strings.Repeat(`{"f1":1},`, 24) + `{"f1":1}]}`, "inputs[0].f0: missing"},
		{"v2 shape of a million, no data", "/v2/models/wide/infer", `{"inputs":[{"name":"input","shape":[1,1000000],"datatype":"FP64","data":[]}]}`, "more elements than the data can hold"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, got := serveAlloc(h, tc.path, tc.body)
			if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), tc.want) {
				t.Fatalf("%d %.300s, want 400 naming %q", rec.Code, rec.Body, tc.want)
			}
			t.Logf("%d-byte body refused allocating %d bytes", len(tc.body), got)
			if got > limit {
				t.Errorf("refusing a %d-byte body allocated %d bytes, want at most %d", len(tc.body), got, limit)
			}
		})
	}
}

// TestPredictErrorsStopAtTheCap: a model whose first feature name is 256
// bytes, the longest allowed, and an object row of 100,000 unknown keys
// (about 1.2 MB). The answer lists 20 problems and stops reading; before,
// every key, past the cap too, built a message holding the feature names.
// Bound: reading the body into a growing buffer costs up to twice its
// size; everything else must fit in 256 KB more.
func TestPredictErrorsStopAtTheCap(t *testing.T) {
	long := strings.Repeat("n", engine.MaxNameBytes)
	e := newModelEnv(t)
	e.putModel("named", trainShape(t, []string{long, "b"}, []engine.LayerConfig{{Units: 2, Activation: engine.Tanh}}))
	h := e.srv.Handler()
	if rec, _ := serveAlloc(h, "/v1/models/named/predict", `{"inputs":[[1,2]]}`); rec.Code != http.StatusOK {
		t.Fatalf("warm-up: %d %s", rec.Code, rec.Body)
	}
	body := `{"inputs":[{` + unknownKeys(100_000) + `}]}`
	rec, got := serveAlloc(h, "/v1/models/named/predict", body)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("%d %.300s, want 400", rec.Code, rec.Body)
	}
	t.Logf("%d-byte body of unknown keys refused allocating %d bytes", len(body), got)
	if limit := uint64(2*len(body) + 256<<10); got > limit {
		t.Errorf("a %d-byte body of unknown keys allocated %d bytes, want at most %d", len(body), got, limit)
	}
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Errors) != maxFieldErrors || !strings.Contains(p.Detail, "reading stops after 20") {
		t.Errorf("%d errors, detail %.200q; want %d and the cut named", len(p.Errors), p.Detail, maxFieldErrors)
	}
	// Each message names the features, the long one as a 40-byte prefix.
	if n := rec.Body.Len(); n > 16<<10 {
		t.Errorf("answer of %d bytes, want at most 16 KiB", n)
	}
	if strings.Contains(rec.Body.String(), long) {
		t.Errorf("the answer quotes the 256-byte name whole")
	}
}

// fakeReserver is a memory budget of free bytes.
type fakeReserver struct {
	mu       sync.Mutex
	free     int64
	asked    []int64
	released int
}

func (f *fakeReserver) TryReserve(n int64) (func(), bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, n)
	if n > f.free {
		return nil, false
	}
	f.free -= n
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.free += n
		f.released++
	}, true
}

// TestPredictReservesMemory: with a memory budget, a prediction reserves
// Model.PredictMemory(rows) plus its inputs and outputs, rows × (features
// + outputs) × 8 bytes, and gives it back; one that does not fit is a 503
// with Retry-After saying the server is at its memory budget, on /v1 and
// /v2.
func TestPredictReservesMemory(t *testing.T) {
	tm := mustTrain(t, "classifier")
	m := tm.model
	const rows = 3
	need := m.PredictMemory(rows) + 8*rows*int64(m.Features()+m.Outputs())
	row := "[5.1,3.5,1.4,0.2]"
	v1 := `{"inputs":[` + row + "," + row + "," + row + `]}`
	v2 := `{"inputs":[{"name":"input","shape":[3,4],"datatype":"FP64","data":[` + row + "," + row + "," + row + `]}]}`
	for _, tc := range []struct {
		name, path, body string
		free             int64
		status           int
	}{
		{"v1 fits", "/v1/models/iris/predict", v1, need, http.StatusOK},
		{"v1 one byte short", "/v1/models/iris/predict", v1, need - 1, http.StatusServiceUnavailable},
		{"v2 fits", "/v2/models/iris/infer", v2, need, http.StatusOK},
		{"v2 one byte short", "/v2/models/iris/infer", v2, need - 1, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newModelEnv(t)
			e.putModel("iris", tm)
			budget := &fakeReserver{free: tc.free}
			srv := New(Options{Store: e.store, Jobs: e.jobs, Config: Config{Memory: budget}})
			res := doRaw(t, srv.Handler(), http.MethodPost, tc.path, jsonCT, []byte(tc.body))
			if res.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.Status, tc.status, res.Body)
			}
			if len(budget.asked) != 1 || budget.asked[0] != need {
				t.Errorf("reserved %v, want [%d]", budget.asked, need)
			}
			if budget.free != tc.free {
				t.Errorf("%d bytes free after the request, want all %d back", budget.free, tc.free)
			}
			if tc.status == http.StatusOK {
				if budget.released != 1 {
					t.Errorf("released %d times, want once", budget.released)
				}
				return
			}
			if got := res.Header.Get("Retry-After"); got != strconv.Itoa(memoryRetryAfter) {
				t.Errorf("Retry-After %q, want %d", got, memoryRetryAfter)
			}
			if want := fmt.Sprintf("at its memory budget: this prediction needs %d bytes", need); !strings.Contains(string(res.Body), want) {
				t.Errorf("answer %s does not say %q", res.Body, want)
			}
		})
	}
}

// TestImportParamCap: an imported file is held to the parameter cap of
// trained models; the refused one is not stored.
func TestImportParamCap(t *testing.T) {
	tm := mustTrain(t, "classifier")
	n := tm.model.NumParams()
	for _, tc := range []struct {
		name   string
		cap    int
		status int
	}{
		{"at the cap", n, http.StatusCreated},
		{"one over", n - 1, http.StatusBadRequest},
		{"no cap", -1, http.StatusCreated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newModelEnv(t)
			srv := New(Options{Store: e.store, Jobs: e.jobs, Config: Config{MaxParams: tc.cap}})
			res := doRaw(t, srv.Handler(), http.MethodPost, "/v1/models/m/versions", "application/octet-stream", tm.file)
			if res.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.Status, tc.status, res.Body)
			}
			if tc.status == http.StatusCreated {
				return
			}
			p := res.Problem(t)
			if want := fmt.Sprintf("the model has %d weights and biases; the limit is %d", n, n-1); !problemMentions(p, want) || !problemMentions(p, "body.params") {
				t.Errorf("problem %+v, want body.params: %s", p, want)
			}
			if models, err := e.store.ListModels(context.Background()); err != nil || len(models) != 0 {
				t.Errorf("models stored after the refusal: %v %v", models, err)
			}
		})
	}
}
