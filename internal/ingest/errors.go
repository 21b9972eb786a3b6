package ingest

import "fmt"

// Error is a problem with uploaded data, located as precisely as the input
// allows: Line and Column are 1-based positions in a CSV file (0 when they do
// not apply), Field is a JSON path ("features[3][1]") or a column name.
type Error struct {
	Line    int
	Column  int
	Field   string
	Message string
	// Err is a sentinel the error wraps (ErrTooLarge), or nil.
	Err error
}

// Unwrap returns the sentinel the error wraps, if any.
func (e *Error) Unwrap() error { return e.Err }

// Location names where the problem is, for an API error's field.
func (e *Error) Location() string {
	switch {
	case e.Line > 0 && e.Column > 0 && e.Field != "":
		return fmt.Sprintf("line %d, column %d (%s)", e.Line, e.Column, e.Field)
	case e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("line %d, column %d", e.Line, e.Column)
	case e.Line > 0:
		return fmt.Sprintf("line %d", e.Line)
	case e.Field != "":
		return e.Field
	}
	return "body"
}

// Error returns the location and the message.
func (e *Error) Error() string {
	if e.Line == 0 && e.Field == "" {
		return e.Message
	}
	return e.Location() + ": " + e.Message
}
