package metrics

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// testRouter is shaped like the API's: top-level routes, a mounted /v1
// subrouter with nested patterns, a handler that panics, and an event stream.
func testRouter(streamed chan<- error, release <-chan struct{}, mw ...func(http.Handler) http.Handler) *chi.Mux {
	r := chi.NewRouter()
	r.Use(mw...)
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	r.Route("/v1", func(r chi.Router) {
		r.Post("/datasets", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
		r.Route("/jobs/{id}", func(r chi.Router) {
			r.Get("/", func(w http.ResponseWriter, r *http.Request) {
				if chi.URLParam(r, "id") == "missing" {
					http.Error(w, "no such job", http.StatusNotFound)
					return
				}
				io.WriteString(w, "{}")
			})
			r.Get("/events", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "event: status\ndata: {}\n\n")
				// Handlers flush either way; both must reach the client.
				w.(http.Flusher).Flush()
				rc := http.NewResponseController(w)
				streamed <- rc.SetWriteDeadline(time.Time{})
				<-release
				io.WriteString(w, "event: epoch\ndata: {}\n\n")
				streamed <- rc.Flush()
			})
		})
		r.Get("/boom", func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	})
	return r
}

func TestInstrumentLabelsByRoutePattern(t *testing.T) {
	for _, mode := range []string{"around the router", "as chi middleware"} {
		t.Run(mode, func(t *testing.T) {
			m, reg := mustNew(t, Options{})
			var h http.Handler
			if mode == "around the router" {
				h = m.Instrument(testRouter(nil, nil))
			} else {
				h = testRouter(nil, nil, m.Instrument)
			}
			do := func(method, path string) int {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
				return rec.Code
			}
			do("GET", "/healthz")
			do("POST", "/v1/datasets")
			do("GET", "/v1/jobs/a")
			do("GET", "/v1/jobs/b")
			do("GET", "/v1/jobs/missing")
			// 1,000 distinct paths that match nothing share one series.
			for i := range 1000 {
				if code := do("GET", fmt.Sprintf("/no/such/path/%d", i)); code != http.StatusNotFound {
					t.Fatalf("bogus path answered %d, want 404", code)
				}
			}
			// Paths under a subrouter that match none of its routes carry
			// the subrouter's wildcard pattern: also one series.
			for i := range 100 {
				do("GET", fmt.Sprintf("/v1/nope/%d", i))
			}
			// Methods outside the standard set are folded together.
			do("BREW", "/healthz")
			do("PROPFIND", "/healthz")

			want := `
# HELP backpropd_http_requests_total HTTP requests answered, by chi route pattern, method and status code.
# TYPE backpropd_http_requests_total counter
backpropd_http_requests_total{code="200",method="GET",route="/healthz"} 1
backpropd_http_requests_total{code="201",method="POST",route="/v1/datasets"} 1
backpropd_http_requests_total{code="200",method="GET",route="/v1/jobs/{id}"} 2
backpropd_http_requests_total{code="404",method="GET",route="/v1/jobs/{id}"} 1
backpropd_http_requests_total{code="404",method="GET",route="unmatched"} 1000
backpropd_http_requests_total{code="404",method="GET",route="/v1/*"} 100
backpropd_http_requests_total{code="405",method="OTHER",route="unmatched"} 2
`
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "backpropd_http_requests_total"); err != nil {
				t.Error(err)
			}
			// The duration histogram has one series per route and method.
			if got := testutil.CollectAndCount(m.httpDuration); got != 6 {
				t.Errorf("%d duration series, want 6 (healthz GET, datasets POST, jobs GET, /v1/* GET, unmatched GET and OTHER)", got)
			}
		})
	}
}

// A panicking handler is counted as a 500 and the panic continues to the
// recoverer outside.
func TestInstrumentCountsPanics(t *testing.T) {
	m, _ := mustNew(t, Options{})
	h := m.Instrument(testRouter(nil, nil))
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the handler's panic", p)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/boom", nil))
	}()
	if got := testutil.ToFloat64(m.httpRequests.WithLabelValues("/v1/boom", "GET", "500")); got != 1 {
		t.Errorf("requests{/v1/boom,500} = %g, want 1", got)
	}
}

// The event stream's first event reaches the client while the handler is
// still running, through both http.Flusher and http.ResponseController.
func TestInstrumentKeepsStreaming(t *testing.T) {
	m, _ := mustNew(t, Options{})
	streamed := make(chan error, 2)
	release := make(chan struct{})
	srv := httptest.NewServer(m.Instrument(testRouter(streamed, release)))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/v1/jobs/x/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := <-streamed; err != nil {
		t.Fatalf("ResponseController.SetWriteDeadline through the wrapper: %v", err)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "event: status\n" {
		t.Fatalf("first line %q, %v; want the status event before the handler returns", line, err)
	}
	close(release)
	if err := <-streamed; err != nil {
		t.Fatalf("ResponseController.Flush through the wrapper: %v", err)
	}
	rest, err := io.ReadAll(br)
	if err != nil || !strings.Contains(string(rest), "event: epoch") {
		t.Fatalf("rest of stream %q, %v", rest, err)
	}
	if got := testutil.ToFloat64(m.httpRequests.WithLabelValues("/v1/jobs/{id}/events", "GET", "200")); got != 1 {
		t.Errorf("requests{events} = %g, want 1", got)
	}
}

func TestHandlerServesExposition(t *testing.T) {
	_, reg := mustNew(t, Options{Version: "test"})
	h := Handler(reg, reg)
	tests := []struct {
		name, accept, wantType string
	}{
		{"text", "", "text/plain"},
		{"openmetrics", "application/openmetrics-text; version=1.0.0", "application/openmetrics-text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/metrics", nil)
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), tt.wantType) {
				t.Fatalf("got %d %q, want 200 %s", rec.Code, rec.Header().Get("Content-Type"), tt.wantType)
			}
			body := rec.Body.String()
			for _, want := range []string{`backpropd_build_info{goversion="go`, `backpropd_workers_busy 0`,
				"go_goroutines", "process_cpu_seconds_total", "promhttp_metric_handler_errors_total"} {
				if !strings.Contains(body, want) {
					t.Errorf("exposition lacks %q", want)
				}
			}
		})
	}
}

// BenchmarkInstrument is the per-request overhead on a matched route.
func BenchmarkInstrument(b *testing.B) {
	m, _ := mustNew(b, Options{})
	h := testRouter(nil, nil, m.Instrument)
	req := httptest.NewRequest("GET", "/v1/jobs/abc", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}

// BenchmarkUninstrumented is the same router without Instrument.
func BenchmarkUninstrumented(b *testing.B) {
	h := testRouter(nil, nil)
	req := httptest.NewRequest("GET", "/v1/jobs/abc", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}
