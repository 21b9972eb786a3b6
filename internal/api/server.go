// Package api is backpropd's HTTP surface: the chi router, the /v1 REST
// handlers, the /v2 Open Inference Protocol handlers, authentication,
// request ids, access logs and RFC 9457 problem responses. It holds no
// state of its own beyond caches; everything durable is in the store and
// the job manager it is given.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/backpropd/backpropd/internal/jobs"
	"github.com/backpropd/backpropd/internal/store"
)

// Store is the part of the store the handlers use.
type Store interface {
	Writable() error
	CreateDataset(ctx context.Context, d *store.Dataset) (store.DatasetMeta, error)
	ListDatasets(ctx context.Context) ([]store.DatasetMeta, error)
	DatasetMeta(ctx context.Context, id string) (store.DatasetMeta, error)
	DeleteDataset(ctx context.Context, id string) error
	PutModel(ctx context.Context, meta store.ModelMeta, file []byte) (store.ModelMeta, error)
	ListModels(ctx context.Context) ([]store.ModelName, error)
	ModelVersions(ctx context.Context, name string) (store.ModelName, error)
	ModelMeta(ctx context.Context, name string, version int) (store.ModelMeta, error)
	ModelFile(ctx context.Context, name string, version int) (store.ModelMeta, []byte, error)
	DeleteModelVersion(ctx context.Context, name string, version int) error
	DeleteModel(ctx context.Context, name string) error
}

// Jobs is the part of the job manager the handlers use.
type Jobs interface {
	Submit(ctx context.Context, s jobs.Spec) (jobs.Job, error)
	Get(ctx context.Context, id string) (jobs.Job, error)
	List(ctx context.Context, f jobs.ListFilter) ([]jobs.Job, string, error)
	Cancel(ctx context.Context, id string) (jobs.Job, error)
	Stop(ctx context.Context, id string) (jobs.Job, error)
	Delete(ctx context.Context, id string) error
	DatasetInUse(id string) bool
	Subscribe(id string) (<-chan jobs.Event, func(), error)
}

// Observer receives serving measurements (internal/metrics implements it).
type Observer interface {
	// ObservePrediction records rows predicted by a model and the time the
	// prediction itself took.
	ObservePrediction(modelName string, rows int, d time.Duration)
}

// Config holds the handler settings that come from the command line.
type Config struct {
	AuthToken       string
	MaxRequestBytes int64 // default 8 MiB
	MaxUploadBytes  int64 // datasets and model imports, default 2 GiB
}

// Server holds the handlers' dependencies.
type Server struct {
	cfg      Config
	store    Store
	jobs     Jobs
	observer Observer
	logger   *slog.Logger
	// Middleware wraps the router (metrics instrumentation); may be nil.
	instrument func(http.Handler) http.Handler
	metrics    http.Handler // GET /metrics
}

// Options wire a Server.
type Options struct {
	Config     Config
	Store      Store
	Jobs       Jobs
	Observer   Observer                        // may be nil
	Instrument func(http.Handler) http.Handler // may be nil
	Metrics    http.Handler                    // served at /metrics; may be nil
	Logger     *slog.Logger
}

// New returns a Server.
func New(opt Options) *Server {
	return &Server{cfg: opt.Config, store: opt.Store, jobs: opt.Jobs, observer: opt.Observer,
		logger: opt.Logger, instrument: opt.Instrument, metrics: opt.Metrics}
}

// Handler returns the routed handler.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	return r
}
