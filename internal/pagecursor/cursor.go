// Package pagecursor makes the opaque cursors that page through
// newest-first lists (jobs, datasets). A cursor is the URL-safe base64 of
// "<kind>:<key>", where key places the last item of the previous page in
// the list's order; the kind keeps one list's cursor from being taken for
// another's. Clients treat cursors as opaque strings.
//
// The package imports nothing of this module, so the store and the job
// manager can both use it.
package pagecursor

import (
	"encoding/base64"
	"errors"
	"strings"
)

// ErrInvalid is returned by Decode for a string that is not a cursor of the
// kind asked for.
var ErrInvalid = errors.New("not a cursor returned by a previous page")

// Encode returns the cursor for key in lists of the given kind.
func Encode(kind, key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + key))
}

// Decode returns the key of a cursor made by Encode with the same kind, or
// an error wrapping ErrInvalid.
func Decode(kind, cursor string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return "", ErrInvalid
	}
	key, ok := strings.CutPrefix(string(b), kind+":")
	if !ok {
		return "", ErrInvalid
	}
	return key, nil
}
