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
	// ImportModel stores an uploaded model file as the next version.
	ImportModel(ctx context.Context, meta store.ModelMeta, file []byte) (store.ModelMeta, error)
	// CheckFreeSpace refuses, with a *store.InsufficientStorageError, an
	// upload of about need bytes that would cross the disk floor.
	CheckFreeSpace(need int64) error
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
	// ModelDeleted says that a model name has no version left, so that
	// its series go with it.
	ModelDeleted(modelName string)
}

// memoryReserver is the part of the server's memory budget the handlers
// use. TryReserve takes n bytes from the budget, or reports false when
// they are not free; release gives them back and is called once.
type memoryReserver interface {
	TryReserve(n int64) (release func(), ok bool)
}

// DefaultMaxPredictRows is Config.MaxPredictRows when unset.
const DefaultMaxPredictRows = 10000

// Defaults of Config.MaxConcurrentRequests and Config.MaxEventStreams.
//
// 256 requests: the requests whose memory grows with their input
// (uploads, predictions) already reserve it from the memory budget and
// get their own 503, so this limit bounds the rest, each held to
// --max-request-bytes, and the goroutines and connection buffers of a
// flood; 256 is far more than 2 to 8 CPUs serve at once, so a busy but
// honest client load never meets it.
//
// 1024 event streams: a stream that its client does not read holds about
// 22 KiB of the server's heap (its connection's buffers and goroutine, its
// 64-event subscription buffer; the history it sends is shared, as
// TestEventStreamsShareHistory measures), so 1024 of them hold about
// 22 MiB, besides the kernel's socket buffers.
const (
	DefaultMaxConcurrentRequests = 256
	DefaultMaxEventStreams       = 1024
)

// Config holds the handler settings that come from the command line.
type Config struct {
	// AuthToken, when set, is a token of scope admin.
	AuthToken string
	// Tokens are the tokens the server accepts besides AuthToken, each
	// with its scope. With neither, every route is open.
	Tokens          []Token
	MaxRequestBytes int64 // default 8 MiB
	MaxUploadBytes  int64 // datasets and model imports, default 2 GiB
	// MaxPredictRows caps the rows of one prediction request, /v1 and
	// /v2, default 10,000: the request body limit alone lets one request
	// of narrow rows (about 840,000 one-feature rows in 8 MiB) allocate
	// half a gigabyte for its inputs and outputs.
	MaxPredictRows int
	// MaxDatasetCells caps the rows × features of an uploaded dataset,
	// default jobs.DefaultMaxCells. cmd/server sets it to the job
	// manager's cell cap, derived from the memory one job may use, so
	// that every dataset the server accepts can be trained.
	MaxDatasetCells int64
	// MaxParams caps the weights and biases of an imported model file,
	// as jobs.Options.Limits.MaxParams caps a trained one: 0 takes
	// jobs.DefaultMaxParams, a negative value means no cap.
	MaxParams int
	// Memory is the server's memory budget; nil means unlimited. A
	// prediction reserves its share (Model.PredictMemory plus its inputs
	// and outputs) before running, and a dataset upload takes its share as
	// its numbers arrive; one the budget has no room for is a 503 with
	// Retry-After.
	Memory memoryReserver
	// MaxConcurrentRequests caps the requests served at once, default
	// DefaultMaxConcurrentRequests; beyond it a request gets a 503 with
	// Retry-After. The health routes, /metrics and event streams do not
	// count.
	MaxConcurrentRequests int
	// MaxEventStreams caps the event streams open at once, default
	// DefaultMaxEventStreams; beyond it GET /v1/jobs/{id}/events gets a
	// 503 with Retry-After.
	MaxEventStreams int
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
	tokens     []Token      // AuthToken as admin, then Config.Tokens
	requests   *limiter     // Config.MaxConcurrentRequests
	streams    *limiter     // Config.MaxEventStreams

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
	if s.cfg.MaxDatasetCells <= 0 {
		s.cfg.MaxDatasetCells = jobs.DefaultMaxCells
	}
	if s.cfg.MaxParams == 0 {
		s.cfg.MaxParams = jobs.DefaultMaxParams
	}
	if s.cfg.MaxConcurrentRequests <= 0 {
		s.cfg.MaxConcurrentRequests = DefaultMaxConcurrentRequests
	}
	if s.cfg.MaxEventStreams <= 0 {
		s.cfg.MaxEventStreams = DefaultMaxEventStreams
	}
	s.requests = newLimiter(s.cfg.MaxConcurrentRequests)
	s.streams = newLimiter(s.cfg.MaxEventStreams)
	if s.cfg.Version == "" {
		s.cfg.Version = "devel"
	}
	s.models = newModelCache(s.store, defaultModelCacheSize)
	if s.cfg.AuthToken != "" {
		s.tokens = append(s.tokens, Token{Value: s.cfg.AuthToken, Scope: ScopeAdmin})
	}
	s.tokens = append(s.tokens, s.cfg.Tokens...)
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

// route is one operation of the API: its method, its path as in
// api/openapi.yaml, its handler and the token scopes allowed on it.
type route struct {
	method  string
	path    string
	handler http.HandlerFunc
	// scopes allowed; nil for the open routes, which need no token.
	scopes []Scope
}

// The scope lists of the routes. Admin may do everything; train works
// with datasets and jobs and reads models; predict predicts and reads
// model metadata; read sends GET and HEAD only.
var (
	anyScope       = []Scope{ScopeAdmin, ScopeTrain, ScopePredict, ScopeRead}
	adminOnly      = []Scope{ScopeAdmin}
	trainWrites    = []Scope{ScopeAdmin, ScopeTrain}
	trainReads     = []Scope{ScopeAdmin, ScopeTrain, ScopeRead}
	modelMetadata  = anyScope
	modelFileReads = trainReads
	predictions    = []Scope{ScopeAdmin, ScopePredict}
)

// routes is the one table of the API's operations and their scopes: the
// router is built from it, and a test holds api/openapi.yaml's
// x-backpropd-scopes to it.
func (s *Server) routes() []route {
	get, head, post, del := http.MethodGet, http.MethodHead, http.MethodPost, http.MethodDelete
	return []route{
		{get, "/healthz", s.healthz, nil},
		{head, "/healthz", headOf(s.healthz), nil},
		{get, "/readyz", s.readyz, nil},
		{head, "/readyz", headOf(s.readyz), nil},
		{get, "/metrics", s.serveMetrics, nil},
		{get, "/openapi.yaml", s.openAPI, anyScope},

		{post, "/v1/datasets", s.createDataset, trainWrites},
		{get, "/v1/datasets", s.listDatasets, trainReads},
		{get, "/v1/datasets/{id}", s.getDataset, trainReads},
		{del, "/v1/datasets/{id}", s.deleteDataset, trainWrites},

		{post, "/v1/jobs", s.createJob, trainWrites},
		{get, "/v1/jobs", s.listJobs, trainReads},
		{get, "/v1/jobs/{id}", s.getJob, trainReads},
		{del, "/v1/jobs/{id}", s.deleteJob, trainWrites},
		{post, "/v1/jobs/{id}/cancel", s.cancelJob, trainWrites},
		{post, "/v1/jobs/{id}/stop", s.stopJob, trainWrites},
		{get, "/v1/jobs/{id}/events", s.jobEvents, trainReads},
		{get, "/v1/jobs/{id}/history", s.jobHistory, trainReads},
		{get, "/v1/jobs/{id}/loss.svg", s.lossSVG, trainReads},

		{get, "/v1/models", s.listModels, modelMetadata},
		{get, "/v1/models/{name}", s.getModel, modelMetadata},
		{del, "/v1/models/{name}", s.deleteModel, adminOnly},
		{post, "/v1/models/{name}/predict", s.predict, predictions},
		{post, "/v1/models/{name}/versions", s.importModel, adminOnly},
		{get, "/v1/models/{name}/versions/{version}", s.getModel, modelMetadata},
		{del, "/v1/models/{name}/versions/{version}", s.deleteModelVersion, adminOnly},
		{post, "/v1/models/{name}/versions/{version}/predict", s.predict, predictions},
		{get, "/v1/models/{name}/versions/{version}/file", s.modelFile, modelFileReads},

		{get, "/v2", s.v2ServerMetadata, anyScope},
		{get, "/v2/health/live", s.v2Live, anyScope},
		{head, "/v2/health/live", headOf(s.v2Live), anyScope},
		{get, "/v2/health/ready", s.v2Ready, anyScope},
		{head, "/v2/health/ready", headOf(s.v2Ready), anyScope},
		{get, "/v2/models/{name}", s.v2ModelMetadata, modelMetadata},
		{get, "/v2/models/{name}/ready", s.v2ModelReady, modelMetadata},
		{post, "/v2/models/{name}/infer", s.v2Infer, predictions},
		{get, "/v2/models/{name}/versions/{version}", s.v2ModelMetadata, modelMetadata},
		{get, "/v2/models/{name}/versions/{version}/ready", s.v2ModelReady, modelMetadata},
		{post, "/v2/models/{name}/versions/{version}/infer", s.v2Infer, predictions},
	}
}

// Handler returns the routed handler.
//
// Every request gets a request id, one access-log line and the metrics
// instrumentation, and counts against Config.MaxConcurrentRequests
// (limitRequests) unless it is a health probe, a scrape or an event stream. /healthz, /readyz and /metrics are open; everything else
// requires a bearer token when tokens are configured, and a token whose
// scope the route allows (routes). Every error, a
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
	r.Use(s.recoverer, s.limitRequests)
	// No route reads the body of a request the router refuses: its 404 or
	// 405 closes the connection rather than wait for the body (endRead).
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 {
			closeUnread(w)
			defer endRead(w)
		}
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
		if r.ContentLength != 0 {
			closeUnread(w)
			defer endRead(w)
		}
		s.writeError(w, r, &Error{Status: http.StatusMethodNotAllowed,
			Detail: "method " + r.Method + " is not allowed on this route; allowed: " + strings.Join(allowed, ", ")})
	})

	// Each route goes to its surface's router: /v1 and /v2 are subrouters
	// behind the token check, which answers their unknown routes too;
	// /openapi.yaml needs a token; the rest is open.
	var v1, v2routes, tokenOnly, open []route
	for _, rt := range s.routes() {
		switch {
		case strings.HasPrefix(rt.path, "/v1/"):
			v1 = append(v1, rt)
		case rt.path == "/v2" || strings.HasPrefix(rt.path, "/v2/"):
			v2routes = append(v2routes, rt)
		case rt.scopes != nil:
			tokenOnly = append(tokenOnly, rt)
		default:
			open = append(open, rt)
		}
	}
	s.mount(r, "", open)
	r.Group(func(r chi.Router) {
		r.Use(s.requireToken)
		s.mount(r, "", tokenOnly)
	})
	r.Route("/v1", func(r chi.Router) {
		r.Use(s.requireToken)
		s.mount(r, "/v1", v1)
	})
	v2 = r.Route("/v2", func(r chi.Router) {
		r.Use(s.requireToken)
		s.mount(r, "/v2", v2routes)
	})
	return r
}

// mount registers routes on r, whose paths start with prefix, each
// behind its scope check.
func (s *Server) mount(r chi.Router, prefix string, routes []route) {
	for _, rt := range routes {
		p := strings.TrimPrefix(rt.path, prefix)
		if p == "" {
			p = "/"
		}
		r.Method(rt.method, p, s.allow(rt, rt.handler))
	}
}
