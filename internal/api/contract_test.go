package api

// The contract tests hold the handlers to api/openapi.yaml: every route of
// the router is in the spec and every path of the spec is routed, and every
// request and response that goes through the helpers below is validated
// against the spec. Handler tests in this package (the model and /v2 ones
// too) send their requests with do, doJSON or doRaw so nothing escapes it.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/go-chi/chi/v5"

	apispec "github.com/backpropd/backpropd/api"
	"github.com/backpropd/backpropd/internal/jobs"
	"github.com/backpropd/backpropd/internal/store"
)

var (
	specOnce   sync.Once
	specDoc    *openapi3.T
	specRouter routers.Router
	specErr    error
)

// loadSpec parses and validates api/openapi.yaml once per test binary.
func loadSpec(tb testing.TB) (*openapi3.T, routers.Router) {
	tb.Helper()
	specOnce.Do(func() {
		for _, ct := range []string{"text/csv", "application/csv", "text/tab-separated-values", "text/event-stream", "image/svg+xml", "application/openmetrics-text"} {
			if openapi3filter.RegisteredBodyDecoder(ct) == nil {
				openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
			}
		}
		// The spec declares /openapi.yaml's body a string, the YAML text;
		// kin-openapi would otherwise parse it into an object.
		openapi3filter.RegisterBodyDecoder("application/yaml", openapi3filter.FileBodyDecoder)
		if openapi3filter.RegisteredBodyDecoder("application/problem+json") == nil {
			openapi3filter.RegisterBodyDecoder("application/problem+json", openapi3filter.RegisteredBodyDecoder("application/json"))
		}
		loader := openapi3.NewLoader()
		specDoc, specErr = loader.LoadFromData(apispec.OpenAPI)
		if specErr != nil {
			return
		}
		if specErr = specDoc.Validate(context.Background()); specErr != nil {
			return
		}
		specRouter, specErr = gorillamux.NewRouter(specDoc)
	})
	if specErr != nil {
		tb.Fatalf("api/openapi.yaml: %v", specErr)
	}
	return specDoc, specRouter
}

// response is what a handler answered.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test on error.
func (r *response) JSON(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("decode response %d %s: %v", r.Status, r.Body, err)
	}
}

// Problem decodes a problem+json body.
func (r *response) Problem(tb testing.TB) Problem {
	tb.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		tb.Fatalf("Content-Type = %q, want application/problem+json (status %d, body %s)", ct, r.Status, r.Body)
	}
	var p Problem
	r.JSON(tb, &p)
	return p
}

// SurfaceError checks that res is an error in the format of path's
// surface: the Open Inference Protocol's {"error": "..."} under /v2, a
// problem everywhere else. It returns the error's detail.
func (r *response) SurfaceError(tb testing.TB, path string) string {
	tb.Helper()
	if path != "/v2" && !strings.HasPrefix(path, "/v2/") {
		return r.Problem(tb).Detail
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		tb.Fatalf("Content-Type = %q, want application/json for /v2 (status %d, body %s)", ct, r.Status, r.Body)
	}
	var body map[string]any
	r.JSON(tb, &body)
	msg, ok := body["error"].(string)
	if !ok || msg == "" || len(body) != 1 {
		tb.Fatalf("body = %s, want the protocol's {\"error\": \"...\"}", r.Body)
	}
	return msg
}

// do sends req through h and validates the exchange against the spec. The
// request is validated when the handler accepted it (status < 400): the
// point of a rejected request is often that it breaks the schema. The
// response is always validated, including that its status is documented.
// A request to a path the spec lacks must get a 404 or 405 error in its
// surface's format (SurfaceError).
func do(tb testing.TB, h http.Handler, req *http.Request) *response {
	tb.Helper()
	_, router := loadSpec(tb)
	var reqBody []byte
	if req.Body != nil {
		reqBody, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := &response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	if res.Header.Get("X-Request-Id") == "" {
		tb.Errorf("%s %s: no X-Request-Id in the response", req.Method, req.URL)
	}

	vreq := req.Clone(context.Background())
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	if vreq.URL.Host == "" {
		vreq.URL.Host = "localhost"
	}
	route, params, err := router.FindRoute(vreq)
	if err != nil {
		if res.Status != http.StatusNotFound && res.Status != http.StatusMethodNotAllowed && res.Status != http.StatusBadRequest && res.Status != http.StatusUnauthorized {
			tb.Errorf("%s %s: not in the spec (%v), yet answered %d", req.Method, req.URL, err, res.Status)
		}
		res.SurfaceError(tb, req.URL.Path)
		return res
	}
	in := &openapi3filter.RequestValidationInput{
		Request:    vreq,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
			MultiError:         true,
		},
	}
	if res.Status < 400 {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			tb.Errorf("%s %s: request does not match the spec: %v", req.Method, req.URL, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 res.Status,
		Header:                 res.Header,
		Body:                   io.NopCloser(bytes.NewReader(res.Body)),
		// A HEAD answer has GET's header fields and no body to validate.
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true,
			ExcludeResponseBody: req.Method == http.MethodHead},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		tb.Errorf("%s %s: response %d does not match the spec: %v\nbody: %.2000s", req.Method, req.URL, res.Status, err, res.Body)
	}
	return res
}

// doRaw sends a body with a content type ("" sends no Content-Type).
func doRaw(tb testing.TB, h http.Handler, method, path, contentType string, body []byte, hdr ...string) *response {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(tb, h, req)
}

// doJSON sends body as JSON: a string or []byte is sent as is, anything
// else is marshaled; nil sends no body. hdr are header name/value pairs.
func doJSON(tb testing.TB, h http.Handler, method, path string, body any, hdr ...string) *response {
	tb.Helper()
	var b []byte
	switch v := body.(type) {
	case nil:
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			tb.Fatalf("marshal request: %v", err)
		}
	}
	ct := ""
	if body != nil {
		ct = "application/json"
	}
	return doRaw(tb, h, method, path, ct, b, hdr...)
}

// testEnv is a Server over a real store in a temporary directory and a
// real job manager.
type testEnv struct {
	srv   *Server
	h     http.Handler
	store *store.Store
	jobs  *jobs.Manager
	dir   string
}

// newTestEnv starts a server; cfg may set the token and limits.
func newTestEnv(tb testing.TB, cfg Config) *testEnv {
	tb.Helper()
	dir := tb.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	m, err := jobs.New(st, jobs.Options{Workers: 1, QueueSize: 4})
	if err != nil {
		tb.Fatalf("jobs.New: %v", err)
	}
	if err := m.Start(context.Background()); err != nil {
		tb.Fatalf("jobs Start: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10e9)
		defer cancel()
		_ = m.Shutdown(ctx)
		_ = st.Close()
	})
	srv := New(Options{Config: cfg, Store: st, Jobs: m, Logger: slog.New(slog.DiscardHandler)})
	return &testEnv{srv: srv, h: srv.Handler(), store: st, jobs: m, dir: dir}
}

// TestRoutesMatchSpec fails when the router has a route the spec lacks or
// the other way round.
func TestRoutesMatchSpec(t *testing.T) {
	doc, _ := loadSpec(t)
	env := newTestEnv(t, Config{})
	routed := map[string]bool{}
	err := chi.Walk(env.h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.TrimSuffix(route, "/*")
		if route != "/" {
			route = strings.TrimSuffix(route, "/")
		}
		routed[method+" "+route] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	specced := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			specced[method+" "+path] = true
		}
	}
	var missingInSpec, missingInRouter []string
	for k := range routed {
		if !specced[k] {
			missingInSpec = append(missingInSpec, k)
		}
	}
	for k := range specced {
		if !routed[k] {
			missingInRouter = append(missingInRouter, k)
		}
	}
	slices.Sort(missingInSpec)
	slices.Sort(missingInRouter)
	if len(missingInSpec) > 0 {
		t.Errorf("routes missing from api/openapi.yaml:\n  %s", strings.Join(missingInSpec, "\n  "))
	}
	if len(missingInRouter) > 0 {
		t.Errorf("spec paths the router lacks:\n  %s", strings.Join(missingInRouter, "\n  "))
	}
	if len(routed) < 10 {
		t.Errorf("walked only %d routes; the walk is broken", len(routed))
	}
}

// TestServedSpecIsTheFile checks /openapi.yaml serves the embedded file.
func TestServedSpecIsTheFile(t *testing.T) {
	env := newTestEnv(t, Config{})
	res := doJSON(t, env.h, http.MethodGet, "/openapi.yaml", nil)
	if res.Status != http.StatusOK || !bytes.Equal(res.Body, apispec.OpenAPI) {
		t.Fatalf("GET /openapi.yaml: status %d, %d bytes; want 200 and the %d bytes of api/openapi.yaml", res.Status, len(res.Body), len(apispec.OpenAPI))
	}
}
