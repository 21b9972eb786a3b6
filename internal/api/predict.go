package api

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/table"
)

// predictRequest is the body of POST /v1/models/{name}[/versions/{version}]/predict.
// Exactly one of Inputs and Instances (TensorFlow Serving's name for the same
// thing) is set. Each row is either an array of the model's features in
// order or an object keyed by feature name. The rows stay raw here: they are
// read straight into the prediction buffer by decodeRows, which knows the
// model's features and can name the row and column of a bad value.
type predictRequest struct {
	Inputs    json.RawMessage `json:"inputs"`
	Instances json.RawMessage `json:"instances"`
}

// maxFieldErrors caps the errors listed for one bad request body, so that a
// large body full of bad values gets a readable answer. Reading stops at
// the first problem past the cap.
const maxFieldErrors = 20

// rowErrors collects the problems found while reading rows.
type rowErrors struct {
	list []FieldError
	// more is set by the first problem past the cap: reading stops.
	more bool
}

// room reports whether another problem can be listed; when it cannot, it
// marks the list as cut short, and the caller stops reading. Callers ask
// before building a message, so that no work is done for a problem that
// will not be shown.
func (e *rowErrors) room() bool {
	if len(e.list) < maxFieldErrors {
		return true
	}
	e.more = true
	return false
}

func (e *rowErrors) add(field, msg string) {
	e.list = append(e.list, FieldError{Field: field, Message: msg})
}

func (e *rowErrors) err() error {
	if len(e.list) == 0 {
		return nil
	}
	detail := validationDetail(e.list)
	if e.more {
		detail += fmt.Sprintf("; further problems not listed (reading stops after %d)", maxFieldErrors)
	}
	return badRequest(detail, e.list...)
}

// decodeRows reads raw, the value of the request's field ("inputs" or
// "instances"), as rows for sm's model, appending the features of each row
// to x in the model's column order. It returns the extended x and the row
// count, or a 400 *Error naming every bad row and column: a row that is not
// an array or object, a wrong feature count, a missing or unknown feature
// name, a value that is not a finite number (strings, booleans, null, and
// numbers like 1e999 that overflow float64; NaN and Infinity are not JSON
// and were already refused by the strict decoder). raw must be well-formed
// JSON, as a json.RawMessage filled by encoding/json is.
//
// Memory follows the request, not the model: an array row grows x by the
// values it holds, and an object row gets its model-wide slot only once
// its key count shows it can be complete, so a body of empty rows for a
// model of a million features allocates next to nothing. Once a problem is
// found no further row is stored, only checked. More than limit rows is
// refused as soon as row limit+1 starts. An empty array is left to
// predictRows, which refuses it for both surfaces.
func decodeRows(raw []byte, field string, sm *servedModel, x []float64, limit int) ([]float64, int, error) {
	features := sm.model.Features()
	s := jsonScan{b: raw}
	var errs rowErrors
	if s.peek() != '[' {
		return x, 0, invalidField(field, "must be an array of rows, not %s", s.skip())
	}
	s.open()
	start := s.i
	rows := 0
	var seen []uint64 // bit per column, for object rows
	for first := true; !errs.more && s.more(first); first = false {
		if rows >= limit {
			return x, rows, tooManyRows(field, limit)
		}
		r := rows
		rows++
		store := len(errs.list) == 0
		switch s.peek() {
		case '[':
			base := len(x)
			s.open()
			n := 0
			for f := true; !errs.more && s.more(f); f = false {
				if n >= features {
					s.skip()
					n++
					continue
				}
				v, msg := s.number()
				if msg != "" && errs.room() {
					errs.add(field+"["+strconv.Itoa(r)+"]["+strconv.Itoa(n)+"]", msg)
				}
				if store {
					x = append(x, v)
				}
				n++
			}
			if n != features {
				x = x[:base]
				if errs.room() {
					errs.add(field+"["+strconv.Itoa(r)+"]", fmt.Sprintf(
						"has %d values; the model takes %d features (%s)", n, features, sm.featureList))
				}
			}
		case '{':
			at := s.i
			keys := s.count()
			s.i = at
			var row []float64
			if store && keys >= features {
				base := len(x)
				x = append(x, make([]float64, features)...)
				row = x[base:]
			}
			if seen == nil {
				seen = make([]uint64, (features+63)/64)
			} else {
				clear(seen)
			}
			given := 0
			s.open()
			for f := true; !errs.more && s.more(f); f = false {
				key := s.str()
				s.colon()
				col, ok := sm.featureIndex[key]
				if !ok {
					s.skip()
					if errs.room() {
						errs.add(keyPath(field, r, key), "unknown feature; the model's features are "+sm.featureList)
					}
					continue
				}
				if seen[col/64]&(1<<(col%64)) != 0 {
					s.skip()
					if errs.room() {
						errs.add(keyPath(field, r, key), "given more than once")
					}
					continue
				}
				seen[col/64] |= 1 << (col % 64)
				given++
				v, msg := s.number()
				if msg != "" && errs.room() {
					errs.add(keyPath(field, r, key), msg)
				}
				if row != nil {
					row[col] = v
				}
			}
			if given < features {
				if row != nil {
					x = x[:len(x)-features]
				}
				// Some column is missing: list them until the cap.
				for col := 0; col < features; col++ {
					if w := seen[col/64]; w == ^uint64(0) && col%64 == 0 {
						col += 63 // all 64 given
						continue
					} else if w&(1<<(col%64)) != 0 {
						continue
					}
					if !errs.room() {
						break
					}
					errs.add(keyPath(field, r, sm.names[col]), "missing")
				}
			}
		default:
			if errs.room() {
				errs.add(field+"["+strconv.Itoa(r)+"]", fmt.Sprintf(
					"must be an array of %d numbers or an object keyed by feature name, not %s", features, s.skip()))
			}
		}
		if len(errs.list) == 0 && cap(x)-len(x) < features {
			x = presize(x, features, (s.i-start)/rows, len(s.b)-s.i, limit-rows)
		}
	}
	if err := errs.err(); err != nil {
		return x, rows, err
	}
	return x, rows, nil
}

// presize grows x, when the next row would not fit, for the rows still
// to come: as many as the bytes left hold rows as long as the average so
// far (rowBytes), and an eighth more, because rows of the same data differ
// in length. Appending row by row instead regrows x by a quarter at a
// time, and for a request of a thousand Fashion-MNIST rows allocated and
// copied five times the 6 MB it ends up holding. The estimate never
// exceeds the rows the bytes left could hold at two bytes a value ("0,"),
// nor maxRows, so that memory still follows the request.
func presize(x []float64, features, rowBytes, left, maxRows int) []float64 {
	if rowBytes <= 0 || left < 2*features {
		return x
	}
	est := left/rowBytes + left/(8*rowBytes) + 1
	est = min(est, left/(2*features), maxRows)
	return slices.Grow(x, est*features)
}

// keyPath is the field of key in row r of an object-rows request, with a
// long or unusual key shown as a short quoted prefix (engine.QuoteName).
func keyPath(field string, r int, key string) string {
	if engine.CheckName(key) != "" || len(key) > 40 || strings.ContainsAny(key, `"\`) {
		key = engine.QuoteName(key)
	}
	return field + "[" + strconv.Itoa(r) + "]." + key
}

// nameList shows feature names for an error message: at most 12, each cut
// to a short quoted prefix when long.
func nameList(names []string) string {
	const show = 12
	var b []byte
	for i, n := range names {
		if i == show {
			b = fmt.Appendf(b, ", … (%d in all)", len(names))
			break
		}
		if i > 0 {
			b = append(b, ", "...)
		}
		if len(n) > 40 || engine.CheckName(n) != "" {
			n = engine.QuoteName(n)
		}
		b = append(b, n...)
	}
	return string(b)
}

// predictBuffers are the per-request buffers of a prediction, pooled so
// that the steady state of serving allocates little.
type predictBuffers struct {
	in     []byte // the request body
	x      []float64
	out    []float64
	labels []string
	body   []byte
	// warnings are the response's warnings (typed models only).
	warnings []string
	call     predictCall
}

var predictPool = sync.Pool{New: func() any { return new(predictBuffers) }}

// maxPooledBytes keeps one huge request from pinning its buffers forever.
const maxPooledBytes = 1 << 20

func putPredictBuffers(b *predictBuffers) {
	if cap(b.in) > maxPooledBytes || cap(b.body) > maxPooledBytes ||
		cap(b.x)*8 > maxPooledBytes || cap(b.out)*8 > maxPooledBytes ||
		cap(b.labels)*16 > maxPooledBytes {
		return
	}
	clear(b.labels)
	clear(b.warnings)
	predictPool.Put(b)
}

// predict serves POST /v1/models/{name}/predict (latest version) and
// POST /v1/models/{name}/versions/{version}/predict.
func (s *Server) predict(w http.ResponseWriter, r *http.Request) {
	name, version, err := modelRef(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	buf := predictPool.Get().(*predictBuffers)
	defer putPredictBuffers(buf)
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		if err := requireJSON(r); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	buf.in, err = readBodyInto(w, r, s.cfg.MaxRequestBytes, buf.in[:0])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	req, err := decodePredictRequest(buf.in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	raw, field := req.Inputs, "inputs"
	switch {
	case isAbsent(req.Inputs) && isAbsent(req.Instances):
		s.writeError(w, r, invalidField("inputs", "is required (or instances): an array of rows"))
		return
	case !isAbsent(req.Inputs) && !isAbsent(req.Instances):
		s.writeError(w, r, invalidField("instances", "give either inputs or instances, not both"))
		return
	case isAbsent(req.Inputs):
		raw, field = req.Instances, "instances"
	}
	sm, rows, err := s.predictRows(r, name, version, field, buf,
		func(sm *servedModel, buf *predictBuffers, limit int) (int, error) {
			if sm.typed {
				return decodeTypedRows(raw, field, sm, buf)
			}
			var err error
			var rows int
			buf.x, rows, err = decodeRows(raw, field, sm, buf.x, limit)
			return rows, err
		})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	buf.body = appendPrediction(buf.body[:0], sm, buf.out, buf.labels, rows, buf.warnings)
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(buf.body))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.body)
}

// rowDecoder reads the rows of one prediction request for sm's model and
// returns the row count. For a model of numeric features it appends each
// row's features to buf.x in the model's column order, refusing more than
// limit rows, and every value that is not a finite number, with a 400
// *Error naming the row and column. For a typed model (sm.typed) it counts
// the rows first, has buf.columns reserve and make the input columns for
// them, and fills those with the raw cells, refusing a cell of the wrong
// type with a 400 naming the row and column. /v1 and /v2 each have one;
// predictRows runs it once the model is known.
type rowDecoder func(sm *servedModel, buf *predictBuffers, limit int) (int, error)

// predictCall is the state of one prediction that predictRows keeps in
// the request's (pooled) buffers, so that the numeric path allocates
// nothing for it.
type predictCall struct {
	s       *Server
	sm      *servedModel
	field   string
	limit   int
	release func() // of the memory reservation, if one was made
	cols    []table.Column
}

// reserve takes the prediction's memory for rows rows from the server's
// budget: the model's buffers and, per row, one 8-byte slot per input and
// output (a category cell's int32 code fits in its slot).
func (b *predictBuffers) reserve(rows int) error {
	c := &b.call
	if c.s.cfg.Memory == nil {
		return nil
	}
	m := c.sm.model
	need := m.PredictMemory(rows) + 8*int64(rows)*int64(m.Features()+m.Outputs())
	release, ok := c.s.cfg.Memory.TryReserve(need)
	if !ok {
		return atMemoryBudget(need)
	}
	c.release = release
	return nil
}

// columns checks a typed request's row count (at least one, at most the
// limit), reserves the prediction's memory and returns the model's input
// columns, rows cells long, every cell missing. A decoder calls it once.
func (b *predictBuffers) columns(rows int) ([]table.Column, error) {
	c := &b.call
	switch {
	case rows > c.limit:
		return nil, tooManyRows(c.field, c.limit)
	case rows == 0:
		return nil, invalidField(c.field, "must hold at least one row")
	case c.cols != nil:
		return nil, fmt.Errorf("predict with %s version %d: columns made twice", c.sm.meta.Name, c.sm.meta.Version)
	}
	if err := b.reserve(rows); err != nil {
		return nil, err
	}
	c.cols = c.sm.newColumns(rows)
	return c.cols, nil
}

// predictRows is the prediction core of /v1 and /v2, between each
// surface's request decoder and response encoder. It resolves the model
// name at version (0: latest), has decode read the request's rows for it
// into buf.x, checks the rows (at least one, at most --max-predict-rows,
// each as wide as the model's features), runs the model into buf.out
// (rows × outputs) and, for a classifier, buf.labels (rows), refuses
// outputs that are not finite with a 400 naming field's row, and records
// the prediction. Errors are the model's 404, the decoder's 4xx, or a
// server fault wrapped with the model's name and version.
func (s *Server) predictRows(r *http.Request, name string, version int, field string,
	buf *predictBuffers, decode rowDecoder) (*servedModel, int, error) {
	sm, err := s.servedModel(r, name, version)
	if err != nil {
		return nil, 0, err
	}
	buf.warnings = buf.warnings[:0]
	buf.call = predictCall{s: s, sm: sm, field: field, limit: s.cfg.MaxPredictRows}
	defer buf.endCall()
	m := sm.model
	outputs := m.Outputs()
	limit := s.cfg.MaxPredictRows
	var rows int
	buf.x = buf.x[:0]
	rows, err = decode(sm, buf, limit)
	switch {
	case err != nil:
		return nil, 0, err
	case rows > limit:
		return nil, 0, tooManyRows(field, limit)
	case rows == 0:
		return nil, 0, invalidField(field, "must hold at least one row")
	}
	cols := buf.call.cols
	if sm.typed {
		if cols == nil || cols[0].Len() != rows {
			return nil, 0, fmt.Errorf("predict with %s version %d: %d rows decoded without their columns", name, sm.meta.Version, rows)
		}
	} else {
		if len(buf.x) != rows*m.Features() {
			return nil, 0, fmt.Errorf("predict with %s version %d: %d values decoded for %d rows of %d features",
				name, sm.meta.Version, len(buf.x), rows, m.Features())
		}
		if err := buf.reserve(rows); err != nil {
			return nil, 0, err
		}
	}
	buf.out = grow(buf.out, rows*outputs)
	start := time.Now()
	if sm.typed {
		unseen, err := m.PredictColumns(buf.out, cols)
		if err != nil {
			return nil, 0, fmt.Errorf("predict with %s version %d: %w", name, sm.meta.Version, err)
		}
		buf.warnings = appendUnseenWarnings(buf.warnings, sm, unseen, rows)
	} else if err := m.Predict(buf.out, buf.x, rows); err != nil {
		return nil, 0, fmt.Errorf("predict with %s version %d: %w", name, sm.meta.Version, err)
	}
	if sm.classes != nil {
		if cap(buf.labels) < rows {
			buf.labels = make([]string, rows)
		}
		buf.labels = buf.labels[:rows]
		if err := m.Labels(buf.labels, buf.out, rows); err != nil {
			return nil, 0, fmt.Errorf("labels of %s version %d: %w", name, sm.meta.Version, err)
		}
	}
	elapsed := time.Since(start)
	if err := checkFinite(buf.out, rows, outputs, field); err != nil {
		return nil, 0, err
	}
	if s.observer != nil {
		s.observer.ObservePrediction(name, rows, elapsed)
	}
	return sm, rows, nil
}

// endCall releases the call's memory reservation and drops its
// references, so that pooled buffers keep no model or columns alive.
func (b *predictBuffers) endCall() {
	if b.call.release != nil {
		b.call.release()
	}
	b.call = predictCall{}
}

// jsonContentType is the Content-Type header value of predict responses,
// shared so that setting it allocates nothing. It is never modified.
var jsonContentType = []string{"application/json"}

// readBodyInto reads r's body, at most limit bytes, appending to buf. It
// is readBody with a caller's (pooled) buffer.
func readBodyInto(w http.ResponseWriter, r *http.Request, limit int64, buf []byte) ([]byte, error) {
	if r.ContentLength > limit {
		return buf, tooLarge(limit)
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	if n := int(r.ContentLength); n > 0 && cap(buf)-len(buf) < n+1 {
		buf = slices.Grow(buf, n+1) // +1 so that EOF is seen without growing
	}
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, 4096)
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, bodyError(err, limit)
		}
	}
}

// decodePredictRequest decodes a predict body. The common case, a valid
// JSON object with only the known fields, is read without reflection, and
// the commonest, rows of numbers, is checked in one pass (scanPredictBody); any
// other body goes through the strict decoder, whose errors say exactly what
// is wrong and where. The raw fields alias body.
func decodePredictRequest(body []byte) (predictRequest, error) {
	if req, ok := scanPredictBody(body); ok {
		return req, nil
	}
	var req predictRequest
	if !utf8.Valid(body) || !json.Valid(body) {
		return req, decodeStrict(body, &req)
	}
	s := jsonScan{b: body}
	if s.peek() != '{' {
		return req, decodeStrict(body, &req)
	}
	s.open()
	for first := true; s.more(first); first = false {
		key := s.str()
		s.colon()
		s.ws()
		start := s.i
		s.skip()
		val := body[start:s.i]
		switch key {
		case "inputs":
			req.Inputs = val
		case "instances":
			req.Instances = val
		default:
			// An unknown field (or a known one in another case, which
			// encoding/json matches): the strict decoder decides.
			var strict predictRequest
			err := decodeStrict(body, &strict)
			return strict, err
		}
	}
	return req, nil
}

// isAbsent reports whether a raw field was left out or given as null.
func isAbsent(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

func grow(b []float64, n int) []float64 {
	if cap(b) < n {
		return make([]float64, n)
	}
	return b[:n]
}

// checkFinite refuses outputs that overflowed: finite inputs of absurd
// magnitude can drive a regression output to ±Inf, which JSON cannot carry.
// The fault is the input's, so it is a 400 naming the row.
func checkFinite(out []float64, rows, outputs int, field string) error {
	for i, v := range out[:rows*outputs] {
		if math.IsInf(v, 0) || math.IsNaN(v) {
			row := i / outputs
			return invalidField(field+"["+strconv.Itoa(row)+"]",
				"the model's output for this row is not a finite number; the inputs are too large in magnitude")
		}
	}
	return nil
}

// memoryRetryAfter is the Retry-After of a prediction refused at the
// memory budget: predictions last milliseconds, so the budget frees fast.
const memoryRetryAfter = 1

// atMemoryBudget is the 503 of a prediction whose buffers, need bytes, do
// not fit in what is left of the server's memory budget.
func atMemoryBudget(need int64) error {
	return &Error{Status: http.StatusServiceUnavailable, RetryAfter: memoryRetryAfter,
		Detail: fmt.Sprintf("the server is at its memory budget: this prediction needs %d bytes; retry later or send fewer rows", need)}
}

// tooManyRows is the error for a prediction request over the row cap.
func tooManyRows(field string, limit int) error {
	return invalidField(field, "more than %d rows: the limit per request is %d (--max-predict-rows); split the request", limit, limit)
}
