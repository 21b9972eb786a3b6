package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/ingest"
	"github.com/backpropd/backpropd/internal/jobs"
)

// jobRequest is the body of POST /v1/jobs: a job spec, where small data
// sets may come inline as "data" instead of "dataset_id".
type jobRequest struct {
	jobs.Spec
	Data *ingest.JSONData `json:"data,omitempty"`
}

func (s *Server) createJob(w http.ResponseWriter, r *http.Request) {
	var req jobRequest
	if err := requireJSON(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := readBody(w, r, s.cfg.MaxRequestBytes)
	if err == nil {
		err = decodeStrict(body, &req)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	spec := req.Spec
	switch {
	case req.Data != nil && spec.DatasetID != "":
		s.writeError(w, r, badRequest("give either dataset_id or data, not both",
			FieldError{Field: "data", Message: "must not be set together with dataset_id"}))
		return
	case req.Data == nil && spec.DatasetID == "":
		s.writeError(w, r, invalidField("dataset_id", "required (or give the data inline as \"data\")"))
		return
	}
	if spec.ModelName == "" {
		s.writeError(w, r, invalidField("model_name", "required"))
		return
	}
	hidden := ""
	if req.Data != nil {
		d, err := req.Data.Dataset("inline data of a job for model "+spec.ModelName, "data")
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		d.Meta.Hidden = true
		meta, err := s.store.CreateDataset(r.Context(), d)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		hidden = meta.ID
		spec.DatasetID = meta.ID
	}
	job, err := s.submitJob(r.Context(), body, spec)
	if err != nil {
		if hidden != "" {
			// The job was refused: leave nothing behind. A fresh context, so
			// that a client hanging up does not leak the dataset.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
			if derr := s.store.DeleteDataset(ctx, hidden); derr != nil {
				s.logger.WarnContext(ctx, "delete inline dataset of a refused job", "dataset_id", hidden, "err", derr)
			}
			cancel()
		}
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/jobs/"+job.ID)
	writeJSON(w, http.StatusAccepted, job)
}

// submitJob resolves spec, refuses it when a default replaced a value the
// request body gave, and submits it.
func (s *Server) submitJob(ctx context.Context, body []byte, spec jobs.Spec) (jobs.Job, error) {
	resolved, err := s.jobs.Resolve(ctx, spec)
	if err != nil {
		return jobs.Job{}, err
	}
	if err := explicitOverrides(body, resolved); err != nil {
		return jobs.Job{}, err
	}
	return s.jobs.Submit(ctx, spec)
}

// explicitOverrides fails when resolving the spec replaced a value that
// the request gave explicitly. The engine's config reads zero in a plain
// (non-pointer) field as "unset, use the default", so without this check
// "epochs": 0, "learning_rate": 0 or "activation": "" would silently train
// with defaults.
// Comparing the request with the resolved spec catches every such field,
// present and future, instead of a hand-kept list. A JSON null asks for
// the default and is allowed.
func explicitOverrides(body []byte, resolved jobs.Spec) error {
	var given, got any
	if err := decodeNumbers(body, &given); err != nil {
		return nil // decodeStrict has already accepted body; nothing to add
	}
	rb, err := json.Marshal(resolved)
	if err != nil {
		return fmt.Errorf("encode resolved job spec: %w", err)
	}
	if err := decodeNumbers(rb, &got); err != nil {
		return fmt.Errorf("decode resolved job spec: %w", err)
	}
	var fields []FieldError
	walkOverrides("", given, got, &fields)
	if len(fields) > 0 {
		return badRequest(validationDetail(fields), fields...)
	}
	return nil
}

func decodeNumbers(b []byte, v *any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

func walkOverrides(path string, given, got any, out *[]FieldError) {
	switch g := given.(type) {
	case map[string]any:
		m, _ := got.(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(g)) {
			if path == "" && (k == "data" || k == "dataset_id") {
				continue // inline data becomes a stored dataset id
			}
			p := k
			if path != "" {
				p = path + "." + k
			}
			walkOverrides(p, g[k], m[k], out)
		}
	case []any:
		a, _ := got.([]any)
		for i, v := range g {
			var w any
			if i < len(a) {
				w = a[i]
			}
			walkOverrides(fmt.Sprintf("%s[%d]", path, i), v, w, out)
		}
	case nil:
		// null: take the default.
	default:
		if sameLeaf(g, got) {
			return
		}
		msg := fmt.Sprintf("%s is not allowed here; leave the field out to take the default", leafText(g))
		if got != nil {
			msg += " (" + leafText(got) + ")"
		}
		*out = append(*out, FieldError{Field: path, Message: msg})
	}
}

// sameLeaf compares two decoded JSON scalars; a missing resolved value
// (omitted as empty) equals the zero value of the given one.
func sameLeaf(given, got any) bool {
	switch g := given.(type) {
	case json.Number:
		gf, err := g.Float64()
		if err != nil {
			return false
		}
		if got == nil {
			return gf == 0
		}
		n, ok := got.(json.Number)
		if !ok {
			return false
		}
		f, err := n.Float64()
		return err == nil && f == gf
	case string:
		if got == nil {
			return g == ""
		}
		v, ok := got.(string)
		return ok && v == g
	case bool:
		if got == nil {
			return !g
		}
		v, ok := got.(bool)
		return ok && v == g
	}
	return false
}

func leafText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// jobList is GET /v1/jobs.
type jobList struct {
	Jobs []jobs.Job `json:"jobs"`
	// NextCursor fetches the next page; absent on the last one.
	NextCursor string `json:"next_cursor,omitempty"`
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, []string{"status", "model_name", "limit", "cursor"}, nil); err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	// The manager validates the filter; here the query only becomes one.
	// A limit that is not a positive integer cannot: 0 means the default.
	f := jobs.ListFilter{Status: jobs.Status(q.Get("status")), ModelName: q.Get("model_name"), Cursor: q.Get("cursor")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			s.writeError(w, r, invalidField("query.limit", "must be an integer from 1 to 1000, got %q", truncate(l)))
			return
		}
		f.Limit = n
	}
	list, next, err := s.jobs.List(r.Context(), f)
	if err != nil {
		var ve *engine.ValidationError
		if errors.As(err, &ve) {
			// The manager names its filter's fields; here they are query
			// parameters.
			fields := make([]FieldError, len(ve.Errors))
			for i, fe := range ve.Errors {
				fields[i] = FieldError{Field: "query." + fe.Field, Message: fe.Message}
			}
			err = badRequest(validationDetail(fields), fields...)
		}
		s.writeError(w, r, err)
		return
	}
	if list == nil {
		list = []jobs.Job{}
	}
	writeJSON(w, http.StatusOK, jobList{Jobs: list, NextCursor: next})
}

// jobAction runs one of the single-job operations and writes its result.
func (s *Server) jobAction(w http.ResponseWriter, r *http.Request, op func(ctx context.Context, id string) (jobs.Job, error)) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	job, err := op(r.Context(), id)
	if err != nil {
		s.writeError(w, r, jobError(err, id))
		return
	}
	writeJSON(w, http.StatusOK, job)
}

// jobError names the job in not-found and conflict errors.
func jobError(err error, id string) error {
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		return notFound("job", id)
	case errors.Is(err, jobs.ErrConflict):
		// The manager's text names the job and its state.
		return &Error{Status: http.StatusConflict, Detail: err.Error(), Err: err}
	}
	return err
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) { s.jobAction(w, r, s.jobs.Get) }

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request) { s.jobAction(w, r, s.jobs.Cancel) }

func (s *Server) stopJob(w http.ResponseWriter, r *http.Request) { s.jobAction(w, r, s.jobs.Stop) }

func (s *Server) deleteJob(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	job, err := s.jobs.Get(r.Context(), id)
	if err == nil {
		err = s.jobs.Delete(r.Context(), id)
	}
	if err != nil {
		s.writeError(w, r, jobError(err, id))
		return
	}
	// Inline data lives and dies with its job.
	if meta, err := s.store.DatasetMeta(r.Context(), job.Spec.DatasetID); err == nil && meta.Hidden && !s.jobs.DatasetInUse(meta.ID) {
		if err := s.store.DeleteDataset(r.Context(), meta.ID); err != nil {
			s.logger.WarnContext(r.Context(), "delete the inline dataset of a deleted job",
				"request_id", RequestID(r.Context()), "job_id", id, "dataset_id", meta.ID, "err", err)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// heartbeat is how often an idle event stream gets a comment line, so that
// proxies do not time it out and dead clients are noticed.
var heartbeat = 15 * time.Second

// jobEvents streams a job's events as server-sent events: "status" events
// carry the job, "epoch" events one history entry. The stream begins with
// the current status and ends after the terminal one.
func (s *Server) jobEvents(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	events, cancel, err := s.jobs.Subscribe(id)
	if err != nil {
		s.writeError(w, r, jobError(err, id))
		return
	}
	defer cancel()

	rc := http.NewResponseController(w)
	// The stream lasts as long as training: lift the server's WriteTimeout
	// for this response only. Each write below gets its own deadline.
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}

	send := func(event string, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			s.logger.ErrorContext(r.Context(), "encode event", "request_id", RequestID(r.Context()), "err", err)
			return false
		}
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.drained:
			return
		case <-tick.C:
			_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case ev, ok := <-events:
			if !ok {
				return
			}
			switch ev.Kind {
			case jobs.EventEpoch:
				if ev.Epoch != nil && !send("epoch", ev.Epoch) {
					return
				}
			case jobs.EventStatus:
				if ev.Job != nil && !send("status", ev.Job) {
					return
				}
			}
		}
	}
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
