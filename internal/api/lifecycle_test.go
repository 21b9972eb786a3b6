package api

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/jobs"
	"github.com/backpropd/backpropd/internal/store"
)

// TestDeleteDatasetRacesJobSubmit sends DELETE /v1/datasets/{id} and a
// POST /v1/jobs that uses the dataset at the same time, many times. Either
// the delete gets 409 and the job trains, or the delete gets 204 and the
// submit a 400 naming dataset_id; never both 2xx, never a job that fails
// for a missing dataset.
func TestDeleteDatasetRacesJobSubmit(t *testing.T) {
	env := newTestEnv(t, Config{})
	csv := readIris(t)
	const rounds = 20
	for i := range rounds {
		res := doRaw(t, env.h, http.MethodPost, "/v1/datasets?name=iris&target=species", "text/csv", csv)
		if res.Status != http.StatusCreated {
			t.Fatalf("round %d: upload: %d %s", i, res.Status, res.Body)
		}
		var ds store.DatasetMeta
		res.JSON(t, &ds)

		var wg sync.WaitGroup
		var sub, del *response
		start := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			sub = doJSON(t, env.h, http.MethodPost, "/v1/jobs", smallJob(fmt.Sprintf("race-%d", i), ds.ID, 1))
		}()
		go func() {
			defer wg.Done()
			<-start
			del = doJSON(t, env.h, http.MethodDelete, "/v1/datasets/"+ds.ID, nil)
		}()
		close(start)
		wg.Wait()

		switch {
		case sub.Status == http.StatusAccepted && del.Status == http.StatusConflict:
			if !strings.Contains(string(del.Body), "used by a queued or running job") {
				t.Errorf("round %d: 409 body %s does not say the dataset is in use", i, del.Body)
			}
			var j jobs.Job
			sub.JSON(t, &j)
			if done := waitJob(t, env, j.ID); done.Status != jobs.Succeeded {
				t.Fatalf("round %d: job ended %s (%q), want succeeded: its dataset was kept", i, done.Status, done.Error)
			}
		case del.Status == http.StatusNoContent && sub.Status == http.StatusBadRequest:
			if !strings.Contains(string(sub.Body), `"dataset_id"`) {
				t.Errorf("round %d: 400 body %s does not name dataset_id", i, sub.Body)
			}
		default:
			t.Fatalf("round %d: submit %d %s, delete %d %s; want 202 with 409, or 400 with 204",
				i, sub.Status, sub.Body, del.Status, del.Body)
		}
	}
}

// TestJobReportsStopReasonAndBestEpoch trains iris with early stopping and
// checks that the job reports why it ended and the epoch and figures of
// the weights its model holds, which are the model's metrics, beside the
// last epoch's.
func TestJobReportsStopReasonAndBestEpoch(t *testing.T) {
	env := newTestEnv(t, Config{})
	ds := uploadIris(t, env)
	// Patience 2 at a learning rate of 0.05 stops iris within the 300
	// epochs; the seed makes the run repeatable.
	body := smallJob("iris", ds.ID, 300)
	body["training"].(map[string]any)["early_stopping"] = map[string]any{"patience": 2}
	j := submitJob(t, env, body)
	done := waitJob(t, env, j.ID)
	if done.Status != jobs.Succeeded || done.StopReason != jobs.ReasonEarlyStopping || !done.StoppedEarly {
		t.Fatalf("job ended %s, stop_reason %q, stopped_early %v (%q); want succeeded by early_stopping",
			done.Status, done.StopReason, done.StoppedEarly, done.Error)
	}
	if n := len(done.History); done.BestEpoch < 1 || done.BestEpoch+2 != n || done.BestMetrics == nil {
		t.Fatalf("best_epoch %d, best_metrics %+v after %d epochs; want patience 2 epochs before the end",
			done.BestEpoch, done.BestMetrics, n)
	}
	res := doJSON(t, env.h, http.MethodGet, fmt.Sprintf("/v1/models/iris/versions/%d", done.ModelVersion), nil)
	var meta store.ModelMeta
	res.JSON(t, &meta)
	if res.Status != http.StatusOK || meta.Metrics["val_loss"] != *done.BestMetrics.ValLoss {
		t.Errorf("model val_loss %v (%d), want the job's best_metrics.val_loss %v", meta.Metrics["val_loss"], res.Status, *done.BestMetrics.ValLoss)
	}
	if last := done.History[len(done.History)-1]; *done.Metrics.ValLoss != *last.ValLoss {
		t.Errorf("metrics.val_loss %v, want the last epoch's %v", *done.Metrics.ValLoss, *last.ValLoss)
	}
}

// TestStopCancelledJobConflict: POST /stop on a cancelled job answers 409
// saying it is cancelled.
func TestStopCancelledJobConflict(t *testing.T) {
	env := newTestEnv(t, Config{})
	ds := uploadIris(t, env)
	j := submitJob(t, env, smallJob("c", ds.ID, 1000000))
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got jobs.Job
		doJSON(t, env.h, http.MethodGet, "/v1/jobs/"+j.ID, nil).JSON(t, &got)
		if got.Status == jobs.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job never ran: %+v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if res := doJSON(t, env.h, http.MethodPost, "/v1/jobs/"+j.ID+"/cancel", nil); res.Status != http.StatusOK {
		t.Fatalf("cancel: %d %s", res.Status, res.Body)
	}
	res := doJSON(t, env.h, http.MethodPost, "/v1/jobs/"+j.ID+"/stop", nil)
	want := "job " + j.ID + " has already been cancelled; only a running job can be stopped"
	if res.Status != http.StatusConflict || !strings.Contains(string(res.Body), want) {
		t.Errorf("stop after cancel: %d %s, want 409 saying %q", res.Status, res.Body, want)
	}
}
