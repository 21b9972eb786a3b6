package jobs

import (
	"fmt"
	"strconv"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
)

// Page sizes of List.
const (
	defaultListLimit = 50
	maxListLimit     = 1000
)

// validate is the one check of a list filter: the API passes the query
// parameters through unchecked and maps the field names to "query.<name>".
// It returns the page size (the default for 0) and the sequence number the
// cursor points before (-1 for the first page), or an
// *engine.ValidationError naming "status", "model_name", "limit" or
// "cursor".
func (f ListFilter) validate() (limit int, before int64, err error) {
	var verr engine.ValidationError
	add := func(field, format string, args ...any) {
		verr.Errors = append(verr.Errors, engine.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	switch f.Status {
	case "", Queued, Running, Succeeded, Failed, Cancelled:
	default:
		add("status", "must be queued, running, succeeded, failed or cancelled, got %s", quoteValue(string(f.Status)))
	}
	if f.ModelName != "" && !store.ValidModelName(f.ModelName) {
		add("model_name", "%s is not a model name: it must match %s", quoteValue(f.ModelName), store.ModelNamePattern)
	}
	limit = f.Limit
	switch {
	case limit == 0:
		limit = defaultListLimit
	case limit < 0 || limit > maxListLimit:
		add("limit", "must be an integer from 1 to %d, got %d", maxListLimit, limit)
	}
	before = -1
	if f.Cursor != "" {
		seq, err := decodeCursor(f.Cursor)
		if err != nil {
			add("cursor", "is not a cursor returned by a previous page")
		}
		before = seq
	}
	if len(verr.Errors) > 0 {
		return 0, 0, &verr
	}
	return limit, before, nil
}

// quoteValue shows a rejected filter value in a message, cut short so that
// a long query string is not echoed back whole.
func quoteValue(s string) string {
	const show = 80
	if len(s) > show {
		return strconv.Quote(s[:show]) + "…"
	}
	return strconv.Quote(s)
}
