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
		s.logger.WarnContext(r.Context(), "not ready: data directory not writable", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "data directory not writable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
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
