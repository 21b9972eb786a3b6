package table

import (
	"strings"
	"time"
)

// datetimeLayouts are the layouts ParseDatetime accepts: ISO 8601 dates and
// date-times (with or without a zone, with a space or a T), and a few
// formats whose day and month cannot be confused (the month is a word, or
// the year comes first). 01/02/2006 is not among them: it reads as the
// 1st of February in most of the world and the 2nd of January in the US.
var datetimeLayouts = []struct {
	layout  string
	hasTime bool
}{
	{"2006-01-02", false},
	{time.RFC3339Nano, true},
	{"2006-01-02T15:04:05.999999999", true},
	{"2006-01-02 15:04:05.999999999Z07:00", true},
	{"2006-01-02 15:04:05.999999999", true},
	{"2006-01-02T15:04", true},
	{"2006-01-02 15:04", true},
	{"2006/01/02", false},
	{"2006/01/02 15:04:05", true},
	{"2006/01/02 15:04", true},
	{"2-Jan-2006", false},
	{"2 Jan 2006", false},
	{"Jan 2, 2006", false},
	{"January 2, 2006", false},
	{"2 January 2006", false},
}

// ParseDatetime reads s as a date or a date-time, returning seconds since
// 1970-01-01T00:00:00Z (a time without a zone is taken as UTC) and whether
// s gave a time of day. Upload and predict both read dates with it, so that
// a model sees a date string as the same number in both. ok is false for
// anything else, including numbers: a year alone ("2020") is a number.
func ParseDatetime(s string) (seconds float64, hasTime bool, ok bool) {
	s = strings.TrimSpace(s)
	// Every accepted layout is 8 to 40 bytes and starts with a digit or a
	// month name; the check keeps the layouts from being tried on text.
	if len(s) < 8 || len(s) > 40 {
		return 0, false, false
	}
	if c := s[0]; !(c >= '0' && c <= '9') && !(c >= 'A' && c <= 'Z') {
		return 0, false, false
	}
	for _, l := range datetimeLayouts {
		t, err := time.Parse(l.layout, s)
		if err != nil {
			continue
		}
		return float64(t.Unix()) + float64(t.Nanosecond())/1e9, l.hasTime, true
	}
	return 0, false, false
}

// lastDatetime is the latest time ParseDatetime reads, and the latest
// that encodes as RFC 3339 (and so as JSON).
var lastDatetime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)

// FormatDatetime is the time of seconds since the Unix epoch, in UTC. The
// seconds of a time in the last microseconds of the year 9999 round up
// past it in float64; such a time is given as the last nanosecond of 9999.
func FormatDatetime(seconds float64) time.Time {
	sec := int64(seconds)
	if float64(sec) > seconds {
		sec--
	}
	t := time.Unix(sec, int64((seconds-float64(sec))*1e9)).UTC()
	if t.After(lastDatetime) {
		return lastDatetime
	}
	return t
}
