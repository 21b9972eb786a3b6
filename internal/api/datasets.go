package api

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
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

// csvUploadParams are the query parameters of a CSV upload.
var csvUploadParams = []string{"name", "target", "task", "categorical", "numeric", "datetime", "ignore",
	"na_values", "delimiter", "decimal", "header"}

// jsonUploadCSVParams are the CSV upload's query parameters, which a JSON
// upload rejects rather than ignores: it carries all it needs in its body.
var jsonUploadCSVParams = map[string]string{
	"name":   "applies to text/csv uploads only; a JSON upload gives name in its body",
	"target": "applies to text/csv uploads only; a JSON upload's targets are its targets array",
	"task":   "applies to text/csv uploads only; a JSON upload gives task in its body",
}

// createDataset stores an uploaded dataset: text/csv with ?name=&target=,
// or application/json.
//
// The body is parsed as it arrives, straight into the dataset's numbers,
// and its memory is taken from the budget (Config.Memory) the same way:
// the Content-Length only caps the body, it never sizes a buffer or a
// reservation.
func (s *Server) createDataset(w http.ResponseWriter, r *http.Request) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	mem := &uploadMemory{budget: s.cfg.Memory}
	defer mem.done()
	meta, err := s.storeUpload(w, r, mt, mem)
	if err != nil {
		if errors.Is(err, ingest.ErrMemory) {
			err = atBudget()
		}
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/datasets/"+meta.ID)
	writeJSON(w, http.StatusCreated, meta)
}

// storeUpload parses the upload of media type mt and stores it. The
// dataset lives only as long as this call, so that createDataset can
// hand its memory back once it returns.
func (s *Server) storeUpload(w http.ResponseWriter, r *http.Request, mt string, mem *uploadMemory) (store.DatasetMeta, error) {
	var d *store.Dataset
	switch {
	case mt == "text/csv" || mt == "application/csv" || mt == "text/tab-separated-values":
		if err := checkQuery(r, csvUploadParams, nil); err != nil {
			return store.DatasetMeta{}, err
		}
		q := r.URL.Query()
		name := q.Get("name")
		if err := checkDatasetName(name, "query.name"); err != nil {
			return store.DatasetMeta{}, err
		}
		task, err := ingest.ParseTask(q.Get("task"))
		if err != nil {
			return store.DatasetMeta{}, invalidField("query.task", "%s", err)
		}
		var targets []string
		if t := q.Get("target"); t != "" {
			for _, c := range strings.Split(t, ",") {
				targets = append(targets, strings.TrimSpace(c))
			}
		}
		opt := ingest.CSVOptions{Name: name, Targets: targets, Task: task,
			MaxCells: s.cfg.MaxDatasetCells, Reserve: mem.reserve, XParts: true}
		if err := csvDialect(q, mt, &opt); err != nil {
			return store.DatasetMeta{}, err
		}
		if r.ContentLength > s.cfg.MaxUploadBytes {
			return store.DatasetMeta{}, tooLarge(s.cfg.MaxUploadBytes)
		}
		if err := s.checkDiskFor(r); err != nil {
			return store.DatasetMeta{}, err
		}
		body := http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes)
		d, err = ingest.ReadCSV(r.Context(), body, opt)
		if err != nil {
			var ie *ingest.Error
			var ies *ingest.Errors
			if !errors.As(err, &ies) && errors.As(err, &ie) && ie.Line == 0 && ie.Column == 0 && slices.Contains(csvUploadParams, ie.Field) {
				// A problem with a parameter, not a cell.
				err = invalidField("query."+ie.Field, "%s", ie.Message)
			}
			return store.DatasetMeta{}, s.uploadError(err)
		}
	case mt == "application/json":
		if r.ContentLength > s.cfg.MaxUploadBytes {
			return store.DatasetMeta{}, tooLarge(s.cfg.MaxUploadBytes)
		}
		body := bufio.NewReader(http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes))
		if isJSONArray(body) {
			return s.storeRecords(r, body, mem)
		}
		if err := checkQuery(r, nil, jsonUploadCSVParams); err != nil {
			return store.DatasetMeta{}, err
		}
		if err := s.checkDiskFor(r); err != nil {
			return store.DatasetMeta{}, err
		}
		var err error
		d, err = ingest.ReadJSON(r.Context(), body, ingest.JSONOptions{
			MaxCells: s.cfg.MaxDatasetCells, Reserve: mem.reserve})
		if err != nil {
			return store.DatasetMeta{}, s.uploadError(err)
		}
		if err := checkDatasetName(d.Meta.Name, "name"); err != nil {
			return store.DatasetMeta{}, err
		}
	default:
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			ct = "none"
		}
		detail := fmt.Sprintf("Content-Type must be text/csv, text/tab-separated-values or application/json, got %s", ct)
		if mt == "application/x-www-form-urlencoded" {
			detail += " (curl's default for --data; add -H 'Content-Type: text/csv')"
		}
		return store.DatasetMeta{}, &Error{Status: http.StatusUnsupportedMediaType, Detail: detail}
	}
	return s.store.CreateDataset(r.Context(), d)
}

// recordsUploadParams are the query parameters of a JSON upload that is
// an array of records, which carries no name or target of its own.
var recordsUploadParams = []string{"name", "target", "task", "categorical", "numeric", "datetime", "ignore"}

// isJSONArray reports whether the JSON in br starts with '[', looking
// past whitespace without consuming anything.
func isJSONArray(br *bufio.Reader) bool {
	for n := 1; n <= 4096; n++ {
		b, err := br.Peek(n)
		if len(b) < n || err != nil {
			return false
		}
		switch b[n-1] {
		case ' ', '\t', '\r', '\n':
			continue
		case '[':
			return true
		}
		return false
	}
	return false
}

// storeRecords parses and stores a JSON array of records, with its name,
// target, task and column types from the query.
func (s *Server) storeRecords(r *http.Request, body io.Reader, mem *uploadMemory) (store.DatasetMeta, error) {
	if err := checkQuery(r, recordsUploadParams, nil); err != nil {
		return store.DatasetMeta{}, err
	}
	q := r.URL.Query()
	name := q.Get("name")
	if err := checkDatasetName(name, "query.name"); err != nil {
		return store.DatasetMeta{}, err
	}
	task, err := ingest.ParseTask(q.Get("task"))
	if err != nil {
		return store.DatasetMeta{}, invalidField("query.task", "%s", err)
	}
	var opt ingest.CSVOptions
	if err := csvDialect(q, "", &opt); err != nil {
		return store.DatasetMeta{}, err
	}
	var targets []string
	if t := q.Get("target"); t != "" {
		for _, c := range strings.Split(t, ",") {
			targets = append(targets, strings.TrimSpace(c))
		}
	}
	if err := s.checkDiskFor(r); err != nil {
		return store.DatasetMeta{}, err
	}
	d, err := ingest.ReadJSONRecords(r.Context(), body, ingest.RecordsOptions{Name: name, Targets: targets, Task: task,
		Overrides: opt.Overrides, MaxCells: s.cfg.MaxDatasetCells, Reserve: mem.reserve})
	if err != nil {
		var ie *ingest.Error
		var ies *ingest.Errors
		if !errors.As(err, &ies) && errors.As(err, &ie) && slices.Contains(recordsUploadParams, ie.Field) {
			err = invalidField("query."+ie.Field, "%s", ie.Message)
		}
		return store.DatasetMeta{}, s.uploadError(err)
	}
	return s.store.CreateDataset(r.Context(), d)
}

// csvDialect reads the CSV upload's dialect and column parameters into
// opt. Each list parameter is repeatable and takes comma-separated names.
func csvDialect(q url.Values, mt string, opt *ingest.CSVOptions) error {
	list := func(key string) []string {
		var out []string
		for _, v := range q[key] {
			for _, n := range strings.Split(v, ",") {
				if n = strings.TrimSpace(n); n != "" {
					out = append(out, n)
				}
			}
		}
		return out
	}
	opt.Overrides = ingest.Overrides{Categorical: list("categorical"), Numeric: list("numeric"),
		Datetime: list("datetime"), Ignore: list("ignore")}
	if q.Has("na_values") {
		opt.NAValues = list("na_values")
		if opt.NAValues == nil {
			opt.NAValues = []string{}
		}
	}
	if mt == "text/tab-separated-values" {
		opt.Delimiter = '\t'
	}
	if q.Has("delimiter") {
		switch v := q.Get("delimiter"); v {
		case ",", ";", "|", "\t":
			opt.Delimiter = rune(v[0])
		case "tab", `\t`:
			opt.Delimiter = '\t'
		default:
			return invalidField("query.delimiter", "must be one of , ; | or tab, got %q", truncate(v))
		}
	}
	if q.Has("decimal") {
		switch v := q.Get("decimal"); v {
		case ".":
		case ",":
			opt.DecimalComma = true
		default:
			return invalidField("query.decimal", "must be . or , got %q", truncate(v))
		}
	}
	if q.Has("header") {
		switch v := q.Get("header"); v {
		case "true":
		case "false":
			opt.NoHeader = true
		default:
			return invalidField("query.header", "must be true or false, got %q", truncate(v))
		}
	}
	return nil
}

// uploadError maps a parser's error: its *ingest.Error and a refused
// reservation (ErrMemory) pass through to statusOf and createDataset; any
// other is the body's reader failing or the request's context ending,
// which is the client's doing, not the server's.
func (s *Server) uploadError(err error) error {
	var ie *ingest.Error
	var ae *Error
	if errors.As(err, &ie) || errors.As(err, &ae) || errors.Is(err, ingest.ErrMemory) {
		return err
	}
	return bodyError(err, s.cfg.MaxUploadBytes)
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
