package api

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
)

// The hand-written JSON of the prediction hot path: jsonScan, the scanner
// that reads rows and tensors straight into float64 buffers, and
// appendPrediction, the encoder of the /v1 predict response. Both are
// fuzzed against encoding/json (FuzzPredictJSON).

// jsonScan walks a JSON value that encoding/json has already checked to be
// well formed (a json.RawMessage from the strict decode). Because the syntax
// is known to be valid it only has to find token boundaries, which lets the
// predict decoders read numbers straight into a []float64 and name the row
// and column of a bad value, without building an []any tree first.
type jsonScan struct {
	b []byte
	i int
}

func (s *jsonScan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *jsonScan) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// more consumes the ',' between elements and reports whether another
// element follows; at the closing bracket or brace it consumes that and
// reports false. first says whether no element has been read yet.
func (s *jsonScan) more(first bool) bool {
	c := s.peek()
	if c == ']' || c == '}' || c == 0 {
		s.i++
		return false
	}
	if !first && c == ',' {
		s.i++
	}
	return true
}

// open consumes '[' or '{'.
func (s *jsonScan) open() { s.ws(); s.i++ }

// colon consumes the ':' after an object key.
func (s *jsonScan) colon() { s.ws(); s.i++ }

// str consumes a string and returns its contents, unescaped.
func (s *jsonScan) str() string {
	s.ws()
	start := s.i
	s.i++ // opening quote
	escaped := false
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			escaped = true
			s.i += 2
			continue
		case '"':
			s.i++
			if !escaped {
				return string(s.b[start+1 : s.i-1])
			}
			var out string
			if json.Unmarshal(s.b[start:s.i], &out) != nil {
				return string(s.b[start+1 : s.i-1])
			}
			return out
		}
		s.i++
	}
	return string(s.b[start:])
}

// skipStr consumes a string without unescaping or copying it.
func (s *jsonScan) skipStr() {
	s.ws()
	s.i++ // opening quote
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			s.i += 2
			continue
		case '"':
			s.i++
			return
		}
		s.i++
	}
}

// skip consumes one value of any kind and returns its kind, for messages.
func (s *jsonScan) skip() string {
	switch c := s.peek(); c {
	case '"':
		s.skipStr()
		return "a string"
	case '[', '{':
		kind := "an array"
		if c == '{' {
			kind = "an object"
		}
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '[', '{':
				depth++
			case ']', '}':
				depth--
				if depth == 0 {
					s.i++
					return kind
				}
			case '"':
				s.skipStr()
				continue
			}
			s.i++
		}
		return kind
	case 't', 'f':
		s.literal()
		return "a boolean"
	case 'n':
		s.literal()
		return "null"
	default:
		s.literal()
		return "a number"
	}
}

// count consumes the array or object that starts next and returns how
// many elements (or keys) it holds at its top level, without reading them.
func (s *jsonScan) count() int {
	s.open()
	n := 0
	for first := true; s.more(first); first = false {
		if s.peek() == '"' {
			// An object's key, or an array's string element.
			s.skipStr()
			if s.peek() == ':' {
				s.colon()
				s.skip()
			}
		} else {
			s.skip()
		}
		n++
	}
	return n
}

// literal consumes a number, true, false or null and returns its bytes.
func (s *jsonScan) literal() []byte {
	s.ws()
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', ']', '}', ' ', '\t', '\n', '\r':
			return s.b[start:s.i]
		}
		s.i++
	}
	return s.b[start:s.i]
}

// number reads the next value as a finite float64. When the value is not
// one it is consumed and the message says what it was instead.
func (s *jsonScan) number() (float64, string) {
	c := s.peek()
	if c != '-' && (c < '0' || c > '9') {
		return 0, "must be a finite number, not " + s.skip()
	}
	tok := s.literal()
	if v, ok := shortDecimal(tok); ok {
		return v, ""
	}
	v, err := strconv.ParseFloat(string(tok), 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, "must be a finite number; " + string(tok) + " is out of range"
	}
	return v, ""
}

// pow10 are the powers of ten that float64 holds exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// shortDecimal reads a number of at most 15 digits without an exponent,
// such as 255 or -0.0375, which is what model inputs nearly always are.
// Its digits as an integer m are below 2^53 and 10^k for its k decimals is
// at most 1e15, both exact in a float64, so m / 10^k is one correctly
// rounded operation: the same float64 as strconv.ParseFloat, bit for bit
// (Clinger's fast path, which ParseFloat takes too after more checks).
// Anything else reports false, for ParseFloat.
func shortDecimal(tok []byte) (float64, bool) {
	i, neg := 0, false
	if len(tok) > 0 && tok[0] == '-' {
		i, neg = 1, true
	}
	var m uint64
	digits, decimals, dot := 0, 0, false
	for ; i < len(tok); i++ {
		switch c := tok[i]; {
		case c >= '0' && c <= '9':
			m = m*10 + uint64(c-'0')
			digits++
			if dot {
				decimals++
			}
		case c == '.' && !dot:
			dot = true
		default:
			return 0, false
		}
	}
	if digits == 0 || digits > 15 {
		return 0, false
	}
	v := float64(m) / pow10[decimals]
	if neg {
		v = -v
	}
	return v, true
}

// appendPrediction encodes the predict response for rows outputs of sm. The
// response is written by hand because this is the hot path of serving and
// its shape is fixed: the name is validated ([a-z0-9._-]), the numbers are
// finite (checkFinite), and class labels are pre-encoded in sm.classes.
//
//	{"model_name":"iris","model_version":3,"predictions":["setosa"],
//	 "probabilities":[[0.97,0.02,0.01]],"classes":["setosa","versicolor","virginica"]}
//
// Classifiers get the label per row, the probability of each class per row
// (for a binary model with one sigmoid output, [1-p, p] in the order of
// classes) and the classes. Regression with one output gets a number per
// row and with several an array per row. A multi-label model (binary task
// over numeric 0/1 target columns, no classes) gets, per row, the
// probability of each label being 1, in the order of "targets". warnings,
// when there are any, follow as "warnings": a list of strings.
func appendPrediction(b []byte, sm *servedModel, out []float64, labels []string, rows int, warnings []string) []byte {
	outputs := sm.model.Outputs()
	// One allocation for a large answer, not one per quarter it grows:
	// a float64 takes at most 24 bytes with its comma, a label its
	// quotes and comma.
	size := 128 + len(sm.meta.Name) + rows*(outputs*24+4)
	widest := 0
	for _, c := range sm.classes { // pre-encoded, quotes included
		widest = max(widest, len(c)+1)
		size += len(c) + 1
	}
	size += rows * widest
	b = slices.Grow(b, size)
	b = append(b, `{"model_name":"`...)
	b = append(b, sm.meta.Name...)
	b = append(b, `","model_version":`...)
	b = append(b, sm.version...)
	b = append(b, `,"predictions":[`...)
	switch {
	case sm.classes != nil:
		for i := range rows {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, labels[i])
		}
		b = append(b, `],"probabilities":[`...)
		binary := outputs == 1 && len(sm.classes) == 2
		for i := range rows {
			if i > 0 {
				b = append(b, ',')
			}
			row := out[i*outputs : (i+1)*outputs]
			if binary {
				b = appendFloats(b, []float64{1 - row[0], row[0]})
			} else {
				b = appendFloats(b, row)
			}
		}
		b = append(b, `],"classes":[`...)
		for i, c := range sm.classes {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, c...)
		}
		b = append(b, ']')
	default:
		multi := outputs > 1 || sm.meta.Task == "binary"
		for i := range rows {
			if i > 0 {
				b = append(b, ',')
			}
			if multi {
				b = appendFloats(b, out[i*outputs:(i+1)*outputs])
			} else {
				b = strconv.AppendFloat(b, out[i], 'g', -1, 64)
			}
		}
		b = append(b, ']')
		if targets := sm.model.TargetNames(); len(targets) > 0 {
			b = append(b, `,"targets":[`...)
			for i, t := range targets {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, t)
			}
			b = append(b, ']')
		}
	}
	if len(warnings) > 0 {
		b = append(b, `,"warnings":[`...)
		for i, w := range warnings {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, w)
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...)
}

func appendFloats(b []byte, v []float64) []byte {
	b = append(b, '[')
	for i, f := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, f, 'g', -1, 64)
	}
	return append(b, ']')
}

// appendJSONString appends s as a JSON string. Labels are usually plain
// ASCII, which is copied directly; anything else goes through encoding/json
// for correct escaping.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x80 || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s)
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// scanPredictBody is the fast path of decodePredictRequest for the body
// nearly every client sends: one JSON object whose members are "inputs"
// and/or "instances", each an array of arrays of numbers, in plain ASCII.
// It checks that grammar in one pass, in place of the UTF-8 check, the
// generic JSON check and the scan for the value's end, and returns the
// same raw fields those would. Anything else (object rows, strings, null,
// escapes, other or repeated keys, bytes past the object) reports false
// without a verdict, and the general path decides, so that both paths
// accept and refuse exactly the same bodies (FuzzPredictRequest).
func scanPredictBody(body []byte) (predictRequest, bool) {
	var req predictRequest
	at := func(i int) byte {
		if i < len(body) {
			return body[i]
		}
		return 0
	}
	i := skipWS(body, 0)
	if at(i) != '{' {
		return req, false
	}
	i = skipWS(body, i+1)
	for {
		if at(i) != '"' {
			return req, false
		}
		j := i + 1
		for ; j < len(body) && body[j] != '"'; j++ {
			if c := body[j]; c == '\\' || c < 0x20 || c >= 0x80 {
				return req, false
			}
		}
		key := body[i+1 : min(j, len(body))]
		i = skipWS(body, j+1)
		if at(i) != ':' {
			return req, false
		}
		start := skipWS(body, i+1)
		end, ok := scanNumberRows(body, start)
		if !ok {
			return req, false
		}
		switch string(key) {
		case "inputs":
			if req.Inputs != nil {
				return req, false
			}
			req.Inputs = body[start:end]
		case "instances":
			if req.Instances != nil {
				return req, false
			}
			req.Instances = body[start:end]
		default:
			return req, false
		}
		i = skipWS(body, end)
		switch at(i) {
		case ',':
			i = skipWS(body, i+1)
		case '}':
			return req, skipWS(body, i+1) == len(body)
		default:
			return req, false
		}
	}
}

// scanNumberRows checks that an array of arrays of JSON numbers starts at
// b[i] and returns the index just past it, or false.
func scanNumberRows(b []byte, i int) (int, bool) {
	at := func(i int) byte {
		if i < len(b) {
			return b[i]
		}
		return 0
	}
	if at(i) != '[' {
		return i, false
	}
	i = skipWS(b, i+1)
	if at(i) == ']' {
		return i + 1, true
	}
	for {
		if at(i) != '[' {
			return i, false
		}
		i = skipWS(b, i+1)
		if at(i) != ']' {
			for {
				var ok bool
				if i, ok = scanNumber(b, i); !ok {
					return i, false
				}
				i = skipWS(b, i)
				if at(i) != ',' {
					break
				}
				i = skipWS(b, i+1)
			}
			if at(i) != ']' {
				return i, false
			}
		}
		i = skipWS(b, i+1)
		switch at(i) {
		case ',':
			i = skipWS(b, i+1)
		case ']':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// scanNumber checks that a JSON number (RFC 8259: -?(0|[1-9][0-9]*)
// (.[0-9]+)?([eE][+-]?[0-9]+)?) starts at b[i] and returns the index just
// past it, or false.
func scanNumber(b []byte, i int) (int, bool) {
	digits := func(i int) int {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(i + 1)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		d := digits(i + 1)
		if d == i+1 {
			return d, false
		}
		i = d
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := digits(i)
		if d == i {
			return d, false
		}
		i = d
	}
	return i, true
}

// skipWS returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}
