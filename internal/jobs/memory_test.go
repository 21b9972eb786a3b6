package jobs

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/membudget"
	"github.com/backpropd/backpropd/internal/store"
	"github.com/google/uuid"
)

// narrowData is rows × 1 feature with a numeric target: the shape of the
// dataset in the spec that used to crash the server (1,048,576 rows, a
// 4 MB CSV).
func narrowData(rows int) *store.Dataset {
	d := &store.Dataset{Meta: store.DatasetMeta{Name: "narrow", Rows: rows, Features: 1,
		FeatureNames: []string{"x"}, TargetNames: []string{"y"}, Task: "regression"},
		X: make([]float64, rows), Targets: make([]float64, rows)}
	for i := range rows {
		d.X[i] = float64(i%1000) / 1000
		d.Targets[i] = 2 * d.X[i]
	}
	return d
}

// hugeSpec is that spec: one hidden layer of 65,536 units and a batch of
// 1,048,576 rows in float64, a workspace of about 1 TiB (engine's
// TestEstimateMemoryOfTheCrashingSpec).
func hugeSpec(datasetID string) Spec {
	s := smallSpec("huge", datasetID, 1)
	s.Network.Hidden = []engine.LayerConfig{{Units: 65536}}
	s.Training.BatchSize = 1 << 20
	s.Training.Precision = engine.Float64
	return s
}

func TestSubmitRefusesJobOverMemoryCap(t *testing.T) {
	e := newEnv(t, Options{Workers: 1, JobMaxMemory: 1 << 30}, testHooks{})
	id := mustDataset(t, e.st, narrowData(1<<20))
	_, err := e.m.Submit(context.Background(), hugeSpec(id))
	fields := fieldsOf(t, err)
	for _, want := range []string{"training.batch_size", "network.hidden[0].units"} {
		if !slices.Contains(fields, want) {
			t.Errorf("errors on %v, want one on %s", fields, want)
		}
	}
	if msg := err.Error(); !strings.Contains(msg, "TiB") || !strings.Contains(msg, "1 GiB") {
		t.Errorf("error %q does not state the estimate (about 1 TiB) and the 1 GiB cap", msg)
	}
	if recs, _ := e.st.ListJobs(context.Background()); len(recs) != 0 {
		t.Errorf("%d job records written for a refused job, want 0", len(recs))
	}
	// The same dataset with the default network and batch fits.
	ok := mustSubmit(t, e.m, smallSpec("fits", id, 1))
	waitTerminal(t, e.m, ok.ID)
}

// TestRestartWithJobOverMemoryCap replays the crash loop: a job record for
// the huge spec, as a build without the memory cap accepted it, is in the
// data directory, queued or interrupted while running. Start must fail it
// with an error naming the estimate, without a worker allocating for it
// (which would kill this test process with a fatal out-of-memory error),
// and the manager must go on running other jobs.
func TestRestartWithJobOverMemoryCap(t *testing.T) {
	for _, status := range []Status{Queued, Running} {
		t.Run(string(status), func(t *testing.T) {
			dir := t.TempDir()
			st := openStore(t, dir)
			defer st.Close()
			id := mustDataset(t, st, narrowData(1<<20))
			old, err := New(st, Options{Workers: 1, JobMaxMemory: -1})
			if err != nil {
				t.Fatal(err)
			}
			jobID := uuid.NewString()
			putRecord(t, st, old, hugeSpec(id), jobID, 1, status, 1)

			m := newManager(t, st, Options{Workers: 1, JobMaxMemory: 1 << 30}, testHooks{})
			j, err := m.Get(context.Background(), jobID)
			if err != nil {
				t.Fatal(err)
			}
			if j.Status != Failed || !strings.Contains(j.Error, "TiB") || !strings.Contains(j.Error, "training.batch_size") {
				t.Errorf("after Start: status %s, error %q; want failed, naming the estimate and training.batch_size", j.Status, j.Error)
			}
			if rec := storedJob(t, st, jobID); rec.Status != string(Failed) {
				t.Errorf("stored status %s, want failed", rec.Status)
			}
			next := mustSubmit(t, m, smallSpec("after", id, 1))
			if got := waitTerminal(t, m, next.ID); got.Status != Succeeded {
				t.Errorf("job after the refused one: %s (%s), want succeeded", got.Status, got.Error)
			}
		})
	}
}

// TestJobsWaitForMemory gives a budget that holds one small job's
// estimate but not two, and two workers: the second job stays queued while
// the first runs, and starts when the first ends.
func TestJobsWaitForMemory(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	defer st.Close()
	id := mustDataset(t, st, binaryData(64))
	// The probe has the same workers, so its jobs the same threads and
	// packing buffers, as the manager under test.
	probe, err := New(st, Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := probe.Resolve(context.Background(), smallSpec("a", id, 2))
	if err != nil {
		t.Fatal(err)
	}
	est, _, ok := probe.estimate(context.Background(), rs)
	if !ok {
		t.Fatal("no estimate for the probe spec")
	}
	budget := membudget.New(est.Total * 3 / 2)
	g := newGate()
	m := newManager(t, st, Options{Workers: 2, Memory: budget, JobMaxMemory: budget.Size()}, testHooks{beforeRun: func(ctx context.Context, id, _ string) { g.wait(ctx, id) }})

	first := mustSubmit(t, m, smallSpec("a", id, 2))
	if got := g.await(t); got != first.ID {
		t.Fatalf("gate reached by %s, want %s", got, first.ID)
	}
	second := mustSubmit(t, m, smallSpec("b", id, 2))
	if used := budget.Used(); used != est.Total {
		t.Errorf("budget used %d while one job runs, want its estimate %d", used, est.Total)
	}
	// The second worker is idle, but the budget has room for half a job.
	if j, _ := m.Get(context.Background(), second.ID); j.Status != Queued {
		t.Errorf("second job %s while the first holds the memory, want queued", j.Status)
	}
	g.release()
	for _, id := range []string{first.ID, second.ID} {
		if j := waitTerminal(t, m, id); j.Status != Succeeded {
			t.Errorf("job %s: %s (%s), want succeeded", id, j.Status, j.Error)
		}
	}
	waitFor(t, m, second.ID, "the budget to be given back", func(Job) bool { return budget.Used() == 0 })
}

// TestMaxCellsFor checks that a dataset at the derived cap, in both of
// the costliest shapes MaxCellsFor considers, fits the memory a job may
// use with the default settings, and that the cap is not needlessly low:
// 10% more cells no longer fit one of them.
func TestMaxCellsFor(t *testing.T) {
	fitsAll := func(cells, limit int64) bool {
		numeric := engine.DataShape{Rows: int(cells), Features: 1, Outputs: 1, TargetColumns: 1, ValFraction: true}
		labels := engine.DataShape{Rows: int(cells), Features: 1, Outputs: 1, Labels: true, LabelBytes: maxCapLabelBytes, ValFraction: true}
		// A job that sets no option: float32 (jobs.DefaultPrecision).
		cfg := engine.Config{Training: engine.TrainingConfig{Precision: engine.Float32}}
		return engine.EstimateMemory(cfg, engine.TaskRegression, numeric).Total <= limit &&
			engine.EstimateMemory(cfg, engine.TaskBinary, labels).Total <= limit
	}
	for _, limit := range []int64{64 << 20, 1 << 30, 8 << 30} {
		cells := MaxCellsFor(limit)
		if !fitsAll(cells, limit) {
			t.Errorf("MaxCellsFor(%d) = %d cells, whose default job does not fit", limit, cells)
		}
		if cells < DefaultMaxCells && fitsAll(cells+cells/10, limit) {
			t.Errorf("MaxCellsFor(%d) = %d cells, but 10%% more also fit", limit, cells)
		}
	}
	if got := MaxCellsFor(1 << 50); got != DefaultMaxCells {
		t.Errorf("MaxCellsFor(1 PiB) = %d, want the cap DefaultMaxCells %d", got, DefaultMaxCells)
	}
}
