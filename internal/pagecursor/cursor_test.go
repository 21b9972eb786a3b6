package pagecursor

import (
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct{ kind, key string }{
		{"seq", "42"},
		{"dataset", "2026-01-02T03:04:05.123456789Z 0b6f2c1e-8d3a-4f5e-9c7b-1a2b3c4d5e6f"},
		{"seq", ""},
	} {
		t.Run(tc.kind+"/"+tc.key, func(t *testing.T) {
			got, err := Decode(tc.kind, Encode(tc.kind, tc.key))
			if err != nil || got != tc.key {
				t.Fatalf("Decode(Encode(%q)) = %q, %v", tc.key, got, err)
			}
		})
	}
}

// TestCompatibleWithJobCursors: the job list's cursors from before this
// package existed were base64url("seq:<n>") without padding; clients may
// hold one across an upgrade.
func TestCompatibleWithJobCursors(t *testing.T) {
	const old = "c2VxOjQy" // base64url of "seq:42", written by hand
	if got := Encode("seq", "42"); got != old {
		t.Errorf("Encode = %q, want %q", got, old)
	}
}

func TestInvalid(t *testing.T) {
	for _, tc := range []struct{ name, kind, cursor string }{
		{"not base64", "seq", "!!!"},
		{"padded base64", "seq", "c2VxOjQy=="},
		{"other kind", "dataset", Encode("seq", "42")},
		{"no kind", "seq", Encode("", "42")},
		{"empty", "seq", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if key, err := Decode(tc.kind, tc.cursor); !errors.Is(err, ErrInvalid) {
				t.Errorf("Decode(%q, %q) = %q, %v; want ErrInvalid", tc.kind, tc.cursor, key, err)
			}
		})
	}
}
