package api

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/backpropd/backpropd/internal/ingest"
	"github.com/backpropd/backpropd/internal/jobs"
	"github.com/backpropd/backpropd/internal/pagecursor"
	"github.com/backpropd/backpropd/internal/store"
)

// datasetUpload is the JSON form of POST /v1/datasets.
type datasetUpload struct {
	Name string `json:"name"`
	ingest.JSONData
}

// csvUploadParams are the query parameters of a CSV upload.
var csvUploadParams = []string{"name", "target", "task"}

// jsonUploadCSVParams are the CSV upload's query parameters, which a JSON
// upload rejects rather than ignores: it carries all it needs in its body.
var jsonUploadCSVParams = map[string]string{
	"name":   "applies to text/csv uploads only; a JSON upload gives name in its body",
	"target": "applies to text/csv uploads only; a JSON upload's targets are its targets array",
	"task":   "applies to text/csv uploads only; a JSON upload gives task in its body",
}

// createDataset stores an uploaded dataset: text/csv with ?name=&target=,
// or application/json.
func (s *Server) createDataset(w http.ResponseWriter, r *http.Request) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var d *store.Dataset
	switch {
	case mt == "text/csv" || mt == "application/csv":
		if err := checkQuery(r, csvUploadParams, nil); err != nil {
			s.writeError(w, r, err)
			return
		}
		q := r.URL.Query()
		name := q.Get("name")
		if err := checkDatasetName(name, "query.name"); err != nil {
			s.writeError(w, r, err)
			return
		}
		task, err := ingest.ParseTask(q.Get("task"))
		if err != nil {
			s.writeError(w, r, invalidField("query.task", "%s", err))
			return
		}
		var targets []string
		if t := q.Get("target"); t != "" {
			for _, c := range strings.Split(t, ",") {
				targets = append(targets, strings.TrimSpace(c))
			}
		}
		if r.ContentLength > s.cfg.MaxUploadBytes {
			s.writeError(w, r, tooLarge(s.cfg.MaxUploadBytes))
			return
		}
		if err := s.checkDiskFor(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		body := http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes)
		d, err = ingest.ReadCSV(r.Context(), body, ingest.CSVOptions{Name: name, Targets: targets, Task: task,
			SizeHint: r.ContentLength, MaxCells: s.cfg.MaxDatasetCells})
		if err != nil {
			var mbe *http.MaxBytesError
			var ie *ingest.Error
			switch {
			case errors.As(err, &mbe):
				err = tooLarge(s.cfg.MaxUploadBytes)
			case errors.As(err, &ie) && ie.Field == "target":
				err = invalidField("query.target", "%s", ie.Message)
			case errors.As(err, &ie):
			default:
				// ReadCSV's other errors are the body's reader failing or
				// the request's context ending: the client, not the server.
				err = bodyError(err, s.cfg.MaxUploadBytes)
			}
			s.writeError(w, r, err)
			return
		}
	case mt == "application/json":
		if err := checkQuery(r, nil, jsonUploadCSVParams); err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := s.checkDiskFor(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		var up datasetUpload
		if err := decodeJSON(w, r, s.cfg.MaxUploadBytes, &up); err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := checkDatasetName(up.Name, "name"); err != nil {
			s.writeError(w, r, err)
			return
		}
		var err error
		if d, err = up.Dataset(up.Name, ""); err != nil {
			s.writeError(w, r, err)
			return
		}
		if cells := int64(d.Meta.Rows) * int64(d.Meta.Features); cells > s.cfg.MaxDatasetCells {
			s.writeError(w, r, &Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf(
				"%d cells (rows × features) is more than the server's limit of %d", cells, s.cfg.MaxDatasetCells)})
			return
		}
	default:
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			ct = "none"
		}
		detail := fmt.Sprintf("Content-Type must be text/csv or application/json, got %s", ct)
		if mt == "application/x-www-form-urlencoded" {
			detail += " (curl's default for --data; add -H 'Content-Type: text/csv')"
		}
		s.writeError(w, r, &Error{Status: http.StatusUnsupportedMediaType, Detail: detail})
		return
	}
	meta, err := s.store.CreateDataset(r.Context(), d)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/datasets/"+meta.ID)
	writeJSON(w, http.StatusCreated, meta)
}

// checkDatasetName requires a short printable name.
func checkDatasetName(name, field string) error {
	switch {
	case name == "":
		return invalidField(field, "required")
	case !utf8.ValidString(name):
		return invalidField(field, "must be valid UTF-8")
	case len(name) > 200:
		return invalidField(field, "must be at most 200 bytes, got %d", len(name))
	}
	for _, c := range name {
		if !unicode.IsPrint(c) {
			return invalidField(field, "must not hold control characters")
		}
	}
	return nil
}

// pathID returns the {id} path parameter, which must be a canonical UUID:
// anything else (../, %2f, NUL, long junk) is a 400 naming the parameter,
// before it gets near the store.
func pathID(r *http.Request) (string, error) {
	id := chi.URLParam(r, "id")
	u, err := uuid.Parse(id)
	if err != nil || u.String() != id {
		return "", invalidField("path.id", "must be a lowercase UUID such as 0b6f2c1e-8d3a-4f5e-9c7b-1a2b3c4d5e6f")
	}
	return id, nil
}

// datasetList is GET /v1/datasets.
type datasetList struct {
	Datasets []store.DatasetMeta `json:"datasets"`
	// NextCursor fetches the next page; absent on the last one.
	NextCursor string `json:"next_cursor,omitempty"`
}

// listDatasets lists datasets newest first, a page at a time, by the same
// query rules as listJobs: name filters, limit (1 to 1000, default 50) and
// cursor page, anything else is a 400 naming it.
func (s *Server) listDatasets(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, []string{"name", "limit", "cursor"}, nil); err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	f := store.DatasetFilter{Name: q.Get("name"), Cursor: q.Get("cursor")}
	if q.Has("limit") {
		l := q.Get("limit")
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			s.writeError(w, r, invalidField("query.limit", "must be an integer from 1 to 1000, got %q", truncate(l)))
			return
		}
		f.Limit = n
	}
	list, err := s.store.ListDatasets(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	page, next, err := store.PageDatasets(list, f)
	if errors.Is(err, pagecursor.ErrInvalid) {
		err = invalidField("query.cursor", "is not a cursor returned by a previous page")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, datasetList{Datasets: page, NextCursor: next})
}

func (s *Server) getDataset(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	meta, err := s.store.DatasetMeta(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		err = notFound("dataset", id)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, meta)
}

func (s *Server) deleteDataset(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.store.DatasetMeta(r.Context(), id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = notFound("dataset", id)
		}
		s.writeError(w, r, err)
		return
	}
	// The manager checks that no job uses the dataset and deletes it in
	// one step, so that a job submitted meanwhile cannot pass validation
	// and then train on a deleted dataset.
	if err := s.jobs.DeleteDataset(r.Context(), id); err != nil {
		switch {
		case errors.Is(err, jobs.ErrConflict):
			// The manager's text names the dataset and why it is kept.
			err = &Error{Status: http.StatusConflict, Detail: err.Error(), Err: err}
		case errors.Is(err, store.ErrNotFound):
			err = notFound("dataset", id)
		}
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
