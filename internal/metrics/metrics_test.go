package metrics

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/jobs"
	"github.com/backpropd/backpropd/internal/store"
)

// clock is a settable time source for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func mustNew(tb testing.TB, opt Options) (*Metrics, *prometheus.Registry) {
	tb.Helper()
	reg := prometheus.NewPedanticRegistry()
	m, err := New(reg, opt)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return m, reg
}

func ptr(v float64) *float64 { return &v }

func TestNewInitializesKnownSeries(t *testing.T) {
	_, reg := mustNew(t, Options{Workers: 3, QueueCapacity: 17, Version: "v1.2.3"})
	want := fmt.Sprintf(`
# HELP backpropd_build_info Always 1; the labels name the build version and the Go version.
# TYPE backpropd_build_info gauge
backpropd_build_info{goversion=%q,version="v1.2.3"} 1
# HELP backpropd_job_last_success_timestamp_seconds Unix time at which the last training job succeeded; 0 before the first.
# TYPE backpropd_job_last_success_timestamp_seconds gauge
backpropd_job_last_success_timestamp_seconds 0
# HELP backpropd_job_queue_capacity How many jobs the queue holds before new ones are refused.
# TYPE backpropd_job_queue_capacity gauge
backpropd_job_queue_capacity 17
# HELP backpropd_jobs Training jobs by status: queued (waiting for a worker) or running.
# TYPE backpropd_jobs gauge
backpropd_jobs{status="queued"} 0
backpropd_jobs{status="running"} 0
# HELP backpropd_jobs_finished_total Training jobs that reached a terminal status, by that status.
# TYPE backpropd_jobs_finished_total counter
backpropd_jobs_finished_total{status="cancelled"} 0
backpropd_jobs_finished_total{status="failed"} 0
backpropd_jobs_finished_total{status="succeeded"} 0
# HELP backpropd_workers Size of the training worker pool.
# TYPE backpropd_workers gauge
backpropd_workers 3
# HELP backpropd_workers_busy Workers currently running a training job.
# TYPE backpropd_workers_busy gauge
backpropd_workers_busy 0
`, runtime.Version())
	names := []string{"backpropd_build_info", "backpropd_job_last_success_timestamp_seconds",
		"backpropd_job_queue_capacity", "backpropd_jobs", "backpropd_jobs_finished_total",
		"backpropd_workers", "backpropd_workers_busy"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	// The histogram without labels exists from the start, with count 0.
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP backpropd_job_duration_seconds Wall time of finished training jobs from start to end, in seconds.
# TYPE backpropd_job_duration_seconds histogram
`+histogramLines("backpropd_job_duration_seconds", "", jobDurationBuckets, nil)),
		"backpropd_job_duration_seconds"); err != nil {
		t.Error(err)
	}
}

// histogramLines renders the exposition of a histogram with the given
// observations, for GatherAndCompare. labels is "" or `a="b",`.
func histogramLines(name, labels string, buckets, obs []float64) string {
	var b strings.Builder
	sum := 0.0
	for _, o := range obs {
		sum += o
	}
	for _, ub := range buckets {
		n := 0
		for _, o := range obs {
			if o <= ub {
				n++
			}
		}
		fmt.Fprintf(&b, "%s_bucket{%sle=\"%g\"} %d\n", name, labels, ub, n)
	}
	fmt.Fprintf(&b, "%s_bucket{%sle=\"+Inf\"} %d\n", name, labels, len(obs))
	l := strings.TrimSuffix(labels, ",")
	if l != "" {
		l = "{" + l + "}"
	}
	fmt.Fprintf(&b, "%s_sum%s %g\n%s_count%s %d\n", name, l, sum, name, l, len(obs))
	return b.String()
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		reg  func() prometheus.Registerer
		opt  Options
		want string
	}{
		{"nil registerer", func() prometheus.Registerer { return nil }, Options{}, "nil Registerer"},
		{"negative retention", func() prometheus.Registerer { return prometheus.NewRegistry() },
			Options{JobRetention: -time.Second}, "job retention -1s"},
		{"go collector already registered", func() prometheus.Registerer {
			r := prometheus.NewRegistry()
			r.MustRegister(collectors.NewGoCollector())
			return r
		}, Options{}, "register"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.reg(), tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// A classifier job with validation data through its whole life: the per-job
// series carry the latest epoch, the aggregates add up, the outcome is
// counted.
func TestJobLifecycle(t *testing.T) {
	clk := newClock()
	m, reg := mustNew(t, Options{Now: clk.Now, JobRetention: time.Minute})
	created := clk.Now()
	j := jobs.Job{ID: "0b9e1f0e-1d47-4a55-9b7a-3f0d1a2b3c4d", ModelName: "iris", Status: jobs.Queued, CreatedAt: created}
	j.Spec.Training.Epochs = 50
	m.JobQueued(j)
	if q, r := m.jobs.counts(); q != 1 || r != 0 {
		t.Fatalf("after JobQueued: counts %d,%d, want 1,0", q, r)
	}

	started := created.Add(2 * time.Second)
	j.Status, j.StartedAt = jobs.Running, &started
	j.Progress = jobs.Progress{Epochs: 40} // the resolved plan wins over the spec
	m.JobStarted(j)
	m.WorkersBusy(1)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP backpropd_training_epoch Epochs a training job has completed.
# TYPE backpropd_training_epoch gauge
backpropd_training_epoch{job_id="0b9e1f0e-1d47-4a55-9b7a-3f0d1a2b3c4d",model_name="iris"} 0
# HELP backpropd_training_epochs_planned Epochs a training job is configured to run (early stopping may end it sooner).
# TYPE backpropd_training_epochs_planned gauge
backpropd_training_epochs_planned{job_id="0b9e1f0e-1d47-4a55-9b7a-3f0d1a2b3c4d",model_name="iris"} 40
# HELP backpropd_jobs Training jobs by status: queued (waiting for a worker) or running.
# TYPE backpropd_jobs gauge
backpropd_jobs{status="queued"} 0
backpropd_jobs{status="running"} 1
`), "backpropd_training_epoch", "backpropd_training_epochs_planned", "backpropd_training_loss", "backpropd_jobs"); err != nil {
		t.Fatalf("after JobStarted: %v", err)
	}

	// Two epochs over 120 rows: 120 rows in 0.5 s is 240 rows/s.
	epochs := []engine.Epoch{
		{Epoch: 1, Loss: 1.1, ValLoss: ptr(1.2), Accuracy: ptr(0.4), ValAccuracy: ptr(0.35),
			DurationSeconds: 0.5, SamplesPerSecond: 240},
		{Epoch: 2, Loss: 0.7, ValLoss: ptr(0.8), Accuracy: ptr(0.75), ValAccuracy: ptr(0.7),
			Duration: 400 * time.Millisecond, SamplesPerSecond: 300},
	}
	for _, e := range epochs {
		j.Progress.Epoch = e.Epoch
		m.JobEpoch(j, e)
	}
	perJob := `
# HELP backpropd_training_accuracy Accuracy (0 to 1) of a classifier job's latest epoch, on the training or the validation split.
# TYPE backpropd_training_accuracy gauge
backpropd_training_accuracy{job_id="0b9e1f0e-1d47-4a55-9b7a-3f0d1a2b3c4d",model_name="iris",split="train"} 0.75
backpropd_training_accuracy{job_id="0b9e1f0e-1d47-4a55-9b7a-3f0d1a2b3c4d",model_name="iris",split="validation"} 0.7
# HELP backpropd_training_epoch Epochs a training job has completed.
# TYPE backpropd_training_epoch gauge
backpropd_training_epoch{job_id="0b9e1f0e-1d47-4a55-9b7a-3f0d1a2b3c4d",model_name="iris"} 2
# HELP backpropd_training_epochs_planned Epochs a training job is configured to run (early stopping may end it sooner).
# TYPE backpropd_training_epochs_planned gauge
backpropd_training_epochs_planned{job_id="0b9e1f0e-1d47-4a55-9b7a-3f0d1a2b3c4d",model_name="iris"} 40
# HELP backpropd_training_loss Loss of a training job's latest epoch, on the training or the validation split.
# TYPE backpropd_training_loss gauge
backpropd_training_loss{job_id="0b9e1f0e-1d47-4a55-9b7a-3f0d1a2b3c4d",model_name="iris",split="train"} 0.7
backpropd_training_loss{job_id="0b9e1f0e-1d47-4a55-9b7a-3f0d1a2b3c4d",model_name="iris",split="validation"} 0.8
# HELP backpropd_training_samples_per_second Training throughput of a job's latest epoch, in rows per second.
# TYPE backpropd_training_samples_per_second gauge
backpropd_training_samples_per_second{job_id="0b9e1f0e-1d47-4a55-9b7a-3f0d1a2b3c4d",model_name="iris"} 300
`
	perJobNames := []string{"backpropd_training_accuracy", "backpropd_training_epoch",
		"backpropd_training_epochs_planned", "backpropd_training_loss", "backpropd_training_samples_per_second"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(perJob), perJobNames...); err != nil {
		t.Fatalf("after two epochs: %v", err)
	}
	// 240 rows/s × 0.5 s + 300 rows/s × 0.4 s = 120 + 120 rows.
	if got := testutil.ToFloat64(m.samplesTotal.WithLabelValues("iris")); got != 240 {
		t.Errorf("samples_total = %g, want 240", got)
	}
	if got := testutil.ToFloat64(m.epochsTotal.WithLabelValues("iris")); got != 2 {
		t.Errorf("epochs_total = %g, want 2", got)
	}

	finished := started.Add(90 * time.Second)
	j.Status, j.FinishedAt = jobs.Succeeded, &finished
	m.JobFinished(j)
	m.WorkersBusy(0)
	if got := testutil.ToFloat64(m.finishedTotal.WithLabelValues("succeeded")); got != 1 {
		t.Errorf("jobs_finished_total{succeeded} = %g, want 1", got)
	}
	if got, want := testutil.ToFloat64(m.lastSuccess), float64(finished.Unix()); got != want {
		t.Errorf("last success = %g, want %g", got, want)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP backpropd_job_duration_seconds Wall time of finished training jobs from start to end, in seconds.
# TYPE backpropd_job_duration_seconds histogram
`+histogramLines("backpropd_job_duration_seconds", "", jobDurationBuckets, []float64{90})),
		"backpropd_job_duration_seconds"); err != nil {
		t.Error(err)
	}
	if q, r := m.jobs.counts(); q != 0 || r != 0 {
		t.Errorf("after JobFinished: counts %d,%d, want 0,0", q, r)
	}
	// Within the retention the final values stay exported.
	clk.Advance(59 * time.Second)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(perJob), perJobNames...); err != nil {
		t.Fatalf("59 s after the end: %v", err)
	}
	// After it, they are gone; the aggregates stay.
	clk.Advance(time.Second)
	if n, err := testutil.GatherAndCount(reg, perJobNames...); err != nil || n != 0 {
		t.Errorf("60 s after the end: %d per-job series (err %v), want 0", n, err)
	}
	if got := testutil.ToFloat64(m.epochsTotal.WithLabelValues("iris")); got != 2 {
		t.Errorf("epochs_total after retention = %g, want 2", got)
	}
}

// A regression job without validation exports only the train loss, and no
// accuracy.
func TestJobEpochRegressionSeries(t *testing.T) {
	m, reg := mustNew(t, Options{})
	j := jobs.Job{ID: "j1", ModelName: "houses", Status: jobs.Running}
	m.JobStarted(j)
	m.JobEpoch(j, engine.Epoch{Epoch: 1, Loss: 3.5, SamplesPerSecond: 1000, DurationSeconds: 0.1})
	want := `
# HELP backpropd_training_loss Loss of a training job's latest epoch, on the training or the validation split.
# TYPE backpropd_training_loss gauge
backpropd_training_loss{job_id="j1",model_name="houses",split="train"} 3.5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"backpropd_training_loss", "backpropd_training_accuracy"); err != nil {
		t.Error(err)
	}
	// Without a planned epoch count (neither progress nor spec says), no
	// epochs_planned series rather than a misleading 0.
	if n, _ := testutil.GatherAndCount(reg, "backpropd_training_epochs_planned"); n != 0 {
		t.Errorf("epochs_planned series = %d, want 0", n)
	}
}

func TestJobCountsFromManager(t *testing.T) {
	q, r := 5, 2
	m, reg := mustNew(t, Options{JobCounts: func() (int, int) { return q, r }})
	// The observer calls must not override the manager's counts.
	m.JobQueued(jobs.Job{ID: "x", Status: jobs.Queued})
	want := func(q, r int) string {
		return fmt.Sprintf(`
# HELP backpropd_jobs Training jobs by status: queued (waiting for a worker) or running.
# TYPE backpropd_jobs gauge
backpropd_jobs{status="queued"} %d
backpropd_jobs{status="running"} %d
`, q, r)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want(5, 2)), "backpropd_jobs"); err != nil {
		t.Error(err)
	}
	q, r = 0, 3 // read at scrape time
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want(0, 3)), "backpropd_jobs"); err != nil {
		t.Error(err)
	}
}

func TestStoreStatsReadAtScrape(t *testing.T) {
	st := store.Stats{Datasets: 2, Models: 3, TotalBytes: 4096}
	calls := 0
	_, reg := mustNew(t, Options{StoreStats: func() store.Stats { calls++; return st }})
	want := func(s store.Stats) string {
		return fmt.Sprintf(`
# HELP backpropd_datasets Stored datasets, including the hidden ones that hold jobs' inline data.
# TYPE backpropd_datasets gauge
backpropd_datasets %d
# HELP backpropd_models Stored model versions, across all model names.
# TYPE backpropd_models gauge
backpropd_models %d
# HELP backpropd_store_bytes Bytes of every file the store keeps in the data directory.
# TYPE backpropd_store_bytes gauge
backpropd_store_bytes %d
`, s.Datasets, s.Models, s.TotalBytes)
	}
	names := []string{"backpropd_datasets", "backpropd_models", "backpropd_store_bytes"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want(st)), names...); err != nil {
		t.Error(err)
	}
	st = store.Stats{Datasets: 7, Models: 1, TotalBytes: 1 << 30}
	calls = 0
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want(st)), names...); err != nil {
		t.Error(err)
	}
	if calls != 1 {
		t.Errorf("one scrape called StoreStats %d times, want 1", calls)
	}
}

func TestObservePrediction(t *testing.T) {
	m, reg := mustNew(t, Options{})
	m.ObservePrediction("iris", 3, 2*time.Millisecond)
	m.ObservePrediction("iris", 1, 300*time.Microsecond)
	m.ObservePrediction("mnist", 0, time.Second) // an empty batch counts as a call, not as rows
	if got := testutil.ToFloat64(m.predictionsTotal.WithLabelValues("iris")); got != 4 {
		t.Errorf("predictions_total{iris} = %g, want 4", got)
	}
	want := `
# HELP backpropd_prediction_duration_seconds Time one prediction call spent in the model, in seconds, by model name.
# TYPE backpropd_prediction_duration_seconds histogram
` + histogramLines("backpropd_prediction_duration_seconds", `model_name="iris",`, predictionBuckets, []float64{0.002, 0.0003}) +
		histogramLines("backpropd_prediction_duration_seconds", `model_name="mnist",`, predictionBuckets, []float64{1})
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "backpropd_prediction_duration_seconds"); err != nil {
		t.Error(err)
	}
}

// Cancelled-while-queued jobs never had series; failed and cancelled jobs
// are counted under their status.
func TestJobFinishedOutcomes(t *testing.T) {
	m, reg := mustNew(t, Options{})
	for i, s := range []jobs.Status{jobs.Failed, jobs.Cancelled, jobs.Cancelled, jobs.Succeeded} {
		id := fmt.Sprint("j", i)
		m.JobQueued(jobs.Job{ID: id, Status: jobs.Queued})
		m.JobFinished(jobs.Job{ID: id, Status: s})
	}
	want := `
# HELP backpropd_jobs_finished_total Training jobs that reached a terminal status, by that status.
# TYPE backpropd_jobs_finished_total counter
backpropd_jobs_finished_total{status="cancelled"} 2
backpropd_jobs_finished_total{status="failed"} 1
backpropd_jobs_finished_total{status="succeeded"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "backpropd_jobs_finished_total"); err != nil {
		t.Error(err)
	}
	// Never started: no duration observed.
	if n := testutil.CollectAndCount(m.jobDuration); n != 1 {
		t.Fatalf("duration histogram has %d series, want 1", n)
	}
	if got := histogramCount(t, reg, "backpropd_job_duration_seconds"); got != 0 {
		t.Errorf("duration count = %d, want 0", got)
	}
	if q, r := m.jobs.counts(); q != 0 || r != 0 {
		t.Errorf("counts %d,%d, want 0,0", q, r)
	}
	if len(m.jobs.expire) != 0 || len(m.jobs.series) != 0 {
		t.Errorf("%d expiries, %d series for jobs that never ran, want none", len(m.jobs.expire), len(m.jobs.series))
	}
}

func histogramCount(tb testing.TB, g prometheus.Gatherer, name string) uint64 {
	tb.Helper()
	mfs, err := g.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	tb.Fatalf("%s not gathered", name)
	return 0
}

// The bound on per-job series: 1,000 jobs finish one second apart with a
// five-minute retention; afterwards only the jobs that finished within the
// last five minutes, plus the still running ones, have series.
func TestRetentionBoundsSeriesAfter1000Jobs(t *testing.T) {
	clk := newClock()
	m, reg := mustNew(t, Options{Now: clk.Now, JobRetention: 5 * time.Minute})
	const n = 1000
	running := []jobs.Job{
		{ID: "running-a", ModelName: "m", Status: jobs.Running},
		{ID: "running-b", ModelName: "m", Status: jobs.Running},
	}
	for _, j := range running {
		m.JobStarted(j)
		m.JobEpoch(j, engine.Epoch{Epoch: 1, Loss: 1})
	}
	for i := range n {
		j := jobs.Job{ID: fmt.Sprintf("job-%04d", i), ModelName: fmt.Sprint("model-", i%7), Status: jobs.Queued}
		j.Spec.Training.Epochs = 3
		m.JobQueued(j)
		j.Status = jobs.Running
		m.JobStarted(j)
		m.JobEpoch(j, engine.Epoch{Epoch: 1, Loss: 2, ValLoss: ptr(2.5), Accuracy: ptr(0.5), ValAccuracy: ptr(0.4)})
		j.Status = jobs.Succeeded
		m.JobFinished(j)
		clk.Advance(time.Second)
	}
	// Job i finished at i s and expires at i+300 s; now is 1000 s. The
	// sweep drops expiries at or before now, so jobs 701..999 remain.
	retained := 299
	ids := jobIDs(t, reg)
	if got, want := len(ids), retained+len(running); got != want {
		t.Fatalf("%d jobs have series, want %d", got, want)
	}
	for _, id := range []string{"job-0701", "job-0999", "running-a", "running-b"} {
		if !ids[id] {
			t.Errorf("%s has no series, want it retained", id)
		}
	}
	if ids["job-0700"] {
		t.Errorf("job-0700 still has series 300 s after it finished")
	}
	// Every retained finished job exports its 7 series (epoch, planned,
	// samples/s, 2 losses, 2 accuracies); the running ones, without a plan
	// or validation, 3 (epoch, samples/s, train loss).
	if got, want := countPerJobSeries(t, reg), 7*retained+3*len(running); got != want {
		t.Errorf("%d per-job series, want %d", got, want)
	}
	// Memory is bounded like the series.
	if len(m.jobs.series) != retained+len(running) || len(m.jobs.expire) != retained {
		t.Errorf("internal state: %d series, %d expiries, want %d and %d",
			len(m.jobs.series), len(m.jobs.expire), retained+len(running), retained)
	}
	clk.Advance(5 * time.Minute)
	ids = jobIDs(t, reg)
	if len(ids) != len(running) || !ids["running-a"] || !ids["running-b"] {
		t.Errorf("after another retention period: series for %v, want only the running jobs", ids)
	}
	if got := testutil.ToFloat64(m.finishedTotal.WithLabelValues("succeeded")); got != n {
		t.Errorf("jobs_finished_total{succeeded} = %g, want %d", got, n)
	}
}

func jobIDs(tb testing.TB, g prometheus.Gatherer) map[string]bool {
	tb.Helper()
	mfs, err := g.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	ids := make(map[string]bool)
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == "job_id" {
					ids[lp.GetValue()] = true
				}
			}
		}
	}
	return ids
}

func countPerJobSeries(tb testing.TB, g prometheus.Gatherer) int {
	tb.Helper()
	n, err := testutil.GatherAndCount(g, "backpropd_training_loss", "backpropd_training_accuracy",
		"backpropd_training_epoch", "backpropd_training_epochs_planned", "backpropd_training_samples_per_second")
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// Observer calls and scrapes race freely (run with -race); a scrape never
// sees a torn state that fails the pedantic registry's checks.
func TestConcurrentObserveAndGather(t *testing.T) {
	m, reg := mustNew(t, Options{JobRetention: time.Millisecond})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				j := jobs.Job{ID: fmt.Sprintf("w%d-%d", w, i), ModelName: "m", Status: jobs.Running}
				m.JobQueued(j)
				m.JobStarted(j)
				m.WorkersBusy(w)
				m.JobEpoch(j, engine.Epoch{Epoch: 1, Loss: 1, DurationSeconds: 1, SamplesPerSecond: 10})
				j.Status = jobs.Succeeded
				m.JobFinished(j)
				m.ObservePrediction("m", 1, time.Microsecond)
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			if _, err := reg.Gather(); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	if got := testutil.ToFloat64(m.epochsTotal.WithLabelValues("m")); got != 800 {
		t.Errorf("epochs_total = %g, want 800", got)
	}
	if got := testutil.ToFloat64(m.samplesTotal.WithLabelValues("m")); got != 8000 {
		t.Errorf("samples_total = %g, want 8000 (10 rows/s × 1 s × 800 epochs)", got)
	}
}

// BenchmarkJobEpoch is the cost the job manager pays per epoch.
func BenchmarkJobEpoch(b *testing.B) {
	m, _ := mustNew(b, Options{})
	j := jobs.Job{ID: "j", ModelName: "m", Status: jobs.Running}
	m.JobStarted(j)
	e := engine.Epoch{Epoch: 1, Loss: 1, ValLoss: ptr(1), Accuracy: ptr(0.5), ValAccuracy: ptr(0.5),
		DurationSeconds: 1, SamplesPerSecond: 1000}
	b.ReportAllocs()
	for b.Loop() {
		m.JobEpoch(j, e)
	}
}

// BenchmarkGather1000Jobs is one scrape with 1,000 jobs' series retained.
func BenchmarkGather1000Jobs(b *testing.B) {
	m, reg := mustNew(b, Options{})
	for i := range 1000 {
		j := jobs.Job{ID: fmt.Sprint("job-", i), ModelName: "m", Status: jobs.Running}
		j.Spec.Training.Epochs = 10
		m.JobStarted(j)
		m.JobEpoch(j, engine.Epoch{Epoch: 1, Loss: 1, ValLoss: ptr(1), Accuracy: ptr(0.5), ValAccuracy: ptr(0.5)})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// A scrape stuck on a slow reader must not hold up the job manager: the
// collector sends its metrics only after releasing its lock.
func TestObserverDoesNotWaitForAStuckScrape(t *testing.T) {
	m, _ := mustNew(t, Options{})
	j := jobs.Job{ID: "j", ModelName: "m", Status: jobs.Running}
	m.JobStarted(j)
	m.JobEpoch(j, engine.Epoch{Epoch: 1, Loss: 1})
	ch := make(chan prometheus.Metric) // nobody reads: Collect blocks on its first send
	collecting := make(chan struct{})
	go func() {
		close(collecting)
		m.jobs.Collect(ch)
		close(ch)
	}()
	<-collecting
	// Give Collect time to reach its send; were it to hold the lock
	// there, the calls below would hang.
	time.Sleep(10 * time.Millisecond)
	done := make(chan struct{})
	go func() {
		m.JobEpoch(j, engine.Epoch{Epoch: 2, Loss: 0.5})
		m.JobFinished(jobs.Job{ID: "j", ModelName: "m", Status: jobs.Succeeded})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("JobEpoch blocked behind a scrape")
	}
	for range ch {
		// Drain so that the collector goroutine ends.
	}
}
