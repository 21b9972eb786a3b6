package metrics

import (
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/jobs"
)

var _ jobs.Observer = (*Metrics)(nil)

// JobQueued records that a job entered the queue.
func (m *Metrics) JobQueued(j jobs.Job) {
	m.jobs.queued(j)
}

// JobStarted records that a worker picked a job up; its per-job series
// appear now, with epoch 0 (or the epoch a resumed job restarts from).
func (m *Metrics) JobStarted(j jobs.Job) {
	m.jobs.started(j)
}

// JobEpoch updates a job's per-job gauges and its model's epoch and sample
// counters after one epoch. The per-job gauges keep the job's own model
// name, since they are bounded by the jobs, not by the names.
func (m *Metrics) JobEpoch(j jobs.Job, e engine.Epoch) {
	m.jobs.epoch(j, e)
	m.models.observe(j.ModelName, func(label string) {
		m.epochsTotal.WithLabelValues(label).Inc()
		if n := epochSamples(e); n > 0 {
			m.samplesTotal.WithLabelValues(label).Add(n)
		}
	})
}

// epochSamples is the number of training rows one epoch processed. The
// engine reports throughput and duration, whose product is the row count
// up to rounding.
func epochSamples(e engine.Epoch) float64 {
	d := e.DurationSeconds
	if d == 0 {
		d = e.Duration.Seconds()
	}
	n := math.Round(e.SamplesPerSecond * d)
	if math.IsNaN(n) || math.IsInf(n, 0) || n < 0 {
		return 0
	}
	return n
}

// JobFinished records a job's outcome and duration, and schedules its
// per-job series for deletion after the retention time.
func (m *Metrics) JobFinished(j jobs.Job) {
	if j.Status.Terminal() {
		m.finishedTotal.WithLabelValues(string(j.Status)).Inc()
	}
	if j.StartedAt != nil && j.FinishedAt != nil {
		if d := j.FinishedAt.Sub(*j.StartedAt); d >= 0 {
			m.jobDuration.Observe(d.Seconds())
		}
	}
	if j.Status == jobs.Succeeded {
		t := m.now()
		if j.FinishedAt != nil {
			t = *j.FinishedAt
		}
		m.lastSuccess.Set(float64(t.UnixNano()) / 1e9)
	}
	m.jobs.finished(j)
}

// WorkersBusy records how many workers are running a job.
func (m *Metrics) WorkersBusy(n int) {
	m.workersBusy.Set(float64(n))
}

var (
	lossDesc = prometheus.NewDesc("backpropd_training_loss",
		"Loss of a training job's latest epoch, on the training or the validation split.",
		[]string{"model_name", "job_id", "split"}, nil)
	accuracyDesc = prometheus.NewDesc("backpropd_training_accuracy",
		"Accuracy (0 to 1) of a classifier job's latest epoch, on the training or the validation split.",
		[]string{"model_name", "job_id", "split"}, nil)
	epochDesc = prometheus.NewDesc("backpropd_training_epoch",
		"Epochs a training job has completed.",
		[]string{"model_name", "job_id"}, nil)
	epochsPlannedDesc = prometheus.NewDesc("backpropd_training_epochs_planned",
		"Epochs a training job is configured to run (early stopping may end it sooner).",
		[]string{"model_name", "job_id"}, nil)
	samplesPerSecondDesc = prometheus.NewDesc("backpropd_training_samples_per_second",
		"Training throughput of a job's latest epoch, in rows per second.",
		[]string{"model_name", "job_id"}, nil)
)

// jobSeries is the latest state of one job's per-job series.
type jobSeries struct {
	model            string
	epoch, planned   int
	samplesPerSecond float64
	hasEpoch         bool
	loss             float64
	valLoss          *float64
	accuracy         *float64
	valAccuracy      *float64
}

// expiry is a finished job whose series go away at a time.
type expiry struct {
	id string
	at time.Time
}

// jobCollector exports the per-job series and bounds them: a finished
// job's series are dropped once its retention has passed, checked on every
// observer call and every scrape. Because the retention is the same for
// every job, expiries are queued in finishing order and the sweep only
// looks at the head of the queue.
type jobCollector struct {
	retention time.Duration
	now       func() time.Time

	mu      sync.Mutex
	series  map[string]*jobSeries
	expire  []expiry
	active  map[string]jobs.Status // queued or running, for the fallback counts
	nQueued int
	nRun    int
}

func newJobCollector(retention time.Duration, now func() time.Time) *jobCollector {
	return &jobCollector{
		retention: retention,
		now:       now,
		series:    make(map[string]*jobSeries),
		active:    make(map[string]jobs.Status),
	}
}

// sweep drops expired series; c.mu must be held.
func (c *jobCollector) sweep() {
	now := c.now()
	i := 0
	for ; i < len(c.expire) && !c.expire[i].at.After(now); i++ {
		delete(c.series, c.expire[i].id)
	}
	if i > 0 {
		// Copy rather than reslice, so the backing array does not grow
		// without bound under a steady stream of jobs.
		c.expire = append(c.expire[:0], c.expire[i:]...)
	}
}

func (c *jobCollector) setActive(id string, s jobs.Status) {
	switch c.active[id] {
	case jobs.Queued:
		c.nQueued--
	case jobs.Running:
		c.nRun--
	}
	delete(c.active, id)
	switch s {
	case jobs.Queued:
		c.nQueued++
		c.active[id] = s
	case jobs.Running:
		c.nRun++
		c.active[id] = s
	}
}

func (c *jobCollector) counts() (queued, running int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nQueued, c.nRun
}

func (c *jobCollector) queued(j jobs.Job) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweep()
	c.setActive(j.ID, jobs.Queued)
}

// get returns j's series, creating them; c.mu must be held.
func (c *jobCollector) get(j jobs.Job) *jobSeries {
	s := c.series[j.ID]
	if s == nil {
		s = &jobSeries{model: j.ModelName}
		c.series[j.ID] = s
	}
	if p := plannedEpochs(j); p > 0 {
		s.planned = p
	}
	return s
}

func plannedEpochs(j jobs.Job) int {
	if j.Progress.Epochs > 0 {
		return j.Progress.Epochs
	}
	return j.Spec.Training.Epochs
}

func (c *jobCollector) started(j jobs.Job) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweep()
	c.setActive(j.ID, jobs.Running)
	s := c.get(j)
	s.epoch = j.Progress.Epoch
}

func (c *jobCollector) epoch(j jobs.Job, e engine.Epoch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweep()
	s := c.get(j)
	s.epoch = e.Epoch
	s.samplesPerSecond = e.SamplesPerSecond
	s.hasEpoch = true
	s.loss = e.Loss
	s.valLoss = copyPtr(e.ValLoss)
	s.accuracy = copyPtr(e.Accuracy)
	s.valAccuracy = copyPtr(e.ValAccuracy)
}

func (c *jobCollector) finished(j jobs.Job) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweep()
	c.setActive(j.ID, j.Status)
	if _, ok := c.series[j.ID]; ok {
		c.expire = append(c.expire, expiry{id: j.ID, at: c.now().Add(c.retention)})
	}
}

func copyPtr(p *float64) *float64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func (c *jobCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lossDesc
	ch <- accuracyDesc
	ch <- epochDesc
	ch <- epochsPlannedDesc
	ch <- samplesPerSecondDesc
}

// Collect builds the metrics under the lock and sends them after releasing
// it, so that a slow scrape never holds up the job manager's observer calls.
func (c *jobCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	c.sweep()
	ms := make([]prometheus.Metric, 0, 7*len(c.series))
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ms = append(ms, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...))
	}
	for id, s := range c.series {
		gauge(epochDesc, float64(s.epoch), s.model, id)
		if s.planned > 0 {
			gauge(epochsPlannedDesc, float64(s.planned), s.model, id)
		}
		if !s.hasEpoch {
			continue
		}
		gauge(samplesPerSecondDesc, s.samplesPerSecond, s.model, id)
		gauge(lossDesc, s.loss, s.model, id, "train")
		if s.valLoss != nil {
			gauge(lossDesc, *s.valLoss, s.model, id, "validation")
		}
		if s.accuracy != nil {
			gauge(accuracyDesc, *s.accuracy, s.model, id, "train")
		}
		if s.valAccuracy != nil {
			gauge(accuracyDesc, *s.valAccuracy, s.model, id, "validation")
		}
	}
	c.mu.Unlock()
	for _, m := range ms {
		ch <- m
	}
}
