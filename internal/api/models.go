package api

import (
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
	"github.com/backpropd/backpropd/internal/table"
)

// maxVersionDigits keeps a version inside int on every platform.
const maxVersionDigits = 9

// parseVersion parses a model version: a positive decimal integer with no
// sign, no leading zero and at most maxVersionDigits digits.
func parseVersion(s string) (int, bool) {
	if len(s) == 0 || len(s) > maxVersionDigits || s[0] == '0' {
		return 0, false
	}
	v := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// quoteParam shows a rejected path parameter in an error message, cut short
// so that a megabyte of junk is not echoed back.
func quoteParam(v string) string {
	const show = 80
	if len(v) > show {
		return strconv.Quote(v[:show]) + "…"
	}
	return strconv.Quote(v)
}

// modelRef reads and validates the {name} and optional {version} path
// parameters. version is 0 when the route has none (latest).
func modelRef(r *http.Request) (name string, version int, err error) {
	name = chi.URLParam(r, "name")
	// store.ValidModelName refuses "..", "%2f", "%252e", a backslash, NUL
	// and over-long names here, so that none reaches the store as a path.
	if !store.ValidModelName(name) {
		return "", 0, invalidField("path.name",
			"%s is not a model name: it must match %s", quoteParam(name), store.ModelNamePattern)
	}
	if v := chi.URLParam(r, "version"); v != "" || routeHasVersion(r) {
		n, ok := parseVersion(v)
		if !ok {
			return "", 0, invalidField("path.version",
				"%s is not a model version: it must be a positive integer such as 3", quoteParam(v))
		}
		version = n
	}
	return name, version, nil
}

// routeHasVersion reports whether the matched route has a {version}
// parameter, so that an empty one is refused rather than taken as latest.
func routeHasVersion(r *http.Request) bool {
	rc := chi.RouteContext(r.Context())
	if rc == nil {
		return false
	}
	for _, k := range rc.URLParams.Keys {
		if k == "version" {
			return true
		}
	}
	return false
}

// modelError turns the store's not-found into a 404 naming the model (and
// version); other errors pass through to writeError's table.
func modelError(err error, name string, version int) error {
	if errors.Is(err, store.ErrNotFound) {
		if version == 0 {
			return notFound("model", name)
		}
		return &Error{Status: http.StatusNotFound,
			Detail: fmt.Sprintf("model %q has no version %d", name, version), Err: err}
	}
	return err
}

// servedModel returns the decoded model name at version (0: latest) from
// the cache, with not-found as a 404 naming it.
func (s *Server) servedModel(r *http.Request, name string, version int) (*servedModel, error) {
	sm, err := s.models.get(r.Context(), name, version)
	if err != nil {
		return nil, modelError(err, name, version)
	}
	return sm, nil
}

// modelList is the body of GET /v1/models.
type modelList struct {
	Models []store.ModelName `json:"models"`
}

func (s *Server) listModels(w http.ResponseWriter, r *http.Request) {
	models, err := s.store.ListModels(r.Context())
	if err != nil {
		s.writeError(w, r, fmt.Errorf("list models: %w", err))
		return
	}
	if models == nil {
		models = []store.ModelName{}
	}
	writeJSON(w, http.StatusOK, modelList{Models: models})
}

// getModel serves GET /v1/models/{name} (the latest version's metadata) and
// GET /v1/models/{name}/versions/{version}.
func (s *Server) getModel(w http.ResponseWriter, r *http.Request) {
	name, version, err := modelRef(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	meta, err := s.store.ModelMeta(r.Context(), name, version)
	if err != nil {
		s.writeError(w, r, modelError(err, name, version))
		return
	}
	sm, err := s.servedModel(r, name, meta.Version)
	if err != nil {
		if status, _, _, _ := statusOf(err); status < 500 || clientGone(r, err) {
			s.writeError(w, r, err)
			return
		}
		// The stored metadata still describes a model whose file does not
		// load; its inputs, which come from the file, are left out.
		s.logger.ErrorContext(r.Context(), "model metadata without inputs: the model does not load",
			"request_id", RequestID(r.Context()), "model", name, "version", meta.Version, "err", s.redact(err.Error()))
		writeJSON(w, http.StatusOK, modelMetaBody{ModelMeta: meta})
		return
	}
	writeJSON(w, http.StatusOK, newModelMetaBody(meta, sm))
}

// modelMetaBody is the body of GET /v1/models/{name}[/versions/{version}]:
// the stored metadata, and what a client needs to build a prediction
// request or a form: the input columns, the target column's name and the
// width the inputs encode to.
type modelMetaBody struct {
	store.ModelMeta
	// Inputs, EncodedWidth and Precision are absent only when the model
	// file does not load.
	Inputs       []modelInput `json:"inputs,omitempty"`
	Target       string       `json:"target,omitempty"`
	EncodedWidth int          `json:"encoded_width,omitempty"`
	// Precision is the floating-point type the model's weights are in and
	// it predicts in: float32 or float64 (a model trained before
	// training.precision existed).
	Precision engine.Precision `json:"precision,omitempty"`
}

// modelInput is one input column of a model, as its metadata lists it.
type modelInput struct {
	Name string     `json:"name"`
	Type table.Kind `json:"type"`
	// Levels are a category's kept levels; any other value is accepted
	// and predicted as "other".
	Levels []string `json:"levels,omitempty"`
	// Range is a number's or datetime's training range, when known.
	Range   *inputRange `json:"range,omitempty"`
	HasTime bool        `json:"has_time,omitempty"`
	// Nullable says a cell may be null or absent at predict: every input
	// of a typed model, none of a model of numeric features.
	Nullable bool `json:"nullable"`
	// MissingInTraining says the training split had missing cells here.
	MissingInTraining bool `json:"missing_in_training"`
}

// inputRange is the range of an input's training cells: numbers, or for
// datetimes RFC 3339 strings.
type inputRange struct {
	Min any `json:"min"`
	Max any `json:"max"`
}

func newModelMetaBody(meta store.ModelMeta, sm *servedModel) modelMetaBody {
	inputs := sm.inputs
	if !sm.typed {
		inputs = sm.model.Inputs()
	}
	body := modelMetaBody{ModelMeta: meta, Inputs: make([]modelInput, len(inputs)),
		Target: sm.target, EncodedWidth: sm.model.EncodedWidth(), Precision: sm.precision}
	for j, in := range inputs {
		mi := modelInput{Name: in.Name, Type: in.Kind, Levels: in.Levels, HasTime: in.HasTime,
			Nullable: sm.typed, MissingInTraining: in.Missing}
		if in.Min != nil && in.Max != nil {
			mi.Range = &inputRange{Min: *in.Min, Max: *in.Max}
			if in.Kind == table.Datetime {
				mi.Range = &inputRange{Min: rfc3339(*in.Min), Max: rfc3339(*in.Max)}
			}
		}
		body.Inputs[j] = mi
	}
	return body
}

// rfc3339 renders Unix seconds as an RFC 3339 time in UTC.
func rfc3339(sec float64) string {
	return table.FormatDatetime(sec).Format(time.RFC3339Nano)
}

// deleteModel serves DELETE /v1/models/{name}: every version goes.
func (s *Server) deleteModel(w http.ResponseWriter, r *http.Request) {
	name, _, err := modelRef(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	err = s.store.DeleteModel(r.Context(), name)
	// Invalidate whatever the outcome: a half-done delete must not leave
	// versions served from memory that the store no longer has.
	s.models.invalidate(name, 0)
	if err != nil {
		s.writeError(w, r, modelError(err, name, 0))
		return
	}
	s.modelDeleted(name)
	w.WriteHeader(http.StatusNoContent)
}

// deleteModelVersion serves DELETE /v1/models/{name}/versions/{version}.
func (s *Server) deleteModelVersion(w http.ResponseWriter, r *http.Request) {
	name, version, err := modelRef(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	err = s.store.DeleteModelVersion(r.Context(), name, version)
	s.models.invalidate(name, version)
	if err != nil {
		s.writeError(w, r, modelError(err, name, version))
		return
	}
	if _, err := s.store.ModelVersions(r.Context(), name); errors.Is(err, store.ErrNotFound) {
		s.modelDeleted(name)
	}
	w.WriteHeader(http.StatusNoContent)
}

// modelDeleted tells the observer that name has no version left.
func (s *Server) modelDeleted(name string) {
	if s.observer != nil {
		s.observer.ModelDeleted(name)
	}
}

// modelFile serves GET /v1/models/{name}/versions/{version}/file: the model
// file as stored, for export and re-import elsewhere.
func (s *Server) modelFile(w http.ResponseWriter, r *http.Request) {
	name, version, err := modelRef(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	meta, file, err := s.store.ModelFile(r.Context(), name, version)
	if err != nil {
		s.writeError(w, r, modelError(err, name, version))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.Itoa(len(file)))
	h.Set("Content-Disposition", mime.FormatMediaType("attachment",
		map[string]string{"filename": fmt.Sprintf("%s-v%d.model", meta.Name, meta.Version)}))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(file)
}

// defaultMaxUploadBytes is --max-upload-bytes' default.
const defaultMaxUploadBytes = 2 << 30

// importModel serves POST /v1/models/{name}/versions: the body is a model
// file (as GET .../file returns it), stored as the next version of name.
// The file is decoded and checked by the engine before anything is stored,
// held to the parameter cap and the name rules of trained models, and the
// stored metadata comes from the decoded model, not from the client.
func (s *Server) importModel(w http.ResponseWriter, r *http.Request) {
	name, _, err := modelRef(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, perr := mime.ParseMediaType(ct); perr != nil || mt != "application/octet-stream" {
		if ct == "" {
			ct = "none"
		}
		s.writeError(w, r, &Error{Status: http.StatusUnsupportedMediaType,
			Detail: fmt.Sprintf("Content-Type must be application/octet-stream (a model file), got %s", ct)})
		return
	}
	limit := s.cfg.MaxUploadBytes
	if limit <= 0 {
		limit = defaultMaxUploadBytes
	}
	if err := s.checkDiskFor(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	file, err := readBody(w, r, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(file) == 0 {
		s.writeError(w, r, invalidField("body", "is empty; expected a model file"))
		return
	}
	m, err := engine.ImportModel(file, engine.Limits{MaxParams: s.cfg.MaxParams})
	var ie *engine.ImportError
	switch {
	case errors.As(err, &ie):
		s.writeError(w, r, invalidField("body."+ie.Field, "%s", ie.Msg))
		return
	case err != nil:
		s.writeError(w, r, invalidField("body", "is not a valid model file: %v", err))
		return
	}
	meta, err := s.store.ImportModel(r.Context(), importedMeta(name, m), file)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("store imported model %s: %w", name, err))
		return
	}
	s.models.forgetLatest(name)
	w.Header().Set("Location", fmt.Sprintf("/v1/models/%s/versions/%d", meta.Name, meta.Version))
	// The same body as GET of the version: the file was decoded above, so
	// its inputs and precision are known.
	sm, err := newServedModel(meta, m)
	if err != nil {
		writeJSON(w, http.StatusCreated, modelMetaBody{ModelMeta: meta})
		return
	}
	writeJSON(w, http.StatusCreated, newModelMetaBody(meta, sm))
}

// importedMeta describes an imported model from what the model file itself
// says.
func importedMeta(name string, m *engine.Model) store.ModelMeta {
	sum := m.Summary()
	metrics := map[string]float64{}
	for k, v := range map[string]*float64{"loss": &sum.Loss, "val_loss": sum.ValLoss,
		"accuracy": sum.Accuracy, "val_accuracy": sum.ValAccuracy} {
		// JSON has no NaN; a summary value that is not finite is left out.
		if v != nil && !math.IsNaN(*v) && !math.IsInf(*v, 0) {
			metrics[k] = *v
		}
	}
	return store.ModelMeta{
		Name:         name,
		Task:         string(m.Task()),
		FeatureNames: m.FeatureNames(),
		TargetNames:  m.TargetNames(),
		Classes:      m.Classes(),
		Outputs:      m.Outputs(),
		Metrics:      metrics,
		StoppedEarly: sum.StoppedEarly,
		Imported:     true,
	}
}
