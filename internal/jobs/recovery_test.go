package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
)

// resumeEpochs is the length of the jobs interrupted below; they are
// interrupted after epoch 3.
const resumeEpochs = 6

// stopAt returns an afterEpoch hook that, for jobs of the named model,
// waits at the gate after the given epoch.
func stopAt(g *gate, model string, epoch int) func(context.Context, string, string, int) {
	return func(ctx context.Context, id, name string, e int) {
		if e == epoch && name == model {
			g.wait(ctx, id)
		}
	}
}

// referenceRun trains spec uninterrupted under the model name "ref" and
// returns its history and model file.
func referenceRun(t *testing.T, m *Manager, st *store.Store, s Spec) Job {
	t.Helper()
	s.ModelName = "ref"
	j := mustSubmit(t, m, s)
	got := waitTerminal(t, m, j.ID)
	if got.Status != Succeeded {
		t.Fatalf("reference run ended %s: %q", got.Status, got.Error)
	}
	return got
}

// sameRun checks that a resumed job ended exactly like the reference:
// bit-identical model file and history losses.
func sameRun(t *testing.T, st *store.Store, ref, got Job) {
	t.Helper()
	if got.Status != Succeeded {
		t.Fatalf("resumed job ended %s: %q", got.Status, got.Error)
	}
	want := modelFile(t, st, ref.ModelName, ref.ModelVersion)
	have := modelFile(t, st, got.ModelName, got.ModelVersion)
	if !bytes.Equal(want, have) {
		t.Errorf("resumed model file (%d bytes) differs from the uninterrupted run's (%d bytes)", len(have), len(want))
	}
	if len(got.History) != len(ref.History) {
		t.Fatalf("resumed history has %d epochs, want %d", len(got.History), len(ref.History))
	}
	for i := range ref.History {
		if got.History[i].Loss != ref.History[i].Loss || got.History[i].Epoch != ref.History[i].Epoch {
			t.Errorf("epoch %d: loss %v, want %v (bit for bit)", i+1, got.History[i].Loss, ref.History[i].Loss)
		}
	}
}

// TestCrashAndResume abandons a manager mid-training (its goroutines can no
// longer write: the process is dead), reopens the store from the files and
// starts a new manager. Every job ends, and the resumed job's model is
// bit-identical to an uninterrupted run's. With checkpoints every 2 epochs
// the crash after epoch 3 loses epoch 3, which is trained again.
func TestCrashAndResume(t *testing.T) {
	for _, every := range []int{1, 2} {
		t.Run(fmt.Sprintf("checkpoint every %d", every), func(t *testing.T) {
			dir := t.TempDir()
			st1 := openStore(t, dir)
			t.Cleanup(func() { st1.Close() })
			cs := &crashStore{Store: st1}
			g := newGate()
			opt := testOptions()
			opt.CheckpointEvery = every
			m1 := newManager(t, cs, opt, testHooks{afterEpoch: stopAt(g, "crash", 3)})

			bin := mustDataset(t, st1, binaryData(40))
			s := smallSpec("crash", bin, resumeEpochs)
			s.Validation = &ValidationSpec{Fraction: 0.25}
			ref := referenceRun(t, m1, st1, s)
			crashed := mustSubmit(t, m1, s)
			queued := mustSubmit(t, m1, smallSpec("after", bin, 2))
			g.await(t)
			cs.dead.Store(true) // the process dies here

			if _, err := st1.Checkpoint(context.Background(), crashed.ID); err != nil {
				t.Fatalf("no checkpoint after epoch 3: %v", err)
			}
			// Record and checkpoint are written together: after epoch 3
			// with every=1, after epoch 2 with every=2.
			if rec, want := storedJob(t, st1, crashed.ID), 3-3%every; rec.Status != string(Running) || len(rec.History) != want {
				t.Fatalf("record at the crash: %s with %d epochs, want running with %d", rec.Status, len(rec.History), want)
			}
			st2 := openStore(t, dir)
			t.Cleanup(func() { st2.Close() })
			m2 := newManager(t, st2, opt, testHooks{})
			got := waitTerminal(t, m2, crashed.ID)
			sameRun(t, st2, ref, got)
			if got.Attempts != 2 {
				t.Errorf("attempts %d, want 2 (one crashed run, one resumed)", got.Attempts)
			}
			if q := waitTerminal(t, m2, queued.ID); q.Status != Succeeded {
				t.Errorf("queued job ended %s: %q", q.Status, q.Error)
			}
			if r, _ := m2.Get(context.Background(), ref.ID); r.Status != Succeeded {
				t.Errorf("finished job after restart: %s", r.Status)
			}
		})
	}
}

// TestShutdownAndResume: Shutdown interrupts a running job, which
// checkpoints and is recorded as queued without using up an attempt; a new
// manager resumes it to a bit-identical model.
func TestShutdownAndResume(t *testing.T) {
	dir := t.TempDir()
	st1 := openStore(t, dir)
	g := newGate()
	opt := testOptions()
	var log bytes.Buffer
	opt.Logger = slog.New(slog.NewJSONHandler(&logWriter{buf: &log}, nil))
	m1 := newManager(t, st1, opt, testHooks{afterEpoch: stopAt(g, "resume", 3)})

	bin := mustDataset(t, st1, binaryData(40))
	s := smallSpec("resume", bin, resumeEpochs)
	ref := referenceRun(t, m1, st1, s)
	j := mustSubmit(t, m1, s)
	queued := mustSubmit(t, m1, smallSpec("after", bin, 2))
	g.await(t)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := m1.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	t.Logf("Shutdown took %v", time.Since(start))
	for _, id := range []string{j.ID, queued.ID} {
		rec := storedJob(t, st1, id)
		if rec.Status != string(Queued) || rec.Attempts != 0 {
			t.Errorf("record after Shutdown: status %s attempts %d, want queued with 0 attempts", rec.Status, rec.Attempts)
		}
	}
	if _, err := st1.Checkpoint(context.Background(), j.ID); err != nil {
		t.Fatalf("no checkpoint after Shutdown: %v", err)
	}
	// The interrupted job has not ended: the log must not say it has.
	var msgs []string
	for line := range strings.Lines(log.String()) {
		var e struct{ Msg, Job string }
		if json.Unmarshal([]byte(line), &e) == nil && e.Job == j.ID {
			msgs = append(msgs, e.Msg)
		}
	}
	if !slices.Contains(msgs, "job checkpointed for resume at next start") || slices.Contains(msgs, "job ended") {
		t.Errorf("log of the job interrupted by Shutdown: %q, want \"job checkpointed for resume at next start\" and no \"job ended\"", msgs)
	}
	st1.Close()

	st2 := openStore(t, dir)
	t.Cleanup(func() { st2.Close() })
	m2 := newManager(t, st2, testOptions(), testHooks{})
	got := waitTerminal(t, m2, j.ID)
	sameRun(t, st2, ref, got)
	if got.Attempts != 1 {
		t.Errorf("attempts %d, want 1: a clean shutdown does not count", got.Attempts)
	}
	if q := waitTerminal(t, m2, queued.ID); q.Status != Succeeded {
		t.Errorf("queued job ended %s: %q", q.Status, q.Error)
	}
}

// putRecord writes a job record as an earlier process would have left it.
func putRecord(t *testing.T, st *store.Store, m *Manager, s Spec, id string, seq int64, status Status, attempts int) {
	t.Helper()
	rs, err := m.Resolve(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	rec := &store.JobRecord{ID: id, ModelName: rs.ModelName, DatasetID: rs.DatasetID, Status: string(status),
		Spec: spec, Seq: seq, CreatedAt: time.Now().UTC(), Attempts: attempts, History: []json.RawMessage{}}
	if err := st.PutJob(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
}

// TestRecovery starts a manager over records left by earlier processes:
// queued jobs run in submission order, an interrupted job with attempts
// left runs again, one with 3 attempts fails.
func TestRecovery(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	t.Cleanup(func() { st.Close() })
	bin := mustDataset(t, st, binaryData(40))
	resolver, err := New(st, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{
		"q3": "30000000-0000-4000-8000-000000000000", "q1": "10000000-0000-4000-8000-000000000000",
		"q2": "20000000-0000-4000-8000-000000000000", "tired": "40000000-0000-4000-8000-000000000000",
		"again": "50000000-0000-4000-8000-000000000000",
	}
	putRecord(t, st, resolver, smallSpec("q", bin, 1), ids["q3"], 7, Queued, 0)
	putRecord(t, st, resolver, smallSpec("q", bin, 1), ids["q1"], 2, Queued, 0)
	putRecord(t, st, resolver, smallSpec("q", bin, 1), ids["q2"], 5, Queued, 0)
	putRecord(t, st, resolver, smallSpec("tired", bin, 1), ids["tired"], 3, Running, 3)
	putRecord(t, st, resolver, smallSpec("again", bin, 1), ids["again"], 4, Running, 2)

	var mu sync.Mutex
	var order []string
	m := newManager(t, st, testOptions(), testHooks{beforeTrain: func(ctx context.Context, id, _ string) {
		mu.Lock()
		order = append(order, id)
		mu.Unlock()
	}})
	tired := waitTerminal(t, m, ids["tired"])
	if tired.Status != Failed || !strings.Contains(tired.Error, "interrupted 3 times") {
		t.Errorf("job with 3 attempts: %s %q, want failed: interrupted 3 times", tired.Status, tired.Error)
	}
	again := waitTerminal(t, m, ids["again"])
	if again.Status != Succeeded || again.Attempts != 3 {
		t.Errorf("job with 2 attempts: %s after %d attempts (%q), want succeeded on the 3rd", again.Status, again.Attempts, again.Error)
	}
	for _, k := range []string{"q1", "q2", "q3"} {
		waitTerminal(t, m, ids[k])
	}
	mu.Lock()
	want := []string{ids["q1"], ids["again"], ids["q2"], ids["q3"]}
	if !equalStrings(order, want) {
		t.Errorf("run order %v, want by seq %v", order, want)
	}
	mu.Unlock()
	// New submissions number after the recovered ones.
	j := mustSubmit(t, m, smallSpec("new", bin, 1))
	if seq := j.seqForTest(m); seq != 8 {
		t.Errorf("new job's seq %d, want 8 (after the largest recovered, 7)", seq)
	}
	waitTerminal(t, m, j.ID)
}

// TestStopSurvivesCrash: a stop recorded before a crash finishes the job
// from its checkpoint as a stopped-early success, without training on; a
// stop with no checkpoint fails clearly.
func TestStopSurvivesCrash(t *testing.T) {
	dir := t.TempDir()
	st1 := openStore(t, dir)
	t.Cleanup(func() { st1.Close() })
	cs := &crashStore{Store: st1}
	g := newGate()
	m1 := newManager(t, cs, testOptions(), testHooks{afterEpoch: stopAt(g, "stopme", 2)})
	bin := mustDataset(t, st1, binaryData(40))
	j := mustSubmit(t, m1, smallSpec("stopme", bin, 50))
	g.await(t)
	// Stop's durable write lands, then the process dies.
	rec := storedJob(t, st1, j.ID)
	rec.StopRequested = true
	if err := st1.PutJob(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	cs.dead.Store(true)
	// A second interrupted job asked to stop before it had a checkpoint.
	noCkpt := "60000000-0000-4000-8000-000000000000"
	putRecord(t, st1, m1, smallSpec("nockpt", bin, 5), noCkpt, 100, Running, 1)
	rec2 := storedJob(t, st1, noCkpt)
	rec2.StopRequested = true
	if err := st1.PutJob(context.Background(), rec2); err != nil {
		t.Fatal(err)
	}

	st2 := openStore(t, dir)
	t.Cleanup(func() { st2.Close() })
	m2 := newManager(t, st2, testOptions(), testHooks{})
	got := waitTerminal(t, m2, j.ID)
	if got.Status != Succeeded || !got.StoppedEarly || got.ModelVersion != 1 || len(got.History) != 2 {
		t.Errorf("stopped job after restart: %s stopped_early=%v version %d epochs %d (%q); want succeeded, stopped early after 2 epochs",
			got.Status, got.StoppedEarly, got.ModelVersion, len(got.History), got.Error)
	}
	bad := waitTerminal(t, m2, noCkpt)
	if bad.Status != Failed || !strings.Contains(bad.Error, "no checkpoint") {
		t.Errorf("stop without checkpoint: %s %q, want failed naming the missing checkpoint", bad.Status, bad.Error)
	}
	if _, err := st2.Checkpoint(context.Background(), j.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("checkpoint after finishing: %v, want ErrNotFound", err)
	}
}

// TestStartSkipsBadRecords: a record the store cannot read (garbage bytes)
// and one it reads but the manager cannot use (an unknown status) are
// logged and skipped; the other jobs run.
func TestStartSkipsBadRecords(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	t.Cleanup(func() { st.Close() })
	bin := mustDataset(t, st, binaryData(40))
	resolver, err := New(st, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	good := "70000000-0000-4000-8000-000000000000"
	weird := "80000000-0000-4000-8000-000000000000"
	garbage := "90000000-0000-4000-8000-000000000000"
	putRecord(t, st, resolver, smallSpec("good", bin, 1), good, 1, Queued, 0)
	putRecord(t, st, resolver, smallSpec("weird", bin, 1), weird, 2, "exploded", 0)
	putRecord(t, st, resolver, smallSpec("garbage", bin, 1), garbage, 3, Queued, 0)
	if err := os.WriteFile(filepath.Join(dir, "jobs", garbage+".job"), []byte("not a job record"), 0o644); err != nil {
		t.Fatal(err)
	}

	var log bytes.Buffer
	opt := testOptions()
	opt.Logger = slog.New(slog.NewTextHandler(&logWriter{buf: &log}, nil))
	m := newManager(t, st, opt, testHooks{})
	if got := waitTerminal(t, m, good); got.Status != Succeeded {
		t.Errorf("good job ended %s: %q", got.Status, got.Error)
	}
	for _, id := range []string{weird, garbage} {
		if _, err := m.Get(context.Background(), id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(bad record %s) = %v, want ErrNotFound", id, err)
		}
	}
	m.Shutdown(context.Background())
	if n := strings.Count(log.String(), "skipping unreadable job record"); n != 2 {
		t.Errorf("%d skipped records logged, want 2; log:\n%s", n, log.String())
	}
}

// TestCrashLoopGivesUp: a job whose process dies during each of 3 runs is
// failed by the 4th start instead of being run again.
func TestCrashLoopGivesUp(t *testing.T) {
	dir := t.TempDir()
	var id string
	for run := 1; run <= maxAttempts; run++ {
		st := openStore(t, dir)
		t.Cleanup(func() { st.Close() })
		cs := &crashStore{Store: st}
		g := newGate()
		m := newManager(t, cs, testOptions(), testHooks{afterEpoch: stopAt(g, "doomed", run)}) // each run resumes one epoch further
		if run == 1 {
			bin := mustDataset(t, st, binaryData(40))
			id = mustSubmit(t, m, smallSpec("doomed", bin, 5)).ID
		}
		g.await(t)
		cs.dead.Store(true)
		if rec := storedJob(t, st, id); rec.Attempts != run || rec.Status != string(Running) {
			t.Fatalf("run %d: record %s with %d attempts, want running with %d", run, rec.Status, rec.Attempts, run)
		}
	}
	st := openStore(t, dir)
	t.Cleanup(func() { st.Close() })
	m := newManager(t, st, testOptions(), testHooks{})
	got := waitTerminal(t, m, id)
	if got.Status != Failed || !strings.Contains(got.Error, "interrupted 3 times") {
		t.Errorf("job after 3 crashes: %s %q, want failed: interrupted 3 times", got.Status, got.Error)
	}
	if _, err := st.Checkpoint(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("checkpoint of the abandoned job: %v, want ErrNotFound", err)
	}
}

// TestTimeLimitSpentBeforeRestart: a resumed job whose restored epochs
// have used up its time limit keeps the checkpoint's model (3 epochs) and
// succeeds with stop_reason time_limit, training no further.
func TestTimeLimitSpentBeforeRestart(t *testing.T) {
	dir := t.TempDir()
	st1 := openStore(t, dir)
	t.Cleanup(func() { st1.Close() })
	cs := &crashStore{Store: st1}
	g := newGate()
	m1 := newManager(t, cs, testOptions(), testHooks{afterEpoch: stopAt(g, "spent", 3)})
	bin := mustDataset(t, st1, binaryData(40))
	j := mustSubmit(t, m1, smallSpec("spent", bin, resumeEpochs))
	g.await(t)
	cs.dead.Store(true) // the process dies here

	// The limit is not part of the training state the checkpoint is
	// checked against, so the record can lower it to 1 ns, which the
	// 3 epochs trained certainly took longer than.
	rec := storedJob(t, st1, j.ID)
	var spec Spec
	if err := json.Unmarshal(rec.Spec, &spec); err != nil {
		t.Fatal(err)
	}
	spec.Training.MaxDurationSeconds = 1e-9
	var err error
	if rec.Spec, err = json.Marshal(spec); err != nil {
		t.Fatal(err)
	}
	st2 := openStore(t, dir)
	t.Cleanup(func() { st2.Close() })
	if err := st2.PutJob(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	m2 := newManager(t, st2, testOptions(), testHooks{})
	got := waitTerminal(t, m2, j.ID)
	if got.Status != Succeeded || got.StopReason != ReasonTimeLimit || len(got.History) != 3 || got.BestEpoch != 3 {
		t.Fatalf("resumed job ended %s, stop_reason %q, %d epochs, best_epoch %d (%q); want succeeded by time_limit with the 3 restored epochs",
			got.Status, got.StopReason, len(got.History), got.BestEpoch, got.Error)
	}
	if _, err := st2.ModelMeta(context.Background(), "spent", got.ModelVersion); err != nil {
		t.Errorf("model of the resumed job: %v", err)
	}
}

// TestVersion1JobsKeepFloat64 crashes a manager with one job of a version
// 1 spec interrupted after epoch 3 and one queued, rewrites both records'
// specs as a build from before training.precision wrote them (no version,
// no precision), and restarts. The interrupted job resumes from its
// checkpoint, which it could not if its config, and so the checkpoint's
// fingerprint, had changed; both keep their spec as it was, and their
// models are float64 ones, while a job submitted now is float32.
func TestVersion1JobsKeepFloat64(t *testing.T) {
	dir := t.TempDir()
	st1 := openStore(t, dir)
	t.Cleanup(func() { st1.Close() })
	cs := &crashStore{Store: st1}
	g := newGate()
	m1 := newManager(t, cs, testOptions(), testHooks{afterEpoch: stopAt(g, "old", 3)})

	bin := mustDataset(t, st1, binaryData(40))
	s := smallSpec("old", bin, resumeEpochs)
	s.Version = 1
	crashed := mustSubmit(t, m1, s)
	s = smallSpec("old-queued", bin, 2)
	s.Version = 1
	queued := mustSubmit(t, m1, s)
	g.await(t)
	cs.dead.Store(true) // the process dies here

	st2 := openStore(t, dir)
	t.Cleanup(func() { st2.Close() })
	for _, id := range []string{crashed.ID, queued.ID} {
		rec := storedJob(t, st2, id)
		var spec map[string]any
		if err := json.Unmarshal(rec.Spec, &spec); err != nil {
			t.Fatal(err)
		}
		if _, ok := spec["training"].(map[string]any)["precision"]; ok || spec["version"] != float64(1) {
			t.Fatalf("stored spec %s: want version 1 without training.precision", rec.Spec)
		}
		delete(spec, "version")
		b, err := json.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		rec.Spec = b
		if err := st2.PutJob(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	epochs := map[string][]int{}
	m2 := newManager(t, st2, testOptions(), testHooks{afterEpoch: func(_ context.Context, id, _ string, e int) {
		mu.Lock()
		epochs[id] = append(epochs[id], e)
		mu.Unlock()
	}})
	fresh := mustSubmit(t, m2, smallSpec("new", bin, 2))

	precision := func(j Job) engine.Precision {
		t.Helper()
		m, err := engine.DecodeModel(modelFile(t, st2, j.ModelName, j.ModelVersion))
		if err != nil {
			t.Fatalf("decode model of %s: %v", j.ModelName, err)
		}
		return m.Config().Training.Precision
	}
	for _, id := range []string{crashed.ID, queued.ID} {
		got := waitTerminal(t, m2, id)
		if got.Status != Succeeded {
			t.Fatalf("%s ended %s: %q", got.ModelName, got.Status, got.Error)
		}
		if got.Spec.Version != 1 || got.Spec.Training.Precision != "" {
			t.Errorf("%s: spec version %d precision %q after the restart, want version 1 without precision",
				got.ModelName, got.Spec.Version, got.Spec.Training.Precision)
		}
		if p := precision(got); p != "" {
			t.Errorf("%s: model trained with precision %q, want none (float64)", got.ModelName, p)
		}
		if rec := storedJob(t, st2, id); bytes.Contains(rec.Spec, []byte("precision")) {
			t.Errorf("%s: stored spec %s gained a precision", got.ModelName, rec.Spec)
		}
	}
	mu.Lock()
	resumed := slices.Clone(epochs[crashed.ID])
	mu.Unlock()
	if want := []int{4, 5, 6}; !slices.Equal(resumed, want) {
		t.Errorf("epochs trained after the restart %v, want %v: the checkpoint after epoch 3 was not resumed", resumed, want)
	}

	j := waitTerminal(t, m2, fresh.ID)
	if j.Status != Succeeded || j.Spec.Version != SpecVersion || j.Spec.Training.Precision != engine.Float32 {
		t.Fatalf("new job: %s, spec version %d precision %q; want succeeded, %d, float32",
			j.Status, j.Spec.Version, j.Spec.Training.Precision, SpecVersion)
	}
	if p := precision(j); p != engine.Float32 {
		t.Errorf("new job's model has precision %q, want float32", p)
	}
}
