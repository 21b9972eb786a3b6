package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
)

func TestJobSucceeds(t *testing.T) {
	e := newEnv(t, testOptions(), testHooks{})
	bin := mustDataset(t, e.st, binaryData(40))
	s := smallSpec("bin", bin, 4)
	s.Validation = &ValidationSpec{Fraction: 0.25}
	j := mustSubmit(t, e.m, s)
	if j.Status != Queued || j.ID == "" {
		t.Fatalf("submitted job: status %q id %q, want queued with an id", j.Status, j.ID)
	}
	// Durable before Submit returned.
	if rec := storedJob(t, e.st, j.ID); rec.Seq != j.seqForTest(e.m) {
		t.Errorf("stored seq %d", rec.Seq)
	}
	got := waitTerminal(t, e.m, j.ID)
	if got.Status != Succeeded || got.ModelVersion != 1 {
		t.Fatalf("job ended %s (version %d, error %q), want succeeded version 1", got.Status, got.ModelVersion, got.Error)
	}
	if len(got.History) != 4 || got.Progress.Epoch != 4 || got.Progress.Fraction != 1 {
		t.Errorf("history %d entries, progress %+v; want 4 epochs, fraction 1", len(got.History), got.Progress)
	}
	if got.Attempts != 1 || got.StartedAt == nil || got.FinishedAt == nil {
		t.Errorf("attempts %d started %v finished %v", got.Attempts, got.StartedAt, got.FinishedAt)
	}
	if got.Metrics.Loss == nil || got.Metrics.ValLoss == nil || got.Metrics.Accuracy == nil {
		t.Errorf("metrics %+v, want loss, val_loss and accuracy", got.Metrics)
	}
	meta, err := e.st.ModelMeta(context.Background(), "bin", 1)
	if err != nil {
		t.Fatalf("model meta: %v", err)
	}
	if meta.JobID != j.ID || meta.DatasetID != bin || meta.Task != "binary" || meta.Outputs != 1 ||
		len(meta.Classes) != 2 || len(meta.FeatureNames) != 2 {
		t.Errorf("model meta %+v", meta)
	}
	for _, k := range []string{"loss", "val_loss", "accuracy", "val_accuracy"} {
		if _, ok := meta.Metrics[k]; !ok {
			t.Errorf("model metrics %v lack %q", meta.Metrics, k)
		}
	}
	rec := storedJob(t, e.st, j.ID)
	if rec.Status != string(Succeeded) || len(rec.History) != 4 || rec.ModelVersion != 1 {
		t.Errorf("stored record status %s history %d version %d", rec.Status, len(rec.History), rec.ModelVersion)
	}
	if _, err := e.st.Checkpoint(context.Background(), j.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("checkpoint after success: %v, want ErrNotFound", err)
	}
}

// seqForTest reads a job's submission number.
func (j Job) seqForTest(m *Manager) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.jobs[j.ID].rec.Seq
}

func TestQueueFull(t *testing.T) {
	g := newGate()
	e := newEnv(t, Options{Workers: 1, QueueSize: 2}, testHooks{beforeTrain: func(ctx context.Context, id, _ string) { g.wait(ctx, id) }})
	defer g.release()
	bin := mustDataset(t, e.st, binaryData(40))
	first := mustSubmit(t, e.m, smallSpec("a", bin, 1))
	g.await(t) // the worker holds the first job; the queue is empty again
	mustSubmit(t, e.m, smallSpec("b", bin, 1))
	mustSubmit(t, e.m, smallSpec("c", bin, 1))
	if q, r := e.m.Counts(); q != 2 || r != 1 {
		t.Errorf("Counts = %d queued %d running, want 2 and 1", q, r)
	}
	_, err := e.m.Submit(context.Background(), smallSpec("d", bin, 1))
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Submit to a full queue: %v, want ErrQueueFull", err)
	}
	recs, errs := e.st.ListJobs(context.Background())
	if len(recs) != 3 || len(errs) != 0 {
		t.Errorf("%d records (%v) after a refused submit, want 3", len(recs), errs)
	}
	g.release()
	waitTerminal(t, e.m, first.ID)
}

func TestTimeLimit(t *testing.T) {
	// Every epoch sleeps 30 ms in the hook; the limit of 0.2 s ends the
	// 1000-epoch job long before it is done, and the model trained so far
	// is kept.
	e := newEnv(t, testOptions(), testHooks{afterEpoch: func(ctx context.Context, id, model string, epoch int) {
		select {
		case <-time.After(30 * time.Millisecond):
		case <-ctx.Done():
		}
	}})
	bin := mustDataset(t, e.st, binaryData(40))
	s := smallSpec("slow", bin, 1000)
	s.Training.MaxDurationSeconds = 0.2
	j := mustSubmit(t, e.m, s)
	got := waitTerminal(t, e.m, j.ID)
	if got.Status != Succeeded || got.StopReason != ReasonTimeLimit || got.ModelVersion != 1 || got.Error != "" {
		t.Fatalf("job ended %s, stop_reason %q, version %d (%q); want succeeded by time_limit with version 1",
			got.Status, got.StopReason, got.ModelVersion, got.Error)
	}
	if n := got.Progress.Epoch; n < 1 || n >= 1000 || len(got.History) != n || got.BestEpoch != n {
		t.Errorf("trained %d epochs (history %d, best_epoch %d); want between 1 and 999, the model holding the last",
			n, len(got.History), got.BestEpoch)
	}
	meta, err := e.st.ModelMeta(context.Background(), "slow", 1)
	if err != nil || meta.JobID != j.ID || meta.Metrics["loss"] != *got.BestMetrics.Loss {
		t.Errorf("model meta %+v, %v; want the job's model with its best_metrics", meta, err)
	}
}

func TestPanicFailsOnlyThatJob(t *testing.T) {
	boom := func(model string) {
		if model == "boom" {
			panic("injected")
		}
	}
	for _, tt := range []struct {
		name  string
		hooks testHooks
	}{
		{"before training", testHooks{beforeTrain: func(ctx context.Context, id, model string) { boom(model) }}},
		{"inside the training loop", testHooks{afterEpoch: func(ctx context.Context, id, model string, epoch int) { boom(model) }}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, testOptions(), tt.hooks)
			bin := mustDataset(t, e.st, binaryData(40))
			j1 := mustSubmit(t, e.m, smallSpec("boom", bin, 2))
			j2 := mustSubmit(t, e.m, smallSpec("fine", bin, 2))
			got1 := waitTerminal(t, e.m, j1.ID)
			if got1.Status != Failed || !strings.Contains(got1.Error, "panic") || !strings.Contains(got1.Error, "injected") {
				t.Fatalf("panicking job ended %s with %q, want failed naming the panic", got1.Status, got1.Error)
			}
			got2 := waitTerminal(t, e.m, j2.ID)
			if got2.Status != Succeeded {
				t.Fatalf("next job ended %s (%q), want succeeded", got2.Status, got2.Error)
			}
			if rec := storedJob(t, e.st, j1.ID); rec.Status != string(Failed) {
				t.Errorf("stored status %s, want failed", rec.Status)
			}
			if _, err := e.st.Checkpoint(context.Background(), j1.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("checkpoint of the failed job: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestCancelQueued(t *testing.T) {
	g := newGate()
	e := newEnv(t, testOptions(), testHooks{beforeTrain: func(ctx context.Context, id, _ string) { g.wait(ctx, id) }})
	defer g.release()
	bin := mustDataset(t, e.st, binaryData(40))
	running := mustSubmit(t, e.m, smallSpec("a", bin, 1))
	g.await(t)
	queued := mustSubmit(t, e.m, smallSpec("b", bin, 1))
	if !e.m.DatasetInUse(bin) {
		t.Error("DatasetInUse = false while two jobs use it")
	}
	got, err := e.m.Cancel(context.Background(), queued.ID)
	if err != nil || got.Status != Cancelled || got.FinishedAt == nil {
		t.Fatalf("Cancel(queued) = %s, %v; want cancelled", got.Status, err)
	}
	if q, _ := e.m.Counts(); q != 0 {
		t.Errorf("%d queued after cancelling the only queued job", q)
	}
	if rec := storedJob(t, e.st, queued.ID); rec.Status != string(Cancelled) {
		t.Errorf("stored status %s, want cancelled", rec.Status)
	}
	want := "job " + queued.ID + " has already been cancelled; only a queued or running job can be cancelled"
	if _, err := e.m.Cancel(context.Background(), queued.ID); !errors.Is(err, ErrConflict) || err.Error() != want {
		t.Errorf("second Cancel: %v, want ErrConflict saying %q", err, want)
	}
	g.release()
	waitTerminal(t, e.m, running.ID)
	if got, _ := e.m.Get(context.Background(), queued.ID); got.Status != Cancelled || got.StartedAt != nil {
		t.Errorf("cancelled job: status %s started %v; want cancelled, never started", got.Status, got.StartedAt)
	}
	if e.m.DatasetInUse(bin) {
		t.Error("DatasetInUse = true after every job ended")
	}
}

func TestCancelRunning(t *testing.T) {
	g := newGate()
	e := newEnv(t, testOptions(), testHooks{afterEpoch: func(ctx context.Context, id, model string, epoch int) {
		if epoch == 2 {
			g.wait(ctx, id)
		}
	}})
	defer g.release()
	bin := mustDataset(t, e.st, binaryData(40))
	j := mustSubmit(t, e.m, smallSpec("c", bin, 50))
	g.await(t)
	got, err := e.m.Cancel(context.Background(), j.ID)
	if err != nil || got.Status != Cancelled {
		t.Fatalf("Cancel(running) = %s (%q), %v; want cancelled", got.Status, got.Error, err)
	}
	if got.ModelVersion != 0 || got.Progress.Epoch >= 50 {
		t.Errorf("cancelled job: version %d epoch %d", got.ModelVersion, got.Progress.Epoch)
	}
	if _, err := e.st.ModelMeta(context.Background(), "c", 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("model of a cancelled job: %v, want ErrNotFound", err)
	}
	if rec := storedJob(t, e.st, j.ID); rec.Status != string(Cancelled) {
		t.Errorf("stored status %s, want cancelled", rec.Status)
	}
	if _, err := e.st.Checkpoint(context.Background(), j.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("checkpoint after cancel: %v, want ErrNotFound", err)
	}
}

func TestStopKeepsModel(t *testing.T) {
	g := newGate()
	e := newEnv(t, testOptions(), testHooks{afterEpoch: func(ctx context.Context, id, model string, epoch int) {
		if epoch == 2 {
			g.wait(ctx, id)
		}
	}})
	m := e.m
	defer g.release()
	bin := mustDataset(t, e.st, binaryData(40))
	j := mustSubmit(t, m, smallSpec("s", bin, 50))
	g.await(t)
	type result struct {
		j   Job
		err error
	}
	res := make(chan result, 1)
	go func() {
		j, err := m.Stop(context.Background(), j.ID)
		res <- result{j, err}
	}()
	// The stop is durable before training is stopped.
	waitFor(t, m, j.ID, "stop requested", func(Job) bool {
		rec, err := e.st.Job(context.Background(), j.ID)
		return err == nil && rec.StopRequested
	})
	g.release()
	r := <-res
	if r.err != nil || r.j.Status != Succeeded || !r.j.StoppedEarly || r.j.ModelVersion != 1 {
		t.Fatalf("Stop = %s stopped_early=%v version %d (%q), %v; want succeeded, stopped early, version 1",
			r.j.Status, r.j.StoppedEarly, r.j.ModelVersion, r.j.Error, r.err)
	}
	if r.j.Progress.Epoch != 2 {
		t.Errorf("stopped after epoch %d, want 2 (the stop came at the end of epoch 2)", r.j.Progress.Epoch)
	}
	meta, err := e.st.ModelMeta(context.Background(), "s", 1)
	if err != nil || !meta.StoppedEarly {
		t.Errorf("model meta %+v, %v; want stopped_early", meta, err)
	}
	// The text is the 409's detail.
	want := "job " + j.ID + " has already succeeded; only a running job can be stopped"
	if _, err := m.Stop(context.Background(), j.ID); !errors.Is(err, ErrConflict) || err.Error() != want {
		t.Errorf("Stop of a finished job: %v, want ErrConflict saying %q", err, want)
	}
}

func TestDelete(t *testing.T) {
	g := newGate()
	e := newEnv(t, testOptions(), testHooks{beforeTrain: func(ctx context.Context, id, _ string) { g.wait(ctx, id) }})
	defer g.release()
	bin := mustDataset(t, e.st, binaryData(40))
	running := mustSubmit(t, e.m, smallSpec("a", bin, 1))
	g.await(t)
	queued := mustSubmit(t, e.m, smallSpec("b", bin, 1))
	for _, id := range []string{running.ID, queued.ID} {
		err := e.m.Delete(context.Background(), id)
		if !errors.Is(err, ErrConflict) || !strings.HasSuffix(err.Error(), "; only a finished job can be deleted; cancel it first") {
			t.Errorf("Delete(unfinished) = %v, want ErrConflict saying only a finished job can be deleted", err)
		}
	}
	g.release()
	waitTerminal(t, e.m, running.ID)
	waitTerminal(t, e.m, queued.ID)
	if err := e.m.Delete(context.Background(), running.ID); err != nil {
		t.Fatalf("Delete(finished) = %v", err)
	}
	if _, err := e.m.Get(context.Background(), running.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	if _, err := e.st.Job(context.Background(), running.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("stored record after Delete: %v, want ErrNotFound", err)
	}
	if err := e.m.Delete(context.Background(), running.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete: %v, want ErrNotFound", err)
	}
	// The model outlives its job.
	if _, err := e.st.ModelMeta(context.Background(), "a", 1); err != nil {
		t.Errorf("model after deleting its job: %v", err)
	}
}

func TestList(t *testing.T) {
	g := newGate()
	e := newEnv(t, Options{Workers: 1, QueueSize: 10}, testHooks{beforeTrain: func(ctx context.Context, id, _ string) { g.wait(ctx, id) }})
	defer g.release()
	bin := mustDataset(t, e.st, binaryData(40))
	var ids []string
	for _, name := range []string{"a", "b", "a", "c", "a"} {
		ids = append(ids, mustSubmit(t, e.m, smallSpec(name, bin, 1)).ID)
	}
	g.await(t) // ids[0] is running, the rest queued
	tests := []struct {
		name string
		f    ListFilter
		want []string
	}{
		{"all newest first", ListFilter{}, []string{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"model a", ListFilter{ModelName: "a"}, []string{ids[4], ids[2], ids[0]}},
		{"queued", ListFilter{Status: Queued}, []string{ids[4], ids[3], ids[2], ids[1]}},
		{"running a", ListFilter{Status: Running, ModelName: "a"}, []string{ids[0]}},
		{"none", ListFilter{ModelName: "zzz"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, next, err := e.m.List(context.Background(), tt.f)
			if err != nil || next != "" {
				t.Fatalf("List = next %q, %v", next, err)
			}
			if gotIDs := jobIDs(got); !equalStrings(gotIDs, tt.want) {
				t.Errorf("ids %v, want %v", gotIDs, tt.want)
			}
		})
	}
	t.Run("pages", func(t *testing.T) {
		var all []string
		cursor := ""
		for page := 0; ; page++ {
			got, next, err := e.m.List(context.Background(), ListFilter{Limit: 2, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) > 2 {
				t.Fatalf("page of %d, limit 2", len(got))
			}
			all = append(all, jobIDs(got)...)
			if next == "" {
				break
			}
			cursor = next
			if page > 5 {
				t.Fatal("paging does not end")
			}
		}
		if want := []string{ids[4], ids[3], ids[2], ids[1], ids[0]}; !equalStrings(all, want) {
			t.Errorf("pages gave %v, want %v", all, want)
		}
	})
	for _, tt := range []struct {
		name  string
		f     ListFilter
		field string
	}{
		{"bad cursor", ListFilter{Cursor: "!!"}, "cursor"},
		{"forged cursor", ListFilter{Cursor: "eHl6"}, "cursor"},
		{"bad status", ListFilter{Status: "done"}, "status"},
		{"limit over 1000", ListFilter{Limit: 1001}, "limit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := e.m.List(context.Background(), tt.f)
			if f := fieldsOf(t, err); len(f) != 1 || f[0] != tt.field {
				t.Errorf("fields %v, want [%s]", f, tt.field)
			}
		})
	}
}

func jobIDs(js []Job) []string {
	var out []string
	for _, j := range js {
		out = append(out, j.ID)
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEvents(t *testing.T) {
	g := newGate()
	e := newEnv(t, testOptions(), testHooks{beforeTrain: func(ctx context.Context, id, _ string) { g.wait(ctx, id) }})
	defer g.release()
	bin := mustDataset(t, e.st, binaryData(40))
	holder := mustSubmit(t, e.m, smallSpec("hold", bin, 1))
	g.await(t)
	j := mustSubmit(t, e.m, smallSpec("ev", bin, 5))
	events, cancel, err := e.m.Subscribe(j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	g.release()

	var kinds []string
	epoch := 0
	var last Event
	for ev := range events {
		last = ev
		switch ev.Kind {
		case EventStatus:
			kinds = append(kinds, "status:"+string(ev.Job.Status))
		case EventEpoch:
			epoch++
			if ev.Epoch.Epoch != epoch {
				t.Errorf("epoch event %d, want %d", ev.Epoch.Epoch, epoch)
			}
			kinds = append(kinds, "epoch")
		}
	}
	want := []string{"status:queued", "status:running", "epoch", "epoch", "epoch", "epoch", "epoch", "status:succeeded"}
	if !equalStrings(kinds, want) {
		t.Errorf("events %v, want %v", kinds, want)
	}
	// The epoch events delivered the history; the terminal status does
	// not repeat it.
	if last.Job == nil || last.Job.History != nil || last.Job.ModelVersion != 1 || last.Job.Progress.Epoch != 5 {
		t.Errorf("terminal event job %+v, want model version 1 at epoch 5 without the history", last.Job)
	}
	// A finished job: one status event, then closed.
	waitTerminal(t, e.m, holder.ID)
	events, cancel2, err := e.m.Subscribe(j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel2()
	n := 0
	for ev := range events {
		n++
		if ev.Kind != EventStatus || ev.Job.Status != Succeeded {
			t.Errorf("event on a finished job: %+v", ev)
		}
	}
	if n != 1 {
		t.Errorf("%d events for a finished job, want 1", n)
	}
	if _, _, err := e.m.Subscribe("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Subscribe(unknown) = %v, want ErrNotFound", err)
	}
}

// TestSlowSubscriber: a subscriber that never reads does not hold training
// back; when it finally reads it gets at most the buffer, in order, and the
// terminal status, then the channel closes.
func TestSlowSubscriber(t *testing.T) {
	g := newGate()
	e := newEnv(t, testOptions(), testHooks{beforeTrain: func(ctx context.Context, id, _ string) { g.wait(ctx, id) }})
	defer g.release()
	bin := mustDataset(t, e.st, binaryData(40))
	const epochs = 150 // more than the 64-event buffer
	j := mustSubmit(t, e.m, smallSpec("slow-sub", bin, epochs))
	events, cancel, err := e.m.Subscribe(j.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	g.await(t)
	g.release()
	got := waitTerminal(t, e.m, j.ID)
	if got.Status != Succeeded || got.Progress.Epoch != epochs {
		t.Fatalf("job ended %s at epoch %d (%q)", got.Status, got.Progress.Epoch, got.Error)
	}
	var n, lastEpoch int
	var last Event
	for ev := range events {
		n++
		last = ev
		if ev.Kind == EventEpoch {
			if ev.Epoch.Epoch <= lastEpoch {
				t.Errorf("epoch %d after %d", ev.Epoch.Epoch, lastEpoch)
			}
			lastEpoch = ev.Epoch.Epoch
		}
	}
	if n > subBuffer {
		t.Errorf("%d events buffered, want at most %d", n, subBuffer)
	}
	if last.Kind != EventStatus || last.Job.Status != Succeeded {
		t.Errorf("last event %+v, want the succeeded status", last)
	}
}

// TestModelWriteFailure: a full disk when the model is written fails the
// job with that reason.
func TestModelWriteFailure(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	t.Cleanup(func() { st.Close() })
	m := newManager(t, &faultStore{Store: st, putModel: store.ErrNoSpace}, testOptions(), testHooks{})
	bin := mustDataset(t, st, binaryData(40))
	j := mustSubmit(t, m, smallSpec("full", bin, 2))
	got := waitTerminal(t, m, j.ID)
	if got.Status != Failed || !strings.Contains(got.Error, "no space left") {
		t.Fatalf("job ended %s with %q, want failed naming the full disk", got.Status, got.Error)
	}
}

func TestShuttingDown(t *testing.T) {
	e := newEnv(t, testOptions(), testHooks{})
	bin := mustDataset(t, e.st, binaryData(40))
	if err := e.m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Submit(context.Background(), smallSpec("late", bin, 1)); !errors.Is(err, ErrShuttingDown) {
		t.Errorf("Submit after Shutdown = %v, want ErrShuttingDown", err)
	}
}

func TestValidationDataset(t *testing.T) {
	g := newGate()
	e := newEnv(t, testOptions(), testHooks{beforeTrain: func(ctx context.Context, id, _ string) { g.wait(ctx, id) }})
	defer g.release()
	bin := mustDataset(t, e.st, binaryData(40))
	val := mustDataset(t, e.st, binaryData(16))
	s := smallSpec("val", bin, 2)
	s.Validation = &ValidationSpec{DatasetID: val}
	j := mustSubmit(t, e.m, s)
	if j.Spec.Validation == nil || j.Spec.Validation.DatasetID != val {
		t.Errorf("resolved spec validation %+v, want dataset %s", j.Spec.Validation, val)
	}
	g.await(t)
	if !e.m.DatasetInUse(val) {
		t.Error("DatasetInUse(validation set) = false while its job runs")
	}
	g.release()
	got := waitTerminal(t, e.m, j.ID)
	if got.Status != Succeeded || got.Metrics.ValLoss == nil || got.Metrics.ValAccuracy == nil {
		t.Fatalf("job ended %s (%q) with metrics %+v, want succeeded with validation metrics", got.Status, got.Error, got.Metrics)
	}
	if e.m.DatasetInUse(val) || e.m.DatasetInUse(bin) {
		t.Error("DatasetInUse = true after the job ended")
	}
}

// TestEngineErrorFailsJob: targets of 1e300 make the squared error +Inf on
// the first mini-batch in float64; the job fails with the engine's
// message. In float32 the same targets fail before training, naming the
// precision and the row.
func TestEngineErrorFailsJob(t *testing.T) {
	e := newEnv(t, testOptions(), testHooks{})
	d := regressionData(40)
	for i := range d.Targets {
		d.Targets[i] = 1e300
	}
	reg := mustDataset(t, e.st, d)
	spec := smallSpec("diverge", reg, 5)
	spec.Training.Precision = engine.Float64
	j := mustSubmit(t, e.m, spec)
	got := waitTerminal(t, e.m, j.ID)
	if got.Status != Failed || !strings.Contains(got.Error, "epoch") {
		t.Fatalf("diverging job ended %s with %q, want failed naming the epoch", got.Status, got.Error)
	}
	j = mustSubmit(t, e.m, smallSpec("diverge32", reg, 5))
	got = waitTerminal(t, e.m, j.ID)
	if got.Status != Failed || !strings.Contains(got.Error, "training.precision") || !strings.Contains(got.Error, "row 1") {
		t.Fatalf("float32 job on 1e300 targets ended %s with %q, want failed naming training.precision and row 1", got.Status, got.Error)
	}
}

// recorder is an Observer that logs its calls.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) add(s string) { r.mu.Lock(); r.calls = append(r.calls, s); r.mu.Unlock() }

func (r *recorder) JobQueued(j Job)                { r.add("queued") }
func (r *recorder) JobStarted(j Job)               { r.add("started") }
func (r *recorder) JobEpoch(j Job, e engine.Epoch) { r.add(fmt.Sprintf("epoch %d", e.Epoch)) }
func (r *recorder) JobFinished(j Job)              { r.add("finished " + string(j.Status)) }
func (r *recorder) WorkersBusy(n int)              { r.add(fmt.Sprintf("busy %d", n)) }

func TestObserver(t *testing.T) {
	rec := &recorder{}
	opt := testOptions()
	opt.Observer = rec
	e := newEnv(t, opt, testHooks{})
	bin := mustDataset(t, e.st, binaryData(40))
	j := mustSubmit(t, e.m, smallSpec("obs", bin, 2))
	waitTerminal(t, e.m, j.ID)
	want := []string{"queued", "started", "busy 1", "epoch 1", "epoch 2", "finished succeeded", "busy 0"}
	// The last calls follow the terminal state by a moment.
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec.mu.Lock()
		got := slices.Clone(rec.calls)
		rec.mu.Unlock()
		if equalStrings(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("observer calls %v, want %v", got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestShutdownBound: a worker that does not return (here a hook that
// ignores cancellation) does not hold Shutdown past its deadline.
func TestShutdownBound(t *testing.T) {
	stuck := make(chan struct{})
	reached := make(chan struct{}, 1)
	e := newEnv(t, testOptions(), testHooks{beforeTrain: func(ctx context.Context, id, model string) {
		reached <- struct{}{}
		<-stuck
	}})
	bin := mustDataset(t, e.st, binaryData(40))
	mustSubmit(t, e.m, smallSpec("stuck", bin, 1))
	<-reached
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := e.m.Shutdown(ctx)
	if took := time.Since(start); err == nil || took > 2*time.Second {
		t.Errorf("Shutdown with a stuck worker: %v after %v, want an error after about 100ms", err, took)
	}
	close(stuck) // the cleanup's Shutdown then ends the worker
}
