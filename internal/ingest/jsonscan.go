package ingest

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf8"
)

// scanner reads JSON from a stream, a buffer at a time, keeping the line
// and column of where it is for syntax errors. It holds no more than its
// buffer and the one token it is reading: a dataset's numbers go straight
// from the stream into their buffers.
type scanner struct {
	r        io.Reader
	buf      []byte
	pos, end int
	base     int64 // stream offset of buf[0]
	eof      bool
	rerr     error // the reader's error, other than io.EOF
	line     int   // 1-based line of buf[pos]
	lineOff  int64 // stream offset where that line starts
	tok      []byte
}

// maxString bounds one JSON string (a name, a label, a task): longer is
// not a name but an attempt to make the server hold it.
const maxString = 64 << 10

func newScanner(r io.Reader) *scanner {
	return &scanner{r: r, buf: make([]byte, 64<<10), line: 1}
}

// offset is the stream offset of the next byte.
func (s *scanner) offset() int64 { return s.base + int64(s.pos) }

// peek returns the next byte without consuming it; false at the end of
// the stream or on a read error (kept in rerr).
func (s *scanner) peek() (byte, bool) {
	if s.pos < s.end {
		return s.buf[s.pos], true
	}
	for !s.eof {
		s.base += int64(s.end)
		s.pos, s.end = 0, 0
		n, err := s.r.Read(s.buf)
		s.end = n
		if err != nil {
			s.eof = true
			if err != io.EOF {
				s.rerr = err
			}
		}
		if n > 0 {
			return s.buf[0], true
		}
	}
	return 0, false
}

// skipSpace consumes JSON whitespace, counting lines, and returns the next
// byte after it.
func (s *scanner) skipSpace() (byte, bool) {
	for {
		c, ok := s.peek()
		if !ok {
			return 0, false
		}
		switch c {
		case '\n':
			s.pos++
			s.line++
			s.lineOff = s.offset()
		case ' ', '\t', '\r':
			s.pos++
		default:
			return c, true
		}
	}
}

// syntax is a malformed-JSON error at the next byte, or the reader's
// error when the stream broke off there.
func (s *scanner) syntax(format string, args ...any) error {
	_, more := s.peek()
	if s.rerr != nil {
		return fmt.Errorf("read the body: %w", s.rerr)
	}
	msg := fmt.Sprintf(format, args...)
	if !more {
		msg = "unexpected end of input"
	}
	return &Error{Line: s.line, Column: int(s.offset()-s.lineOff) + 1, Message: "malformed JSON: " + msg}
}

// expect consumes whitespace and then c.
func (s *scanner) expect(c byte, what string) error {
	got, ok := s.skipSpace()
	if !ok || got != c {
		return s.syntax("expected %s, got %s", what, quoteChar(got))
	}
	s.pos++
	return nil
}

func quoteChar(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// kindOf names the JSON value that starts with c, for type errors.
func kindOf(c byte) string {
	switch {
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == '"':
		return "string"
	case c == 't' || c == 'f':
		return "boolean"
	case c == 'n':
		return "null"
	case c == '-' || (c >= '0' && c <= '9'):
		return "number"
	}
	return quoteChar(c)
}

// literal consumes null, true or false, whichever starts at the next byte.
func (s *scanner) literal() error {
	c, _ := s.peek()
	want := map[byte]string{'n': "null", 't': "true", 'f': "false"}[c]
	if want == "" {
		return s.syntax("expected a value, got %s", quoteChar(c))
	}
	for i := 0; i < len(want); i++ {
		if c, ok := s.peek(); !ok || c != want[i] {
			return s.syntax("invalid literal, expected %s", want)
		}
		s.pos++
	}
	return nil
}

// number consumes a JSON number and returns its text, a view of s.tok
// valid until the next token.
func (s *scanner) number() ([]byte, error) {
	s.tok = s.tok[:0]
	for {
		c, ok := s.peek()
		if !ok || !(c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
			break
		}
		if len(s.tok) >= 400 {
			return nil, s.syntax("number longer than 400 characters")
		}
		s.tok = append(s.tok, c)
		s.pos++
	}
	if !validNumber(s.tok) {
		return nil, s.syntax("invalid number %q", s.tok)
	}
	return s.tok, nil
}

// validNumber reports whether b is a number in JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(b []byte) bool {
	i := 0
	digits := func() int {
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i - j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}

// float consumes a JSON number and returns it, or ok false when it is
// out of float64's finite range (1e999).
func (s *scanner) float() (v float64, ok bool, err error) {
	b, err := s.number()
	if err != nil {
		return 0, false, err
	}
	// Plain integers, the common cell, are read from the bytes; others
	// go through strconv, which needs a string.
	if len(b) <= 15 {
		neg := b[0] == '-'
		i := 0
		if neg {
			i = 1
		}
		var n int64
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			n = n*10 + int64(b[i]-'0')
		}
		if i == len(b) {
			if neg {
				return -float64(n), true, nil
			}
			return float64(n), true, nil
		}
	}
	v, perr := strconv.ParseFloat(string(b), 64)
	return v, perr == nil && !math.IsInf(v, 0), nil
}

// str consumes a JSON string and returns its value.
func (s *scanner) str() (string, error) {
	start := s.offset()
	s.pos++ // the opening quote
	s.tok = s.tok[:0]
	escaped := false
	for {
		c, ok := s.peek()
		if !ok {
			return "", s.syntax("unterminated string")
		}
		if c < 0x20 {
			return "", s.syntax("control character %s in a string", quoteChar(c))
		}
		s.pos++
		if c == '"' {
			break
		}
		if len(s.tok) >= maxString {
			return "", &Error{Line: s.line, Column: int(start-s.lineOff) + 1,
				Message: fmt.Sprintf("string longer than %d bytes", maxString)}
		}
		s.tok = append(s.tok, c)
		if c == '\\' {
			escaped = true
			c, ok := s.peek()
			if !ok {
				return "", s.syntax("unterminated string")
			}
			s.tok = append(s.tok, c)
			s.pos++
		}
	}
	if !utf8.Valid(s.tok) {
		i := 0
		for i < len(s.tok) {
			r, n := utf8.DecodeRune(s.tok[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		return "", &Error{Line: s.line, Column: int(start-s.lineOff) + 2 + i,
			Message: fmt.Sprintf("the body is not valid UTF-8 (at byte %d)", start+1+int64(i))}
	}
	if !escaped {
		return string(s.tok), nil
	}
	// Escapes are rare in names and labels; encoding/json decodes them
	// (\u surrogate pairs included) from the quoted token.
	q := make([]byte, 0, len(s.tok)+2)
	q = append(append(append(q, '"'), s.tok...), '"')
	var v string
	if err := json.Unmarshal(q, &v); err != nil {
		return "", &Error{Line: s.line, Column: int(start-s.lineOff) + 1, Message: "malformed JSON: invalid escape in a string"}
	}
	return v, nil
}

// finish requires that nothing but whitespace follows the value.
func (s *scanner) finish() error {
	if _, ok := s.skipSpace(); ok {
		return &Error{Line: s.line, Column: int(s.offset()-s.lineOff) + 1,
			Message: "unexpected data after the JSON value"}
	}
	if s.rerr != nil {
		return fmt.Errorf("read the body: %w", s.rerr)
	}
	return nil
}
