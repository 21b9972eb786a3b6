package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/jobs"
	"github.com/backpropd/backpropd/internal/store"
)

// modelEnv is a Server over a real store in a temporary directory, with a
// fake job manager (the model routes use only Get, for loss.svg).
type modelEnv struct {
	t     testing.TB
	dir   string
	store *store.Store
	jobs  *fakeJobs
	srv   *Server
	h     http.Handler
	obs   *countingObserver
}

func newModelEnv(t testing.TB) *modelEnv {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	fj := &fakeJobs{jobs: map[string]jobs.Job{}}
	obs := &countingObserver{}
	srv := New(Options{Store: st, Jobs: fj, Observer: obs})
	return &modelEnv{t: t, dir: dir, store: st, jobs: fj, srv: srv, h: srv.Handler(), obs: obs}
}

// call sends a request through the real router with the contract helper
// (contract_test.go), which checks the exchange against api/openapi.yaml.
// contentType "" sends none.
func (e *modelEnv) call(tb testing.TB, method, target, contentType string, body []byte) *response {
	tb.Helper()
	return doRaw(tb, e.h, method, target, contentType, body)
}

func (e *modelEnv) get(tb testing.TB, target string) *response {
	tb.Helper()
	return e.call(tb, http.MethodGet, target, "", nil)
}

func (e *modelEnv) postJSON(tb testing.TB, target string, body string) *response {
	tb.Helper()
	return e.call(tb, http.MethodPost, target, "application/json", []byte(body))
}

// putModel stores file as the next version of name, as a finished job
// would, and returns its metadata.
func (e *modelEnv) putModel(name string, tm *trainedModel) store.ModelMeta {
	e.t.Helper()
	meta := importedMeta(name, tm.model)
	meta.Imported = false
	got, err := e.store.PutModel(context.Background(), meta, tm.file)
	if err != nil {
		e.t.Fatalf("PutModel: %v", err)
	}
	return got
}

// countingObserver records ObservePrediction and ModelDeleted calls.
type countingObserver struct {
	mu      sync.Mutex
	calls   int
	rows    int
	model   string
	deleted []string
}

func (o *countingObserver) ModelDeleted(model string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.deleted = append(o.deleted, model)
}

func (o *countingObserver) ObservePrediction(model string, rows int, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls++
	o.rows += rows
	o.model = model
}

// fakeJobs serves fixed job snapshots.
type fakeJobs struct {
	mu   sync.Mutex
	jobs map[string]jobs.Job
}

func (f *fakeJobs) set(j jobs.Job) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobs[j.ID] = j
}

func (f *fakeJobs) Get(_ context.Context, id string) (jobs.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[id]
	if !ok {
		return jobs.Job{}, jobs.ErrNotFound
	}
	return j, nil
}

var errNotInFake = errors.New("not implemented by fakeJobs")

func (f *fakeJobs) Submit(context.Context, jobs.Spec) (jobs.Job, error) {
	return jobs.Job{}, errNotInFake
}
func (f *fakeJobs) List(context.Context, jobs.ListFilter) ([]jobs.Job, string, error) {
	return nil, "", errNotInFake
}
func (f *fakeJobs) Cancel(context.Context, string) (jobs.Job, error) { return jobs.Job{}, errNotInFake }
func (f *fakeJobs) Stop(context.Context, string) (jobs.Job, error)   { return jobs.Job{}, errNotInFake }
func (f *fakeJobs) Delete(context.Context, string) error             { return errNotInFake }
func (f *fakeJobs) DeleteDataset(context.Context, string) error      { return errNotInFake }
func (f *fakeJobs) Subscribe(string) (<-chan jobs.Event, func(), error) {
	return nil, func() {}, errNotInFake
}

// trainedModel is a model trained by the engine for these tests, with its
// encoded file.
type trainedModel struct {
	model *engine.Model
	file  []byte
	data  engine.Data
}

// irisFeatures are the feature names of the synthetic classifier data.
var irisFeatures = []string{"sepal_length", "sepal_width", "petal_length", "petal_width"}

// blobs is a synthetic three-class data set shaped like iris: three
// Gaussian clusters in four dimensions, well apart, from a fixed seed.
func blobs(rows int) engine.Data {
	rng := rand.New(rand.NewPCG(1, 2))
	classes := []string{"setosa", "versicolor", "virginica"}
	centers := [][]float64{{5.0, 3.4, 1.5, 0.2}, {5.9, 2.8, 4.3, 1.3}, {6.6, 3.0, 5.6, 2.0}}
	d := engine.Data{Rows: rows, Features: 4, FeatureNames: irisFeatures}
	for i := range rows {
		c := i % 3
		for j := range 4 {
			d.X = append(d.X, centers[c][j]+0.2*rng.NormFloat64())
		}
		d.Labels = append(d.Labels, classes[c])
	}
	return d
}

// linear is a synthetic regression set: y0 = 2a - b + 0.5, and with two
// targets also y1 = a + b.
func linear(rows, targets int) engine.Data {
	rng := rand.New(rand.NewPCG(3, 4))
	d := engine.Data{Rows: rows, Features: 2, FeatureNames: []string{"a", "b"}}
	d.TargetNames = []string{"y0", "y1"}[:targets]
	for range rows {
		a, b := rng.Float64()*2-1, rng.Float64()*2-1
		d.X = append(d.X, a, b)
		d.Targets = append(d.Targets, 2*a-b+0.5)
		if targets == 2 {
			d.Targets = append(d.Targets, a+b)
		}
	}
	return d
}

// twoClasses turns blobs into a binary problem, setosa or not: with string
// labels ("no", "yes"), or, multiLabel, as two 0/1 target columns
// (is_setosa, is_virginica), a multi-label problem.
func twoClasses(d engine.Data, multiLabel bool) engine.Data {
	labels := d.Labels
	d.Labels = nil
	if multiLabel {
		d.TargetNames = []string{"is_setosa", "is_virginica"}
		for _, l := range labels {
			d.Targets = append(d.Targets, b2f(l == "setosa"), b2f(l == "virginica"))
		}
		return d
	}
	for _, l := range labels {
		if l == "setosa" {
			d.Labels = append(d.Labels, "yes")
		} else {
			d.Labels = append(d.Labels, "no")
		}
	}
	return d
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var (
	trainOnce  sync.Map // name → *trainOnceEntry
	trainMutex sync.Mutex
)

type trainOnceEntry struct {
	once sync.Once
	tm   *trainedModel
	err  error
}

// mustTrain trains (once per test binary, per kind) a tiny model directly
// with the engine: "classifier" (3 classes), "regressor" (1 output) or
// "multi" (2 outputs).
func mustTrain(tb testing.TB, kind string) *trainedModel {
	tb.Helper()
	v, _ := trainOnce.LoadOrStore(kind, &trainOnceEntry{})
	e := v.(*trainOnceEntry)
	e.once.Do(func() { e.tm, e.err = train(kind) })
	if e.err != nil {
		tb.Fatalf("train %s: %v", kind, e.err)
	}
	return e.tm
}

func train(kind string) (*trainedModel, error) {
	var (
		data engine.Data
		task engine.Task
	)
	switch kind {
	case "classifier":
		data, task = blobs(60), engine.TaskMulticlass
	case "regressor":
		data, task = linear(40, 1), engine.TaskRegression
	case "multi":
		data, task = linear(40, 2), engine.TaskRegression
	case "binary":
		data, task = twoClasses(blobs(60), false), engine.TaskBinary
	case "multilabel":
		data, task = twoClasses(blobs(60), true), engine.TaskBinary
	case "typed":
		data, task = penguinsLike(90), engine.TaskMulticlass
	case "inputcol":
		data, task = linear(40, 1), engine.TaskRegression
		data.FeatureNames = []string{"input", "b"}
	default:
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	cfg := engine.Config{
		Network:  engine.NetworkConfig{Hidden: []engine.LayerConfig{{Units: 8, Activation: engine.Tanh}}},
		Training: engine.TrainingConfig{Epochs: 20, BatchSize: 8, Optimizer: engine.OptimizerConfig{Name: "adam", LearningRate: 0.05}},
	}
	cfg = cfg.Resolve(task, false)
	tr, err := engine.NewTrainer(cfg, task, data, engine.Validation{}, engine.Options{})
	if err != nil {
		return nil, err
	}
	if err := tr.Run(context.Background(), nil); err != nil {
		return nil, err
	}
	m := tr.Model()
	file, err := m.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &trainedModel{model: m, file: file, data: data}, nil
}

func TestModelRoutes(t *testing.T) {
	e := newModelEnv(t)
	t.Run("empty list", func(t *testing.T) {
		res := e.get(t, "/v1/models")
		if res.Status != http.StatusOK || strings.TrimSpace(string(res.Body)) != `{"models":[]}` {
			t.Errorf("%d %s, want 200 {\"models\":[]}", res.Status, res.Body)
		}
	})
	tm := mustTrain(t, "classifier")
	v1 := e.putModel("iris", tm)
	v2 := e.putModel("iris", tm)
	e.putModel("other", mustTrain(t, "regressor"))

	t.Run("list", func(t *testing.T) {
		res := e.get(t, "/v1/models")
		if res.Status != http.StatusOK {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		var got modelList
		res.JSON(t, &got)
		want := []store.ModelName{
			{Name: "iris", LatestVersion: v2.Version, Versions: []int{v1.Version, v2.Version}},
			{Name: "other", LatestVersion: 1, Versions: []int{1}},
		}
		if fmt.Sprint(got.Models) != fmt.Sprint(want) {
			t.Errorf("models = %+v, want %+v", got.Models, want)
		}
	})
	t.Run("latest", func(t *testing.T) {
		res := e.get(t, "/v1/models/iris")
		if res.Status != http.StatusOK {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		var got store.ModelMeta
		res.JSON(t, &got)
		if got.Version != v2.Version || got.Task != "multiclass" || !slices.Equal(got.FeatureNames, irisFeatures) ||
			len(got.Classes) != 3 || got.Outputs != 3 {
			t.Errorf("meta = %+v", got)
		}
	})
	t.Run("version", func(t *testing.T) {
		res := e.get(t, fmt.Sprintf("/v1/models/iris/versions/%d", v1.Version))
		var got store.ModelMeta
		res.JSON(t, &got)
		if res.Status != http.StatusOK || got.Version != v1.Version {
			t.Errorf("status %d, version %d, want 200, %d", res.Status, got.Version, v1.Version)
		}
	})
	t.Run("file", func(t *testing.T) {
		res := e.get(t, fmt.Sprintf("/v1/models/iris/versions/%d/file", v1.Version))
		if res.Status != http.StatusOK {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		if !bytes.Equal(res.Body, tm.file) {
			t.Errorf("file differs from the stored model (%d vs %d bytes)", len(res.Body), len(tm.file))
		}
		if ct := res.Header.Get("Content-Type"); ct != "application/octet-stream" {
			t.Errorf("Content-Type = %q", ct)
		}
		if cd := res.Header.Get("Content-Disposition"); cd != `attachment; filename=iris-v1.model` {
			t.Errorf("Content-Disposition = %q", cd)
		}
	})
	for _, tc := range []struct {
		name, method, target string
		status               int
	}{
		{"unknown model", http.MethodGet, "/v1/models/nope", http.StatusNotFound},
		{"unknown version", http.MethodGet, "/v1/models/iris/versions/99", http.StatusNotFound},
		{"file of unknown version", http.MethodGet, "/v1/models/iris/versions/99/file", http.StatusNotFound},
		{"delete unknown model", http.MethodDelete, "/v1/models/nope", http.StatusNotFound},
		{"delete unknown version", http.MethodDelete, "/v1/models/iris/versions/99", http.StatusNotFound},
		{"wrong method", http.MethodPut, "/v1/models/iris", http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.call(t, tc.method, tc.target, "", nil)
			if res.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.Status, tc.status, res.Body)
			}
			if p := res.Problem(t); p.Status != tc.status || p.Detail == "" {
				t.Errorf("problem = %+v", p)
			}
		})
	}
	t.Run("delete version", func(t *testing.T) {
		// Warm the cache, so the test shows that delete invalidates it.
		if res := e.postJSON(t, fmt.Sprintf("/v1/models/iris/versions/%d/predict", v2.Version),
			`{"inputs":[[5,3.4,1.5,0.2]]}`); res.Status != http.StatusOK {
			t.Fatalf("predict: %d %s", res.Status, res.Body)
		}
		res := e.call(t, http.MethodDelete, fmt.Sprintf("/v1/models/iris/versions/%d", v2.Version), "", nil)
		if res.Status != http.StatusNoContent {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		if res := e.postJSON(t, fmt.Sprintf("/v1/models/iris/versions/%d/predict", v2.Version),
			`{"inputs":[[5,3.4,1.5,0.2]]}`); res.Status != http.StatusNotFound {
			t.Errorf("predict with the deleted version: status %d, want 404 (stale cache?)", res.Status)
		}
		var got store.ModelMeta
		e.get(t, "/v1/models/iris").JSON(t, &got)
		if got.Version != v1.Version {
			t.Errorf("latest after deleting v%d is v%d, want v%d", v2.Version, got.Version, v1.Version)
		}
	})
	t.Run("delete model", func(t *testing.T) {
		if res := e.postJSON(t, "/v1/models/iris/predict", `{"inputs":[[5,3.4,1.5,0.2]]}`); res.Status != http.StatusOK {
			t.Fatalf("predict: %d %s", res.Status, res.Body)
		}
		res := e.call(t, http.MethodDelete, "/v1/models/iris", "", nil)
		if res.Status != http.StatusNoContent {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		for _, target := range []string{"/v1/models/iris/predict", "/v1/models/iris/versions/1/predict"} {
			if res := e.postJSON(t, target, `{"inputs":[[5,3.4,1.5,0.2]]}`); res.Status != http.StatusNotFound {
				t.Errorf("%s after delete: status %d, want 404", target, res.Status)
			}
		}
		if e.srv.models.len() != 0 {
			t.Errorf("cache holds %d entries after deleting the only cached model", e.srv.models.len())
		}
	})
}

// pathAttacks are path parameters that must never reach the store as a
// path: traversal, encoded and double-encoded separators, backslashes, NUL,
// over-long and otherwise malformed names.
var pathAttacks = []struct {
	name, segment string
}{
	{"dot dot", ".."},
	{"dot", "."},
	{"encoded slash", "..%2f..%2fetc"},
	{"encoded slash upper", "..%2F..%2Fetc"},
	{"double encoded dots", "%252e%252e"},
	{"double encoded slash", "..%252f"},
	{"backslash", "..%5c..%5cwindows"},
	{"raw backslash", `a\b`},
	{"nul", "iris%00"},
	{"space", "ir%20is"},
	{"upper case", "Iris"},
	{"leading dash", "-iris"},
	{"leading dot", ".iris"},
	{"over long", strings.Repeat("a", 65)},
	{"unicode", "%c3%a9t%c3%a9"},
	{"percent", "100%25"},
}

func TestModelPathAttacks(t *testing.T) {
	e := newModelEnv(t)
	e.putModel("iris", mustTrain(t, "classifier"))
	before := snapshotDir(t, e.dir)
	predictBody := `{"inputs":[[5,3.4,1.5,0.2]]}`

	for _, a := range pathAttacks {
		for _, route := range []struct {
			method, format, body string
		}{
			{http.MethodGet, "/v1/models/%s", ""},
			{http.MethodDelete, "/v1/models/%s", ""},
			{http.MethodGet, "/v1/models/%s/versions/1", ""},
			{http.MethodGet, "/v1/models/%s/versions/1/file", ""},
			{http.MethodDelete, "/v1/models/%s/versions/1", ""},
			{http.MethodPost, "/v1/models/%s/predict", predictBody},
			{http.MethodPost, "/v1/models/%s/versions/1/predict", predictBody},
			{http.MethodPost, "/v1/models/%s/versions", ""},
		} {
			target := fmt.Sprintf(route.format, a.segment)
			t.Run(a.name+" "+route.method+" "+route.format, func(t *testing.T) {
				ct := "application/json"
				if strings.HasSuffix(route.format, "/versions") {
					ct = "application/octet-stream"
				}
				res := e.call(t, route.method, target, ct, []byte(route.body))
				if res.Status != http.StatusBadRequest {
					t.Fatalf("status %d, want 400: %s", res.Status, res.Body)
				}
				p := res.Problem(t)
				if len(p.Errors) != 1 || p.Errors[0].Field != "path.name" {
					t.Errorf("errors = %+v, want one naming path.name", p.Errors)
				}
			})
		}
	}
	for _, v := range []string{"0", "-1", "+1", "01", "1a", "1.0", "1e3", "0x1", "%201", "1%00",
		"..", "..%2f1", "9999999999", "%c2%b2"} {
		for _, format := range []string{"/v1/models/iris/versions/%s", "/v1/models/iris/versions/%s/file",
			"/v1/models/iris/versions/%s/predict"} {
			target := fmt.Sprintf(format, v)
			t.Run("version "+v+" "+format, func(t *testing.T) {
				method := http.MethodGet
				body := ""
				if strings.HasSuffix(format, "/predict") {
					method, body = http.MethodPost, predictBody
				}
				res := e.call(t, method, target, "application/json", []byte(body))
				if res.Status != http.StatusBadRequest {
					t.Fatalf("status %d, want 400: %s", res.Status, res.Body)
				}
				if p := res.Problem(t); len(p.Errors) != 1 || p.Errors[0].Field != "path.version" {
					t.Errorf("errors = %+v, want one naming path.version", p.Errors)
				}
			})
		}
	}
	// The same on /v2, where errors are the protocol's {"error": ...}.
	inferBody := `{"inputs":[{"name":"input","datatype":"FP64","shape":[1,4],"data":[5,3.4,1.5,0.2]}]}`
	for _, a := range pathAttacks {
		for _, route := range []struct{ method, format, body string }{
			{http.MethodGet, "/v2/models/%s", ""},
			{http.MethodGet, "/v2/models/%s/ready", ""},
			{http.MethodPost, "/v2/models/%s/infer", inferBody},
			{http.MethodGet, "/v2/models/%s/versions/1", ""},
			{http.MethodPost, "/v2/models/%s/versions/1/infer", inferBody},
			{http.MethodPost, "/v2/models/iris/versions/%s/infer", inferBody},
		} {
			target := fmt.Sprintf(route.format, a.segment)
			param := "path.name"
			if strings.Contains(route.format, "versions/%s") {
				param = "path.version"
			}
			t.Run("v2 "+a.name+" "+route.method+" "+route.format, func(t *testing.T) {
				res := e.call(t, route.method, target, "application/json", []byte(route.body))
				if msg := v2ErrorOf(t, res, http.StatusBadRequest); !strings.HasPrefix(msg, param+": ") {
					t.Errorf("error %q does not name %s", msg, param)
				}
			})
		}
	}
	if after := snapshotDir(t, e.dir); !maps.Equal(before, after) {
		t.Errorf("the data directory changed under path attacks")
	}
}

func TestImportModel(t *testing.T) {
	tm := mustTrain(t, "classifier")
	t.Run("valid", func(t *testing.T) {
		e := newModelEnv(t)
		e.putModel("iris", tm)                                                     // the import becomes version 2
		e.postJSON(t, "/v1/models/iris/predict", `{"inputs":[[6.6,3.0,5.6,2.0]]}`) // resolves latest to 1
		res := e.call(t, http.MethodPost, "/v1/models/iris/versions", "application/octet-stream", tm.file)
		if res.Status != http.StatusCreated {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		var meta store.ModelMeta
		res.JSON(t, &meta)
		if loc := res.Header.Get("Location"); loc != "/v1/models/iris/versions/2" {
			t.Errorf("Location = %q", loc)
		}
		if meta.Version != 2 || !meta.Imported || meta.Task != "multiclass" || meta.Outputs != 3 ||
			!slices.Equal(meta.Classes, tm.model.Classes()) || !slices.Equal(meta.FeatureNames, irisFeatures) {
			t.Errorf("meta = %+v", meta)
		}
		if _, ok := meta.Metrics["loss"]; !ok {
			t.Errorf("metrics %v lack the training loss from the file's summary", meta.Metrics)
		}
		// The answer is GET's body for the new version: inputs, target,
		// encoded width and precision included.
		var imported, got map[string]any
		res.JSON(t, &imported)
		e.call(t, http.MethodGet, "/v1/models/iris/versions/2", "", nil).JSON(t, &got)
		if !reflect.DeepEqual(imported, got) {
			t.Errorf("import answered\n%v\nGET of the version answers\n%v", imported, got)
		}
		if imported["inputs"] == nil || imported["precision"] == nil {
			t.Errorf("import answer lacks inputs or precision: %v", imported)
		}
		// "latest" moves to the import at once, even just after a predict
		// resolved it to version 1.
		var latest predictResponse
		e.postJSON(t, "/v1/models/iris/predict", `{"inputs":[[6.6,3.0,5.6,2.0]]}`).JSON(t, &latest)
		if latest.ModelVersion != 2 {
			t.Errorf("latest after the import is version %d, want 2", latest.ModelVersion)
		}
		// The imported version predicts what the original does.
		body := `{"inputs":[[6.6,3.0,5.6,2.0]]}`
		a := e.postJSON(t, "/v1/models/iris/versions/1/predict", body)
		b := e.postJSON(t, "/v1/models/iris/versions/2/predict", body)
		if a.Status != 200 || b.Status != 200 || !bytes.Equal(
			bytes.Replace(a.Body, []byte(`"model_version":1`), nil, 1),
			bytes.Replace(b.Body, []byte(`"model_version":2`), nil, 1)) {
			t.Errorf("imported model predicts differently:\n%s\n%s", a.Body, b.Body)
		}
	})
	corrupt := bytes.Clone(tm.file)
	corrupt[len(corrupt)/2] ^= 0xff
	for _, tc := range []struct {
		name, contentType string
		body              []byte
		status            int
	}{
		{"garbage", "application/octet-stream", []byte("this is not a model"), http.StatusBadRequest},
		{"empty", "application/octet-stream", nil, http.StatusBadRequest},
		{"truncated", "application/octet-stream", tm.file[:len(tm.file)/2], http.StatusBadRequest},
		{"bit flipped", "application/octet-stream", corrupt, http.StatusBadRequest},
		{"json", "application/octet-stream", []byte(`{"weights":[1,2,3]}`), http.StatusBadRequest},
		{"wrong content type", "application/json", tm.file, http.StatusUnsupportedMediaType},
		{"no content type", "", tm.file, http.StatusUnsupportedMediaType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newModelEnv(t)
			e.putModel("iris", tm)
			before := snapshotDir(t, e.dir)
			res := e.call(t, http.MethodPost, "/v1/models/iris/versions", tc.contentType, tc.body)
			if res.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.Status, tc.status, res.Body)
			}
			p := res.Problem(t)
			if tc.status == http.StatusBadRequest && (len(p.Errors) != 1 || p.Errors[0].Field != "body") {
				t.Errorf("errors = %+v, want one naming body", p.Errors)
			}
			if after := snapshotDir(t, e.dir); !maps.Equal(before, after) {
				t.Errorf("a rejected import changed the data directory")
			}
		})
	}
	t.Run("over the upload limit", func(t *testing.T) {
		e := newModelEnv(t)
		srv := New(Options{Store: e.store, Jobs: e.jobs, Config: Config{MaxUploadBytes: int64(len(tm.file) - 1)}})
		e.h = srv.Handler()
		res := e.call(t, http.MethodPost, "/v1/models/iris/versions", "application/octet-stream", tm.file)
		if res.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413: %s", res.Status, res.Body)
		}
		if _, err := e.store.ModelMeta(context.Background(), "iris", 0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after a 413, ModelMeta = %v, want not found", err)
		}
	})
}
