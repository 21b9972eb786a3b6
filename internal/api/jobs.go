package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/jobs"
)

func (s *Server) createJob(w http.ResponseWriter, r *http.Request) {
	var req jobRequest
	if err := s.decode(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if fields := req.check(); len(fields) > 0 {
		s.writeError(w, r, badRequest(validationDetail(fields), fields...))
		return
	}
	datasetID, hidden := req.DatasetID, ""
	if req.Data != nil {
		d, err := req.Data.Dataset("inline data of a job for model "+req.ModelName, "data")
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
		datasetID, hidden = meta.ID, meta.ID
	}
	job, err := s.jobs.Submit(r.Context(), req.spec(datasetID))
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

// getJob is GET /v1/jobs/{id}: the job with its history, or without it
// given ?history=false.
func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	if err := checkQuery(r, []string{"history"}, nil); err != nil {
		s.writeError(w, r, err)
		return
	}
	withHistory := true
	if q := r.URL.Query(); q.Has("history") {
		switch v := q.Get("history"); v {
		case "true":
		case "false":
			withHistory = false
		default:
			s.writeError(w, r, invalidField("query.history", "must be true or false, got %q", truncate(v)))
			return
		}
	}
	s.jobAction(w, r, func(ctx context.Context, id string) (jobs.Job, error) {
		job, err := s.jobs.Get(ctx, id)
		if !withHistory {
			job.History = nil
		}
		return job, err
	})
}

// historyPageMax is the largest page, and the default page, of
// GET /v1/jobs/{id}/history: at 130 to 160 bytes of JSON an epoch, a
// full page is under 160 kB.
const historyPageMax = 1000

// historyPage is GET /v1/jobs/{id}/history.
type historyPage struct {
	Epochs []engine.Epoch `json:"epochs"`
	// NextAfter is the after of the next page; absent when this page
	// reaches the end of the history recorded so far.
	NextAfter *int `json:"next_after,omitempty"`
}

// jobHistory pages through a job's history: the epochs numbered above
// ?after (default 0), oldest first, at most ?limit of them.
func (s *Server) jobHistory(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := checkQuery(r, []string{"after", "limit"}, nil); err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	after, limit := 0, historyPageMax
	var fields []FieldError
	if v := q.Get("after"); q.Has("after") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fields = append(fields, FieldError{Field: "query.after",
				Message: fmt.Sprintf("must be an epoch number, an integer of 0 or more, got %q", truncate(v))})
		}
		after = n
	}
	if v := q.Get("limit"); q.Has("limit") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > historyPageMax {
			fields = append(fields, FieldError{Field: "query.limit",
				Message: fmt.Sprintf("must be an integer from 1 to %d, got %q", historyPageMax, truncate(v))})
		}
		limit = n
	}
	if len(fields) > 0 {
		s.writeError(w, r, badRequest(validationDetail(fields), fields...))
		return
	}
	job, err := s.jobs.Get(r.Context(), id)
	if err != nil {
		s.writeError(w, r, jobError(err, id))
		return
	}
	writeJSON(w, http.StatusOK, pageHistory(job.History, after, limit))
}

// pageHistory returns the epochs of h (ascending by epoch number) numbered
// above after, at most limit of them.
func pageHistory(h []engine.Epoch, after, limit int) historyPage {
	i := sort.Search(len(h), func(i int) bool { return h[i].Epoch > after })
	end := min(len(h), i+limit)
	page := historyPage{Epochs: h[i:end:end]}
	if page.Epochs == nil {
		page.Epochs = []engine.Epoch{}
	}
	if end < len(h) {
		next := h[end-1].Epoch
		page.NextAfter = &next
	}
	return page
}

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
	if meta, err := s.store.DatasetMeta(r.Context(), job.Spec.DatasetID); err == nil && meta.Hidden {
		if err := s.jobs.DeleteDataset(r.Context(), meta.ID); err != nil && !errors.Is(err, jobs.ErrConflict) {
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
// carry the job, "epoch" events one history entry, with the epoch number
// as the event id.
//
// A new stream begins with the current status, history included, whose id
// is the last epoch in that history (0 when there is none). A client
// reconnecting with Last-Event-ID: N has epochs up to N: it gets the
// epochs after N that it missed, then the current status without the
// history. Every later status event leaves the history out, and the
// stream ends after the terminal status.
func (s *Server) jobEvents(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := checkQuery(r, nil, nil); err != nil {
		s.writeError(w, r, err)
		return
	}
	lastID, resume, err := lastEventID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	release, err := s.acquireStream()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer release()
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

	// write writes one event; eventID < 0 writes no id line.
	write := func(event string, eventID int, v any) bool {
		parts, err := encodeEvent(v)
		if err != nil {
			s.logger.ErrorContext(r.Context(), "encode event", "request_id", RequestID(r.Context()), "err", err)
			return false
		}
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if eventID >= 0 {
			_, err = fmt.Fprintf(w, "id: %d\nevent: %s\ndata: ", eventID, event)
		} else {
			_, err = fmt.Fprintf(w, "event: %s\ndata: ", event)
		}
		for _, p := range parts {
			if err == nil {
				_, err = w.Write(p)
			}
		}
		if err == nil {
			_, err = io.WriteString(w, "\n\n")
		}
		return err == nil
	}
	send := func(event string, eventID int, v any) bool {
		return write(event, eventID, v) && rc.Flush() == nil
	}
	// Epochs up to lastID are the client's; a resumed stream never sends
	// them, not even when a restarted job trains them again.
	sendEpoch := func(e *engine.Epoch) bool {
		if resume && e.Epoch <= lastID {
			return true
		}
		return send("epoch", e.Epoch, e)
	}

	first, ok := <-events
	if !ok || first.Job == nil {
		return
	}
	if resume {
		missed := first.Job.History
		for i := range missed {
			if missed[i].Epoch > lastID && !write("epoch", missed[i].Epoch, &missed[i]) {
				return
			}
		}
		now := *first.Job
		now.History = nil
		if !send("status", -1, now) {
			return
		}
	} else {
		at := 0
		if n := len(first.Job.History); n > 0 {
			at = first.Job.History[n-1].Epoch
		}
		if !write("status", at, historyStatus{first.Job, first.HistoryJSON}) || rc.Flush() != nil {
			return
		}
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
				if ev.Epoch != nil && !sendEpoch(ev.Epoch) {
					return
				}
			case jobs.EventStatus:
				if ev.Job != nil && !send("status", -1, ev.Job) {
					return
				}
			}
		}
	}
}

// historyStatus is a stream's first status event: the job with its
// history, which the job manager keeps encoded (jobs.Event.HistoryJSON)
// and every stream of the job shares, so that opening a stream on a long
// job costs no copy of its history.
type historyStatus struct {
	job  *jobs.Job
	hist []byte
}

// encodeEvent returns the encoding of an event's data, as one line: v's
// JSON, or for a historyStatus the parts to write one after the other
// (the job's other fields, then its shared history).
func encodeEvent(v any) ([][]byte, error) {
	hs, ok := v.(historyStatus)
	if !ok || (hs.hist == nil && len(hs.job.History) > 0) {
		if ok {
			v = hs.job
		}
		b, err := json.Marshal(v)
		return [][]byte{b}, err
	}
	rest := *hs.job
	rest.History = nil
	b, err := json.Marshal(rest)
	if err != nil {
		return nil, err
	}
	if len(b) < 2 || b[len(b)-1] != '}' {
		return nil, fmt.Errorf("job encodes as %.20q, not as a JSON object", b)
	}
	return [][]byte{b[:len(b)-1], []byte(`,"history":[`), hs.hist, []byte("]}")}, nil
}

// lastEventID reads the Last-Event-ID header of a reconnecting event
// stream client: the number of the last epoch it has.
func lastEventID(r *http.Request) (n int, ok bool, err error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		return 0, false, nil
	}
	n, cerr := strconv.Atoi(v)
	if cerr != nil || n < 0 {
		return 0, false, invalidField("header.Last-Event-ID",
			"must be the id of an event of this stream, an epoch number of 0 or more, got %q", truncate(v))
	}
	return n, true, nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
