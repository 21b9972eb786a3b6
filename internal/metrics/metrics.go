// Package metrics holds backpropd's Prometheus collectors: per-job training
// gauges, job and worker aggregates, serving and HTTP measurements, store
// sizes, and the Go runtime and process collectors.
//
// Everything is registered on a Registerer the caller owns; the package
// keeps no globals and uses no promauto, so every test can start from a
// fresh registry. It observes the other packages through the interfaces
// they declare (jobs.Observer, api.Observer) and must not import
// internal/api or anything that does HTTP routing beyond reading chi's
// route pattern.
package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/backpropd/backpropd/internal/jobs"
	"github.com/backpropd/backpropd/internal/store"
)

// DefaultJobRetention is how long a finished job's per-job series stay
// exported when Options.JobRetention is zero.
const DefaultJobRetention = 5 * time.Minute

// Options configure Metrics.
type Options struct {
	// JobRetention is how long a job's per-job series (loss, accuracy,
	// epoch, ...) outlive the job, so that the last scrapes see its final
	// values. Zero means DefaultJobRetention.
	JobRetention time.Duration
	// Workers and QueueCapacity are exported as constant gauges.
	Workers       int
	QueueCapacity int
	// Version is the build version for backpropd_build_info; "" is
	// exported as "unknown".
	Version string
	// JobCounts returns how many jobs are queued and running; it is read at
	// scrape time. Nil means the counts are tracked from the observer calls.
	JobCounts func() (queued, running int)
	// StoreStats returns the store's sizes; it is read at scrape time. Nil
	// means the store gauges are not exported.
	StoreStats func() store.Stats
	// MaxModels bounds the model names with per-model series of their own
	// (training epochs and samples, predictions and their latency);
	// further names share the series labelled OtherModel. Zero means
	// DefaultMaxModels.
	MaxModels int
	// Now replaces time.Now (tests drive retention with it).
	Now func() time.Time
}

// Metrics records backpropd's measurements. It implements jobs.Observer and
// the API's prediction observer; all of its methods are safe for concurrent
// use and never block on I/O.
type Metrics struct {
	opt Options
	now func() time.Time

	jobs   *jobCollector
	models *modelLabels // bounds model_name on the per-model series

	epochsTotal      *prometheus.CounterVec
	samplesTotal     *prometheus.CounterVec
	finishedTotal    *prometheus.CounterVec
	jobDuration      prometheus.Histogram
	lastSuccess      prometheus.Gauge
	workersBusy      prometheus.Gauge
	predictionsTotal *prometheus.CounterVec
	predictionDur    *prometheus.HistogramVec
	httpRequests     *prometheus.CounterVec
	httpDuration     *prometheus.HistogramVec
}

// Prediction latency is dominated by decoding and a few matrix products:
// tens of microseconds for a row, up to seconds for large batches.
var predictionBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// Training jobs run from a second (toy data) to the 24 h server cap.
var jobDurationBuckets = []float64{
	1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400,
}

// HTTP requests include dataset uploads and model downloads, so the range
// reaches further than the prediction histogram's.
var httpBuckets = []float64{
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
}

// terminalStatuses are the values of backpropd_jobs_finished_total's
// status label, all initialized to zero.
var terminalStatuses = []jobs.Status{jobs.Succeeded, jobs.Failed, jobs.Cancelled}

// New creates the collectors and registers them on reg. It fails if reg
// already holds a collector with one of the same names (for example a
// second Go collector).
func New(reg prometheus.Registerer, opt Options) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("metrics: nil Registerer")
	}
	if opt.JobRetention < 0 {
		return nil, fmt.Errorf("metrics: job retention %v: must not be negative", opt.JobRetention)
	}
	if opt.JobRetention == 0 {
		opt.JobRetention = DefaultJobRetention
	}
	if opt.MaxModels < 0 {
		return nil, fmt.Errorf("metrics: max models %d: must not be negative", opt.MaxModels)
	}
	if opt.MaxModels == 0 {
		opt.MaxModels = DefaultMaxModels
	}
	if opt.Version == "" {
		opt.Version = "unknown"
	}
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	m := &Metrics{opt: opt, now: now}
	m.jobs = newJobCollector(opt.JobRetention, now)

	m.epochsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "backpropd_training_epochs_total",
		Help: "Training epochs completed, by model name.",
	}, []string{"model_name"})
	m.samplesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "backpropd_training_samples_total",
		Help: "Training samples processed (rows times epochs), by model name.",
	}, []string{"model_name"})
	m.finishedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "backpropd_jobs_finished_total",
		Help: "Training jobs that reached a terminal status, by that status.",
	}, []string{"status"})
	for _, s := range terminalStatuses {
		m.finishedTotal.WithLabelValues(string(s))
	}
	m.jobDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "backpropd_job_duration_seconds",
		Help:    "Wall time of finished training jobs from start to end, in seconds.",
		Buckets: jobDurationBuckets,
	})
	m.lastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "backpropd_job_last_success_timestamp_seconds",
		Help: "Unix time at which the last training job succeeded; 0 before the first.",
	})
	m.workersBusy = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "backpropd_workers_busy",
		Help: "Workers currently running a training job.",
	})
	workers := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "backpropd_workers",
		Help: "Size of the training worker pool.",
	})
	workers.Set(float64(opt.Workers))
	queueCap := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "backpropd_job_queue_capacity",
		Help: "How many jobs the queue holds before new ones are refused.",
	})
	queueCap.Set(float64(opt.QueueCapacity))

	m.predictionsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "backpropd_predictions_total",
		Help: "Rows predicted, by model name.",
	}, []string{"model_name"})
	m.predictionDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "backpropd_prediction_duration_seconds",
		Help:    "Time one prediction call spent in the model, in seconds, by model name.",
		Buckets: predictionBuckets,
	}, []string{"model_name"})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "backpropd_http_requests_total",
		Help: "HTTP requests answered, by chi route pattern, method and status code.",
	}, []string{"route", "method", "code"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "backpropd_http_request_duration_seconds",
		Help:    "HTTP request handling time in seconds, by chi route pattern and method.",
		Buckets: httpBuckets,
	}, []string{"route", "method"})

	m.models = newModelLabels(opt.MaxModels, m.epochsTotal, m.samplesTotal, m.predictionsTotal, m.predictionDur)

	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "backpropd_build_info",
		Help: "Always 1; the labels name the build version and the Go version.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(opt.Version, runtime.Version()).Set(1)

	cs := []prometheus.Collector{
		m.jobs,
		m.epochsTotal, m.samplesTotal, m.finishedTotal, m.jobDuration, m.lastSuccess,
		m.workersBusy, workers, queueCap,
		m.predictionsTotal, m.predictionDur, m.httpRequests, m.httpDuration,
		buildInfo,
		newJobCountsCollector(opt.JobCounts, m.jobs),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
	if opt.StoreStats != nil {
		cs = append(cs, &storeCollector{stats: opt.StoreStats})
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	return m, nil
}

// Handler serves g in the Prometheus text exposition format (and
// OpenMetrics to scrapers that ask for it). Errors from single collectors
// are logged and skipped rather than failing the whole scrape. reg, when
// not nil, receives the handler's own error counter.
func Handler(g prometheus.Gatherer, reg prometheus.Registerer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      reg,
		// A few concurrent scrapers are normal (Prometheus HA pairs, a
		// curl); more means something is wrong, and gathering is not free.
		MaxRequestsInFlight: 8,
		Timeout:             10 * time.Second,
		EnableOpenMetrics:   true,
	})
}

// ObservePrediction records rows predicted by a model and the time the
// prediction took, under OtherModel for a name beyond Options.MaxModels.
// It implements the API's Observer.
func (m *Metrics) ObservePrediction(modelName string, rows int, d time.Duration) {
	m.models.observe(modelName, func(label string) {
		if rows > 0 {
			m.predictionsTotal.WithLabelValues(label).Add(float64(rows))
		}
		m.predictionDur.WithLabelValues(label).Observe(d.Seconds())
	})
}

// storeCollector exports the store's sizes, reading them once per scrape.
type storeCollector struct {
	stats func() store.Stats
}

var (
	modelsDesc = prometheus.NewDesc("backpropd_models",
		"Stored model versions, across all model names.", nil, nil)
	datasetsDesc = prometheus.NewDesc("backpropd_datasets",
		"Stored datasets, including the hidden ones that hold jobs' inline data.", nil, nil)
	storeBytesDesc = prometheus.NewDesc("backpropd_store_bytes",
		"Bytes of every file the store keeps in the data directory.", nil, nil)
)

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- modelsDesc
	ch <- datasetsDesc
	ch <- storeBytesDesc
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(modelsDesc, prometheus.GaugeValue, float64(s.Models))
	ch <- prometheus.MustNewConstMetric(datasetsDesc, prometheus.GaugeValue, float64(s.Datasets))
	ch <- prometheus.MustNewConstMetric(storeBytesDesc, prometheus.GaugeValue, float64(s.TotalBytes))
}

// jobCountsCollector exports backpropd_jobs{status}, from the job manager
// when it is given and from the observer's own bookkeeping otherwise.
type jobCountsCollector struct {
	counts func() (queued, running int)
}

var jobsDesc = prometheus.NewDesc("backpropd_jobs",
	"Training jobs by status: queued (waiting for a worker) or running.", []string{"status"}, nil)

func newJobCountsCollector(counts func() (int, int), jc *jobCollector) *jobCountsCollector {
	if counts == nil {
		counts = jc.counts
	}
	return &jobCountsCollector{counts: counts}
}

func (c *jobCountsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- jobsDesc }

func (c *jobCountsCollector) Collect(ch chan<- prometheus.Metric) {
	q, r := c.counts()
	ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(q), string(jobs.Queued))
	ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(r), string(jobs.Running))
}
