package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/allocbound"
	"github.com/backpropd/backpropd/internal/jobs"
	"github.com/backpropd/backpropd/internal/store"
)

// Fuzz targets that send arbitrary bodies through the real router and
// handlers, seeded with their own cases and the hostile-input table's. FuzzPredictRequest (predict_test.go) and FuzzJobRequest
// (fuzz_test.go) fuzz the decoders directly; these add the handler's view: whatever the body, the
// answer is a 2xx or a 4xx that names the problem, never a 5xx, and the
// request allocates a bounded amount.

// requestBound is the most one request, or one decode of a request body,
// may allocate for a body of n bytes: linear in n, which is what matters
// (a decoder that trusted a size from the input, a shape of [1e9, 4],
// would want 32 GB). The factor is measured, not derived: a classifier's
// /v1 answer is about 7.5 times its body ("[0,0,0,0]," becomes a label and
// three probabilities), buffers grow by doubling and the recorder copies
// the answer, so a 1 MiB predict body of 4-feature rows allocated 69 bytes
// per body byte here. 128 per byte plus 4 MiB for fixed costs leaves room
// without hiding a superlinear decoder.
var requestBound = allocbound.Bound{PerByte: 128, Fixed: 4 << 20}

// serveBounded sends one request through h, fails t if it allocated more
// than requestBound, and returns the recorder. The servers the fuzz
// targets build start no goroutine that allocates while a request runs
// (no listener, no job worker that has work), so the process-wide count
// is the request's own; a request over the bound is sent again to confirm
// it (allocbound.Check), so an upload then creates a second dataset.
func serveBounded(t testing.TB, h http.Handler, method, target, contentType string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	var rec *httptest.ResponseRecorder
	allocbound.Check(t, method+" "+target, len(body), requestBound, func() {
		req := httptest.NewRequest(method, target, bytes.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
	})
	return rec
}

// checkProblem fails unless rec is a 4xx application/problem+json whose
// detail is not empty and whose status field matches.
func checkProblem(t *testing.T, rec *httptest.ResponseRecorder, body []byte) {
	t.Helper()
	if rec.Code >= 500 || rec.Code < 400 {
		t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d with Content-Type %q, want application/problem+json", rec.Code, ct)
	}
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != rec.Code || p.Detail == "" {
		t.Fatalf("problem %s (err %v) does not state status %d and a detail", rec.Body, err, rec.Code)
	}
}

// reencodeStable decodes body strictly into a fresh *T, and if that works,
// checks that encoding the value and decoding it again gives a value that
// encodes to the same bytes: what the server understood is what it would
// say back. Raw JSON fields (inline targets, tensor data) are compared
// after encoding/json compacts them.
func reencodeStable[T any](t *testing.T, body []byte) {
	t.Helper()
	var first T
	if decodeStrict(body, &first) != nil {
		return
	}
	b1, err := json.Marshal(&first)
	if err != nil {
		t.Fatalf("encode the decoded request: %v", err)
	}
	var second T
	if err := decodeStrict(b1, &second); err != nil {
		t.Fatalf("the re-encoded request %s does not decode: %v", b1, err)
	}
	b2, err := json.Marshal(&second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1, b2) {
		t.Fatalf("decode -> encode -> decode changed the request:\n%s\n%s", b1, b2)
	}
}

// hostileSeeds returns the bodies that the hostile-input table
// (hardening_test.go) sends with method to path, "{model}" read as the
// fuzz servers' model iris, as seeds for the handler fuzz targets. The
// iris dataset's id "{ds}" becomes "@", which FuzzJobHandler replaces
// with its own dataset's.
func hostileSeeds(method, path string) [][]byte {
	var out [][]byte
	for _, h := range hostileInputs {
		if h.method == method && strings.ReplaceAll(h.path, "{model}", "iris") == path {
			out = append(out, []byte(strings.ReplaceAll(h.body, "{ds}", "@")))
		}
	}
	return out
}

// resolveOnly is the real job manager's validation without the queue:
// Submit resolves the spec exactly as Manager.Submit does, then answers
// ErrQueueFull so that nothing is queued and the handler cleans up any
// inline dataset, as it must for a refused job.
type resolveOnly struct {
	*jobs.Manager
}

func (r resolveOnly) Submit(ctx context.Context, s jobs.Spec) (jobs.Job, error) {
	if _, err := r.Resolve(ctx, s); err != nil {
		return jobs.Job{}, err
	}
	return jobs.Job{}, jobs.ErrQueueFull
}

// FuzzJobHandler posts arbitrary bodies to POST /v1/jobs through the real
// router, decoder and job manager validation (the manager's Resolve, over
// a real store holding one dataset, whose id replaces "@" in the body).
// Properties: every answer is 429 (the spec was valid) or a 4xx
// problem naming what is wrong; no inline dataset is left behind; the
// request allocates at most requestBound; and the decoded request
// re-encodes stably. FuzzResolve (internal/jobs) checks that a resolved
// spec resolves to itself.
func FuzzJobHandler(f *testing.F) {
	for _, s := range []string{
		`{"model_name":"m","dataset_id":"@"}`,
		`{"model_name":"m","dataset_id":"@","validation":{"fraction":0.2},"network":{"hidden":[{"units":8,"activation":"relu"}],"output_activation":"softmax","loss":"cross_entropy"},"training":{"epochs":3,"batch_size":16,"optimizer":{"name":"adam","learning_rate":0.01}}}`,
		`{"model_name":"m","data":{"features":[[1],[2],[3]],"targets":[1,2,3]},"network":{"loss":"mse"}}`,
		`{"model_name":"m","dataset_id":"@","network":{"hidden":[{"units":8,"activation":"softmax"}]}}`,
		`{"model_name":"m","dataset_id":"@","network":{"hidden":[{"units":100000},{"units":100000}]}}`,
		`{"model_name":"m","dataset_id":"@","training":{"epochs":-1,"batch_size":0,"optimizer":{"name":"adamw","learning_rate":1e999}}}`,
		`{"model_name":"m","dataset_id":"@","training":{"early_stopping":{"patience":2}}}`,
		`{"model_name":"M/../x","dataset_id":"../../etc"}`,
		`{"model_name":"m","dataset_id":"@","validation":{"fraction":1}}`,
		`{"model_name":"m","data":{"features":[[1]],"targets":["a"]},"dataset_id":"@"}`,
		`{"model_name":"m","dataset_id":"@"} x`,
		`{"model_name":"m","dataset_id":"@","network":{"hidden":[{"units":3,"activaton":"relu"}]}}`,
		`[` + strings.Repeat(`[`, 200) + strings.Repeat(`]`, 200) + `]`,
	} {
		f.Add([]byte(s))
	}
	for _, b := range hostileSeeds(http.MethodPost, "/v1/jobs") {
		f.Add(b)
	}
	dir := f.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	m, err := jobs.New(st, jobs.Options{Workers: 1, QueueSize: 1})
	if err != nil {
		f.Fatal(err)
	}
	srv := New(Options{Store: st, Jobs: resolveOnly{m}})
	h := srv.Handler()
	rec := serveBounded(f, h, http.MethodPost, "/v1/datasets?name=iris&target=species", "text/csv", readIris(f))
	if rec.Code != http.StatusCreated {
		f.Fatalf("upload iris: %d %s", rec.Code, rec.Body)
	}
	var ds store.DatasetMeta
	if err := json.Unmarshal(rec.Body.Bytes(), &ds); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		body = bytes.ReplaceAll(body, []byte(`"@"`), []byte(`"`+ds.ID+`"`))
		rec := serveBounded(t, h, http.MethodPost, "/v1/jobs", "application/json", body)
		checkProblem(t, rec, body)
		if rec.Code == http.StatusTooManyRequests {
			if rec.Header().Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		}
		list, err := st.ListDatasets(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 {
			t.Fatalf("%d datasets after a refused job, want only the uploaded one: %+v", len(list), list)
		}
		reencodeStable[jobRequest](t, body)
	})
}

// fuzzModelEnv is a server holding a trained four-feature classifier named
// iris, with its model already in the cache, so that a fuzz input measures
// only its own request.
func fuzzModelEnv(f *testing.F) http.Handler {
	e := newModelEnv(f)
	e.putModel("iris", mustTrain(f, "classifier"))
	e.putModel("typed", mustTrain(f, "typed"))
	for _, warm := range []struct{ path, body string }{
		{"/v1/models/iris/predict", `{"inputs":[[5.1,3.5,1.4,0.2]]}`},
		{"/v1/models/typed/predict", `{"inputs":[["Dream",45,"2008-03-01",0]]}`},
	} {
		rec := serveBounded(f, e.h, http.MethodPost, warm.path, "application/json", []byte(warm.body))
		if rec.Code != http.StatusOK {
			f.Fatalf("warm-up prediction %s: %d %s", warm.path, rec.Code, rec.Body)
		}
	}
	return e.h
}

// typedPredictSeeds are bodies for the typed model of fuzzModelEnv
// (island, bill_length_mm, date, input; penguinsLike): raw object and
// array rows, missing cells, unseen levels and cells of the wrong type.
var typedPredictSeeds = []string{
	`{"inputs":[{"island":"Dream","bill_length_mm":45.1,"date":"2008-03-01","input":0}]}`,
	`{"inputs":[["Biscoe",null,"2009-07-14T10:30:00Z",1],[null,null,null,null]]}`,
	`{"instances":[{"island":"Atlantis"},{}]}`,
	`{"inputs":[{"island":true,"bill_length_mm":1e308,"input":-1e308}]}`,
	`{"inputs":[{"bill_length_mm":"45"}]}`,
	`{"inputs":[{"date":20080301}]}`,
	`{"inputs":[{"date":"2008-02-30"}]}`,
	`{"inputs":[{"island":["Dream"]}]}`,
	`{"inputs":[{"species":"Adelie","flipper":1}]}`,
	`{"inputs":[["Dream",45]]}`,
	`{"inputs":[7,"x",null]}`,
}

// typedV2Seeds are /v2 bodies for the same model: one tensor per column,
// with nulls, wrong datatypes, shapes and the 2-D matrix it does not take.
var typedV2Seeds = []string{
	`{"inputs":[{"name":"island","shape":[2],"datatype":"BYTES","data":["Dream",null]},{"name":"bill_length_mm","shape":[2],"datatype":"FP64","data":[45,null]},{"name":"date","shape":[2],"datatype":"BYTES","data":["2008-03-01","2009-07-14 10:30:00"]},{"name":"input","shape":[2],"datatype":"INT8","data":[0,1]}]}`,
	`{"inputs":[{"name":"island","shape":[1],"datatype":"FP64","data":[1]}]}`,
	`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]}]}`,
	`{"inputs":[{"name":"island","shape":[1000000000],"datatype":"BYTES","data":["Dream"]}]}`,
	`{"inputs":[{"name":"island","shape":[1],"datatype":"BYTES","data":[["Dream"]]},{"name":"island","shape":[1],"datatype":"BYTES","data":["x"]}]}`,
}

// hostileTypedSeeds returns the bodies the hostile-input table sends with
// method to path, "{typed}" read as the fuzz servers' typed model.
func hostileTypedSeeds(method, path string) [][]byte {
	var out [][]byte
	for _, h := range hostileInputs {
		if h.method == method && strings.ReplaceAll(h.path, "{typed}", "typed") == path {
			out = append(out, []byte(h.body))
		}
	}
	return out
}

// FuzzPredictHandler posts arbitrary bodies to POST
// /v1/models/iris/predict. Properties: 200 with one prediction per input
// row, or a 4xx problem; bounded allocation; stable re-encoding of the
// decoded request.
func FuzzPredictHandler(f *testing.F) {
	for _, s := range []string{
		`{"inputs":[[5.1,3.5,1.4,0.2]]}`,
		`{"instances":[[5.1,3.5,1.4,0.2],[6,3,5,2]]}`,
		`{"inputs":[{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}]}`,
		`{"inputs":[{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_wdth":0.2}]}`,
		`{"inputs":[[1,2,3]]}`,
		`{"inputs":[[1,2,3,4],[1,2]]}`,
		`{"inputs":[["NaN",2,3,4]]}`,
		`{"inputs":[[1e999,2,3,4]]}`,
		`{"inputs":[[1e308,1e308,1e308,1e308]]}`,
		`{"inputs":[]}`,
		`{"inputs":null}`,
		`{"inputs":[[1,2,3,4]],"inputs":[[1,2,3,4]]}`,
		"{\"inputs\":[[1,2,3,4]]}\x00",
	} {
		f.Add([]byte(s))
	}
	for _, b := range hostileSeeds(http.MethodPost, "/v1/models/iris/predict") {
		f.Add(b)
	}
	h := fuzzModelEnv(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		checkPredictAnswer(t, h, "/v1/models/iris/predict", body)
	})
}

// FuzzPredictTyped is FuzzPredictHandler for the typed model, whose rows
// hold raw cells: POST /v1/models/typed/predict.
func FuzzPredictTyped(f *testing.F) {
	for _, s := range typedPredictSeeds {
		f.Add([]byte(s))
	}
	for _, b := range hostileTypedSeeds(http.MethodPost, "/v1/models/typed/predict") {
		f.Add(b)
	}
	h := fuzzModelEnv(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		checkPredictAnswer(t, h, "/v1/models/typed/predict", body)
	})
}

// checkPredictAnswer posts body to path and checks the properties of the
// predict fuzz targets: 200 with one prediction and one probability row
// per input row, or a 4xx problem; bounded allocation; stable re-encoding
// of the decoded request.
func checkPredictAnswer(t *testing.T, h http.Handler, path string, body []byte) {
	t.Helper()
	rec := serveBounded(t, h, http.MethodPost, path, "application/json", body)
	reencodeStable[predictRequest](t, body)
	if rec.Code != http.StatusOK {
		checkProblem(t, rec, body)
		return
	}
	var res struct {
		Predictions   []json.RawMessage `json:"predictions"`
		Probabilities [][]float64       `json:"probabilities"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
		t.Fatalf("200 with a body that is not JSON: %v: %s", err, rec.Body)
	}
	if len(res.Predictions) == 0 || len(res.Probabilities) != len(res.Predictions) {
		t.Fatalf("200 with %d predictions and %d probability rows", len(res.Predictions), len(res.Probabilities))
	}
}

// FuzzV2Infer posts arbitrary bodies to POST /v2/models/iris/infer.
// Properties: 200 with an output tensor of shape [rows, 3], or a 4xx with
// the protocol's {"error": "..."} body; bounded allocation; stable
// re-encoding of the decoded request.
func FuzzV2Infer(f *testing.F) {
	for _, s := range []string{
		`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP64","data":[5.1,3.5,1.4,0.2]}]}`,
		`{"inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","data":[[5.1,3.5,1.4,0.2],[6,3,5,2]]}],"outputs":[{"name":"label"}]}`,
		`{"id":"x","inputs":[{"name":"input","shape":[1,4],"datatype":"INT8","data":[1,2,3,400]}]}`,
		`{"inputs":[{"name":"input","shape":[1000000000,4],"datatype":"FP64","data":[1,2,3,4]}]}`,
		`{"inputs":[{"name":"input","shape":[-1,4],"datatype":"FP64","data":[1,2,3,4]}]}`,
		`{"inputs":[{"name":"input","shape":[1,4],"datatype":"BYTES","data":["a","b","c","d"]}]}`,
		`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP64","data":[1,2,3]}]}`,
		`{"inputs":[{"name":"other","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]}]}`,
		`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]}],"outputs":[{"name":"nope"}]}`,
		`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]},{"name":"input","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]}]}`,
		`{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP64","data":[1,2,3,4],"parameters":{"a":{"b":[1]}}}]}`,
		`{"inputs":[]}`,
	} {
		f.Add([]byte(s))
	}
	for _, b := range hostileSeeds(http.MethodPost, "/v2/models/iris/infer") {
		f.Add(b)
	}
	h := fuzzModelEnv(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		checkV2Answer(t, h, "/v2/models/iris/infer", body)
	})
}

// FuzzV2InferTyped is FuzzV2Infer for the typed model, which takes one
// tensor per column: POST /v2/models/typed/infer.
func FuzzV2InferTyped(f *testing.F) {
	for _, s := range typedV2Seeds {
		f.Add([]byte(s))
	}
	for _, b := range hostileTypedSeeds(http.MethodPost, "/v2/models/typed/infer") {
		f.Add(b)
	}
	h := fuzzModelEnv(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		checkV2Answer(t, h, "/v2/models/typed/infer", body)
	})
}

// checkV2Answer posts body to path and checks the properties of the /v2
// fuzz targets: 200 with an output tensor of shape [rows, 3], or a 4xx
// with the protocol's {"error": "..."} body; bounded allocation; stable
// re-encoding of the decoded request.
func checkV2Answer(t *testing.T, h http.Handler, path string, body []byte) {
	t.Helper()
	rec := serveBounded(t, h, http.MethodPost, path, "application/json", body)
	reencodeStable[v2InferRequest](t, body)
	if rec.Code != http.StatusOK {
		if rec.Code < 400 || rec.Code >= 500 {
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body)
		}
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
			t.Fatalf("status %d without an error message: %s", rec.Code, rec.Body)
		}
		return
	}
	var res struct {
		Outputs []struct {
			Name  string `json:"name"`
			Shape []int  `json:"shape"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || len(res.Outputs) == 0 {
		t.Fatalf("200 with %s (err %v), want output tensors", rec.Body, err)
	}
	for _, o := range res.Outputs {
		if o.Name == "output" && (len(o.Shape) != 2 || o.Shape[0] < 1 || o.Shape[1] != 3) {
			t.Fatalf("output shape %v, want [rows, 3]", o.Shape)
		}
	}
}

// FuzzDatasetUpload posts arbitrary CSV bodies with arbitrary query
// strings to POST /v1/datasets. Properties: 201 with a dataset whose rows
// and features are positive, or a 4xx problem naming what is wrong; never
// a 5xx; bounded allocation. Created datasets are deleted again, so the
// store stays small.
func FuzzDatasetUpload(f *testing.F) {
	for _, s := range []struct{ query, body string }{
		{"name=d", "a,b,y\n1,2,p\n3,4,q\n"},
		{"name=d&target=y", "\ufeffa,y\r\n1,p\r\n2,q\r\n"},
		{"name=d&target=p,q&task=binary", "a,p,q\n1,0,1\n2,1,0\n"},
		{"name=d&task=regression", "a,y\n1,2\n3,4\n"},
		{"name=d&target=", "a,y\n1,\"x\ny\"\n2,z\n"},
		{"name=%00", "a,y\n1,p\n"},
		{"name=d&taget=y", "a,y\n1,p\n"},
		{"name=d&target=a,a", "a,y\n1,p\n"},
		{"name=d", "a,y\n1,2\n3,"},
		{"", ""},
		// Typed tables, dialects and the new parameters.
		{"name=d", "a,b,c,y\n1,red,yes,0\n,blue,no,1\nNA,red,?,0\n"},
		{"name=d", "d,t,y\n2024-01-15,2024-01-15T10:30:00Z,p\n2024-02-20,2024-02-20 08:00,q\n,,p\n"},
		{"name=d&decimal=,", "a;b;y\n1,5;x;p\n2,25;y;q\n"},
		{"name=d&header=false", "5.1,3.5,setosa\n4.9,3.0,setosa\n7.0,3.2,versicolor\n"},
		{"name=d&delimiter=tab&categorical=z&ignore=id", "id\tz\ty\n1\t02139\tp\n2\t10001\tq\n"},
		{"name=d&na_values=-999&numeric=a", "a,y\n-999,p\n2,q\n"},
		{"name=d&datetime=w", "w,y\n0001-01-01,p\n9999-12-31T23:59:59.999999999Z,q\n"},
	} {
		f.Add(s.query, []byte(s.body))
	}
	for _, h := range hostileInputs {
		if query, ok := strings.CutPrefix(h.path, "/v1/datasets?"); ok && h.method == http.MethodPost && h.ct == "text/csv" {
			f.Add(query, []byte(h.body))
		}
	}
	e := newModelEnv(f)
	f.Fuzz(func(t *testing.T, query string, body []byte) {
		if _, err := url.ParseRequestURI("/v1/datasets?" + query); err != nil || strings.ContainsAny(query, "# ") {
			return // not a request line a client can send
		}
		rec := serveBounded(t, e.h, http.MethodPost, "/v1/datasets?"+query, "text/csv", body)
		if rec.Code != http.StatusCreated {
			checkProblem(t, rec, body)
			return
		}
		var meta store.DatasetMeta
		if err := json.Unmarshal(rec.Body.Bytes(), &meta); err != nil || meta.Rows < 1 || meta.Features < 1 {
			t.Fatalf("201 with %s (%v)", rec.Body, err)
		}
		if err := e.store.DeleteDataset(context.Background(), meta.ID); err != nil {
			t.Fatal(err)
		}
	})
}
