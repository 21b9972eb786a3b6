package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const token = "e2e-token-0123456789"

// syncBuffer collects the server's logs across goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer runs the whole service in-process on a random loopback port.
func startServer(tb testing.TB, dataDir string, extra ...string) (*Main, string, *syncBuffer) {
	tb.Helper()
	m := NewMain()
	args := append([]string{"--addr", "127.0.0.1:0", "--data-dir", dataDir, "--workers", "2",
		"--auth-token", token, "--log-format", "text", "--shutdown-timeout", "10s"}, extra...)
	if err := m.ParseFlags(args, func(string) string { return "" }, io.Discard); err != nil {
		tb.Fatal(err)
	}
	logs := &syncBuffer{}
	m.LogOutput = logs
	if err := m.Run(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return m, "http://" + m.Addr(), logs
}

type client struct {
	tb   testing.TB
	base string
}

// do sends a request with the token and returns status, headers and body.
func (c client) do(method, path, ct string, body []byte) (int, http.Header, []byte) {
	c.tb.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.tb.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.tb.Fatal(err)
	}
	return res.StatusCode, res.Header, b
}

// json sends v as JSON, wants status, and decodes the answer into out.
func (c client) json(method, path string, v any, want int, out any) http.Header {
	c.tb.Helper()
	var body []byte
	ct := ""
	if v != nil {
		ct = "application/json"
		var err error
		if body, err = json.Marshal(v); err != nil {
			c.tb.Fatal(err)
		}
	}
	status, h, b := c.do(method, path, ct, body)
	if status != want {
		c.tb.Fatalf("%s %s: %d, want %d: %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.tb.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return h
}

type jobView struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	ModelVersion int    `json:"model_version"`
	Error        string `json:"error"`
	Metrics      struct {
		Accuracy    *float64 `json:"accuracy"`
		ValAccuracy *float64 `json:"val_accuracy"`
		Loss        *float64 `json:"loss"`
	} `json:"metrics"`
	History []struct {
		Epoch int     `json:"epoch"`
		Loss  float64 `json:"loss"`
	} `json:"history"`
}

// follow reads the job's event stream to its end and returns the events.
func (c client) follow(id string) (kinds []string, last jobView) {
	c.tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+"/v1/jobs/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.tb.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		c.tb.Fatalf("events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<24)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
			kinds = append(kinds, event)
		case strings.HasPrefix(line, "data: ") && event == "status":
			last = jobView{}
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &last); err != nil {
				c.tb.Fatal(err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		c.tb.Fatalf("reading events: %v", err)
	}
	return kinds, last
}

type prediction struct {
	ModelName     string            `json:"model_name"`
	ModelVersion  int               `json:"model_version"`
	Predictions   []json.RawMessage `json:"predictions"`
	Probabilities [][]float64       `json:"probabilities"`
	Classes       []string          `json:"classes"`
}

// Rows from examples/iris.csv: rows 1, 51 and 101, one of each species.
var irisRows = [][]float64{{5.1, 3.5, 1.4, 0.2}, {7.0, 3.2, 4.7, 1.4}, {6.3, 3.3, 6.0, 2.5}}

// TestEndToEnd runs the service as users do: upload the example CSV, train
// a classifier and a regressor, follow the events, predict over /v1 and
// /v2, export and re-import the model, restart on the same data directory
// and predict again.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	m, base, logs := startServer(t, dir)
	c := client{t, base}

	iris, err := os.ReadFile("../../examples/iris.csv")
	if err != nil {
		t.Fatal(err)
	}
	status, h, body := c.do(http.MethodPost, "/v1/datasets?name=iris&target=species", "text/csv", iris)
	if status != http.StatusCreated {
		t.Fatalf("upload: %d %s", status, body)
	}
	var ds struct {
		ID   string
		Rows int
	}
	_ = json.Unmarshal(body, &ds)
	if ds.Rows != 150 || h.Get("Location") != "/v1/datasets/"+ds.ID {
		t.Fatalf("upload: %s, Location %q", body, h.Get("Location"))
	}

	// The classifier. Early stopping is off so that the job runs its
	// epochs; iris is nearly linearly separable, so 16 relu units reach
	// well over 90% training accuracy in 60 epochs.
	var job jobView
	h = c.json(http.MethodPost, "/v1/jobs", map[string]any{
		"model_name": "iris", "dataset_id": ds.ID,
		"validation": map[string]any{"fraction": 0.2},
		"network":    map[string]any{"hidden": []map[string]any{{"units": 16, "activation": "relu"}}},
		"training": map[string]any{"epochs": 60, "batch_size": 16, "seed": 7,
			"optimizer":      map[string]any{"name": "adam", "learning_rate": 0.02},
			"early_stopping": map[string]any{"enabled": false}},
	}, http.StatusAccepted, &job)
	if h.Get("Location") != "/v1/jobs/"+job.ID {
		t.Fatalf("job Location %q", h.Get("Location"))
	}
	kinds, last := c.follow(job.ID)
	if len(kinds) < 3 || kinds[0] != "status" || kinds[len(kinds)-1] != "status" || !slices.Contains(kinds, "epoch") {
		t.Fatalf("event kinds %v: want status first and last, epochs between", kinds)
	}
	// The stream's closing status leaves the history out (its epoch
	// events carried it); GET has it whole.
	if last.Status != "succeeded" || last.ModelVersion != 1 || last.History != nil {
		t.Fatalf("final status: %+v; want succeeded, version 1, no history", last)
	}
	if a := last.Metrics.Accuracy; a == nil || *a < 0.9 {
		t.Fatalf("training accuracy %v, want >= 0.9", a)
	}
	var done jobView
	c.json(http.MethodGet, "/v1/jobs/"+job.ID, nil, http.StatusOK, &done)
	if len(done.History) != 60 {
		t.Fatalf("GET of the finished job: %d epochs of history, want 60", len(done.History))
	}
	if first, end := done.History[0].Loss, done.History[59].Loss; !(end < first/2) {
		t.Fatalf("loss went from %v to %v; want it at least halved", first, end)
	}

	// The regressor, with inline data: y = 2a - b + 1, exactly.
	var feats [][]float64
	var ys []float64
	for a := -3.0; a <= 3; a++ {
		for b := -3.0; b <= 3; b++ {
			feats = append(feats, []float64{a, b})
			ys = append(ys, 2*a-b+1)
		}
	}
	var reg jobView
	c.json(http.MethodPost, "/v1/jobs", map[string]any{
		"model_name": "lin",
		"data":       map[string]any{"feature_names": []string{"a", "b"}, "features": feats, "targets": ys},
		"network":    map[string]any{"hidden": []map[string]any{{"units": 8, "activation": "tanh"}}},
		"training":   map[string]any{"epochs": 200, "batch_size": 7, "optimizer": map[string]any{"name": "adam", "learning_rate": 0.02}},
	}, http.StatusAccepted, &reg)
	if _, last := c.follow(reg.ID); last.Status != "succeeded" {
		t.Fatalf("regressor: %+v", last)
	}

	// Predict over /v1: one row per species.
	var p1 prediction
	c.json(http.MethodPost, "/v1/models/iris/predict", map[string]any{"inputs": irisRows}, http.StatusOK, &p1)
	labels := make([]string, len(p1.Predictions))
	for i, raw := range p1.Predictions {
		_ = json.Unmarshal(raw, &labels[i])
	}
	if !slices.Equal(labels, []string{"setosa", "versicolor", "virginica"}) || p1.ModelVersion != 1 || len(p1.Probabilities) != 3 {
		t.Fatalf("iris predictions %s", mustJSON(p1))
	}
	// Rows keyed by feature name give the same answer.
	var pNamed prediction
	c.json(http.MethodPost, "/v1/models/iris/versions/1/predict", map[string]any{"instances": []map[string]float64{
		{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}}}, http.StatusOK, &pNamed)
	if !slices.Equal(pNamed.Probabilities[0], p1.Probabilities[0]) {
		t.Fatalf("named row %v != positional row %v", pNamed.Probabilities[0], p1.Probabilities[0])
	}
	var pr prediction
	c.json(http.MethodPost, "/v1/models/lin/predict", map[string]any{"inputs": [][]float64{{1, 1}, {0, 2}}}, http.StatusOK, &pr)
	for i, want := range []float64{2, -1} { // 2a - b + 1
		var got float64
		_ = json.Unmarshal(pr.Predictions[i], &got)
		if d := got - want; d > 0.5 || d < -0.5 {
			t.Errorf("regressor row %d: %v, want %v ± 0.5", i, got, want)
		}
	}

	// Predict over /v2 (Open Inference Protocol): same probabilities and labels.
	flat := slices.Concat(irisRows...)
	var v2 struct {
		ModelName string `json:"model_name"`
		Outputs   []struct {
			Name  string          `json:"name"`
			Shape []int           `json:"shape"`
			Data  json.RawMessage `json:"data"`
		} `json:"outputs"`
	}
	c.json(http.MethodPost, "/v2/models/iris/infer", map[string]any{"inputs": []map[string]any{
		{"name": "input", "shape": []int{3, 4}, "datatype": "FP64", "data": flat}}}, http.StatusOK, &v2)
	got := map[string]json.RawMessage{}
	for _, o := range v2.Outputs {
		got[o.Name] = o.Data
	}
	var v2probs []float64
	var v2labels []string
	_ = json.Unmarshal(got["output"], &v2probs)
	_ = json.Unmarshal(got["label"], &v2labels)
	if !slices.Equal(v2labels, labels) || !slices.Equal(v2probs, slices.Concat(p1.Probabilities...)) {
		t.Fatalf("/v2 labels %v probabilities %v; /v1 gave %v %v", v2labels, v2probs, labels, p1.Probabilities)
	}

	// Export the model file and import it under another name.
	status, h, file := c.do(http.MethodGet, "/v1/models/iris/versions/1/file", "", nil)
	if status != http.StatusOK || h.Get("Content-Type") != "application/octet-stream" || len(file) == 0 {
		t.Fatalf("export: %d %q %d bytes", status, h.Get("Content-Type"), len(file))
	}
	status, _, body = c.do(http.MethodPost, "/v1/models/iris-copy/versions", "application/octet-stream", file)
	if status != http.StatusCreated {
		t.Fatalf("import: %d %s", status, body)
	}
	var pc prediction
	c.json(http.MethodPost, "/v1/models/iris-copy/predict", map[string]any{"inputs": irisRows}, http.StatusOK, &pc)
	if !slices.Equal(slices.Concat(pc.Probabilities...), slices.Concat(p1.Probabilities...)) {
		t.Fatalf("imported model predicts %v, original %v", pc.Probabilities, p1.Probabilities)
	}

	// /metrics has the training loss of the job.
	status, _, metrics := c.do(http.MethodGet, "/metrics", "", nil)
	if status != http.StatusOK || !strings.Contains(string(metrics), `backpropd_training_loss{job_id="`+job.ID) {
		t.Fatalf("/metrics: %d, no training loss for job %s", status, job.ID)
	}

	// The access log has one line per request with the route pattern.
	if !strings.Contains(logs.String(), `route=/v1/models/{name}/predict`) {
		t.Errorf("access log lacks the predict route pattern")
	}

	// Restart on the same data directory: the same answers, byte for byte.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2, base2, _ := startServer(t, dir)
	defer m2.Close()
	c2 := client{t, base2}
	var p2 prediction
	c2.json(http.MethodPost, "/v1/models/iris/predict", map[string]any{"inputs": irisRows}, http.StatusOK, &p2)
	if mustJSON(p2) != mustJSON(p1) {
		t.Fatalf("after restart:\n%s\nbefore:\n%s", mustJSON(p2), mustJSON(p1))
	}
	var after jobView
	c2.json(http.MethodGet, "/v1/jobs/"+job.ID, nil, http.StatusOK, &after)
	if after.Status != "succeeded" || len(after.History) != 60 {
		t.Fatalf("job after restart: %s, %d epochs", after.Status, len(after.History))
	}
}

// TestShutdownCheckpointsAndResumes: Close during a long job returns in
// time, the job is not lost, and after a restart it runs on.
func TestShutdownCheckpointsAndResumes(t *testing.T) {
	dir := t.TempDir()
	m, base, _ := startServer(t, dir)
	c := client{t, base}
	iris, _ := os.ReadFile("../../examples/iris.csv")
	status, _, body := c.do(http.MethodPost, "/v1/datasets?name=iris", "text/csv", iris)
	if status != http.StatusCreated {
		t.Fatalf("upload: %d %s", status, body)
	}
	var ds struct{ ID string }
	_ = json.Unmarshal(body, &ds)
	var job jobView
	c.json(http.MethodPost, "/v1/jobs", map[string]any{"model_name": "long", "dataset_id": ds.ID,
		"training": map[string]any{"epochs": 1000000}}, http.StatusAccepted, &job)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var j jobView
		c.json(http.MethodGet, "/v1/jobs/"+job.ID, nil, http.StatusOK, &j)
		if len(j.History) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job did not train: %+v", j)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A client following the job must not hold up the shutdown.
	streamDone := make(chan struct{})
	go func() {
		defer close(streamDone)
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/jobs/"+job.ID+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if res, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}()
	time.Sleep(100 * time.Millisecond)

	start := time.Now()
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("shutdown took %v, over the 10 s timeout", d)
	}
	<-streamDone
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("the listener still accepts after Close")
	}

	m2, base2, _ := startServer(t, dir)
	defer m2.Close()
	c2 := client{t, base2}
	var j jobView
	c2.json(http.MethodGet, "/v1/jobs/"+job.ID, nil, http.StatusOK, &j)
	if j.Status != "running" && j.Status != "queued" {
		t.Fatalf("after restart the job is %s (%s), want it resumed", j.Status, j.Error)
	}
	c2.json(http.MethodPost, "/v1/jobs/"+job.ID+"/cancel", nil, http.StatusOK, nil)
}

// TestReadyzDrains: /readyz turns 503 when shutdown begins.
func TestReadyzDrains(t *testing.T) {
	m, base, _ := startServer(t, t.TempDir())
	res, err := http.Get(base + "/readyz")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("readyz before: %v %v", res, err)
	}
	res.Body.Close()
	m.api.SetDraining()
	res, err = http.Get(base + "/readyz")
	if err != nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz while draining: %v %v", res, err)
	}
	res.Body.Close()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOneVersion checks that /v2 server metadata and the build_info metric
// report the version set with -ldflags "-X main.buildVersion=...".
func TestOneVersion(t *testing.T) {
	old := buildVersion
	buildVersion = "v9.8.7-test"
	t.Cleanup(func() { buildVersion = old })
	m, base, _ := startServer(t, t.TempDir())
	defer m.Close()
	c := client{t, base}
	var meta struct {
		Version string `json:"version"`
	}
	c.json(http.MethodGet, "/v2", nil, http.StatusOK, &meta)
	if meta.Version != buildVersion {
		t.Errorf("/v2 version %q, want %q", meta.Version, buildVersion)
	}
	_, _, metrics := c.do(http.MethodGet, "/metrics", "", nil)
	if want := `version="` + buildVersion + `"`; !strings.Contains(string(metrics), want) {
		t.Errorf("/metrics lacks %s in backpropd_build_info", want)
	}
}

func TestHealthcheckSubcommand(t *testing.T) {
	m, _, _ := startServer(t, t.TempDir())
	var errOut bytes.Buffer
	if code := healthcheck([]string{"--addr", m.Addr()}, func(string) string { return "" }, &errOut); code != 0 {
		t.Fatalf("healthcheck against a live server: exit %d: %s", code, errOut.String())
	}
	_, port, _ := strings.Cut(m.Addr(), ":")
	if code := healthcheck(nil, func(k string) string {
		if k == "BACKPROPD_ADDR" {
			return "0.0.0.0:" + port
		}
		return ""
	}, &errOut); code != 0 {
		t.Fatalf("healthcheck via BACKPROPD_ADDR with 0.0.0.0: exit %d: %s", code, errOut.String())
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if code := healthcheck([]string{"--addr", m.Addr(), "--timeout", "1s"}, func(string) string { return "" }, &errOut); code != 1 {
		t.Fatalf("healthcheck against a stopped server: exit %d, want 1", code)
	}
}

func TestAuthRequired(t *testing.T) {
	m, base, logs := startServer(t, t.TempDir())
	defer m.Close()
	for _, tc := range []struct {
		path, auth string
		want       int
	}{
		{"/v1/datasets", "", 401},
		{"/v1/datasets", "Bearer wrong", 401},
		{"/v1/datasets", "Basic " + token, 401},
		{"/v1/datasets", "Bearer " + token, 200},
		{"/v2/health/live", "", 401},
		{"/openapi.yaml", "", 401},
		{"/healthz", "", 200},
		{"/readyz", "", 200},
		{"/metrics", "", 200},
	} {
		req, _ := http.NewRequest(http.MethodGet, base+tc.path, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("GET %s with %q: %d, want %d", tc.path, tc.auth, res.StatusCode, tc.want)
		}
		if tc.want == 401 && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("GET %s: 401 without WWW-Authenticate: Bearer", tc.path)
		}
	}
	if strings.Contains(logs.String(), token) {
		t.Error("the token appears in the logs")
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return string(b)
}
