package ingest

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
	"github.com/backpropd/backpropd/internal/table"
)

// RecordsOptions say how to read a JSON upload that is an array of
// records, [{"col": value, ...}, ...], as pandas' to_json(orient="records")
// writes it. The array carries no name or target, so they come from here.
type RecordsOptions struct {
	Name string
	// Targets are the target column names; empty means the last key of
	// the first record.
	Targets []string
	// Task overrides inference when set.
	Task engine.Task
	// Overrides declare column types by name.
	Overrides Overrides
	// MaxCells and Reserve are as in CSVOptions.
	MaxCells int64
	Reserve  func(n int64) error
}

// ReadJSONRecords reads an array of records from r. The first record's
// keys name the columns, in its order; a later record may leave a key out
// (a missing cell, as null is) but not bring a new one. Values are
// numbers, strings, booleans (a category of "true" and "false") or null.
// Types are inferred, or declared, and rows whose target is missing are
// dropped, as in ReadCSV; errors name the record and key ("[3].price").
func ReadJSONRecords(ctx context.Context, r io.Reader, opt RecordsOptions) (*store.Dataset, error) {
	sc := newScanner(r)
	c, ok := sc.skipSpace()
	if !ok {
		if sc.rerr != nil {
			return nil, fmt.Errorf("read the body: %w", sc.rerr)
		}
		return nil, &Error{Message: "the body is empty; expected a JSON array of records"}
	}
	if c != '[' {
		return nil, &Error{Message: "must be a JSON array of records, got " + kindOf(c)}
	}
	sc.pos++
	p := recordsParser{sc: sc, ctx: ctx, opt: opt, m: &meter{reserve: opt.Reserve}, labels: interner{}}
	p.t.labels = true
	parser := jsonParser{sc: sc}
	err := parser.elements(p.record, func() {})
	if err != nil {
		return nil, err
	}
	if err := sc.finish(); err != nil {
		return nil, err
	}
	return p.dataset()
}

// rcell is one value of a record.
type rcell struct {
	kind byte // 0 absent or null, 'n' number, 's' string, 'b' boolean
	v    float64
	s    string
}

type recordsParser struct {
	sc  *scanner
	ctx context.Context
	opt RecordsOptions
	m   *meter

	names      []string
	index      map[string]int
	isTarget   []bool
	targetCols []int
	featCols   []int
	tb         *tableBuilder
	row        []rcell
	seen       []bool

	t             targets
	targetMissing []int
	labels        interner
	rows, dropped int
}

// record reads the i-th record.
func (p *recordsParser) record(i int) error {
	sc := p.sc
	if i%4096 == 0 {
		if err := p.ctx.Err(); err != nil {
			return err
		}
	}
	c, _ := sc.skipSpace()
	if c != '{' {
		jp := jsonParser{sc: sc}
		return jp.typeErr(fmt.Sprintf("[%d]", i), "must be an object of column values, got ", c)
	}
	sc.pos++
	for k := range p.row {
		p.row[k] = rcell{}
		p.seen[k] = false
	}
	first := p.index == nil
	if first {
		p.index = map[string]int{}
	}
	if c, ok := sc.skipSpace(); ok && c == '}' {
		sc.pos++
		if first {
			return &Error{Field: "[0]", Message: "must hold at least one column"}
		}
		return p.finishRow(i)
	}
	for {
		c, _ := sc.skipSpace()
		if c != '"' {
			return sc.syntax("expected a key in double quotes, got %s", quoteChar(c))
		}
		key, err := sc.str()
		if err != nil {
			return err
		}
		if err := sc.expect(':', "':' after a key"); err != nil {
			return err
		}
		field := fmt.Sprintf("[%d].%s", i, truncate(key))
		k, ok := p.index[key]
		switch {
		case !ok && first:
			if msg := engine.CheckName(key); msg != "" {
				return &Error{Field: field, Message: "column name " + msg}
			}
			k = len(p.names)
			p.index[key] = k
			p.names = append(p.names, key)
			p.row = append(p.row, rcell{})
			p.seen = append(p.seen, false)
		case !ok:
			return &Error{Field: field, Message: fmt.Sprintf("is not a key of record 0 (keys: %s)", columnList(p.names))}
		case p.seen[k]:
			return &Error{Field: field, Message: "given twice"}
		}
		p.seen[k] = true
		cell, err := p.value(field)
		if err != nil {
			return err
		}
		p.row[k] = cell
		c, _ = sc.skipSpace()
		switch c {
		case ',':
			sc.pos++
			continue
		case '}':
			sc.pos++
			if first {
				if err := p.start(); err != nil {
					return err
				}
			}
			return p.finishRow(i)
		}
		return sc.syntax("expected ',' or '}' after a value, got %s", quoteChar(c))
	}
}

// value reads one record value.
func (p *recordsParser) value(field string) (rcell, error) {
	sc := p.sc
	c, _ := sc.skipSpace()
	switch {
	case c == 'n' || c == 't' || c == 'f':
		if err := sc.literal(); err != nil {
			return rcell{}, err
		}
		switch c {
		case 't':
			return rcell{kind: 'b', s: "true"}, nil
		case 'f':
			return rcell{kind: 'b', s: "false"}, nil
		}
		return rcell{}, nil
	case c == '"':
		s, err := sc.str()
		if err != nil {
			return rcell{}, inField(err, field)
		}
		return rcell{kind: 's', s: s}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		b, err := sc.number()
		if err != nil {
			return rcell{}, err
		}
		v, err := strconv.ParseFloat(string(b), 64)
		if err != nil || math.IsInf(v, 0) {
			return rcell{}, &Error{Field: field, Message: "must be a finite number"}
		}
		return rcell{kind: 'n', v: v, s: string(b)}, nil
	}
	jp := jsonParser{sc: sc}
	return rcell{}, jp.typeErr(field, "must be a number, a string, a boolean or null, got ", c)
}

// start sets the columns up once the first record has named them.
func (p *recordsParser) start() error {
	targets := p.opt.Targets
	if len(targets) == 0 {
		targets = p.names[len(p.names)-1:]
	}
	p.isTarget = make([]bool, len(p.names))
	for _, t := range targets {
		k, ok := p.index[t]
		if !ok {
			return &Error{Field: "target", Message: fmt.Sprintf("target column %q is not a key of record 0 (keys: %s)", truncate(t), columnList(p.names))}
		}
		if p.isTarget[k] {
			return &Error{Field: "target", Message: fmt.Sprintf("target column %q named twice", truncate(t))}
		}
		p.isTarget[k] = true
		p.targetCols = append(p.targetCols, k)
	}
	var names []string
	for k, n := range p.names {
		if !p.isTarget[k] {
			p.featCols = append(p.featCols, k)
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return &Error{Field: "target", Message: "no feature columns left: every column is a target"}
	}
	decl, err := p.opt.Overrides.resolve(func(n string) bool { _, ok := p.index[n]; return ok }, p.names)
	if err != nil {
		return err
	}
	for _, t := range targets {
		if k, ok := decl[t]; ok {
			return &Error{Field: k, Message: fmt.Sprintf("column %q is the target; its type follows task= (regression reads numbers, binary or multiclass reads classes)", truncate(t))}
		}
	}
	p.tb = newTableBuilder(p.m, map[string]bool{}, false, names, nil, decl)
	p.tb.path = func(row int, b *colBuilder) string { return recordPath(row, b.name) }
	p.t.k = len(p.targetCols)
	p.targetMissing = make([]int, len(p.targetCols))
	return nil
}

// finishRow adds the record just read as data row i.
func (p *recordsParser) finishRow(i int) error {
	drop := false
	for j, k := range p.targetCols {
		if p.row[k].kind == 0 {
			p.targetMissing[j]++
			drop = true
		}
	}
	if drop {
		p.dropped++
		return nil
	}
	tb := p.tb
	for f, k := range p.featCols {
		b, cell := tb.cols[f], p.row[k]
		var err error
		switch cell.kind {
		case 0:
			err = b.miss(tb)
		case 'n':
			err = b.number(tb, cell.v, cell.s, i, 0)
		default:
			err = b.str(tb, cell.s, i, 0)
		}
		if err != nil {
			return err
		}
	}
	tb.rows++
	for _, k := range p.targetCols {
		cell := p.row[k]
		if cell.kind == 'n' {
			p.t.labels = false
		}
		if err := p.m.take(cellBytes + int64(len(cell.s))); err != nil {
			return err
		}
		p.t.cells = append(p.t.cells, p.labels.intern(cell.s))
	}
	p.rows++
	if p.opt.MaxCells > 0 && int64(p.rows)*int64(len(p.featCols)) > p.opt.MaxCells {
		return &Error{Field: fmt.Sprintf("[%d]", i), Err: ErrTooLarge, Message: fmt.Sprintf(
			"more than %d cells (rows × features): the server's limit", p.opt.MaxCells)}
	}
	return nil
}

func (p *recordsParser) dataset() (*store.Dataset, error) {
	if p.index == nil {
		return nil, &Error{Message: "the array holds no records"}
	}
	d := &store.Dataset{Meta: store.DatasetMeta{Name: p.opt.Name, Rows: p.rows, DroppedRows: p.dropped}}
	for _, k := range p.targetCols {
		d.Meta.TargetNames = append(d.Meta.TargetNames, p.names[k])
	}
	if p.rows == 0 {
		return nil, &Error{Field: d.Meta.TargetNames[0], Message: fmt.Sprintf("every record's target is missing (%d records dropped)", p.dropped)}
	}
	featureSums, warnings, err := p.tb.features(d)
	if err != nil {
		return nil, err
	}
	// Targets that came as numbers and strings both are read as text.
	err = assemble(d, p.opt.Task, p.t, func(row, j int, msg string) *Error {
		return &Error{Field: fmt.Sprintf("target %s", p.names[p.targetCols[j]]), Message: msg}
	}, true)
	if err != nil {
		return nil, err
	}
	targetSums := targetSummaries(d, p.targetMissing)
	d.Meta.Columns = make([]table.Summary, len(p.names))
	for f, k := range p.featCols {
		d.Meta.Columns[k] = featureSums[f]
	}
	for j, k := range p.targetCols {
		d.Meta.Columns[k] = targetSums[j]
	}
	d.Meta.Warnings = append(warnings, d.Meta.Warnings...)
	if p.dropped > 0 {
		d.Meta.Warnings = append(d.Meta.Warnings, fmt.Sprintf("%d rows dropped: their target is missing", p.dropped))
	}
	return d, nil
}

// recordPath is the JSON path of column name in record row.
func recordPath(row int, name string) string {
	return fmt.Sprintf("[%d].%s", row, strings.Clone(truncate(name)))
}
