package table

import (
	"strings"
	"time"
)

// datetimeLayouts are the layouts ParseDatetime accepts, with whether
// each gives a time of day. Times without a zone are UTC.
var datetimeLayouts = []struct {
	layout  string
	hasTime bool
}{
	{"2006-01-02", false},
	{"2006/01/02", false},
	{time.RFC3339Nano, true}, // also reads RFC 3339 without fraction
	{"2006-01-02T15:04:05.999999999", true},
	{"2006-01-02T15:04", true},
	{"2006-01-02 15:04:05.999999999Z07:00", true},
	{"2006-01-02 15:04:05.999999999", true},
	{"2006-01-02 15:04", true},
}

// ParseDatetime reads s as an ISO 8601 date (2006-01-02) or date-time
// (2006-01-02T15:04:05, with optional fraction and zone, Z or ±hh:mm),
// the same with a space for the T, or a date as 2006/01/02. It returns
// the instant as seconds since 1970-01-01T00:00:00Z (a time without a
// zone is UTC), whether s gave a time of day, and ok false when s is in
// none of these forms.
func ParseDatetime(s string) (seconds float64, hasTime bool, ok bool) {
	s = strings.TrimSpace(s)
	if len(s) < len("2006-01-02") || len(s) > 64 || s[0] < '0' || s[0] > '9' {
		return 0, false, false
	}
	for _, l := range datetimeLayouts {
		t, err := time.Parse(l.layout, s)
		if err == nil {
			return float64(t.Unix()) + float64(t.Nanosecond())/1e9, l.hasTime, true
		}
	}
	return 0, false, false
}
