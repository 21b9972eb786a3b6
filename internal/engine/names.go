package engine

import (
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// MaxNameBytes caps a column, feature, target or class name. Names are
// echoed in model metadata, dataset listings and error messages; a cap
// keeps all of those small whatever the upload.
const MaxNameBytes = 256

// NameError is a name CheckNames refuses. Msg says what is wrong and
// quotes at most a short prefix of the name (QuoteName).
type NameError struct {
	Index int // position of the refused name in the list
	Msg   string
}

// Error returns the position and the message.
func (e *NameError) Error() string { return fmt.Sprintf("name %d: %s", e.Index, e.Msg) }

// CheckName says what is wrong with name as a column, feature, target or
// class name, or returns "": a name is 1 to MaxNameBytes bytes of valid
// UTF-8 with no control character (unicode.IsControl: C0, DEL, C1).
func CheckName(name string) string {
	switch {
	case name == "":
		return "must not be empty"
	case len(name) > MaxNameBytes:
		return fmt.Sprintf("%s is %d bytes long; at most %d are allowed", QuoteName(name), len(name), MaxNameBytes)
	}
	for i, r := range name {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(name[i:]); size == 1 {
				return fmt.Sprintf("%s is not valid UTF-8 (byte %d)", QuoteName(name), i)
			}
		}
		if unicode.IsControl(r) {
			return fmt.Sprintf("%s holds the control character %U at byte %d", QuoteName(name), r, i)
		}
	}
	return ""
}

// CheckNames checks every name with CheckName and that no two are equal.
// It returns a *NameError for the first name refused, or nil.
func CheckNames(names []string) error {
	seen := make(map[string]int, len(names))
	for i, n := range names {
		if msg := CheckName(n); msg != "" {
			return &NameError{Index: i, Msg: msg}
		}
		if j, dup := seen[n]; dup {
			return &NameError{Index: i, Msg: fmt.Sprintf("%s is also name %d; names must be unique", QuoteName(n), j)}
		}
		seen[n] = i
	}
	return nil
}

// quotePrefix is how many bytes of a user's string QuoteName shows.
const quotePrefix = 40

// QuoteName quotes s for an error message, Go-escaped, showing at most its
// first 40 bytes (cut at a rune boundary) followed by "…", so that a
// message about a huge string stays short.
func QuoteName(s string) string {
	if len(s) <= quotePrefix {
		return strconv.Quote(s)
	}
	cut := quotePrefix
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…"
}
