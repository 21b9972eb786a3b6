package metrics

import (
	"context"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
)

// UnmatchedRoute is the route label of requests that matched no route, so
// that random paths cannot create new series.
const UnmatchedRoute = "unmatched"

// Instrument counts and times the requests next serves, labelled by the chi
// route pattern ("/v1/jobs/{id}"), never by the raw path, so the number of
// series stays bounded whatever clients send. It works both around a chi
// router and as a chi middleware: when the request carries no chi routing
// context yet, it installs one that the router fills and reads the pattern
// from it after next returns. The ResponseWriter it passes on keeps
// http.Flusher and supports http.ResponseController through Unwrap, so
// event streams still flush.
func (m *Metrics) Instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := m.now()
		rctx := chi.RouteContext(r.Context())
		if rctx == nil {
			rctx = chi.NewRouteContext()
			if rt, ok := next.(chi.Routes); ok {
				rctx.Routes = rt
			}
			r = r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, rctx))
		}
		rw := &responseWriter{ResponseWriter: w}
		defer func() {
			// Record panicking requests too (a recoverer further out turns
			// them into a 500), then let the panic continue.
			p := recover()
			code := rw.code
			if code == 0 {
				// Nothing written: net/http answers 200 for a handler that
				// returns normally.
				code = http.StatusOK
				if p != nil {
					code = http.StatusInternalServerError
				}
			}
			route := rctx.RoutePattern()
			if route == "" {
				route = UnmatchedRoute
			}
			method := methodLabel(r.Method)
			m.httpRequests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
			m.httpDuration.WithLabelValues(route, method).Observe(m.now().Sub(start).Seconds())
			if p != nil {
				panic(p)
			}
		}()
		next.ServeHTTP(rw, r)
	})
}

// methodLabel bounds the method label: clients may send any token as a
// method.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "OTHER"
}

// responseWriter remembers the status code. Flush and Unwrap keep
// streaming handlers working through it.
type responseWriter struct {
	http.ResponseWriter
	code int
}

func (w *responseWriter) WriteHeader(code int) {
	// 1xx responses are informational; the final status comes later.
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher for handlers that type-assert it.
func (w *responseWriter) Flush() {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer's
// deadlines, hijacking and full-duplex support.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
