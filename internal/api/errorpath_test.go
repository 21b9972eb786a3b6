package api

// /v1 and /v2 share one error path (writeErrorAs) with two encoders. These
// tests run the same faults over both surfaces: server faults are generic,
// logged with the request id and never with the token; a client that hangs
// up is not a server fault; the router's own answers (404, 405, 401, a
// panic's 500) come in the surface's format.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/store"
)

// leakyModelStore is the real store with model reads failing the way a
// bug might: the error text holds the token and a path under the data
// directory. Reading the model "boom" panics with the token in the value.
type leakyModelStore struct {
	*store.Store
	token string
}

func (f leakyModelStore) fault(name string) error {
	if name == "boom" {
		panic("model state broken near /secret/" + f.token)
	}
	return fmt.Errorf("read /var/lib/backpropd/models/%s (auth %s): input/output error", name, f.token)
}

func (f leakyModelStore) ModelMeta(_ context.Context, name string, _ int) (store.ModelMeta, error) {
	return store.ModelMeta{}, f.fault(name)
}

func (f leakyModelStore) ModelFile(_ context.Context, name string, _ int) (store.ModelMeta, []byte, error) {
	return store.ModelMeta{}, nil, f.fault(name)
}

// TestServerFaultsAreGenericOnBothSurfaces: a store fault or a panic on a
// /v1 or /v2 route is a generic 500 (503 for model readiness) in the
// surface's format, logged as an error with the request id; no answer and
// no log line holds the token, the data directory or a stack.
func TestServerFaultsAreGenericOnBothSurfaces(t *testing.T) {
	const tok = "tok-3c9e1f7a-in-errors"
	env := newTestEnv(t, Config{})
	var logs lockedBuffer
	srv := New(Options{Config: Config{AuthToken: tok}, Store: leakyModelStore{Store: env.store, token: tok},
		Jobs: env.jobs, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	h := srv.Handler()
	predict := `{"inputs":[[1,2,3,4]]}`
	tests := []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/v1/models/iris", "", 500},
		{"POST", "/v1/models/iris/predict", predict, 500},
		{"POST", "/v1/models/boom/predict", predict, 500},
		{"GET", "/v2/models/iris", "", 500},
		{"GET", "/v2/models/iris/versions/1", "", 500},
		{"POST", "/v2/models/iris/infer", v2Body(`[1,2,3,4]`), 500},
		{"POST", "/v2/models/boom/infer", v2Body(`[1,2,3,4]`), 500},
		{"GET", "/v2/models/iris/ready", "", 503},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			res := doRaw(t, h, tc.method, tc.path, jsonCT, body, "Authorization", "Bearer "+tok)
			if res.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.Status, tc.status, res.Body)
			}
			if tc.status == 500 {
				if detail := res.SurfaceError(t, tc.path); detail != "internal server error" {
					t.Errorf("detail %q, want the generic \"internal server error\"", detail)
				}
			}
			for _, s := range []string{tok, "/var/lib", "/secret", "goroutine"} {
				if bytes.Contains(res.Body, []byte(s)) {
					t.Errorf("the answer holds %q: %s", s, res.Body)
				}
			}
			id := res.Header.Get("X-Request-Id")
			found := false
			for _, l := range logs.lines(t) {
				found = found || (l["request_id"] == id && l["level"] == "ERROR")
			}
			if !found {
				t.Errorf("no error log line with request id %s", id)
			}
		})
	}
	for _, l := range logs.lines(t) {
		if strings.Contains(fmt.Sprint(l), tok) {
			t.Errorf("a log line holds the token: %v", l)
		}
	}
}

// hangingModelStore is the real store with model reads that last until the
// request's context ends, as a read from a stalled disk would, and then
// fail with the context's error.
type hangingModelStore struct {
	*store.Store
	started chan struct{}
}

func (f hangingModelStore) ModelMeta(ctx context.Context, name string, _ int) (store.ModelMeta, error) {
	f.started <- struct{}{}
	<-ctx.Done()
	return store.ModelMeta{}, fmt.Errorf("read model %s: %w", name, ctx.Err())
}

// TestClientGoneWhileModelLoadsIsNotAServerFault: a client that hangs up
// while its model is being read is not the server's fault on either
// surface: no error log and an access-log status below 500 (a 5xx would
// count in the error rate that operators alert on).
func TestClientGoneWhileModelLoadsIsNotAServerFault(t *testing.T) {
	env := newTestEnv(t, Config{})
	logs := &syncBuffer{}
	started := make(chan struct{}, 1)
	srv := New(Options{Store: hangingModelStore{Store: env.store, started: started}, Jobs: env.jobs,
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	routes := []struct{ method, path, body string }{
		{"GET", "/v1/models/m", ""},
		{"POST", "/v1/models/m/predict", `{"inputs":[[1,2,3,4]]}`},
		{"GET", "/v2/models/m", ""},
		{"GET", "/v2/models/m/ready", ""},
		{"POST", "/v2/models/m/infer", v2Body(`[1,2,3,4]`)},
	}
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			before := len(logs.String())
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				select {
				case <-started:
				case <-time.After(5 * time.Second):
				}
				cancel()
			}()
			req, _ := http.NewRequestWithContext(ctx, rt.method, hs.URL+rt.path, strings.NewReader(rt.body))
			req.Header.Set("Content-Type", jsonCT)
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
				t.Fatalf("the request was answered (%d) before the client hung up", res.StatusCode)
			}
			var line map[string]any
			for deadline := time.Now().Add(5 * time.Second); line == nil; time.Sleep(10 * time.Millisecond) {
				for l := range strings.SplitSeq(logs.String()[before:], "\n") {
					var m map[string]any
					if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "http request" {
						line = m
					}
					if strings.Contains(l, `"level":"ERROR"`) {
						t.Errorf("a client hang-up logged an error: %s", l)
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("no access-log line within 5 s:\n%s", logs.String()[before:])
				}
			}
			if status, _ := line["status"].(float64); status >= 500 {
				t.Errorf("a client hang-up was recorded as status %v", status)
			}
		})
	}
}

// TestRouterAnswersInTheSurfaceFormat: the router's own 404, 405 and 401
// are problems on /v1 and the protocol's {"error"} on /v2, with the same
// statuses and details.
func TestRouterAnswersInTheSurfaceFormat(t *testing.T) {
	const tok = "tok-router-5d2a"
	open := newTestEnv(t, Config{})
	locked := newTestEnv(t, Config{AuthToken: tok})
	auth := []string{"Authorization", "Bearer " + tok}
	tests := []struct {
		name   string
		env    *testEnv
		method string
		path   string
		hdr    []string
		status int
		detail string
	}{
		{"v1 unknown route", open, "GET", "/v1/nothing", nil, 404, `no route for GET "/v1/nothing"`},
		{"v2 unknown route", open, "GET", "/v2/nothing", nil, 404, `no route for GET "/v2/nothing"`},
		{"v2 unknown route with token", locked, "GET", "/v2/models/iris/explain", auth, 404, `no route for GET "/v2/models/iris/explain"`},
		{"v1 wrong method", open, "PUT", "/v1/models/iris", nil, 405, "method PUT is not allowed on this route; allowed: GET, DELETE"},
		{"v2 wrong method", open, "DELETE", "/v2/models/iris", nil, 405, "method DELETE is not allowed on this route; allowed: GET"},
		{"v1 no token", locked, "GET", "/v1/models", nil, 401, "missing bearer token: send Authorization: Bearer <token>"},
		{"v2 no token", locked, "GET", "/v2/models/iris", nil, 401, "missing bearer token: send Authorization: Bearer <token>"},
		{"v2 wrong token", locked, "GET", "/v2", []string{"Authorization", "Bearer nope"}, 401, "invalid bearer token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := doRaw(t, tc.env.h, tc.method, tc.path, "", nil, tc.hdr...)
			if res.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.Status, tc.status, res.Body)
			}
			if got := res.SurfaceError(t, tc.path); got != tc.detail {
				t.Errorf("detail %q, want %q", got, tc.detail)
			}
		})
	}
}
