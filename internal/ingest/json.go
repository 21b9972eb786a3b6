package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
	"github.com/backpropd/backpropd/internal/table"
)

// A JSON dataset is an object:
//
//	{"name": "...",                       upload only
//	 "feature_names": ["a", ...],         optional
//	 "target_names": ["y", ...],          optional
//	 "task": "regression",                optional: regression, binary or multiclass
//	 "features": [[1, 2], [3, 4], ...],   rows of finite numbers
//	 "targets": [0.5, 1.5, ...]}          one per row: numbers, strings (labels) or arrays of numbers
//
// It is read as a stream: each number goes from the bytes into the
// dataset's buffers as it arrives, and the first problem ends the read
// (an unknown field is refused where it stands, with the rest unread). A
// null field is the same as an absent one.

// JSONOptions say how to read a JSON dataset upload.
type JSONOptions struct {
	// MaxCells caps rows × features; more is an *Error wrapping
	// ErrTooLarge. 0 means no cap.
	MaxCells int64
	// Reserve is as in CSVOptions.
	Reserve func(n int64) error
}

// ReadJSON reads a JSON dataset upload (the object above, with its name)
// from r. Problems are *Error values naming the field's JSON path
// ("features[3][1]") or, for malformed JSON, the line and column; read
// errors from r (such as *http.MaxBytesError) are returned wrapped.
func ReadJSON(ctx context.Context, r io.Reader, opt JSONOptions) (*store.Dataset, error) {
	p := jsonParser{sc: newScanner(r), ctx: ctx, allowName: true, maxCells: opt.MaxCells,
		m: &meter{reserve: opt.Reserve}}
	if err := p.parse(); err != nil {
		return nil, err
	}
	return p.dataset("")
}

// JSONData is a dataset given inline in a job request: the object above
// without its name. It decodes itself as a stream into the numbers, as
// ReadJSON does, and keeps any problem with the data for Dataset to
// report under the caller's path, so that decoding the request fails only
// for malformed JSON.
type JSONData struct {
	d   *store.Dataset
	err error
}

// UnmarshalJSON reads the data from b.
func (j *JSONData) UnmarshalJSON(b []byte) error {
	p := jsonParser{sc: newScanner(bytes.NewReader(b)), ctx: context.Background(), m: &meter{}}
	*j = JSONData{}
	if j.err = p.parse(); j.err == nil {
		j.d, j.err = p.dataset("")
	}
	return nil
}

// Dataset returns the data as a dataset called name. prefix is the JSON
// path of the data in the request ("data"), so that errors name fields
// like "data.features[3][1]".
func (j *JSONData) Dataset(name, prefix string) (*store.Dataset, error) {
	if j.err != nil {
		if es, ok := j.err.(*Errors); ok {
			out := &Errors{More: es.More, rows: es.rows}
			for _, e := range es.List {
				c := *e
				c.Field = joinPath(prefix, c.Field)
				out.List = append(out.List, &c)
			}
			return nil, out
		}
		if ie, ok := j.err.(*Error); ok {
			e := *ie
			switch {
			case prefix == "":
			case e.Field == "":
				e.Field = prefix
			default:
				e.Field = prefix + "." + e.Field
			}
			return nil, &e
		}
		return nil, j.err
	}
	if j.d == nil {
		return nil, &Error{Field: prefix, Message: "required"}
	}
	j.d.Meta.Name = name
	return j.d, nil
}

// joinPath is field under the JSON path prefix.
func joinPath(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	}
	return prefix + "." + field
}

// jsonParser reads one JSON dataset object.
type jsonParser struct {
	sc        *scanner
	ctx       context.Context
	allowName bool
	maxCells  int64
	m         *meter

	seen         map[string]bool
	name         string
	featureNames []string
	targetNames  []string
	task         string

	x          floats
	rows, nf   int
	t          targets
	tkind      byte // 'n' numbers, 's' strings, 'a' arrays; 0 before targets[0]
	ntargets   int
	labels     interner
	hasFeature bool
	hasTarget  bool

	overrides Overrides
	// special holds the feature cells that are not numbers (null, a
	// string, a boolean), by their index in x, where x holds NaN.
	special map[int]rcell
}

func (p *jsonParser) parse() error {
	sc := p.sc
	p.x.m = p.m
	p.labels = interner{}
	p.seen = map[string]bool{}
	c, ok := sc.skipSpace()
	if !ok {
		if sc.rerr != nil {
			return fmt.Errorf("read the body: %w", sc.rerr)
		}
		return &Error{Message: "the body is empty; expected a JSON object"}
	}
	if c != '{' {
		return p.typeErr("", "must be a JSON object, got ", c)
	}
	sc.pos++
	c, ok = sc.skipSpace()
	if ok && c == '}' {
		sc.pos++
		return sc.finish()
	}
	for {
		c, _ := sc.skipSpace()
		if c != '"' {
			return sc.syntax("expected a field name in double quotes, got %s", quoteChar(c))
		}
		key, err := sc.str()
		if err != nil {
			return err
		}
		if err := sc.expect(':', "':' after a field name"); err != nil {
			return err
		}
		if p.seen[key] {
			return &Error{Field: key, Message: "given twice"}
		}
		if err := p.field(key); err != nil {
			return err
		}
		p.seen[key] = true
		c, _ = sc.skipSpace()
		switch c {
		case ',':
			sc.pos++
			continue
		case '}':
			sc.pos++
			return sc.finish()
		}
		return sc.syntax("expected ',' or '}' after a field, got %s", quoteChar(c))
	}
}

// typeErr is the error for a value that starts with c where a value of
// another type was wanted: an *Error naming field (or from at, when given),
// or a syntax error when c starts no JSON value at all.
func (p *jsonParser) typeErr(field, msg string, c byte, at ...func(string) error) error {
	if _, ok := p.sc.peek(); !ok || !strings.ContainsRune("{[\"tfn-0123456789", rune(c)) {
		return p.sc.syntax("expected a value, got %s", quoteChar(c))
	}
	if len(at) > 0 {
		return at[0](msg + kindOf(c))
	}
	return &Error{Field: field, Message: msg + kindOf(c)}
}

// null consumes a null at the next value, if there is one.
func (p *jsonParser) null() (bool, error) {
	c, _ := p.sc.skipSpace()
	if c != 'n' {
		return false, nil
	}
	return true, p.sc.literal()
}

func (p *jsonParser) field(key string) error {
	switch key {
	case "name":
		if !p.allowName {
			break
		}
		return p.stringField(key, &p.name)
	case "task":
		return p.stringField(key, &p.task)
	case "feature_names":
		return p.names(key, &p.featureNames)
	case "target_names":
		return p.names(key, &p.targetNames)
	case "features":
		return p.features()
	case "categorical":
		if !p.allowName {
			break
		}
		return p.names(key, &p.overrides.Categorical)
	case "numeric":
		if !p.allowName {
			break
		}
		return p.names(key, &p.overrides.Numeric)
	case "datetime":
		if !p.allowName {
			break
		}
		return p.names(key, &p.overrides.Datetime)
	case "ignore":
		if !p.allowName {
			break
		}
		return p.names(key, &p.overrides.Ignore)
	case "targets":
		return p.targets()
	}
	return &Error{Field: key, Message: "unknown field"}
}

func (p *jsonParser) stringField(key string, dst *string) error {
	if null, err := p.null(); null || err != nil {
		return err
	}
	c, _ := p.sc.skipSpace()
	if c != '"' {
		return p.typeErr(key, "must be a string, got ", c)
	}
	s, err := p.sc.str()
	*dst = s
	return inField(err, key)
}

// inField names field in a scanner's error about a string, which knows
// only its line and column.
func inField(err error, field string) error {
	var e *Error
	if errors.As(err, &e) && e.Field == "" {
		e.Field = field
	}
	return err
}

func (p *jsonParser) names(key string, dst *[]string) error {
	if null, err := p.null(); null || err != nil {
		return err
	}
	sc := p.sc
	c, _ := sc.skipSpace()
	if c != '[' {
		return p.typeErr(key, "must be an array of strings, got ", c)
	}
	sc.pos++
	out := []string{}
	return p.elements(func(i int) error {
		c, _ := sc.skipSpace()
		if c != '"' {
			return p.typeErr(fmt.Sprintf("%s[%d]", key, i), "must be a string, got ", c)
		}
		s, err := sc.str()
		if err != nil {
			return inField(err, fmt.Sprintf("%s[%d]", key, i))
		}
		if err := p.m.take(cellBytes + int64(len(s))); err != nil {
			return err
		}
		out = append(out, s)
		*dst = out
		return nil
	}, func() { *dst = out })
}

// elements reads the elements of an array whose '[' is consumed, calling
// each for the i-th, then done after the ']'.
func (p *jsonParser) elements(each func(i int) error, done func()) error {
	sc := p.sc
	if c, ok := sc.skipSpace(); ok && c == ']' {
		sc.pos++
		done()
		return nil
	}
	for i := 0; ; i++ {
		if err := each(i); err != nil {
			return err
		}
		c, _ := sc.skipSpace()
		switch c {
		case ',':
			sc.pos++
			continue
		case ']':
			sc.pos++
			done()
			return nil
		}
		return sc.syntax("expected ',' or ']' in an array, got %s", quoteChar(c))
	}
}

func (p *jsonParser) features() error {
	if null, err := p.null(); null || err != nil {
		return err
	}
	sc := p.sc
	c, _ := sc.skipSpace()
	if c != '[' {
		return p.typeErr("features", "must be an array of rows, got ", c)
	}
	sc.pos++
	return p.elements(func(r int) error {
		if r%4096 == 0 {
			if err := p.ctx.Err(); err != nil {
				return err
			}
		}
		row := func() string { return fmt.Sprintf("features[%d]", r) }
		c, _ := sc.skipSpace()
		if c != '[' {
			return p.typeErr(row(), "must be an array of numbers, got ", c)
		}
		sc.pos++
		n := 0
		err := p.elements(func(i int) error {
			n++
			if r > 0 && n > p.nf {
				// Counted to the end, to say how long the row is.
				_, err := p.cell(r, i, false)
				return err
			}
			// Only uploads take typed cells: a job's inline data stays numbers.
			if c, _ := sc.skipSpace(); p.allowName && (c == 'n' || c == 't' || c == 'f' || c == '"') {
				cell, err := (&recordsParser{sc: sc}).value(fmt.Sprintf("features[%d][%d]", r, i))
				if err != nil {
					return err
				}
				if err := p.m.take(levelBytes + int64(len(cell.s))); err != nil {
					return err
				}
				if p.special == nil {
					p.special = map[int]rcell{}
				}
				p.special[p.x.len()] = cell
				return p.x.add(math.NaN())
			}
			v, err := p.cell(r, i, true)
			if err != nil {
				return err
			}
			return p.x.add(v)
		}, func() {})
		if err != nil {
			return err
		}
		if r == 0 {
			if n == 0 {
				return &Error{Field: row(), Message: "must hold at least one number"}
			}
			p.nf = n
		}
		if n != p.nf {
			return &Error{Field: row(), Message: fmt.Sprintf("has %d values, row 0 has %d", n, p.nf)}
		}
		p.rows++
		if p.maxCells > 0 && int64(p.x.len()) > p.maxCells {
			return &Error{Field: row(), Err: ErrTooLarge, Message: fmt.Sprintf(
				"more than %d cells (rows × features): the server's limit", p.maxCells)}
		}
		return nil
	}, func() { p.hasFeature = true })
}

// cell reads features[r][i], which must be a finite number.
func (p *jsonParser) cell(r, i int, keep bool) (float64, error) {
	sc := p.sc
	c, _ := sc.skipSpace()
	at := func(msg string) error {
		return &Error{Field: fmt.Sprintf("features[%d][%d]", r, i), Message: msg}
	}
	if c != '-' && (c < '0' || c > '9') {
		return 0, p.typeErr("", "must be a finite number, got ", c, at)
	}
	v, finite, err := sc.float()
	if err != nil {
		return 0, err
	}
	if !finite && keep {
		return 0, at("must be a finite number")
	}
	return v, nil
}

func (p *jsonParser) targets() error {
	if null, err := p.null(); null || err != nil {
		return err
	}
	sc := p.sc
	c, _ := sc.skipSpace()
	if c != '[' {
		return p.typeErr("targets", "must be an array, got ", c)
	}
	sc.pos++
	p.t = targets{k: 1}
	return p.elements(func(i int) error {
		at := func(msg string) error { return &Error{Field: fmt.Sprintf("targets[%d]", i), Message: msg} }
		c, _ := sc.skipSpace()
		var kind byte
		switch {
		case c == '"':
			kind = 's'
		case c == '[':
			kind = 'a'
		case c == '-' || (c >= '0' && c <= '9'):
			kind = 'n'
		default:
			return p.typeErr("", "must be a number, a string or an array of numbers, got ", c, at)
		}
		if i == 0 {
			p.tkind = kind
			p.t.labels = kind == 's'
		} else if kind != p.tkind {
			return at("targets must all be numbers, all strings, or all arrays; this one differs from targets[0]")
		}
		p.ntargets++
		switch kind {
		case 's':
			s, err := sc.str()
			if err != nil {
				return err
			}
			return p.addTarget(p.labels.intern(s))
		case 'n':
			b, err := sc.number()
			if err != nil {
				return err
			}
			return p.addTarget(p.labels.internBytes(b))
		}
		sc.pos++ // '['
		n := 0
		err := p.elements(func(j int) error {
			n++
			at := func(msg string) error {
				return &Error{Field: fmt.Sprintf("targets[%d][%d]", i, j), Message: msg}
			}
			c, _ := sc.skipSpace()
			if c != '-' && (c < '0' || c > '9') {
				return p.typeErr("", "must be a finite number, got ", c, at)
			}
			v, finite, err := sc.float()
			if err != nil {
				return err
			}
			if !finite {
				return at("must be a finite number")
			}
			if i > 0 && n > p.t.k {
				return nil // counted, to say how long the array is
			}
			var nb [32]byte
			return p.addTarget(p.labels.internBytes(strconv.AppendFloat(nb[:0], v, 'g', -1, 64)))
		}, func() {})
		if err != nil {
			return err
		}
		if i == 0 {
			if n == 0 {
				return at("must not be empty")
			}
			p.t.k = n
		}
		if n != p.t.k {
			return at(fmt.Sprintf("has %d values, targets[0] has %d", n, p.t.k))
		}
		return nil
	}, func() { p.hasTarget = true })
}

func (p *jsonParser) addTarget(s string) error {
	if err := p.m.take(cellBytes + int64(len(s))); err != nil {
		return err
	}
	p.t.cells = append(p.t.cells, s)
	return nil
}

// dataset checks what was read as a whole and converts it; errors name
// fields under prefix.
func (p *jsonParser) dataset(prefix string) (*store.Dataset, error) {
	path := func(f string) string {
		if prefix == "" {
			return f
		}
		return prefix + "." + f
	}
	task, err := ParseTask(p.task)
	if err != nil {
		return nil, &Error{Field: path("task"), Message: err.Error()}
	}
	rows := p.rows
	switch {
	case !p.hasFeature:
		return nil, &Error{Field: path("features"), Message: "required"}
	case rows == 0:
		return nil, &Error{Field: path("features"), Message: "must hold at least one row"}
	case !p.hasTarget:
		return nil, &Error{Field: path("targets"), Message: "required"}
	case p.ntargets != rows:
		return nil, &Error{Field: path("targets"), Message: fmt.Sprintf("has %d values, features has %d rows", p.ntargets, rows)}
	}
	nf := p.nf
	if p.featureNames != nil && len(p.featureNames) != nf {
		return nil, &Error{Field: path("feature_names"), Message: fmt.Sprintf("has %d names, rows have %d features", len(p.featureNames), nf)}
	}
	names := p.featureNames
	if names == nil {
		names = defaultNames("x", nf)
	}
	if err := checkNames(names, path("feature_names")); err != nil {
		return nil, err
	}
	t := p.t
	tnames := p.targetNames
	if tnames == nil {
		tnames = []string{"target"}
		if t.k > 1 {
			tnames = defaultNames("y", t.k)
		}
	}
	if len(tnames) != t.k {
		return nil, &Error{Field: path("target_names"), Message: fmt.Sprintf("has %d names, targets have %d columns", len(tnames), t.k)}
	}
	if err := checkNames(tnames, path("target_names")); err != nil {
		return nil, err
	}
	x, err := p.x.flat()
	if err != nil {
		return nil, err
	}
	d := &store.Dataset{
		Meta: store.DatasetMeta{Name: p.name, Rows: rows, Features: nf, FeatureNames: names, TargetNames: tnames},
		X:    x,
	}
	var featureSums []table.Summary
	var warnings []string
	if p.special != nil || p.overrides.any() {
		if featureSums, warnings, err = p.typed(d, x, names, path); err != nil {
			return nil, err
		}
	} else {
		accs := make([]numAcc, nf)
		for i, v := range x {
			accs[i%nf].add(v)
		}
		featureSums, warnings = xSummaries(accs, names)
	}
	err = assemble(d, task, t, func(row, col int, msg string) *Error {
		f := fmt.Sprintf("targets[%d]", row)
		if t.k > 1 {
			f += fmt.Sprintf("[%d]", col)
		}
		return &Error{Field: path(f), Message: msg}
	}, p.allowName)
	if err != nil {
		return nil, err
	}
	d.Meta.Columns = append(featureSums, targetSummaries(d, make([]int, len(tnames)))...)
	d.Meta.Warnings = append(warnings, d.Meta.Warnings...)
	return d, nil
}

// typed reads the features as typed columns, for data with null, string
// or boolean cells, or declared column types: x holds the numbers (NaN at
// the special cells), row-major with len(names) a row.
func (p *jsonParser) typed(d *store.Dataset, x []float64, names []string, path func(string) string) ([]table.Summary, []string, error) {
	in := func(n string) bool { return slices.Contains(names, n) }
	decl, err := p.overrides.resolve(in, names)
	if err != nil {
		var ie *Error
		if errors.As(err, &ie) {
			ie.Field = path(ie.Field)
		}
		return nil, nil, err
	}
	pos := make([]int, len(names))
	for j := range pos {
		pos[j] = j + 1
	}
	tb := newTableBuilder(p.m, map[string]bool{}, false, names, pos, decl)
	tb.path = func(row int, b *colBuilder) string { return path(fmt.Sprintf("features[%d][%d]", row, b.pos-1)) }
	k := len(names)
	for j, b := range tb.cols {
		if err := b.grow(p.m, p.rows); err != nil {
			return nil, nil, err
		}
		for r := 0; r < p.rows; r++ {
			i := r*k + j
			cell, ok := p.special[i]
			switch {
			case !ok:
				err = b.number(tb, x[i], "", r, 0)
			case cell.kind == 0:
				err = b.miss(tb)
			default:
				err = b.str(tb, cell.s, r, 0)
			}
			if err != nil {
				return nil, nil, err
			}
		}
	}
	tb.rows = p.rows
	d.X = nil
	sums, warnings, err := tb.features(d)
	var ie *Error
	if err != nil && errors.As(err, &ie) && ie.Field == "ignore" {
		ie.Field = path("ignore")
	}
	return sums, warnings, err
}

func defaultNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i+1)
	}
	return out
}

// checkNames applies engine.CheckNames, naming the refused entry of field.
func checkNames(names []string, field string) error {
	var ne *engine.NameError
	if err := engine.CheckNames(names); errors.As(err, &ne) {
		return &Error{Field: fmt.Sprintf("%s[%d]", field, ne.Index), Message: ne.Msg}
	}
	return nil
}
