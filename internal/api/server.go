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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	apispec "github.com/backpropd/backpropd/api"
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
	Resolve(ctx context.Context, s jobs.Spec) (jobs.Spec, error)
	Submit(ctx context.Context, s jobs.Spec) (jobs.Job, error)
	Get(ctx context.Context, id string) (jobs.Job, error)
	List(ctx context.Context, f jobs.ListFilter) ([]jobs.Job, string, error)
	Cancel(ctx context.Context, id string) (jobs.Job, error)
	Stop(ctx context.Context, id string) (jobs.Job, error)
	Delete(ctx context.Context, id string) error
	// DeleteDataset deletes a dataset no queued or running job uses, or
	// gives jobs.ErrConflict.
	DeleteDataset(ctx context.Context, id string) error
	Subscribe(id string) (<-chan jobs.Event, func(), error)
}

// Observer receives serving measurements (internal/metrics implements it).
type Observer interface {
	// ObservePrediction records rows predicted by a model and the time the
	// prediction itself took.
	ObservePrediction(modelName string, rows int, d time.Duration)
}

// DefaultMaxPredictRows is Config.MaxPredictRows when unset.
const DefaultMaxPredictRows = 10000

// Config holds the handler settings that come from the command line.
type Config struct {
	AuthToken       string
	MaxRequestBytes int64 // default 8 MiB
	MaxUploadBytes  int64 // datasets and model imports, default 2 GiB
	// MaxPredictRows caps the rows of one prediction request, /v1 and
	// /v2, default 10,000: the request body limit alone lets one request
	// of narrow rows (about 840,000 one-feature rows in 8 MiB) allocate
	// half a gigabyte for its inputs and outputs.
	MaxPredictRows int
	// Memory is the server's memory budget; nil means unlimited. A dataset
	// upload takes its share as its numbers arrive, and one the budget has
	// no room for is a 503 with Retry-After.
	Memory memoryReserver
	// Version is the server's version, reported by /v2 server metadata;
	// "" reports "devel". cmd/server sets it, so that the metadata, the
	// build_info metric and the start-up log agree.
	Version string
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
	spec       []byte       // GET /openapi.yaml
	models     *modelCache  // decoded models for predict and /v2 (modelcache.go)

	draining  atomic.Bool
	drainOnce sync.Once
	drained   chan struct{} // closed by SetDraining; ends event streams
}

// Options wire a Server.
type Options struct {
	Config     Config
	Store      Store
	Jobs       Jobs
	Observer   Observer                        // may be nil
	Instrument func(http.Handler) http.Handler // may be nil
	Metrics    http.Handler                    // served at /metrics; may be nil
	Logger     *slog.Logger                    // nil discards
	// OpenAPI is the contract served at /openapi.yaml; nil serves the
	// embedded api/openapi.yaml.
	OpenAPI []byte
}

// New returns a Server.
func New(opt Options) *Server {
	s := &Server{cfg: opt.Config, store: opt.Store, jobs: opt.Jobs, observer: opt.Observer,
		logger: opt.Logger, instrument: opt.Instrument, metrics: opt.Metrics, spec: opt.OpenAPI,
		drained: make(chan struct{})}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.spec == nil {
		s.spec = apispec.OpenAPI
	}
	if s.cfg.MaxRequestBytes <= 0 {
		s.cfg.MaxRequestBytes = 8 << 20
	}
	if s.cfg.MaxUploadBytes <= 0 {
		s.cfg.MaxUploadBytes = 2 << 30
	}
	if s.cfg.MaxPredictRows <= 0 {
		s.cfg.MaxPredictRows = DefaultMaxPredictRows
	}
	if s.cfg.Version == "" {
		s.cfg.Version = "devel"
	}
	s.models = newModelCache(s.store, defaultModelCacheSize)
	return s
}

// SetDraining marks the server as shutting down: /readyz answers 503 from
// now on, so load balancers stop sending traffic, and open event streams
// end, so that http.Server.Shutdown is not held up by them (clients
// reconnect and resume from the job's current state).
func (s *Server) SetDraining() {
	s.draining.Store(true)
	s.drainOnce.Do(func() { close(s.drained) })
}

// Handler returns the routed handler.
//
// Every request gets a request id, one access-log line and the metrics
// instrumentation. /healthz, /readyz and /metrics are open; everything else
// requires the bearer token when one is configured. Every error, a
// handler's or the router's own (404, 405, 401, a panic's 500), goes
// through writeError, which answers in the format of the request's surface.
// The health routes answer HEAD as GET without a body, for probes and load
// balancers that check with HEAD.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(requestIDMiddleware, s.accessLog)
	if s.instrument != nil {
		r.Use(s.instrument)
	}
	r.Use(s.recoverer)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &Error{Status: http.StatusNotFound,
			Detail: "no route for " + r.Method + " " + sanitizePath(r.URL.Path)})
	})
	root := r
	var v2 chi.Router // mounted below
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		// RFC 9110 requires Allow on a 405: probe the router for the
		// methods this path has. chi answers a match for any method at a
		// mount point itself ("/v2"), so /v2 paths are probed in the
		// subrouter, as it routes them.
		routes, path := chi.Routes(root), r.URL.Path
		if rest, ok := strings.CutPrefix(path, "/v2"); ok && (rest == "" || rest[0] == '/') {
			routes, path = v2, rest
			if path == "" {
				path = "/"
			}
		}
		var allowed []string
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if routes.Match(chi.NewRouteContext(), m, path) {
				allowed = append(allowed, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		s.writeError(w, r, &Error{Status: http.StatusMethodNotAllowed,
			Detail: "method " + r.Method + " is not allowed on this route; allowed: " + strings.Join(allowed, ", ")})
	})

	r.Get("/healthz", s.healthz)
	r.Head("/healthz", headOf(s.healthz))
	r.Get("/readyz", s.readyz)
	r.Head("/readyz", headOf(s.readyz))
	r.Get("/metrics", s.serveMetrics)

	r.Group(func(r chi.Router) {
		r.Use(s.requireToken)
		r.Get("/openapi.yaml", s.openAPI)
	})

	r.Route("/v1", func(r chi.Router) {
		r.Use(s.requireToken)
		r.Post("/datasets", s.createDataset)
		r.Get("/datasets", s.listDatasets)
		r.Get("/datasets/{id}", s.getDataset)
		r.Delete("/datasets/{id}", s.deleteDataset)

		r.Post("/jobs", s.createJob)
		r.Get("/jobs", s.listJobs)
		r.Get("/jobs/{id}", s.getJob)
		r.Delete("/jobs/{id}", s.deleteJob)
		r.Post("/jobs/{id}/cancel", s.cancelJob)
		r.Post("/jobs/{id}/stop", s.stopJob)
		r.Get("/jobs/{id}/events", s.jobEvents)
		r.Get("/jobs/{id}/history", s.jobHistory)
		r.Get("/jobs/{id}/loss.svg", s.lossSVG)

		s.modelRoutes(r)
	})
	v2 = r.Route("/v2", func(r chi.Router) {
		r.Use(s.requireToken)
		s.v2Routes(r)
	})
	return r
}
