package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// decode reads the request body as exactly one JSON value into dst, with the
// server's request size limit. See decodeJSON.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, dst any) error {
	return decodeJSON(w, r, s.cfg.MaxRequestBytes, dst)
}

// decodeJSON reads the body of r, at most limit bytes, as exactly one JSON
// value into dst. It returns an *Error:
//   - 415 unless the Content-Type is application/json (or a +json type);
//   - 413 when the body is over limit;
//   - 400 for invalid UTF-8, malformed JSON, trailing data after the value,
//     unknown fields and values of the wrong type, naming the field's path
//     ("network.hidden[1].units") where there is one.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	body, err := readBody(w, r, limit)
	if err != nil {
		return err
	}
	return decodeStrict(body, dst)
}

// requireJSON returns a 415 *Error unless r declares a JSON body.
func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return nil
	}
	if ct == "" {
		ct = "none"
	}
	return &Error{Status: http.StatusUnsupportedMediaType,
		Detail: fmt.Sprintf("Content-Type must be application/json, got %s", ct)}
}

// readBody reads at most limit bytes of r's body; more is a 413 *Error.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = 8 << 20
	}
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, bodyError(err, limit)
	}
	return body, nil
}

// bodyError classifies an error from reading a request body, which is the
// client's doing, never the server's: over limit is a 413; a body cut short
// (the client hung up, or its context ended) and any other read failure of
// the connection are a 400. Every upload route maps its read errors here,
// so that a client abort never counts as a 5xx or logs an error.
func bodyError(err error, limit int64) *Error {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return tooLarge(limit)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusBadRequest, Detail: "request cancelled by the client", Err: err}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Status: http.StatusBadRequest,
			Detail: "request body ended early: the connection closed before all of it was sent", Err: err}
	}
	return &Error{Status: http.StatusBadRequest, Detail: "reading the request body: " + err.Error(), Err: err}
}

func tooLarge(limit int64) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge,
		Detail: fmt.Sprintf("request body is larger than the limit of %d bytes", limit)}
}

// decodeStrict decodes body, which must hold exactly one JSON value and
// valid UTF-8, into dst, rejecting unknown fields. Errors are 400 *Errors
// naming the field path. It needs no HTTP request, so fuzz tests call it
// directly.
func decodeStrict(body []byte, dst any) error {
	if !utf8.Valid(body) {
		i := invalidUTF8Offset(body)
		return badRequest(fmt.Sprintf("request body is not valid UTF-8 (at byte %d)", i))
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("request body is empty; expected a JSON value")
	}
	if off, ok := depthOK(body, maxDepth); !ok {
		line, col := lineCol(body, off)
		return badRequest(fmt.Sprintf("JSON nesting exceeds the max depth of %d levels at line %d, column %d", maxDepth, line, col))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(body, dst, err)
	}
	if off := dec.InputOffset(); len(bytes.TrimSpace(body[off:])) != 0 {
		line, col := lineCol(body, off+int64(len(body[off:])-len(bytes.TrimLeft(body[off:], " \t\r\n"))))
		return badRequest(fmt.Sprintf("unexpected data after the JSON value at line %d, column %d", line, col))
	}
	return nil
}

// maxDepth bounds the nesting of request bodies. The deepest legitimate
// body, a job spec, nests 5 levels; encoding/json alone allows 10,000,
// which costs time and gives errors far from the cause.
const maxDepth = 64

// depthOK reports whether body nests objects and arrays at most max deep,
// and if not, the offset where it goes deeper. Brackets inside strings do
// not count.
func depthOK(body []byte, max int) (int64, bool) {
	depth := 0
	inString, escaped := false, false
	for i, c := range body {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > max {
				return int64(i), false
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return 0, true
}

// jsonError turns an encoding/json error into a 400 naming the location.
func jsonError(body []byte, dst any, err error) *Error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		line, col := lineCol(body, se.Offset)
		return badRequest(fmt.Sprintf("malformed JSON at line %d, column %d: %s", line, col,
			strings.TrimPrefix(se.Error(), "json: ")))
	case errors.As(err, &te):
		field := pathAt(body, te.Offset)
		if field == "" {
			field = te.Field
		}
		want := typeName(te.Type)
		if field == "" {
			return badRequest(fmt.Sprintf("request body must be %s, got %s", want, te.Value))
		}
		return invalidField(field, "must be %s, got %s", want, te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return badRequest("malformed JSON: unexpected end of input")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		field := unknownFieldPath(body, dst)
		if field == "" {
			field = name
		}
		return invalidField(field, "unknown field")
	}
	var ie *json.InvalidUnmarshalError
	if errors.As(err, &ie) {
		// A programming error, not the client's.
		return &Error{Status: http.StatusInternalServerError, Detail: "internal server error", Err: err}
	}
	return badRequest("invalid JSON: " + strings.TrimPrefix(err.Error(), "json: "))
}

// typeName describes a Go type in JSON terms for error messages.
func typeName(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a finite number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a " + t.String()
}

func lineCol(body []byte, off int64) (line, col int) {
	if off > int64(len(body)) {
		off = int64(len(body))
	}
	if off < 0 {
		off = 0
	}
	prefix := body[:off]
	line = bytes.Count(prefix, []byte{'\n'}) + 1
	col = int(off) - bytes.LastIndexByte(prefix, '\n')
	return line, col
}

func invalidUTF8Offset(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// pathAt returns the JSON path ("a.b[2].c") of the value that ends at or
// after byte offset off of body, or "" for the top-level value.
func pathAt(body []byte, off int64) string {
	type frame struct {
		obj     bool
		wantKey bool
		key     string
		idx     int
	}
	var st []frame
	path := func() string {
		var b strings.Builder
		for _, f := range st {
			if f.obj {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			} else {
				fmt.Fprintf(&b, "[%d]", f.idx)
			}
		}
		return b.String()
	}
	advance := func() {
		if n := len(st); n > 0 {
			if st[n-1].obj {
				st[n-1].wantKey = true
			} else {
				st[n-1].idx++
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		d, isDelim := tok.(json.Delim)
		if n := len(st); n > 0 && st[n-1].obj && st[n-1].wantKey && !isDelim {
			st[n-1].key, _ = tok.(string)
			st[n-1].wantKey = false
			continue
		}
		if isDelim && (d == '}' || d == ']') {
			st = st[:len(st)-1]
			advance()
			continue
		}
		if dec.InputOffset() >= off {
			return path()
		}
		if isDelim {
			st = append(st, frame{obj: d == '{', wantKey: d == '{'})
			continue
		}
		advance()
	}
}

// unknownFieldPath finds the first object key in body that no field of
// dst's type accepts, and returns its path.
func unknownFieldPath(body []byte, dst any) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return ""
	}
	return findUnknown(reflect.TypeOf(dst), v, "")
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func findUnknown(t reflect.Type, v any, path string) string {
	if t == nil || v == nil {
		return ""
	}
	for t.Kind() == reflect.Pointer {
		if t.Implements(unmarshalerType) {
			return ""
		}
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return ""
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		keys := sortedKeys(m)
		for _, k := range keys {
			ft, ok := fieldByJSONName(t, k)
			p := k
			if path != "" {
				p = path + "." + k
			}
			if !ok {
				return p
			}
			if u := findUnknown(ft, m[k], p); u != "" {
				return u
			}
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		for _, k := range sortedKeys(m) {
			if u := findUnknown(t.Elem(), m[k], path+"."+k); u != "" {
				return u
			}
		}
	case reflect.Slice, reflect.Array:
		a, ok := v.([]any)
		if !ok {
			return ""
		}
		for i, e := range a {
			if u := findUnknown(t.Elem(), e, fmt.Sprintf("%s[%d]", path, i)); u != "" {
				return u
			}
		}
	}
	return ""
}

func sortedKeys(m map[string]any) []string {
	// Sorted so that the reported field is deterministic.
	return slices.Sorted(maps.Keys(m))
}

// fieldByJSONName finds the type of the field of struct t that encoding/json
// would fill from key name, following embedded structs.
func fieldByJSONName(t reflect.Type, name string) (reflect.Type, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		tagName, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && tagName == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if et, ok := fieldByJSONName(ft, name); ok {
					return et, true
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if tagName == "" {
			tagName = f.Name
		}
		if strings.EqualFold(tagName, name) {
			return f.Type, true
		}
	}
	return nil, false
}

// checkQuery fails with a 400 naming each query parameter of r that is not in
// allowed ("query.taget": a typo would otherwise be ignored and the request
// served as if the parameter were absent). csvOnly names parameters that
// apply to another form of the request: they are rejected with why, given
// in csvOnly's value.
func checkQuery(r *http.Request, allowed []string, csvOnly map[string]string) error {
	q := r.URL.Query()
	var fields []FieldError
	for _, name := range slices.Sorted(maps.Keys(q)) {
		switch {
		case slices.Contains(allowed, name):
		case csvOnly[name] != "":
			fields = append(fields, FieldError{Field: "query." + name, Message: csvOnly[name]})
		default:
			msg := "unknown query parameter; this route takes none"
			if len(allowed) > 0 {
				msg = "unknown query parameter; this route takes " + strings.Join(allowed, ", ")
			}
			fields = append(fields, FieldError{Field: "query." + truncate(name), Message: msg})
		}
	}
	if len(fields) == 0 {
		return nil
	}
	return badRequest(validationDetail(fields), fields...)
}
