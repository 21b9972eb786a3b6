package api

// Placeholders for the model, /v2 and loss-curve handlers, which the
// api-models work replaces (delete this file then).

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

func (s *Server) modelRoutes(r chi.Router) {}

func (s *Server) v2Routes(r chi.Router) {}

func (s *Server) lossSVG(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, r, http.StatusNotImplemented, "not implemented yet", nil)
}
