package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/jobs"
	"github.com/backpropd/backpropd/internal/store"
)

// submitJob posts a job and returns it, failing unless it got 202.
func submitJob(tb testing.TB, env *testEnv, body any) jobs.Job {
	tb.Helper()
	res := doJSON(tb, env.h, http.MethodPost, "/v1/jobs", body)
	if res.Status != http.StatusAccepted {
		tb.Fatalf("submit: %d %s", res.Status, res.Body)
	}
	var j jobs.Job
	res.JSON(tb, &j)
	if got, want := res.Header.Get("Location"), "/v1/jobs/"+j.ID; got != want {
		tb.Errorf("Location = %q, want %q", got, want)
	}
	return j
}

// waitJob polls until the job is terminal.
func waitJob(tb testing.TB, env *testEnv, id string) jobs.Job {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		res := doJSON(tb, env.h, http.MethodGet, "/v1/jobs/"+id, nil)
		var j jobs.Job
		res.JSON(tb, &j)
		if j.Status.Terminal() {
			return j
		}
		if time.Now().After(deadline) {
			tb.Fatalf("job %s still %s after 60 s", id, j.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sseEvent is one server-sent event.
type sseEvent struct {
	Event string
	ID    string // "" without an id line
	Data  []byte
}

// parseSSE splits an event stream; comment lines are skipped.
func parseSSE(tb testing.TB, body []byte) []sseEvent {
	tb.Helper()
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.Event != "" || cur.Data != nil {
				out = append(out, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			cur.Event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			cur.ID = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			cur.Data = append(cur.Data, strings.TrimPrefix(line, "data: ")...)
		default:
			tb.Fatalf("unexpected event stream line %q", line)
		}
	}
	return out
}

func smallJob(model, dataset string, epochs int) map[string]any {
	return map[string]any{
		"model_name": model, "dataset_id": dataset,
		"validation": map[string]any{"fraction": 0.2},
		"network":    map[string]any{"hidden": []map[string]any{{"units": 8, "activation": "relu"}}},
		"training": map[string]any{"epochs": epochs, "batch_size": 16,
			"optimizer": map[string]any{"name": "adam", "learning_rate": 0.05}},
	}
}

func TestJobLifecycle(t *testing.T) {
	env := newTestEnv(t, Config{})
	ds := uploadIris(t, env)
	j := submitJob(t, env, smallJob("iris", ds.ID, 20))
	if j.ModelName != "iris" || j.Spec.DatasetID != ds.ID || j.Spec.Training.Epochs != 20 ||
		j.Spec.Network.Loss != engine.CrossEntropy || j.Spec.Training.Seed == nil {
		t.Fatalf("the job does not echo the resolved spec: %+v", j.Spec)
	}

	// The event stream starts with the current status and ends after the
	// terminal one; it is served to the end because the job finishes.
	res := doJSON(t, env.h, http.MethodGet, "/v1/jobs/"+j.ID+"/events", nil)
	if res.Status != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %q", res.Status, res.Header.Get("Content-Type"))
	}
	evs := parseSSE(t, res.Body)
	if len(evs) < 2 || evs[0].Event != "status" || evs[len(evs)-1].Event != "status" {
		t.Fatalf("events = %d, first %q, last %q; want status first and last", len(evs), evs[0].Event, evs[len(evs)-1].Event)
	}
	var last jobs.Job
	if err := json.Unmarshal(evs[len(evs)-1].Data, &last); err != nil || last.Status != jobs.Succeeded {
		t.Fatalf("last event: %v %s", err, evs[len(evs)-1].Data)
	}
	prev := 0
	for _, ev := range evs {
		if ev.Event != "epoch" {
			continue
		}
		var e engine.Epoch
		if err := json.Unmarshal(ev.Data, &e); err != nil || e.Epoch <= prev {
			t.Fatalf("epoch event %s after epoch %d: %v", ev.Data, prev, err)
		}
		prev = e.Epoch
	}

	done := waitJob(t, env, j.ID)
	// Early stopping (on by default with validation data) may end it
	// before epoch 20; the history has one entry per epoch run either way.
	if done.Status != jobs.Succeeded || done.ModelVersion != 1 || len(done.History) == 0 ||
		len(done.History) != done.History[len(done.History)-1].Epoch ||
		(len(done.History) < 20) != done.StoppedEarly || done.Metrics.Loss == nil {
		t.Fatalf("finished job: status %s version %d history %d metrics %+v error %q",
			done.Status, done.ModelVersion, len(done.History), done.Metrics, done.Error)
	}

	// Finished: cancel and stop conflict; delete works once.
	for _, op := range []string{"cancel", "stop"} {
		res := doJSON(t, env.h, http.MethodPost, "/v1/jobs/"+j.ID+"/"+op, nil)
		if p := res.Problem(t); res.Status != http.StatusConflict || !strings.Contains(p.Detail, j.ID) {
			t.Errorf("%s a finished job: %d %+v", op, res.Status, p)
		}
	}
	if res := doJSON(t, env.h, http.MethodDelete, "/v1/jobs/"+j.ID, nil); res.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", res.Status, res.Body)
	}
	if res := doJSON(t, env.h, http.MethodGet, "/v1/jobs/"+j.ID, nil); res.Status != http.StatusNotFound {
		t.Fatalf("get after delete: %d", res.Status)
	}
	if res := doJSON(t, env.h, http.MethodGet, "/v1/jobs/"+j.ID+"/events", nil); res.Status != http.StatusNotFound {
		t.Fatalf("events after delete: %d", res.Status)
	}
}

func TestJobCancelStopAndConflicts(t *testing.T) {
	env := newTestEnv(t, Config{})
	ds := uploadIris(t, env)
	long := smallJob("long", ds.ID, 1000000)
	running := submitJob(t, env, long)
	queued := submitJob(t, env, long)

	// The dataset is in use by both.
	res := doJSON(t, env.h, http.MethodDelete, "/v1/datasets/"+ds.ID, nil)
	if p := res.Problem(t); res.Status != http.StatusConflict || !strings.Contains(p.Detail, "job") {
		t.Fatalf("delete a dataset in use: %d %+v", res.Status, p)
	}
	// Unfinished jobs cannot be deleted; a queued one cannot be stopped.
	if res := doJSON(t, env.h, http.MethodDelete, "/v1/jobs/"+queued.ID, nil); res.Status != http.StatusConflict {
		t.Fatalf("delete a queued job: %d %s", res.Status, res.Body)
	}
	if res := doJSON(t, env.h, http.MethodPost, "/v1/jobs/"+queued.ID+"/stop", nil); res.Status != http.StatusConflict {
		t.Fatalf("stop a queued job: %d %s", res.Status, res.Body)
	}
	res = doJSON(t, env.h, http.MethodPost, "/v1/jobs/"+queued.ID+"/cancel", nil)
	var c jobs.Job
	res.JSON(t, &c)
	if res.Status != http.StatusOK || c.Status != jobs.Cancelled {
		t.Fatalf("cancel queued: %d %s", res.Status, res.Body)
	}

	// Stop the running one once it has an epoch: it keeps the model.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var j jobs.Job
		doJSON(t, env.h, http.MethodGet, "/v1/jobs/"+running.ID, nil).JSON(t, &j)
		if j.Status == jobs.Running && j.Progress.Epoch >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job never ran an epoch: %+v", j)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if res := doJSON(t, env.h, http.MethodPost, "/v1/jobs/"+running.ID+"/stop", nil); res.Status != http.StatusOK {
		t.Fatalf("stop: %d %s", res.Status, res.Body)
	}
	done := waitJob(t, env, running.ID)
	if done.Status != jobs.Succeeded || !done.StoppedEarly || done.ModelVersion == 0 {
		t.Fatalf("stopped job: %s stopped_early=%v version %d error %q", done.Status, done.StoppedEarly, done.ModelVersion, done.Error)
	}
	if res := doJSON(t, env.h, http.MethodDelete, "/v1/datasets/"+ds.ID, nil); res.Status != http.StatusNoContent {
		t.Fatalf("delete the dataset once no job uses it: %d %s", res.Status, res.Body)
	}
}

func TestJobQueueFull(t *testing.T) {
	env := newTestEnv(t, Config{}) // 1 worker, queue of 4
	ds := uploadIris(t, env)
	var got429 *response
	for i := 0; i < 10 && got429 == nil; i++ {
		res := doJSON(t, env.h, http.MethodPost, "/v1/jobs", smallJob("q", ds.ID, 1000000))
		switch res.Status {
		case http.StatusAccepted:
		case http.StatusTooManyRequests:
			got429 = res
		default:
			t.Fatalf("submit %d: %d %s", i, res.Status, res.Body)
		}
	}
	if got429 == nil {
		t.Fatal("10 submissions to a queue of 4 never got 429")
	}
	if got429.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if p := got429.Problem(t); !strings.Contains(p.Detail, "queue") {
		t.Errorf("429 detail %q does not mention the queue", p.Detail)
	}
}

func TestJobValidationNamesFields(t *testing.T) {
	env := newTestEnv(t, Config{})
	ds := uploadIris(t, env)
	reg := mustDataset(t, env, `{"name":"r","task":"regression","features":[[1],[2],[3]],"targets":[1,2,3]}`)
	tests := []struct {
		name  string
		spec  string
		field string
	}{
		{"negative epochs", `{"training":{"epochs":-1}}`, "training.epochs"},
		{"explicit zero epochs", `{"training":{"epochs":0}}`, "training.epochs"},
		{"explicit zero batch size", `{"training":{"batch_size":0}}`, "training.batch_size"},
		{"explicit zero learning rate", `{"training":{"optimizer":{"name":"adam","learning_rate":0}}}`, "training.optimizer.learning_rate"},
		{"explicit zero time limit", `{"training":{"max_duration_seconds":0}}`, "training.max_duration_seconds"},
		{"beta1 1", `{"training":{"optimizer":{"name":"adam","beta1":1}}}`, "training.optimizer.beta1"},
		{"negative patience", `{"validation":{"fraction":0.2},"training":{"early_stopping":{"patience":-1}}}`, "training.early_stopping.patience"},
		{"explicit empty activation", `{"network":{"hidden":[{"units":4,"activation":""}]}}`, "network.hidden[0].activation"},
		{"explicit empty output activation", `{"network":{"output_activation":""}}`, "network.output_activation"},
		{"explicit zero step size", `{"training":{"lr_schedule":{"name":"step","step_size":0}}}`, "training.lr_schedule.step_size"},
		{"layer without units", `{"network":{"hidden":[{"activation":"tanh"}]}}`, "network.hidden[0].units"},
		{"newer spec version", `{"version":3}`, "version"},
		{"absurd epochs", `{"training":{"epochs":1000000000000}}`, "training.epochs"},
		{"negative batch", `{"training":{"batch_size":-5}}`, "training.batch_size"},
		{"zero units", `{"network":{"hidden":[{"units":4},{"units":0}]}}`, "network.hidden[1].units"},
		{"absurd units", `{"network":{"hidden":[{"units":100000000}]}}`, "network.hidden[0].units"},
		{"too many layers", `{"network":{"hidden":[` + strings.TrimSuffix(strings.Repeat(`{"units":2},`, 2000), ",") + `]}}`, "network.hidden"},
		{"negative learning rate", `{"training":{"optimizer":{"name":"sgd","learning_rate":-1}}}`, "training.optimizer.learning_rate"},
		{"unknown activation", `{"network":{"hidden":[{"units":4,"activation":"swish"}]}}`, "network.hidden[0].activation"},
		{"unknown loss", `{"network":{"loss":"hinge"}}`, "network.loss"},
		{"unknown optimizer", `{"training":{"optimizer":{"name":"lbfgs"}}}`, "training.optimizer.name"},
		{"softmax in a hidden layer", `{"network":{"hidden":[{"units":4,"activation":"softmax"}]}}`, "network.hidden[0].activation"},
		{"too many parameters", `{"network":{"hidden":[{"units":60000},{"units":60000}]}}`, "network"},
		{"bad model name", `{"model_name":"../etc"}`, "model_name"},
		{"unknown dataset", `{"dataset_id":"0b6f2c1e-8d3a-4f5e-9c7b-1a2b3c4d5e6f"}`, "dataset_id"},
		{"validation fraction 1", `{"validation":{"fraction":1}}`, "validation.fraction"},
	}
	before := snapshotDir(t, env.dir)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var spec map[string]any
			if err := json.Unmarshal([]byte(tc.spec), &spec); err != nil {
				t.Fatal(err)
			}
			if _, ok := spec["model_name"]; !ok {
				spec["model_name"] = "m"
			}
			if _, ok := spec["dataset_id"]; !ok {
				spec["dataset_id"] = ds.ID
			}
			res := doJSON(t, env.h, http.MethodPost, "/v1/jobs", spec)
			if res.Status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", res.Status, res.Body)
			}
			p := res.Problem(t)
			found := false
			for _, e := range p.Errors {
				found = found || strings.HasPrefix(e.Field, tc.field)
			}
			if !found {
				t.Fatalf("no error for field %s: %+v", tc.field, p)
			}
		})
	}
	t.Run("cross_entropy on a regression target", func(t *testing.T) {
		res := doJSON(t, env.h, http.MethodPost, "/v1/jobs", map[string]any{
			"model_name": "m", "dataset_id": reg.ID, "network": map[string]any{"loss": "cross_entropy"}})
		if p := res.Problem(t); res.Status != http.StatusBadRequest || !problemMentions(p, "network.loss") {
			t.Fatalf("%d %+v", res.Status, p)
		}
	})
	// Refused jobs leave no trace, inline data included.
	res := doJSON(t, env.h, http.MethodPost, "/v1/jobs", map[string]any{
		"model_name": "m", "data": map[string]any{"features": [][]float64{{1}, {2}}, "targets": []float64{1, 2}},
		"training": map[string]any{"epochs": -1}})
	if res.Status != http.StatusBadRequest {
		t.Fatalf("inline job with bad epochs: %d %s", res.Status, res.Body)
	}
	after := snapshotDir(t, env.dir)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("refused jobs changed the data directory:\nbefore %v\nafter  %v", before, after)
	}
}

// TestJobExplicitZerosAccepted: zeros that are valid and differ from the
// default (adam's betas, rmsprop's rho, early-stopping patience) are
// accepted, kept in the resolved spec and trained with, not replaced.
func TestJobExplicitZerosAccepted(t *testing.T) {
	env := newTestEnv(t, Config{})
	ds := uploadIris(t, env)
	tests := []struct {
		name      string
		optimizer map[string]any
		es        map[string]any
		check     func(jobs.Spec) bool
	}{
		{"explicit zero beta1", map[string]any{"name": "adam", "beta1": 0}, nil, func(s jobs.Spec) bool {
			b := s.Training.Optimizer.Beta1
			return b != nil && *b == 0
		}},
		{"explicit zero beta2", map[string]any{"name": "adam", "beta2": 0}, nil, func(s jobs.Spec) bool {
			b := s.Training.Optimizer.Beta2
			return b != nil && *b == 0
		}},
		{"explicit zero rho", map[string]any{"name": "rmsprop", "rho": 0}, nil, func(s jobs.Spec) bool {
			r := s.Training.Optimizer.Rho
			return r != nil && *r == 0
		}},
		{"explicit zero patience", nil, map[string]any{"patience": 0}, func(s jobs.Spec) bool {
			es := s.Training.EarlyStopping
			return es != nil && es.Patience != nil && *es.Patience == 0
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			training := map[string]any{"epochs": 2}
			if tc.optimizer != nil {
				training["optimizer"] = tc.optimizer
			}
			if tc.es != nil {
				training["early_stopping"] = tc.es
			}
			j := submitJob(t, env, map[string]any{
				"model_name": "zeros", "dataset_id": ds.ID, "validation": map[string]any{"fraction": 0.2}, "training": training})
			if !tc.check(j.Spec) {
				t.Errorf("the resolved spec lost the explicit zero: %+v", j.Spec.Training.TrainingConfig)
			}
			// The worker queue is small: let each job finish before the next.
			if done := waitJob(t, env, j.ID); done.Status != jobs.Succeeded {
				t.Fatalf("job %s, error %q; want succeeded", done.Status, done.Error)
			}
		})
	}
}

func mustDataset(tb testing.TB, env *testEnv, body string) store.DatasetMeta {
	tb.Helper()
	res := doJSON(tb, env.h, http.MethodPost, "/v1/datasets", body)
	if res.Status != http.StatusCreated {
		tb.Fatalf("create dataset: %d %s", res.Status, res.Body)
	}
	var m store.DatasetMeta
	res.JSON(tb, &m)
	return m
}

func TestInlineDataJob(t *testing.T) {
	env := newTestEnv(t, Config{})
	// y = 2a - b on a small grid: a regression the network can fit.
	var feats [][]float64
	var ys []float64
	for a := -2.0; a <= 2; a++ {
		for b := -2.0; b <= 2; b++ {
			feats = append(feats, []float64{a, b})
			ys = append(ys, 2*a-b)
		}
	}
	j := submitJob(t, env, map[string]any{
		"model_name": "lin",
		"data":       map[string]any{"feature_names": []string{"a", "b"}, "features": feats, "targets": ys},
		"network":    map[string]any{"hidden": []map[string]any{{"units": 4, "activation": "tanh"}}},
		"training":   map[string]any{"epochs": 5},
	})
	if j.Spec.DatasetID == "" {
		t.Fatal("the inline data did not become a dataset")
	}
	meta, err := env.store.DatasetMeta(t.Context(), j.Spec.DatasetID)
	if err != nil || !meta.Hidden || meta.Rows != 25 || meta.Task != "regression" {
		t.Fatalf("inline dataset: %+v %v", meta, err)
	}
	var list struct{ Datasets []store.DatasetMeta }
	doJSON(t, env.h, http.MethodGet, "/v1/datasets", nil).JSON(t, &list)
	if len(list.Datasets) != 0 {
		t.Fatalf("hidden dataset is listed: %+v", list.Datasets)
	}
	if done := waitJob(t, env, j.ID); done.Status != jobs.Succeeded {
		t.Fatalf("inline job: %s %s", done.Status, done.Error)
	}
	// Deleting the job deletes its inline data.
	if res := doJSON(t, env.h, http.MethodDelete, "/v1/jobs/"+j.ID, nil); res.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", res.Status, res.Body)
	}
	if _, err := env.store.DatasetMeta(t.Context(), j.Spec.DatasetID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the inline dataset outlived its job: %v", err)
	}
}

func TestListJobs(t *testing.T) {
	env := newTestEnv(t, Config{})
	ds := uploadIris(t, env)
	var ids []string
	for i := 0; i < 5; i++ {
		name := "a"
		if i%2 == 1 {
			name = "b"
		}
		// One at a time: the test queue holds 4.
		id := submitJob(t, env, smallJob(name, ds.ID, 1)).ID
		waitJob(t, env, id)
		ids = append(ids, id)
	}
	type page struct {
		Jobs       []jobs.Job
		NextCursor string `json:"next_cursor"`
	}
	// Pages of 2, newest first, cover every job once.
	var got []string
	cursor := ""
	for range 10 {
		var p page
		path := "/v1/jobs?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		res := doJSON(t, env.h, http.MethodGet, path, nil)
		res.JSON(t, &p)
		if len(p.Jobs) > 2 {
			t.Fatalf("page of %d jobs with limit 2", len(p.Jobs))
		}
		for _, j := range p.Jobs {
			got = append(got, j.ID)
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	want := []string{ids[4], ids[3], ids[2], ids[1], ids[0]}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("paged ids = %v, want newest first %v", got, want)
	}
	var p page
	doJSON(t, env.h, http.MethodGet, "/v1/jobs?model_name=b&status=succeeded", nil).JSON(t, &p)
	if len(p.Jobs) != 2 || p.Jobs[0].ID != ids[3] || p.Jobs[1].ID != ids[1] {
		t.Fatalf("model_name=b: %d jobs", len(p.Jobs))
	}
	doJSON(t, env.h, http.MethodGet, "/v1/jobs?status=running", nil).JSON(t, &p)
	if len(p.Jobs) != 0 {
		t.Fatalf("status=running: %d jobs", len(p.Jobs))
	}
	res := doJSON(t, env.h, http.MethodGet, "/v1/jobs?cursor=garbage", nil)
	if pr := res.Problem(t); res.Status != http.StatusBadRequest || !problemMentions(pr, "query.cursor") {
		t.Fatalf("bad cursor: %d %+v", res.Status, pr)
	}
}

// A job's echoed spec, sent back as a new request, must be accepted
// unchanged: every value the resolver wrote, the spec version included, is
// one a client may give explicitly, so the request's check refuses only
// values a default would replace.
func TestResolvedSpecResubmits(t *testing.T) {
	env := newTestEnv(t, Config{})
	ds := uploadIris(t, env)
	first := doJSON(t, env.h, http.MethodPost, "/v1/jobs", map[string]any{
		"model_name": "echo", "dataset_id": ds.ID, "validation": map[string]any{"fraction": 0.2},
		"training": map[string]any{"epochs": 1, "optimizer": map[string]any{"name": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": true}}})
	if first.Status != http.StatusAccepted {
		t.Fatalf("first submit: %d %s", first.Status, first.Body)
	}
	var job struct {
		Spec json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(first.Body, &job); err != nil {
		t.Fatal(err)
	}
	again := doJSON(t, env.h, http.MethodPost, "/v1/jobs", []byte(job.Spec))
	if again.Status != http.StatusAccepted {
		t.Fatalf("resubmitting the resolved spec: %d %s", again.Status, again.Body)
	}
	var job2 struct {
		Spec json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(again.Body, &job2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(job.Spec, job2.Spec) {
		t.Errorf("resolved spec changed on resubmission:\n first %s\nsecond %s", job.Spec, job2.Spec)
	}
}
