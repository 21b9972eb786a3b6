package engine

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string // "" accepted, else part of the message
	}{
		{"plain", "sepal_length", ""},
		{"256 bytes", strings.Repeat("a", MaxNameBytes), ""},
		{"257 bytes", strings.Repeat("a", MaxNameBytes+1), "257 bytes long; at most 256"},
		{"256 bytes of 2-byte runes", strings.Repeat("ü", MaxNameBytes/2), ""},
		{"258 bytes of 2-byte runes", strings.Repeat("ü", MaxNameBytes/2+1), "258 bytes long"},
		{"multi-byte UTF-8", "température °C ✓ 🌡", ""},
		{"HTML is text", "<b>a&b</b>", ""},
		{"inner space", "petal width", ""},
		{"empty", "", "must not be empty"},
		{"NUL", "a\x00b", "control character U+0000 at byte 1"},
		{"newline", "a\nb", "control character U+000A at byte 1"},
		{"tab", "\tb", "control character U+0009 at byte 0"},
		{"DEL", "ab\x7f", "control character U+007F at byte 2"},
		{"C1 control", "a\u0085", "control character U+0085 at byte 1"},
		{"invalid UTF-8", "a\xffb", "not valid UTF-8 (byte 1)"},
		{"truncated rune", "a\xc3", "not valid UTF-8 (byte 1)"},
		{"encoded U+FFFD is valid", "a\uFFFDb", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := CheckName(tc.in)
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("CheckName(%.60q) = %q, want %q", tc.in, got, tc.want)
			}
			if len(got) > 200 {
				t.Errorf("message of %d bytes; a refused name is quoted as a short prefix", len(got))
			}
		})
	}
}

func TestCheckNames(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        []string
		wantIndex int // -1: accepted
		want      string
	}{
		{"distinct", []string{"a", "b", "c"}, -1, ""},
		{"none", nil, -1, ""},
		{"duplicate", []string{"a", "b", "a"}, 2, "also name 0; names must be unique"},
		{"case differs", []string{"a", "A"}, -1, ""},
		{"bad after good", []string{"a", "b\n"}, 1, "U+000A"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckNames(tc.in)
			var ne *NameError
			switch {
			case tc.wantIndex < 0 && err != nil:
				t.Errorf("CheckNames(%q) = %v, want nil", tc.in, err)
			case tc.wantIndex >= 0 && !errors.As(err, &ne):
				t.Errorf("CheckNames(%q) = %v, want a *NameError", tc.in, err)
			case tc.wantIndex >= 0 && (ne.Index != tc.wantIndex || !strings.Contains(ne.Msg, tc.want)):
				t.Errorf("CheckNames(%q) = index %d %q, want index %d containing %q", tc.in, ne.Index, ne.Msg, tc.wantIndex, tc.want)
			}
		})
	}
}

func TestQuoteName(t *testing.T) {
	huge := strings.Repeat("é", 1<<20) // 2 MiB
	got := QuoteName(huge)
	// 40 bytes is 20 two-byte runes; cut at a rune boundary, then "…".
	if want := `"` + strings.Repeat("é", 20) + `"…`; got != want {
		t.Errorf("QuoteName of 2 MiB = %q, want %q", got, want)
	}
	if got := QuoteName("a" + strings.Repeat("é", 30)); got != `"a`+strings.Repeat("é", 19)+`"…` {
		t.Errorf("QuoteName cut inside a rune: %q", got)
	}
	if got := QuoteName("a\x00"); got != `"a\x00"` {
		t.Errorf("QuoteName(%q) = %s, want it escaped", "a\x00", got)
	}
}
