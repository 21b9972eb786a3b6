package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/backpropd/backpropd/internal/jobs"
	"github.com/backpropd/backpropd/internal/store"
)

// openRoutes answer without a token.
var openRoutes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// TestAuthOnEveryRoute walks the router and asserts that, with a token
// configured, every route but the open ones answers 401 with
// WWW-Authenticate: Bearer without the token, with a wrong one and with
// another scheme, and that the right token gets past authentication.
func TestAuthOnEveryRoute(t *testing.T) {
	const tok = "the-right-token-9f8e7d"
	env := newTestEnv(t, Config{AuthToken: tok})
	ds := uploadIris(t, env, "Authorization", "Bearer "+tok)
	fill := strings.NewReplacer("{id}", ds.ID, "{name}", "iris", "{version}", "1")
	n := 0
	err := chi.Walk(env.h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		n++
		if route != "/" {
			route = strings.TrimSuffix(route, "/")
		}
		path := fill.Replace(route)
		t.Run(method+" "+route, func(t *testing.T) {
			if openRoutes[route] {
				res := doJSON(t, env.h, method, path, nil)
				if res.Status == http.StatusUnauthorized {
					t.Fatalf("open route answered 401")
				}
				return
			}
			for _, auth := range []string{"", "Bearer wrong", "Bearer " + tok + "x", "Basic " + tok, tok} {
				var hdr []string
				if auth != "" {
					hdr = []string{"Authorization", auth}
				}
				res := doRaw(t, env.h, method, path, "", nil, hdr...)
				if res.Status != http.StatusUnauthorized {
					t.Fatalf("Authorization %q: %d, want 401", auth, res.Status)
				}
				if !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("401 without WWW-Authenticate: Bearer")
				}
				if bytes.Contains(res.Body, []byte(tok)) {
					t.Fatalf("the 401 body holds the token")
				}
				// /v2 clients read the protocol's error object; /v1 a problem.
				if strings.HasPrefix(route, "/v2") {
					var body map[string]any
					if ct := res.Header.Get("Content-Type"); ct != "application/json" ||
						json.Unmarshal(res.Body, &body) != nil || len(body) != 1 || body["error"] == "" || body["error"] == nil {
						t.Fatalf("Authorization %q: %s %s, want application/json {\"error\": \"...\"}", auth, ct, res.Body)
					}
				} else if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Fatalf("Authorization %q: Content-Type %s, want application/problem+json", auth, ct)
				}
			}
			res := doRaw(t, env.h, method, path, "", nil, "Authorization", "Bearer "+tok)
			if res.Status == http.StatusUnauthorized {
				t.Fatalf("the right token got 401: %s", res.Body)
			}
		})
		return nil
	})
	if err != nil || n < 20 {
		t.Fatalf("walked %d routes: %v", n, err)
	}
}

func TestRequestID(t *testing.T) {
	env := newTestEnv(t, Config{})
	tests := []struct {
		in   string
		keep bool
	}{
		{"abc-123_x.y:z", true},
		{strings.Repeat("a", 128), true},
		{"", false},
		{strings.Repeat("a", 129), false},
		{"has space", false},
		{"new\nline", false},
		{"<script>", false},
	}
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, tc := range tests {
		req := httptest.NewRequest(http.MethodGet, "/v1/datasets/nope", nil)
		if tc.in != "" {
			req.Header["X-Request-Id"] = []string{tc.in}
		}
		res := do(t, env.h, req)
		got := res.Header.Get("X-Request-Id")
		p := res.Problem(t)
		switch {
		case tc.keep && got != tc.in:
			t.Errorf("incoming %q: echoed %q", tc.in, got)
		case !tc.keep && !generated.MatchString(got):
			t.Errorf("incoming %q: got %q, want a generated id", tc.in, got)
		}
		if p.RequestID != got {
			t.Errorf("problem request_id %q != header %q", p.RequestID, got)
		}
	}
}

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines(tb testing.TB) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(l.b.Bytes()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			tb.Fatalf("log line %s: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestAccessLog(t *testing.T) {
	env := newTestEnv(t, Config{})
	var logs lockedBuffer
	srv := New(Options{Store: env.store, Jobs: env.jobs, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	h := srv.Handler()
	id := "0b6f2c1e-8d3a-4f5e-9c7b-1a2b3c4d5e6f"
	res := doRaw(t, h, http.MethodGet, "/v1/datasets/"+id, "", nil, "X-Request-Id", "req-42")
	doRaw(t, h, http.MethodGet, "/no/such/route", "", nil)
	lines := logs.lines(t)
	if len(lines) != 2 {
		t.Fatalf("%d log lines for 2 requests: %v", len(lines), lines)
	}
	l := lines[0]
	want := map[string]any{"msg": "http request", "method": "GET", "route": "/v1/datasets/{id}",
		"status": float64(404), "bytes": float64(len(res.Body)), "request_id": "req-42"}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("log %s = %v, want %v (line %v)", k, l[k], v, l)
		}
	}
	if _, ok := l["duration_ms"].(float64); !ok {
		t.Errorf("no duration_ms in %v", l)
	}
	if strings.Contains(fmt.Sprint(l), id) {
		t.Errorf("the access log holds the raw path: %v", l)
	}
	if lines[1]["route"] != "unmatched" {
		t.Errorf("unmatched route logged as %v", lines[1]["route"])
	}
}

// faultyStore fails in ways a real disk can.
type faultyStore struct {
	*store.Store
	writable error
	list     error
}

func (f faultyStore) Writable() error { return f.writable }

func (f faultyStore) ListDatasets(ctx context.Context) ([]store.DatasetMeta, error) {
	if f.list != nil {
		return nil, f.list
	}
	return f.Store.ListDatasets(ctx)
}

// panickyJobs panics in List, as a bug would.
type panickyJobs struct{ *jobs.Manager }

func (panickyJobs) List(context.Context, jobs.ListFilter) ([]jobs.Job, string, error) {
	panic("bug with /secret/path inside")
}

func TestServerFaultsAreGeneric(t *testing.T) {
	env := newTestEnv(t, Config{})
	var logs lockedBuffer
	fs := faultyStore{Store: env.store, list: errors.New("open /var/lib/backpropd/datasets: input/output error")}
	srv := New(Options{Store: fs, Jobs: panickyJobs{env.jobs}, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	h := srv.Handler()
	for _, path := range []string{"/v1/datasets", "/v1/jobs"} {
		res := doJSON(t, h, http.MethodGet, path, nil)
		p := res.Problem(t)
		if res.Status != http.StatusInternalServerError || p.Detail != "internal server error" {
			t.Errorf("GET %s: %d %+v; want 500 with a generic detail", path, res.Status, p)
		}
		if bytes.Contains(res.Body, []byte("/var/lib")) || bytes.Contains(res.Body, []byte("/secret")) || bytes.Contains(res.Body, []byte("goroutine")) {
			t.Errorf("GET %s leaks: %s", path, res.Body)
		}
		found := false
		for _, l := range logs.lines(t) {
			found = found || (l["request_id"] == p.RequestID && l["level"] == "ERROR")
		}
		if !found {
			t.Errorf("GET %s: no error log line with request id %s", path, p.RequestID)
		}
	}
	if res := doJSON(t, h, http.MethodGet, "/healthz", nil); res.Status != http.StatusOK {
		t.Fatalf("server down after a panic: %d", res.Status)
	}
}

func TestReadyz(t *testing.T) {
	env := newTestEnv(t, Config{})
	tests := []struct {
		name     string
		writable error
		drain    bool
		want     int
	}{
		{"ready", nil, false, 200},
		{"data directory read-only", fmt.Errorf("probe /data: %w", store.ErrReadOnly), false, 503},
		{"draining", nil, true, 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := New(Options{Store: faultyStore{Store: env.store, writable: tc.writable}, Jobs: env.jobs})
			if tc.drain {
				srv.SetDraining()
				srv.SetDraining() // idempotent
			}
			res := doJSON(t, srv.Handler(), http.MethodGet, "/readyz", nil)
			if res.Status != tc.want {
				t.Fatalf("readyz %d, want %d", res.Status, tc.want)
			}
			if bytes.Contains(res.Body, []byte("/data")) {
				t.Fatalf("readyz leaks a path: %s", res.Body)
			}
			if res := doJSON(t, srv.Handler(), http.MethodGet, "/healthz", nil); res.Status != 200 {
				t.Fatalf("healthz %d while not ready; liveness must not follow readiness", res.Status)
			}
		})
	}
}

// TestMethodNotAllowedListsAllow: a 405 carries the Allow header RFC 9110
// requires, listing the route's methods.
func TestMethodNotAllowedListsAllow(t *testing.T) {
	env := newTestEnv(t, Config{})
	id := "0b6f2c1e-8d3a-4f5e-9c7b-1a2b3c4d5e6f"
	tests := []struct{ method, path, allow string }{
		{"PUT", "/v1/datasets", "GET, POST"},
		{"POST", "/v1/datasets/" + id, "GET, DELETE"},
		{"GET", "/v1/jobs/" + id + "/cancel", "POST"},
		{"POST", "/healthz", "GET, HEAD"},
		{"PUT", "/v1/models/iris", "GET, DELETE"},
		{"DELETE", "/v2/health/live", "GET, HEAD"},
	}
	for _, tc := range tests {
		res := doRaw(t, env.h, tc.method, tc.path, "", nil)
		if res.Status != http.StatusMethodNotAllowed || res.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q, want 405 Allow %q", tc.method, tc.path, res.Status, res.Header.Get("Allow"), tc.allow)
		}
	}
}
