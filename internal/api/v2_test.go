package api

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// v2InferResult is an inference response as a protocol client reads it.
type v2InferResult struct {
	ModelName    string `json:"model_name"`
	ModelVersion string `json:"model_version"`
	ID           string `json:"id"`
	Outputs      []struct {
		Name     string `json:"name"`
		Datatype string `json:"datatype"`
		Shape    []int  `json:"shape"`
		Data     []any  `json:"data"`
	} `json:"outputs"`
}

// v2ErrorOf checks that res is a protocol error with status and returns its
// message.
func v2ErrorOf(t *testing.T, res *response, status int) string {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status %d, want %d: %s", res.Status, status, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body map[string]any
	res.JSON(t, &body)
	msg, ok := body["error"].(string)
	if !ok || msg == "" || len(body) != 1 {
		t.Fatalf("body = %s, want {\"error\": \"...\"}", res.Body)
	}
	return msg
}

func TestV2Server(t *testing.T) {
	e := newModelEnv(t)
	for _, tc := range []struct {
		target string
		want   string
	}{
		{"/v2/health/live", `{"live":true}`},
		{"/v2/health/ready", `{"ready":true}`},
		{"/v2", `{"name":"backpropd","version":"devel","extensions":[]}`},
	} {
		t.Run(tc.target, func(t *testing.T) {
			res := e.get(t, tc.target)
			if res.Status != http.StatusOK || strings.TrimSpace(string(res.Body)) != tc.want {
				t.Errorf("%d %s, want 200 %s", res.Status, res.Body, tc.want)
			}
		})
	}
	t.Run("version from Config", func(t *testing.T) {
		// cmd/server passes the one version it also logs and exports.
		srv := New(Options{Config: Config{Version: "v1.2.3-test"}, Store: e.store, Jobs: e.jobs})
		res := doRaw(t, srv.Handler(), http.MethodGet, "/v2", "", nil)
		want := `{"name":"backpropd","version":"v1.2.3-test","extensions":[]}`
		if res.Status != http.StatusOK || strings.TrimSpace(string(res.Body)) != want {
			t.Errorf("%d %s, want 200 %s", res.Status, res.Body, want)
		}
	})
	t.Run("not ready while draining", func(t *testing.T) {
		e.srv.SetDraining()
		res := e.get(t, "/v2/health/ready")
		if res.Status != http.StatusServiceUnavailable || strings.TrimSpace(string(res.Body)) != `{"ready":false}` {
			t.Errorf("%d %s, want 503 {\"ready\":false}", res.Status, res.Body)
		}
	})
}

func TestV2Model(t *testing.T) {
	e := newModelEnv(t)
	tm := mustTrain(t, "classifier")
	e.putModel("iris", tm)
	e.putModel("iris", tm)
	e.putModel("lin", mustTrain(t, "regressor"))

	t.Run("metadata", func(t *testing.T) {
		for _, target := range []string{"/v2/models/iris", "/v2/models/iris/versions/1"} {
			res := e.get(t, target)
			if res.Status != http.StatusOK {
				t.Fatalf("%s: status %d: %s", target, res.Status, res.Body)
			}
			var got v2ModelMetadataBody
			res.JSON(t, &got)
			want := v2ModelMetadataBody{Name: "iris", Versions: []string{"1", "2"}, Platform: "backpropd",
				Inputs:  []v2Tensor{{"input", "FP64", []int{-1, 4}}},
				Outputs: []v2Tensor{{"output", "FP64", []int{-1, 3}}, {"label", "BYTES", []int{-1}}}}
			if fmt.Sprint(got.Name, got.Versions, got.Platform, got.Inputs, got.Outputs) !=
				fmt.Sprint(want.Name, want.Versions, want.Platform, want.Inputs, want.Outputs) {
				t.Errorf("%s: metadata = %+v, want %+v", target, got, want)
			}
		}
		var got v2ModelMetadataBody
		e.get(t, "/v2/models/lin").JSON(t, &got)
		if len(got.Outputs) != 1 || got.Outputs[0].Name != "output" || !slices.Equal(got.Outputs[0].Shape, []int{-1, 1}) {
			t.Errorf("regressor outputs = %+v, want only output [-1, 1]", got.Outputs)
		}
	})
	t.Run("unknown route and wrong method are protocol errors", func(t *testing.T) {
		v2ErrorOf(t, e.get(t, "/v2/nothing"), http.StatusNotFound)
		v2ErrorOf(t, e.call(t, http.MethodDelete, "/v2/models/iris", "", nil), http.StatusMethodNotAllowed)
	})
	t.Run("ready", func(t *testing.T) {
		for _, target := range []string{"/v2/models/iris/ready", "/v2/models/iris/versions/2/ready"} {
			res := e.get(t, target)
			if res.Status != http.StatusOK || strings.TrimSpace(string(res.Body)) != `{"name":"iris","ready":true}` {
				t.Errorf("%s: %d %s", target, res.Status, res.Body)
			}
		}
	})
	for _, tc := range []struct {
		name, method, target, body string
		status                     int
		contains                   string
	}{
		{"metadata of unknown model", http.MethodGet, "/v2/models/nope", "", http.StatusNotFound, "nope"},
		{"metadata of unknown version", http.MethodGet, "/v2/models/iris/versions/9", "", http.StatusNotFound, "9"},
		{"ready of unknown model", http.MethodGet, "/v2/models/nope/ready", "", http.StatusNotFound, "nope"},
		{"infer on unknown model", http.MethodPost, "/v2/models/nope/infer",
			`{"inputs":[{"name":"input","datatype":"FP64","shape":[1,4],"data":[1,2,3,4]}]}`, http.StatusNotFound, "nope"},
		{"bad name", http.MethodGet, "/v2/models/..%2fx", "", http.StatusBadRequest, "path.name"},
		{"bad version", http.MethodGet, "/v2/models/iris/versions/01", "", http.StatusBadRequest, "path.version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := ""
			if tc.body != "" {
				ct = "application/json"
			}
			res := e.call(t, tc.method, tc.target, ct, []byte(tc.body))
			if msg := v2ErrorOf(t, res, tc.status); !strings.Contains(msg, tc.contains) {
				t.Errorf("error %q does not mention %q", msg, tc.contains)
			}
		})
	}
}

func TestV2Infer(t *testing.T) {
	e := newModelEnv(t)
	tm := mustTrain(t, "classifier")
	e.putModel("iris", tm)
	const rows = 3
	x := tm.data.X[:rows*4]
	wantOut, wantLabels := enginePredict(t, tm, x, rows)
	flat := mustJSON(x)
	nested := rowsJSON(x, rows, 4)
	ints := `[5,3,1,0,6,3,4,1,7,3,6,2]`
	intX := []float64{5, 3, 1, 0, 6, 3, 4, 1, 7, 3, 6, 2}
	wantIntOut, wantIntLabels := enginePredict(t, tm, intX, rows)

	for _, tc := range []struct {
		name, target, datatype, data string
		out                          []float64
		labels                       []string
	}{
		{"flat FP64", "/v2/models/iris/infer", "FP64", flat, wantOut, wantLabels},
		{"nested FP64", "/v2/models/iris/infer", "FP64", nested, wantOut, wantLabels},
		{"FP32", "/v2/models/iris/versions/1/infer", "FP32", flat, wantOut, wantLabels},
		{"INT32", "/v2/models/iris/infer", "INT32", ints, wantIntOut, wantIntLabels},
		{"UINT8 nested", "/v2/models/iris/infer", "UINT8", `[[5,3,1,0],[6,3,4,1],[7,3,6,2]]`, wantIntOut, wantIntLabels},
		{"INT64", "/v2/models/iris/infer", "INT64", ints, wantIntOut, wantIntLabels},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := fmt.Sprintf(`{"id":"req-7","inputs":[{"name":"input","datatype":%q,"shape":[3,4],"data":%s}]}`,
				tc.datatype, tc.data)
			before := e.obs.rows
			res := e.postJSON(t, tc.target, body)
			if res.Status != http.StatusOK {
				t.Fatalf("status %d: %s", res.Status, res.Body)
			}
			if e.obs.rows-before != rows {
				t.Errorf("observer saw %d rows, want %d", e.obs.rows-before, rows)
			}
			var got v2InferResult
			res.JSON(t, &got)
			if got.ModelName != "iris" || got.ModelVersion != "1" || got.ID != "req-7" {
				t.Errorf("model %q version %q id %q, want iris, 1, req-7", got.ModelName, got.ModelVersion, got.ID)
			}
			if len(got.Outputs) != 2 {
				t.Fatalf("%d outputs, want output and label: %s", len(got.Outputs), res.Body)
			}
			o, l := got.Outputs[0], got.Outputs[1]
			if o.Name != "output" || o.Datatype != "FP64" || !slices.Equal(o.Shape, []int{3, 3}) {
				t.Errorf("output tensor %s %s %v, want output FP64 [3 3]", o.Name, o.Datatype, o.Shape)
			}
			for i, v := range o.Data {
				// Exact: the engine's float64s in shortest round-trip form.
				if v != tc.out[i] {
					t.Errorf("output[%d] = %v, want %v", i, v, tc.out[i])
				}
			}
			if l.Name != "label" || l.Datatype != "BYTES" || !slices.Equal(l.Shape, []int{3}) {
				t.Errorf("label tensor %s %s %v, want label BYTES [3]", l.Name, l.Datatype, l.Shape)
			}
			for i, v := range l.Data {
				if v != tc.labels[i] {
					t.Errorf("label[%d] = %v, want %v", i, v, tc.labels[i])
				}
			}
		})
	}
	t.Run("select outputs", func(t *testing.T) {
		for _, want := range []string{"output", "label"} {
			body := fmt.Sprintf(`{"inputs":[{"name":"input","datatype":"FP64","shape":[3,4],"data":%s}],"outputs":[{"name":%q}]}`,
				flat, want)
			res := e.postJSON(t, "/v2/models/iris/infer", body)
			var got v2InferResult
			res.JSON(t, &got)
			if res.Status != http.StatusOK || len(got.Outputs) != 1 || got.Outputs[0].Name != want || got.ID != "" {
				t.Errorf("asked for %s: %d %s", want, res.Status, res.Body)
			}
		}
	})
	t.Run("no content type", func(t *testing.T) {
		// Outside the contract (OpenAPI cannot say "no Content-Type"), so
		// sent past the contract helper; the answer must equal the one to
		// the same body sent as JSON.
		body := fmt.Sprintf(`{"inputs":[{"name":"input","datatype":"FP64","shape":[3,4],"data":%s}]}`, flat)
		req := httptest.NewRequest(http.MethodPost, "/v2/models/iris/infer", strings.NewReader(body))
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		want := e.postJSON(t, "/v2/models/iris/infer", body)
		if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), want.Body) {
			t.Errorf("without Content-Type: %d %s; with JSON: %d %s", rec.Code, rec.Body, want.Status, want.Body)
		}
	})

	tensor := func(name, datatype, shape, data string) string {
		return fmt.Sprintf(`{"inputs":[{"name":%q,"datatype":%q,"shape":%s,"data":%s}]}`, name, datatype, shape, data)
	}
	for _, tc := range []struct {
		name, body string
		contains   string // in the error message
	}{
		{"shape mismatch", tensor("input", "FP64", "[2,4]", flat), "inputs[0].data: has 12 elements; the shape [2, 4] needs 8"},
		{"wrong feature count", tensor("input", "FP64", "[4,3]", flat), "inputs[0].shape[1]"},
		{"one dimension", tensor("input", "FP64", "[12]", flat), "inputs[0].shape"},
		{"zero rows", tensor("input", "FP64", "[0,4]", "[]"), "inputs[0].shape[0]"},
		{"negative rows", tensor("input", "FP64", "[-1,4]", flat), "inputs[0].shape[0]"},
		{"huge shape", tensor("input", "FP64", "[1000000000000,4]", flat), "inputs[0].shape"},
		{"ragged nested", tensor("input", "FP64", "[3,4]", `[[1,2,3,4],[1,2,3],[1,2,3,4,5]]`), "inputs[0].data[1]"},
		{"mixed nesting", tensor("input", "FP64", "[1,4]", `[1,[2],3,4]`), "inputs[0].data"},
		{"too deep", tensor("input", "FP64", "[1,4]", `[[[1],2,3,4]]`), "inputs[0].data[0][0]"},
		{"wrong tensor name", tensor("x", "FP64", "[3,4]", flat), `inputs[0].name: the model's input tensor is named "input"`},
		{"two tensors", `{"inputs":[` + strings.Repeat(`{"name":"input","datatype":"FP64","shape":[1,4],"data":[1,2,3,4]},`, 2) + `{"name":"input","datatype":"FP64","shape":[1,4],"data":[1,2,3,4]}]}`,
			"exactly one tensor"},
		{"no tensors", `{"inputs":[]}`, "exactly one tensor"},
		{"BOOL", tensor("input", "BOOL", "[1,4]", `[true,false,true,false]`), "inputs[0].datatype"},
		{"BYTES", tensor("input", "BYTES", "[1,4]", `["a","b","c","d"]`), "inputs[0].datatype"},
		{"string value", tensor("input", "FP64", "[1,4]", `[1,"2",3,4]`), "inputs[0].data[1]"},
		{"overflow", tensor("input", "FP64", "[1,4]", `[1,2,1e999,4]`), "inputs[0].data[2]"},
		{"FP32 overflow", tensor("input", "FP32", "[1,4]", `[1,2,1e300,4]`), "inputs[0].data[2]"},
		{"fraction in INT32", tensor("input", "INT32", "[1,4]", `[1,2,3.5,4]`), "inputs[0].data[2]"},
		{"negative UINT8", tensor("input", "UINT8", "[1,4]", `[1,-2,3,4]`), "inputs[0].data[1]"},
		{"INT8 out of range", tensor("input", "INT8", "[1,4]", `[[1,2,3,200]]`), "inputs[0].data[0][3]"},
		{"unknown output", `{"inputs":[{"name":"input","datatype":"FP64","shape":[1,4],"data":[1,2,3,4]}],"outputs":[{"name":"logits"}]}`,
			"outputs[0].name"},
		{"unknown field", `{"inputs":[{"name":"input","datatype":"FP64","shape":[1,4],"data":[1,2,3,4],"contents":{}}]}`,
			"inputs[0].contents"},
		{"missing data", `{"inputs":[{"name":"input","datatype":"FP64","shape":[1,4]}]}`, "inputs[0].data"},
		{"malformed", `{"inputs":[`, "malformed JSON"},
		{"NaN literal", tensor("input", "FP64", "[1,4]", `[NaN,2,3,4]`), "malformed JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.call(t, http.MethodPost, "/v2/models/iris/infer", "application/json", []byte(tc.body))
			if msg := v2ErrorOf(t, res, http.StatusBadRequest); !strings.Contains(msg, tc.contains) {
				t.Errorf("error %q does not contain %q", msg, tc.contains)
			}
		})
	}
	t.Run("wrong content type", func(t *testing.T) {
		res := e.call(t, http.MethodPost, "/v2/models/iris/infer", "text/plain", []byte(tensor("input", "FP64", "[3,4]", flat)))
		v2ErrorOf(t, res, http.StatusUnsupportedMediaType)
	})
}

// BenchmarkV2InferSingleRow measures one-row Open Inference Protocol
// requests through the real router and middleware.
func BenchmarkV2InferSingleRow(b *testing.B) {
	e := newModelEnv(b)
	e.putModel("iris", mustTrain(b, "classifier"))
	body := []byte(`{"inputs":[{"name":"input","datatype":"FP64","shape":[1,4],"data":[5.1,3.5,1.4,0.2]}]}`)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v2/models/iris/infer", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
