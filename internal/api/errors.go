package api

// Error responses on /v1 are RFC 9457 problem details
// (application/problem+json):
//
//	{"type","title","status","detail","request_id","errors":[{"field","message"}]}
//
// The 400 rule: every request the server cannot act on because of what the
// client sent gets 400 Bad Request, whether the body is malformed (bad JSON,
// wrong types, unknown fields, trailing data, bad CSV) or well formed with
// values that fail validation (epochs 0, an unknown activation, a wrong
// feature count). 422 is never used: one status keeps clients simple, and
// the errors list says exactly what to fix. Other statuses: 401 missing or
// wrong token, 403 a token whose scope does not allow the route, 404 unknown resource or route, 405 wrong method, 409 state
// conflict, 413 body over its limit, 415 wrong Content-Type, 429 queue full
// (with Retry-After), 503 draining or data directory not writable, 507 disk
// full, and 500 only for the server's own faults (generic detail, logged
// with the request id).
//
// Errors on /v2 are the Open Inference Protocol's {"error": "..."} objects
// with the same statuses and details.
//
// Handlers return errors; one error path, writeErrorAs, maps them to a
// status through the one table in statusOf, logs server faults and hands
// the answer to the surface's encoder (writeProblem or writeV2Error).

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/ingest"
	"github.com/backpropd/backpropd/internal/jobs"
	"github.com/backpropd/backpropd/internal/store"
)

// FieldError is one entry of a problem's errors list. Field is a JSON path
// into the request ("network.hidden[1].units", "inputs[3][2]"), a query
// parameter ("query.limit"), a path parameter ("path.id") or a CSV location
// ("line 4, column 2 (petal_width)").
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	RequestID string       `json:"request_id,omitempty"`
	Errors    []FieldError `json:"errors,omitempty"`
}

// Error is an error with an HTTP status, a detail for the client and the
// fields at fault. Handlers build one with the helpers below when they
// know the status; errors from other packages go through statusOf.
type Error struct {
	Status int
	Detail string
	Fields []FieldError
	// RetryAfter, when positive, becomes a Retry-After header (seconds).
	RetryAfter int
	// Err is the cause, for logs; it is never shown to the client.
	Err error
}

// Error returns the detail and, for logs, the cause.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Detail + ": " + e.Err.Error()
	}
	return e.Detail
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// badRequest is a 400 naming the fields at fault. With no fields, detail
// alone says what is wrong.
func badRequest(detail string, fields ...FieldError) *Error {
	return &Error{Status: http.StatusBadRequest, Detail: detail, Fields: fields}
}

// invalidField is a 400 for one bad field.
func invalidField(field, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	return &Error{Status: http.StatusBadRequest, Detail: field + ": " + msg,
		Fields: []FieldError{{Field: field, Message: msg}}}
}

// notFound is a 404 for a named resource, e.g. notFound("dataset", id).
func notFound(kind, id string) *Error {
	return &Error{Status: http.StatusNotFound, Detail: fmt.Sprintf("%s %q not found", kind, id)}
}

// forbidden is a 403: the token is valid, but its scope does not allow the
// request; detail names the scope needed.
func forbidden(detail string) *Error {
	return &Error{Status: http.StatusForbidden, Detail: detail}
}

// conflict is a 409.
func conflict(detail string) *Error {
	return &Error{Status: http.StatusConflict, Detail: detail}
}

// errorKinds maps sentinel errors from the packages below the API to a
// status and the detail shown to the client. The first match wins.
var errorKinds = []struct {
	err    error
	status int
	detail string // "" means use err's own text (safe: sentinels name no paths)
}{
	{store.ErrNotFound, http.StatusNotFound, "resource not found"},
	{jobs.ErrNotFound, http.StatusNotFound, "job not found"},
	{store.ErrInvalidName, http.StatusBadRequest, "invalid name or id"},
	{store.ErrExists, http.StatusConflict, "resource already exists"},
	{jobs.ErrConflict, http.StatusConflict, ""},
	{jobs.ErrQueueFull, http.StatusTooManyRequests, "the job queue is full; retry later"},
	{jobs.ErrShuttingDown, http.StatusServiceUnavailable, "the server is shutting down"},
	{store.ErrReadOnly, http.StatusServiceUnavailable, "the data directory is not writable"},
	{store.ErrNoSpace, http.StatusInsufficientStorage, "no space left to store the data"},
}

// statusOf maps err to the status, detail and fields the client sees. An
// unknown error is the server's own fault: 500 with a generic detail.
func statusOf(err error) (status int, detail string, fields []FieldError, retryAfter int) {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Status, ae.Detail, ae.Fields, ae.RetryAfter
	}
	var ve *engine.ValidationError
	if errors.As(err, &ve) {
		fields = make([]FieldError, len(ve.Errors))
		for i, fe := range ve.Errors {
			fields[i] = FieldError{Field: fe.Field, Message: fe.Message}
		}
		return http.StatusBadRequest, validationDetail(fields), fields, 0
	}
	var ies *ingest.Errors
	if errors.As(err, &ies) {
		fields = make([]FieldError, len(ies.List))
		for i, e := range ies.List {
			fields[i] = FieldError{Field: e.Location(), Message: e.Message}
		}
		detail := fmt.Sprintf("%d problems with the data", len(ies.List)+ies.More)
		if ies.More > 0 {
			detail += fmt.Sprintf("; the first %d are listed", len(ies.List))
		}
		if len(fields) == 1 && ies.More == 0 {
			detail = ies.List[0].Error()
		}
		return http.StatusBadRequest, detail, fields, 0
	}
	var ie *ingest.Error
	if errors.As(err, &ie) && errors.Is(err, ingest.ErrTooLarge) {
		return http.StatusRequestEntityTooLarge, ie.Error(), nil, 0
	}
	if errors.As(err, &ie) {
		return http.StatusBadRequest, ie.Error(), []FieldError{{Field: ie.Location(), Message: ie.Message}}, 0
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge,
			fmt.Sprintf("request body is larger than the limit of %d bytes", mbe.Limit), nil, 0
	}
	var ise *store.InsufficientStorageError
	if errors.As(err, &ise) {
		return http.StatusInsufficientStorage, ise.Detail(), nil, 0
	}
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			d := k.detail
			if d == "" {
				d = k.err.Error()
			}
			ra := 0
			if k.status == http.StatusTooManyRequests {
				ra = 5
			}
			return k.status, d, nil, ra
		}
	}
	return http.StatusInternalServerError, "internal server error", nil, 0
}

func validationDetail(fields []FieldError) string {
	switch len(fields) {
	case 0:
		return "invalid request"
	case 1:
		return fields[0].Field + ": " + fields[0].Message
	default:
		return fmt.Sprintf("%s: %s (and %d more; see errors)", fields[0].Field, fields[0].Message, len(fields)-1)
	}
}

// problemType is the problem's type URI for a status: a stable URN that
// clients may switch on.
func problemType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "urn:backpropd:problem:invalid-request"
	case http.StatusUnauthorized:
		return "urn:backpropd:problem:unauthorized"
	case http.StatusForbidden:
		return "urn:backpropd:problem:forbidden"
	case http.StatusNotFound:
		return "urn:backpropd:problem:not-found"
	case http.StatusMethodNotAllowed:
		return "urn:backpropd:problem:method-not-allowed"
	case http.StatusConflict:
		return "urn:backpropd:problem:conflict"
	case http.StatusRequestEntityTooLarge:
		return "urn:backpropd:problem:too-large"
	case http.StatusUnsupportedMediaType:
		return "urn:backpropd:problem:unsupported-media-type"
	case http.StatusTooManyRequests:
		return "urn:backpropd:problem:queue-full"
	case http.StatusServiceUnavailable:
		return "urn:backpropd:problem:unavailable"
	case http.StatusInsufficientStorage:
		return "urn:backpropd:problem:insufficient-storage"
	case http.StatusInternalServerError:
		return "urn:backpropd:problem:internal"
	}
	return "about:blank"
}

// errorEncoder writes an error answer's body in one surface's format. The
// status, detail and fields come from the one error path, writeErrorAs.
type errorEncoder func(w http.ResponseWriter, r *http.Request, status int, detail string, fields []FieldError)

// encoderFor is the error format of the surface r is on: the Open Inference
// Protocol's error object under /v2, whose clients parse nothing else, and
// problem+json everywhere else. Router-level answers (404, 405, 401, 403, a
// panic's 500) use it, since they serve every path.
func encoderFor(r *http.Request) errorEncoder {
	if p := r.URL.Path; p == "/v2" || strings.HasPrefix(p, "/v2/") {
		return writeV2Error
	}
	return writeProblem
}

// writeError writes err in the format of r's surface (encoderFor).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	s.writeErrorAs(w, r, err, encoderFor(r))
}

// v2WriteError writes err as the protocol's error object; the /v2 handlers
// call it.
func (s *Server) v2WriteError(w http.ResponseWriter, r *http.Request, err error) {
	s.writeErrorAs(w, r, err, writeV2Error)
}

// writeErrorAs is the one error path of both surfaces. The status comes
// from statusOf. A client that went away mid-request gets a 400, not a
// server fault, and no error log. A 5xx is logged once with the request id
// and the cause, with the token redacted; the client sees only a generic
// detail.
func (s *Server) writeErrorAs(w http.ResponseWriter, r *http.Request, err error, enc errorEncoder) {
	if clientGone(r, err) {
		// Nobody reads this answer; the access log still records it.
		enc(w, r, http.StatusBadRequest, "request cancelled by the client", nil)
		return
	}
	status, detail, fields, retryAfter := statusOf(err)
	if status >= 500 {
		s.logger.ErrorContext(r.Context(), "request failed",
			"request_id", RequestID(r.Context()), "method", r.Method, "path", r.URL.Path,
			"status", status, "err", s.redact(err.Error()))
	}
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	enc(w, r, status, detail, fields)
}

// clientGone reports whether err is r's context ending: the client hung up
// or gave up before the answer.
func clientGone(r *http.Request, err error) bool {
	ctxErr := r.Context().Err()
	return ctxErr != nil && errors.Is(err, ctxErr)
}

// writeProblem writes a problem+json response; it is the /v1 encoder.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, detail string, fields []FieldError) {
	p := Problem{
		Type:      problemType(status),
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    detail,
		RequestID: RequestID(r.Context()),
		Errors:    fields,
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

// v2ErrorBody is the Open Inference Protocol's error object.
type v2ErrorBody struct {
	Error string `json:"error"`
}

// writeV2Error writes the protocol's {"error": "..."}; it is the /v2
// encoder. The object has no room for a field list, so the detail, which
// already names the first field at fault, is all the client gets; the
// request id is in the X-Request-Id header.
func writeV2Error(w http.ResponseWriter, _ *http.Request, status int, detail string, _ []FieldError) {
	writeJSON(w, status, v2ErrorBody{Error: detail})
}

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
