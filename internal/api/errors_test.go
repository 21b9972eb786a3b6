package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/ingest"
	"github.com/backpropd/backpropd/internal/jobs"
	"github.com/backpropd/backpropd/internal/store"
)

// TestStatusOf holds the one error table to the statuses the API documents.
func TestStatusOf(t *testing.T) {
	tests := []struct {
		err        error
		status     int
		retryAfter bool
	}{
		{fmt.Errorf("load: %w", store.ErrNotFound), http.StatusNotFound, false},
		{jobs.ErrNotFound, http.StatusNotFound, false},
		{fmt.Errorf("x: %w", store.ErrInvalidName), http.StatusBadRequest, false},
		{fmt.Errorf("job 1 is running: %w", jobs.ErrConflict), http.StatusConflict, false},
		{store.ErrExists, http.StatusConflict, false},
		{jobs.ErrQueueFull, http.StatusTooManyRequests, true},
		{jobs.ErrShuttingDown, http.StatusServiceUnavailable, false},
		{fmt.Errorf("write: %w", store.ErrReadOnly), http.StatusServiceUnavailable, false},
		{fmt.Errorf("write: %w", store.ErrNoSpace), http.StatusInsufficientStorage, false},
		{&engine.ValidationError{Errors: []engine.FieldError{{Field: "training.epochs", Message: "must be positive"}}}, http.StatusBadRequest, false},
		{&ingest.Error{Line: 3, Column: 2, Field: "b", Message: "not a finite number"}, http.StatusBadRequest, false},
		{&ingest.Error{Line: 9, Message: "too many cells", Err: ingest.ErrTooLarge}, http.StatusRequestEntityTooLarge, false},
		{&http.MaxBytesError{Limit: 10}, http.StatusRequestEntityTooLarge, false},
		{fmt.Errorf("corrupt: %w", store.ErrCorrupt), http.StatusInternalServerError, false},
		{errors.New("open /data/x: input/output error"), http.StatusInternalServerError, false},
		{context.DeadlineExceeded, http.StatusInternalServerError, false},
	}
	for _, tc := range tests {
		status, detail, _, ra := statusOf(tc.err)
		if status != tc.status || (ra > 0) != tc.retryAfter {
			t.Errorf("statusOf(%v) = %d (Retry-After %d), want %d", tc.err, status, ra, tc.status)
		}
		if status == http.StatusInternalServerError && detail != "internal server error" {
			t.Errorf("statusOf(%v): 500 with detail %q", tc.err, detail)
		}
	}
	_, detail, fields, _ := statusOf(&engine.ValidationError{Errors: []engine.FieldError{
		{Field: "network.hidden[1].units", Message: "must be between 1 and 65536"}, {Field: "training.epochs", Message: "must be positive"}}})
	if detail != "network.hidden[1].units: must be between 1 and 65536 (and 1 more; see errors)" || len(fields) != 2 || fields[1].Field != "training.epochs" {
		t.Errorf("validation error: %q %+v", detail, fields)
	}
}

// TestBodyError: a failed body read is the client's doing on every upload
// route: 413 over the limit, 400 otherwise, never a 5xx.
func TestBodyError(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		detail string
	}{
		{"over limit", &http.MaxBytesError{Limit: 10}, http.StatusRequestEntityTooLarge, "limit of 10 bytes"},
		{"client hung up", io.ErrUnexpectedEOF, http.StatusBadRequest, "ended early"},
		{"wrapped hang-up", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), http.StatusBadRequest, "ended early"},
		{"context cancelled", context.Canceled, http.StatusBadRequest, "cancelled by the client"},
		{"context deadline", context.DeadlineExceeded, http.StatusBadRequest, "cancelled by the client"},
		{"connection reset", errors.New("connection reset by peer"), http.StatusBadRequest, "reading the request body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, detail, _, _ := statusOf(bodyError(tt.err, 10))
			if status != tt.status || !strings.Contains(detail, tt.detail) {
				t.Errorf("got %d %q, want %d with %q", status, detail, tt.status, tt.detail)
			}
		})
	}
}
