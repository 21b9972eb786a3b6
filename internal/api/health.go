package api

import (
	"net/http"
	"strconv"
)

// healthz says the process is alive.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz says whether the server should get traffic: not while draining,
// and not while the data directory refuses writes.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return
	}
	if err := s.store.Writable(); err != nil {
		// The cause may name a path; it goes to the log, not the client.
		s.logger.WarnContext(r.Context(), "not ready: data directory not writable", "err", s.redact(err.Error()))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "data directory not writable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// headOf serves HEAD with get, the route's GET handler: the same status and
// header fields, Content-Length that of the GET body, and no body (RFC 9110
// section 9.3.2).
func headOf(get http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hw := &headWriter{header: http.Header{}}
		get(hw, r)
		dst := w.Header()
		for k, v := range hw.header {
			dst[k] = v
		}
		dst.Set("Content-Length", strconv.Itoa(hw.n))
		if hw.status == 0 {
			hw.status = http.StatusOK
		}
		w.WriteHeader(hw.status)
	}
}

// headWriter records a GET handler's status and header fields and counts
// its body bytes without keeping them.
type headWriter struct {
	header http.Header
	status int
	n      int
}

func (h *headWriter) Header() http.Header { return h.header }

func (h *headWriter) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

func (h *headWriter) Write(p []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	h.n += len(p)
	return len(p), nil
}

// serveMetrics serves the Prometheus exposition.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if s.metrics == nil {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		return
	}
	s.metrics.ServeHTTP(w, r)
}

// openAPI serves the contract.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Content-Length", strconv.Itoa(len(s.spec)))
	_, _ = w.Write(s.spec)
}

// sanitizePath shortens and quotes a client-supplied path for an error
// detail, so that control bytes and huge paths are never echoed raw.
func sanitizePath(p string) string {
	if len(p) > 200 {
		p = p[:200] + "..."
	}
	return strconv.Quote(p)
}
