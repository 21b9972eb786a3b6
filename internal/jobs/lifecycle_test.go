package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
)

// TestDeleteDatasetRacesSubmit starts a submit and a delete of the same
// dataset together, many times. Exactly one may win: the delete refuses
// (the job is queued and trains), or the submit is refused for a missing
// dataset_id. A job that was queued never fails for a missing dataset.
func TestDeleteDatasetRacesSubmit(t *testing.T) {
	e := newEnv(t, Options{Workers: 1, QueueSize: 256, ShutdownTimeout: 10 * time.Second}, testHooks{})
	ctx := context.Background()
	const rounds = 40
	var queued []string
	var deletes, refusals int
	for i := range rounds {
		ds := mustDataset(t, e.st, binaryData(20))
		var (
			wg             sync.WaitGroup
			job            Job
			subErr, delErr error
		)
		start := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			job, subErr = e.m.Submit(ctx, smallSpec(fmt.Sprintf("race-%d", i), ds, 1))
		}()
		go func() {
			defer wg.Done()
			<-start
			delErr = e.m.DeleteDataset(ctx, ds)
		}()
		close(start)
		wg.Wait()
		switch {
		case subErr == nil && delErr == nil:
			t.Fatalf("round %d: job %s was queued and its dataset %s deleted", i, job.ID, ds)
		case subErr == nil:
			if !errors.Is(delErr, ErrConflict) || !strings.Contains(delErr.Error(), "used by a queued or running job") {
				t.Fatalf("round %d: delete beside a queued job: %v, want ErrConflict saying the dataset is in use", i, delErr)
			}
			queued = append(queued, job.ID)
			refusals++
		case delErr == nil:
			if got := fieldsOf(t, subErr); !slices.Equal(got, []string{"dataset_id"}) {
				t.Fatalf("round %d: submit after the delete: fields %v (%v), want [dataset_id]", i, got, subErr)
			}
			if _, err := e.st.DatasetMeta(ctx, ds); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("round %d: dataset after a successful delete: %v, want ErrNotFound", i, err)
			}
			deletes++
		default:
			t.Fatalf("round %d: both refused: submit %v, delete %v", i, subErr, delErr)
		}
	}
	for _, id := range queued {
		if got := waitTerminal(t, e.m, id); got.Status != Succeeded {
			t.Errorf("job %s ended %s (%q), want succeeded: its dataset was kept", id, got.Status, got.Error)
		}
	}
	t.Logf("%d rounds: %d deletes won, %d submits won", rounds, deletes, refusals)
}

// TestDeleteDatasetInUse: a queued job's training and validation datasets
// cannot be deleted; once the job has ended they can, and a second delete
// finds nothing.
func TestDeleteDatasetInUse(t *testing.T) {
	g := newGate()
	e := newEnv(t, testOptions(), testHooks{beforeTrain: func(ctx context.Context, id, model string) { g.wait(ctx, id) }})
	defer g.release()
	ctx := context.Background()
	bin := mustDataset(t, e.st, binaryData(40))
	val := mustDataset(t, e.st, binaryData(20))
	s := smallSpec("in-use", bin, 1)
	s.Validation = &ValidationSpec{DatasetID: val}
	j := mustSubmit(t, e.m, s)
	g.await(t)
	for _, id := range []string{bin, val} {
		want := "dataset " + id + " is used by a queued or running job; cancel the job first"
		if err := e.m.DeleteDataset(ctx, id); !errors.Is(err, ErrConflict) || err.Error() != want {
			t.Errorf("DeleteDataset(%s) while its job runs: %v, want ErrConflict %q", id, err, want)
		}
	}
	g.release()
	waitTerminal(t, e.m, j.ID)
	if err := e.m.DeleteDataset(ctx, val); err != nil {
		t.Fatalf("DeleteDataset after the job ended: %v", err)
	}
	if err := e.m.DeleteDataset(ctx, val); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second DeleteDataset: %v, want store.ErrNotFound", err)
	}
}

// noisyData has labels drawn at random, independent of the features: the
// validation loss can only get worse once the network starts memorizing
// the training rows, so early stopping ends the run.
func noisyData(rows int) *store.Dataset {
	r := rand.New(rand.NewPCG(5, 6))
	d := &store.Dataset{Meta: store.DatasetMeta{
		Name: "noisy", Rows: rows, Features: 2,
		FeatureNames: []string{"x0", "x1"}, TargetNames: []string{"label"},
		Task: "binary", Classes: []string{"no", "yes"},
	}}
	for range rows {
		d.X = append(d.X, r.Float64()*2-1, r.Float64()*2-1)
		d.Labels = append(d.Labels, []string{"no", "yes"}[r.IntN(2)])
	}
	return d
}

// earlyStoppingSpec overfits noisyData with patience 3.
func earlyStoppingSpec(name, datasetID string) Spec {
	s := smallSpec(name, datasetID, 500)
	s.Network.Hidden = []engine.LayerConfig{{Units: 32, Activation: engine.Tanh}}
	s.Training.Optimizer.LearningRate = 0.05
	s.Training.EarlyStopping = &engine.EarlyStoppingConfig{Patience: ptrTo(3)}
	s.Validation = &ValidationSpec{Fraction: 0.25}
	return s
}

func ptrTo[T any](v T) *T { return &v }

// TestStopReason runs a job to each way of ending and checks stop_reason,
// stopped_early, the durable record and, for a success, the model.
func TestStopReason(t *testing.T) {
	stopGate, cancelGate := newGate(), newGate()
	e := newEnv(t, testOptions(), testHooks{
		afterEpoch: func(ctx context.Context, id, model string, epoch int) {
			switch {
			case model == "stopped" && epoch == 2:
				stopGate.wait(ctx, id)
			case model == "cancelled" && epoch == 1:
				cancelGate.wait(ctx, id)
			case model == "slow":
				select {
				case <-time.After(30 * time.Millisecond):
				case <-ctx.Done():
				}
			}
		},
		beforeTrain: func(ctx context.Context, id, model string) {
			if model == "failed" {
				panic("injected")
			}
		},
	})
	defer stopGate.release()
	defer cancelGate.release()
	ctx := context.Background()
	bin := mustDataset(t, e.st, binaryData(40))
	noisy := mustDataset(t, e.st, noisyData(80))

	// stopAt stops the job waiting at its gate, as TestStopKeepsModel does.
	stopAt := func(t *testing.T, j Job) {
		stopGate.await(t)
		done := make(chan error, 1)
		go func() { _, err := e.m.Stop(ctx, j.ID); done <- err }()
		waitFor(t, e.m, j.ID, "stop requested", func(Job) bool {
			rec, err := e.st.Job(ctx, j.ID)
			return err == nil && rec.StopRequested
		})
		stopGate.release()
		if err := <-done; err != nil {
			t.Fatalf("Stop: %v", err)
		}
	}
	cancelAt := func(t *testing.T, j Job) {
		cancelGate.await(t)
		if _, err := e.m.Cancel(ctx, j.ID); err != nil {
			t.Fatalf("Cancel: %v", err)
		}
	}
	slow := smallSpec("slow", bin, 1000)
	// 1000 epochs of at least 30 ms each (the hook's sleep) take 30 s; the
	// 0.2 s limit ends the job after a few.
	slow.Training.MaxDurationSeconds = 0.2

	for _, tt := range []struct {
		name         string
		spec         Spec
		act          func(*testing.T, Job)
		status       Status
		reason       StopReason
		stoppedEarly bool
	}{
		{"completed", smallSpec("completed", bin, 3), nil, Succeeded, ReasonCompleted, false},
		{"early stopping", earlyStoppingSpec("early", noisy), nil, Succeeded, ReasonEarlyStopping, true},
		{"stopped", smallSpec("stopped", bin, 50), stopAt, Succeeded, ReasonStopped, true},
		{"time limit", slow, nil, Succeeded, ReasonTimeLimit, true},
		{"cancelled", smallSpec("cancelled", bin, 50), cancelAt, Cancelled, ReasonCancelled, false},
		{"failed", smallSpec("failed", bin, 3), nil, Failed, ReasonFailed, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			j := mustSubmit(t, e.m, tt.spec)
			if j.StopReason != "" {
				t.Errorf("queued job has stop_reason %q, want none", j.StopReason)
			}
			if tt.act != nil {
				tt.act(t, j)
			}
			got := waitTerminal(t, e.m, j.ID)
			if got.Status != tt.status || got.StopReason != tt.reason || got.StoppedEarly != tt.stoppedEarly {
				t.Fatalf("job ended %s, stop_reason %q, stopped_early %v (%q); want %s, %q, %v",
					got.Status, got.StopReason, got.StoppedEarly, got.Error, tt.status, tt.reason, tt.stoppedEarly)
			}
			if rec := storedJob(t, e.st, j.ID); rec.StopReason != string(tt.reason) {
				t.Errorf("stored stop_reason %q, want %q", rec.StopReason, tt.reason)
			}
			if tt.status != Succeeded {
				if got.BestEpoch != 0 || got.BestMetrics != nil {
					t.Errorf("job without a model reports best_epoch %d, best_metrics %+v", got.BestEpoch, got.BestMetrics)
				}
				return
			}
			meta, err := e.st.ModelMeta(ctx, tt.spec.ModelName, got.ModelVersion)
			if err != nil || meta.StoppedEarly != tt.stoppedEarly {
				t.Errorf("model meta stopped_early %v (%v), want %v", meta.StoppedEarly, err, tt.stoppedEarly)
			}
		})
	}
}

// TestTimeLimitBeforeFirstEpoch: a limit that runs out before one epoch is
// complete leaves no model to keep, so the job fails, with stop_reason
// time_limit and an error that says so.
func TestTimeLimitBeforeFirstEpoch(t *testing.T) {
	// The hook outlasts the 0.01 s limit before the first mini-batch.
	e := newEnv(t, testOptions(), testHooks{beforeRun: func(ctx context.Context, id, model string) {
		time.Sleep(100 * time.Millisecond)
	}})
	bin := mustDataset(t, e.st, binaryData(40))
	s := smallSpec("too-short", bin, 5)
	s.Training.MaxDurationSeconds = 0.01
	j := mustSubmit(t, e.m, s)
	got := waitTerminal(t, e.m, j.ID)
	if got.Status != Failed || got.StopReason != ReasonTimeLimit {
		t.Fatalf("job ended %s, stop_reason %q (%q); want failed, time_limit", got.Status, got.StopReason, got.Error)
	}
	for _, want := range []string{"time limit", "0.01", "training.max_duration_seconds", "before the first epoch", "no model"} {
		if !strings.Contains(got.Error, want) {
			t.Errorf("error %q does not mention %q", got.Error, want)
		}
	}
	if len(got.History) != 0 || got.ModelVersion != 0 || got.StoppedEarly {
		t.Errorf("history %d, model_version %d, stopped_early %v; want none of them", len(got.History), got.ModelVersion, got.StoppedEarly)
	}
	if _, err := e.st.ModelMeta(context.Background(), "too-short", 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("model of the job: %v, want ErrNotFound", err)
	}
}

// TestBestEpoch: under early stopping with restore_best the model holds
// the weights of the epoch of lowest validation loss, and the job reports
// that epoch and its figures beside the last epoch's.
func TestBestEpoch(t *testing.T) {
	e := newEnv(t, testOptions(), testHooks{})
	ctx := context.Background()
	noisy := mustDataset(t, e.st, noisyData(80))
	j := mustSubmit(t, e.m, earlyStoppingSpec("best", noisy))
	got := waitTerminal(t, e.m, j.ID)
	if got.Status != Succeeded || got.StopReason != ReasonEarlyStopping {
		t.Fatalf("job ended %s, stop_reason %q (%q); want succeeded by early stopping", got.Status, got.StopReason, got.Error)
	}
	// With min_delta 0 an epoch improves only on a strictly lower
	// validation loss, so the best is the first epoch of the lowest one;
	// patience 3 then trains 3 more.
	h := got.History
	best := 0
	for i, ep := range h {
		if *ep.ValLoss < *h[best].ValLoss {
			best = i
		}
	}
	if got.BestEpoch != best+1 || len(h) != best+1+3 {
		t.Fatalf("best_epoch %d after %d epochs; want %d, the lowest val_loss, with 3 epochs after it", got.BestEpoch, len(h), best+1)
	}
	bm, last := got.BestMetrics, h[len(h)-1]
	if bm == nil || bm.ValLoss == nil || *bm.ValLoss != *h[best].ValLoss || *bm.Loss != h[best].Loss ||
		*bm.Accuracy != *h[best].Accuracy || *bm.ValAccuracy != *h[best].ValAccuracy {
		t.Fatalf("best_metrics %+v, want epoch %d's %+v", bm, best+1, h[best])
	}
	if *got.Metrics.ValLoss != *last.ValLoss || *got.Metrics.ValLoss <= *bm.ValLoss {
		t.Errorf("metrics.val_loss %v, want the last epoch's %v, above the best %v", *got.Metrics.ValLoss, *last.ValLoss, *bm.ValLoss)
	}
	meta, err := e.st.ModelMeta(ctx, "best", got.ModelVersion)
	if err != nil || meta.Metrics["val_loss"] != *bm.ValLoss || meta.Metrics["loss"] != *bm.Loss {
		t.Errorf("model metrics %v (%v), want best_metrics %v", meta.Metrics, err, *bm.ValLoss)
	}
	if rec := storedJob(t, e.st, j.ID); rec.BestEpoch != got.BestEpoch {
		t.Errorf("stored best_epoch %d, want %d", rec.BestEpoch, got.BestEpoch)
	}

	// Without early stopping the model holds the last epoch's weights.
	bin := mustDataset(t, e.st, binaryData(40))
	j = mustSubmit(t, e.m, smallSpec("last", bin, 3))
	if got := waitTerminal(t, e.m, j.ID); got.BestEpoch != 3 || got.BestMetrics == nil || *got.BestMetrics.Loss != *got.Metrics.Loss {
		t.Errorf("best_epoch %d, best_metrics %+v, metrics %+v; want epoch 3, the last, twice", got.BestEpoch, got.BestMetrics, got.Metrics)
	}
}

// TestLegacyStopReason: records written before stop_reason existed load
// with one derived from their status, stopped_early, stop request and the
// text the older release gave a time-limit failure.
func TestLegacyStopReason(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	defer st.Close()
	spec, err := json.Marshal(smallSpec("old", "0b6f2c1e-8d3a-4f5e-9c7b-1a2b3c4d5e6f", 2))
	if err != nil {
		t.Fatal(err)
	}
	finished := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		rec  store.JobRecord
		want StopReason
	}{
		{"succeeded", store.JobRecord{Status: "succeeded", ModelVersion: 1}, ReasonCompleted},
		{"early stopping", store.JobRecord{Status: "succeeded", ModelVersion: 1, StoppedEarly: true}, ReasonEarlyStopping},
		{"stopped", store.JobRecord{Status: "succeeded", ModelVersion: 1, StoppedEarly: true, StopRequested: true}, ReasonStopped},
		// The text of the time-limit failure before the limit kept models.
		{"time limit", store.JobRecord{Status: "failed",
			Error: "time limit exceeded: training ran for its maximum of 0.2 s (training.max_duration_seconds)"}, ReasonTimeLimit},
		{"failed", store.JobRecord{Status: "failed", Error: "load dataset x: not found"}, ReasonFailed},
		{"cancelled", store.JobRecord{Status: "cancelled"}, ReasonCancelled},
		{"recorded reason wins", store.JobRecord{Status: "succeeded", StoppedEarly: true, StopReason: "time_limit"}, ReasonTimeLimit},
	}
	ids := make([]string, len(tests))
	for i, tt := range tests {
		rec := tt.rec
		rec.ID = fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1)
		rec.ModelName, rec.Spec, rec.Seq = "old", spec, int64(i+1)
		rec.CreatedAt, rec.FinishedAt = finished, &finished
		rec.History = []json.RawMessage{}
		if err := st.PutJob(context.Background(), &rec); err != nil {
			t.Fatal(err)
		}
		ids[i] = rec.ID
	}
	m := newManager(t, st, testOptions(), testHooks{})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Get(context.Background(), ids[i])
			if err != nil || got.StopReason != tt.want {
				t.Errorf("stop_reason %q (%v), want %q", got.StopReason, err, tt.want)
			}
		})
	}
}

// TestStopCancelledJob: stopping a job that a cancel has ended names its
// real state, not a cancellation in progress.
func TestStopCancelledJob(t *testing.T) {
	g := newGate()
	e := newEnv(t, testOptions(), testHooks{afterEpoch: func(ctx context.Context, id, model string, epoch int) { g.wait(ctx, id) }})
	defer g.release()
	ctx := context.Background()
	bin := mustDataset(t, e.st, binaryData(40))
	j := mustSubmit(t, e.m, smallSpec("c", bin, 50))
	g.await(t)
	if c, err := e.m.Cancel(ctx, j.ID); err != nil || c.Status != Cancelled {
		t.Fatalf("Cancel = %s, %v; want cancelled", c.Status, err)
	}
	want := "job " + j.ID + " has already been cancelled; only a running job can be stopped"
	if _, err := e.m.Stop(ctx, j.ID); !errors.Is(err, ErrConflict) || err.Error() != want {
		t.Errorf("Stop after Cancel: %v, want ErrConflict %q", err, want)
	}
}
