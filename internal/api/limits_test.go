package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestMaxConcurrentRequests holds the only request slot of a server with
// --max-concurrent-requests 1 with an upload whose body never ends, and
// checks that every other route answers 503 with Retry-After in its
// surface's format (validated against api/openapi.yaml), naming the flag,
// while the health routes and /metrics still answer; once the upload
// ends, the slot serves again.
func TestMaxConcurrentRequests(t *testing.T) {
	env := newTestEnv(t, Config{MaxConcurrentRequests: 1})
	pr, pw := io.Pipe()
	req := httptest.NewRequest(http.MethodPost, "/v1/datasets?name=held&target=y", pr)
	req.Header.Set("Content-Type", "text/csv")
	done := make(chan struct{})
	go func() {
		defer close(done)
		env.h.ServeHTTP(httptest.NewRecorder(), req)
	}()
	pw.Write([]byte("x,y\n"))
	deadline := time.Now().Add(10 * time.Second)
	for env.srv.requests.inUse() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the upload does not hold the request slot")
		}
		time.Sleep(5 * time.Millisecond)
	}

	for _, tc := range []struct {
		method, path string
	}{
		{http.MethodGet, "/v1/jobs"},
		{http.MethodGet, "/v1/datasets"},
		{http.MethodPost, "/v1/jobs"},
		{http.MethodGet, "/v1/models/iris"},
		{http.MethodGet, "/openapi.yaml"},
		{http.MethodGet, "/v2"},
		{http.MethodGet, "/v2/models/iris/ready"},
		{http.MethodPost, "/v2/models/iris/infer"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			var body []byte
			if tc.method == http.MethodPost {
				body = []byte(`{}`)
			}
			res := doRaw(t, env.h, tc.method, tc.path, "application/json", body)
			if res.Status != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != "1" {
				t.Fatalf("%d, Retry-After %q, %s; want 503 with Retry-After 1", res.Status, res.Header.Get("Retry-After"), res.Body)
			}
			if d := res.SurfaceError(t, tc.path); !strings.Contains(d, "--max-concurrent-requests") {
				t.Errorf("detail %q does not name --max-concurrent-requests", d)
			}
		})
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"} {
		if res := doRaw(t, env.h, http.MethodGet, path, "", nil); res.Status != http.StatusOK {
			t.Errorf("GET %s with the request slot taken: %d %s; want 200 (not limited)", path, res.Status, res.Body)
		}
	}

	pw.CloseWithError(io.ErrUnexpectedEOF)
	<-done
	if res := doRaw(t, env.h, http.MethodGet, "/v1/jobs", "", nil); res.Status != http.StatusOK {
		t.Fatalf("GET /v1/jobs after the upload ended: %d %s", res.Status, res.Body)
	}
}

// TestUnlimitedPaths names the paths the request limit lets through.
func TestUnlimitedPaths(t *testing.T) {
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"/healthz", true},
		{"/readyz", true},
		{"/metrics", true},
		{"/v2/health/live", true},
		{"/v2/health/ready", true},
		{"/v1/jobs/abc/events", true},
		{"/v1/jobs/abc/history", false},
		{"/v1/jobs//events", false},
		{"/v1/jobs/a/b/events", false},
		{"/v2/health/other", false},
		{"/v1/jobs", false},
	} {
		if got := unlimited(tc.path); got != tc.want {
			t.Errorf("unlimited(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}
