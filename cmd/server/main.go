// Command backpropd is the training and inference server. main only parses
// the configuration, wires the store, the job manager, the metrics and the
// HTTP API together, and runs until SIGTERM or SIGINT; the work is in the
// internal packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/backpropd/backpropd/internal/api"
	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/jobs"
	"github.com/backpropd/backpropd/internal/metrics"
	"github.com/backpropd/backpropd/internal/openblas"
	"github.com/backpropd/backpropd/internal/store"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck(os.Args[2:], os.Getenv, os.Stderr))
	}
	m := NewMain()
	if err := m.ParseFlags(os.Args[1:], os.Getenv, os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "backpropd:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := m.Run(ctx); err != nil {
		m.Logger.Error("start", "err", err)
		fmt.Fprintln(os.Stderr, "backpropd:", err)
		os.Exit(1)
	}
	select {
	case <-ctx.Done():
		m.Logger.Info("signal received; shutting down", "timeout", m.Config.ShutdownTimeout.String())
	case err := <-m.serveErr:
		m.Logger.Error("http server stopped", "err", err)
	}
	stop() // a second signal now kills the process the default way
	if err := m.Close(); err != nil {
		m.Logger.Error("shutdown", "err", err)
		os.Exit(1)
	}
}

// Main is the whole service; tests run it in-process.
type Main struct {
	Config Config
	Logger *slog.Logger
	// LogOutput receives the logs; nil means stderr, written by a
	// goroutine (logWriter) that Close drains.
	LogOutput io.Writer
	logw      *logWriter // the stderr writer, when LogOutput is nil

	store    *store.Store
	jobs     *jobs.Manager
	api      *api.Server
	http     *http.Server
	ln       net.Listener
	serveErr chan error
	conns    connTracker
}

// connTracker counts the connections with a request in flight (or not yet
// read), so that Close can say how many a shutdown cut off.
type connTracker struct {
	mu   sync.Mutex
	busy map[net.Conn]bool
}

// track is an http.Server.ConnState hook.
func (t *connTracker) track(c net.Conn, s http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.busy == nil {
		t.busy = map[net.Conn]bool{}
	}
	switch s {
	case http.StateNew, http.StateActive:
		t.busy[c] = true
	default:
		delete(t.busy, c)
	}
}

// inFlight is the number of connections that are not idle.
func (t *connTracker) inFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.busy)
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main {
	var c Config
	newFlagSet(&c)
	return &Main{Config: c, Logger: slog.New(slog.DiscardHandler), serveErr: make(chan error, 1)}
}

// ParseFlags fills m.Config from args and the environment.
func (m *Main) ParseFlags(args []string, getenv func(string) string, out io.Writer) error {
	c, err := parseConfig(args, getenv, out)
	if err != nil {
		return err
	}
	m.Config = c
	return nil
}

// Addr is the address the server listens on, once Run has returned.
func (m *Main) Addr() string { return m.ln.Addr().String() }

// newLogger builds the slog logger the configuration asks for.
func newLogger(c Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Run opens the store, recovers and starts the jobs, and starts serving. It
// returns once the listener is open; Close shuts everything down.
func (m *Main) Run(ctx context.Context) (err error) {
	c := m.Config
	if err := c.validate(); err != nil {
		return err
	}
	tokens, err := c.authTokens()
	if err != nil {
		return err
	}
	out := m.LogOutput
	if out == nil {
		m.logw = newLogWriter(os.Stderr)
		out = m.logw
	}
	m.Logger = newLogger(c, out)
	defer func() {
		if err != nil {
			m.closeAll()
		}
	}()

	mem, err := newMemory(c, m.Logger)
	if err != nil {
		return err
	}

	if m.store, err = store.Open(c.DataDir, store.Options{MinFreeBytes: int64(c.MinFreeDisk),
		Logger: m.Logger.With("component", "store")}); err != nil {
		return fmt.Errorf("open data directory: %w", err)
	}
	reg := prometheus.NewRegistry()
	met, err := metrics.New(reg, metrics.Options{
		JobRetention:  c.MetricsJobRetention,
		MaxModels:     c.MetricsMaxModels,
		Workers:       c.Workers,
		QueueCapacity: c.QueueSize,
		Version:       version(),
		JobCounts:     func() (int, int) { return m.jobs.Counts() },
		StoreStats:    m.store.Stats,
	})
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	// OpenBLAS threads are process-wide: size them so that workers × threads
	// never exceed the cores. 0 in the default, pure-Go build, where the
	// job manager bounds each job's engine threads itself.
	blasThreads := openblas.SetThreads(openblas.ThreadsFor(c.Workers))
	m.jobs, err = jobs.New(m.store, jobs.Options{
		Workers:      c.Workers,
		QueueSize:    c.QueueSize,
		MaxDuration:  c.JobMaxDuration,
		Memory:       mem.budget,
		JobMaxMemory: mem.jobMax,
		Limits:       engine.Limits{MaxCells: mem.maxCells},
		// Jobs get what is left of the shutdown budget after HTTP.
		ShutdownTimeout: c.ShutdownTimeout / 2,
		Logger:          m.Logger.With("component", "jobs"),
		Observer:        met,
	})
	if err != nil {
		return fmt.Errorf("jobs: %w", err)
	}
	// Jobs run on their own context, not on ctx: a signal drains them
	// through Close, with checkpoints, rather than killing them.
	if err := m.jobs.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start jobs: %w", err)
	}
	// Before serving, while no submission is in flight: a crash between
	// storing a job's inline data and its record leaves a hidden dataset
	// that nothing else would delete.
	if _, err := m.jobs.SweepInlineData(ctx, m.store); err != nil {
		m.Logger.Warn("delete inline data no job references", "err", err)
	}

	m.api = api.New(api.Options{
		Config: api.Config{
			Tokens:                tokens,
			MaxRequestBytes:       int64(c.MaxRequestBytes),
			MaxPredictRows:        c.MaxPredictRows,
			MaxConcurrentRequests: c.MaxConcurrentReqs,
			MaxEventStreams:       c.MaxEventStreams,
			MaxUploadBytes:        int64(c.MaxUploadBytes),
			MaxDatasetCells:       mem.maxCells,
			Memory:                mem.budget,
			Version:               version(),
		},
		Store:      m.store,
		Jobs:       m.jobs,
		Observer:   met,
		Instrument: met.Instrument,
		Metrics:    metrics.Handler(reg, reg),
		Logger:     m.Logger,
	})
	m.http = &http.Server{
		Handler:           m.api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// Uploads of up to --max-upload-bytes must fit: 2 GiB at a modest
		// 10 MB/s is about 4 minutes.
		ReadTimeout: 10 * time.Minute,
		// The event stream lifts this for itself.
		WriteTimeout:   10 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
		ConnState:      m.conns.track,
	}
	if m.ln, err = net.Listen("tcp", c.Addr); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	go func() {
		if err := m.http.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.serveErr <- err
		}
	}()
	m.Logger.Info("backpropd listening", "addr", m.Addr(), "data_dir", c.DataDir,
		"workers", c.Workers, "queue_size", c.QueueSize, "auth", len(tokens) > 0, "tokens", len(tokens), "version", version(),
		"blas", openblas.Config(), "blas_core", openblas.CoreName(), "blas_threads", blasThreads)
	return nil
}

// Close shuts down within Config.ShutdownTimeout: /readyz turns 503, the
// listener closes and in-flight requests finish (event streams end), the
// job manager checkpoints running jobs, and the store closes.
func (m *Main) Close() error {
	deadline := time.Now().Add(m.Config.ShutdownTimeout)
	var errs []error
	if m.api != nil {
		m.api.SetDraining()
	}
	if m.http != nil {
		// HTTP gets half the budget; the jobs the rest. A client still
		// sending or reading when it runs out is cut off: a slow client is
		// not a server failure, so it is a warning and not an error.
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(m.Config.ShutdownTimeout/2))
		err := m.http.Shutdown(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			m.Logger.Warn("shutdown: cut off connections still in flight after the HTTP half of the shutdown timeout",
				"connections", m.conns.inFlight(), "timeout", (m.Config.ShutdownTimeout / 2).String())
			err = m.http.Close()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
	}
	if m.jobs != nil {
		// Leave a little time to close the store.
		ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(-250*time.Millisecond))
		if err := m.jobs.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("jobs shutdown: %w", err))
		}
		cancel()
	}
	if m.store != nil {
		if err := m.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
	}
	if len(errs) == 0 {
		m.Logger.Info("shut down cleanly")
	}
	m.closeLog()
	return errors.Join(errs...)
}

// closeAll releases what a failed Run opened.
func (m *Main) closeAll() {
	if m.ln != nil {
		_ = m.ln.Close()
	}
	if m.jobs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
		_ = m.jobs.Shutdown(ctx)
		cancel()
	}
	if m.store != nil {
		_ = m.store.Close()
	}
	m.closeLog()
}

// closeLog drains the log writer: every line logged so far is written,
// and later lines (main's, after a failed Run or Close) are written at
// once, so none is lost when the process exits.
func (m *Main) closeLog() {
	if m.logw != nil {
		_ = m.logw.Close()
	}
}

// buildVersion is set at build time:
//
//	go build -ldflags "-X main.buildVersion=1.4.0" ./cmd/server
var buildVersion string

// version is the one version the server reports (start-up log, /v2 server
// metadata, backpropd_build_info): buildVersion when set, else the module
// version the binary was built from, else "devel".
func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// healthcheck implements "backpropd healthcheck": GET /healthz on the
// configured address (loopback when it binds every interface), exit status
// 0 on 200 and 1 otherwise. Docker's HEALTHCHECK runs it; it needs no shell
// or curl in the image.
func healthcheck(args []string, getenv func(string) string, errOut io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(errOut)
	addr := fs.String("addr", "", "address of the server (default $"+envName("addr")+" or 127.0.0.1:8080)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	a := *addr
	if a == "" {
		a = getenv(envName("addr"))
	}
	if a == "" {
		a = "127.0.0.1:8080"
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		fmt.Fprintf(errOut, "healthcheck: address %q: %v\n", a, err)
		return 1
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	client := &http.Client{Timeout: *timeout}
	res, err := client.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		fmt.Fprintf(errOut, "healthcheck: %v\n", err)
		return 1
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<16))
	if res.StatusCode != http.StatusOK {
		fmt.Fprintf(errOut, "healthcheck: /healthz answered %s\n", res.Status)
		return 1
	}
	return 0
}
