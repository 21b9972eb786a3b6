package ingest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
	"github.com/backpropd/backpropd/internal/table"
)

// CSVOptions say how to read a CSV upload.
type CSVOptions struct {
	Name string
	// Targets are the target column names; empty means the last column.
	Targets []string
	// Task overrides inference when set.
	Task engine.Task
	// MaxCells caps rows × features; more is an *Error wrapping
	// ErrTooLarge. 0 means no cap.
	MaxCells int64
	// Reserve, when set, is asked for memory before the parser takes it
	// for the dataset's numbers and target cells, a step of about a
	// megabyte at a time as rows arrive. Its error stops the parse, which
	// returns an error wrapping ErrMemory and it.
	Reserve func(n int64) error
	// Delimiter separates fields: ',', ';', '\t' or '|'; 0 detects it
	// from the first line (the one of those it holds most of, outside
	// quotes; ',' when it holds none).
	Delimiter rune
	// DecimalComma reads "1,5" as 1.5; the delimiter must not be ','.
	DecimalComma bool
	// NoHeader says the file has no header row: the columns are named
	// c1…cN and the first row is data.
	NoHeader bool
	// Overrides declare column types by name.
	Overrides Overrides
	// NAValues are the cell texts read as missing, besides the empty
	// cell; nil means DefaultNAValues.
	NAValues []string
	// XParts leaves the numbers of a table that becomes X in the
	// dataset's XParts, the blocks they were parsed into, instead of
	// copying them into X: for a caller that only stores the dataset,
	// it saves a copy the size of the numbers.
	XParts bool
}

// Delimiters are the field delimiters a CSV upload may use.
const Delimiters = ",;\t|"

// The parser never sizes its buffers from what a client announces (such as
// a Content-Length): a false announcement would cost memory for data that
// never comes. Its buffers grow with the rows that have arrived, in chunks
// that are not copied as they grow (floats).

// ErrTooLarge is wrapped by the *Error for a dataset over
// CSVOptions.MaxCells.
var ErrTooLarge = errors.New("dataset too large")

// detectDelimiter picks the delimiter of the first line in b: the one of
// Delimiters it holds most of outside double quotes, ',' on a tie or none.
func detectDelimiter(b []byte) rune {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	var counts [4]int
	quoted := false
	for _, c := range b {
		if c == '"' {
			quoted = !quoted
			continue
		}
		if !quoted {
			if i := strings.IndexByte(Delimiters, c); i >= 0 {
				counts[i]++
			}
		}
	}
	best := 0
	for i := range counts {
		if counts[i] > counts[best] {
			best = i
		}
	}
	return rune(Delimiters[best])
}

// ReadCSV parses a CSV file, with a header row unless opt.NoHeader. A
// leading UTF-8 BOM is skipped and CRLF line endings are fine.
//
// Each column that is not a target is a feature whose type is inferred
// from its cells (number, category, datetime, or identifier-like and
// ignored) or declared in opt.Overrides. Rows whose target is missing are
// dropped and counted. A table whose features are all numbers with no
// missing cell becomes X, as it always has, read straight into one slice
// of numbers; any other becomes typed Columns.
//
// Errors are *Error values naming the line, the column (the field's
// 1-based position in the row) and the column's name; problems with
// cells of the wrong type are collected, up to MaxErrors, into one
// *Errors. Read errors from r (such as *http.MaxBytesError) are returned
// wrapped.
func ReadCSV(ctx context.Context, r io.Reader, opt CSVOptions) (*store.Dataset, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		_, _ = br.Discard(3)
	}
	delim := opt.Delimiter
	if delim == 0 {
		b, _ := br.Peek(64 << 10)
		delim = detectDelimiter(b)
	}
	if opt.DecimalComma && delim == ',' {
		return nil, &Error{Field: "decimal", Message: "a decimal comma needs a delimiter other than ',': pass delimiter=; (or a tab, or |)"}
	}
	newReader := func(r io.Reader) *csv.Reader {
		cr := csv.NewReader(r)
		cr.Comma = delim
		cr.FieldsPerRecord = -1 // checked here, to name both counts
		cr.ReuseRecord = true
		return cr
	}
	// The header is read from its own bytes when they are all in br's
	// buffer, so that the data rows after it are br's to read, by the
	// parallel path; else, or should a reader of those bytes alone end
	// its record elsewhere, all of the file is read from br.
	var cr *csv.Reader
	var header []string
	split, headerLines := false, 0
	if hdr := headerBytes(br); hdr != nil {
		hr := newReader(bytes.NewReader(hdr))
		if h, err := hr.Read(); err == nil && hr.InputOffset() == int64(len(hdr)) {
			cr, header, split = hr, h, true
			headerLines = bytes.Count(hdr, []byte{'\n'})
			_, _ = br.Discard(len(hdr))
		}
	}
	if !split {
		cr = newReader(br)
		var err error
		header, err = cr.Read()
		if err == io.EOF {
			return nil, &Error{Line: 1, Message: "empty file: expected a header row of column names"}
		}
		if err != nil {
			return nil, csvError(err, 0)
		}
	}
	var first []string // the first data row, when the file has no header
	if opt.NoHeader {
		first = make([]string, len(header))
		for i, h := range header {
			first[i] = strings.Clone(h)
		}
		header = defaultNames("c", len(first))
	}
	names := make([]string, len(header))
	index := map[string]int{}
	allNumeric := true
	for i, h := range header {
		h = strings.TrimSpace(h)
		line, _ := cr.FieldPos(i)
		col := i + 1
		if h == "" {
			return nil, &Error{Line: line, Column: col, Message: fmt.Sprintf("header column %d has no name", i+1)}
		}
		if j, dup := index[h]; dup {
			return nil, &Error{Line: line, Column: col, Field: truncate(h),
				Message: fmt.Sprintf("duplicate column name %q (also column %d)", truncate(h), j+1)}
		}
		if _, err := parseNumber(h); err != nil {
			allNumeric = false
		}
		index[h] = i
		names[i] = h
	}
	if allNumeric && !opt.NoHeader {
		return nil, &Error{Line: 1, Message: "the first row must be a header of column names, but it holds only numbers; add a header row or pass header=false"}
	}
	var ne *engine.NameError
	if err := engine.CheckNames(names); errors.As(err, &ne) {
		line, _ := cr.FieldPos(ne.Index)
		return nil, &Error{Line: line, Column: ne.Index + 1, Message: "column name " + ne.Msg}
	}

	targetNames := opt.Targets
	if len(targetNames) == 0 {
		targetNames = names[len(names)-1:]
	}
	isTarget := make([]bool, len(names))
	targetCols := make([]int, len(targetNames))
	for j, t := range targetNames {
		i, ok := index[t]
		if !ok {
			return nil, &Error{Field: "target", Message: fmt.Sprintf("target column %q is not in the header (columns: %s)",
				truncate(t), columnList(names))}
		}
		if isTarget[i] {
			return nil, &Error{Field: "target", Message: fmt.Sprintf("target column %q named twice", truncate(t))}
		}
		isTarget[i] = true
		targetCols[j] = i
	}
	featureCols := make([]int, 0, len(names)-len(targetCols))
	featureNames := make([]string, 0, len(names)-len(targetCols))
	for i, n := range names {
		if !isTarget[i] {
			featureCols = append(featureCols, i)
			featureNames = append(featureNames, n)
		}
	}
	if len(featureCols) == 0 {
		return nil, &Error{Field: "target", Message: "no feature columns left: every column is a target"}
	}
	decl, err := opt.Overrides.resolve(func(n string) bool { _, ok := index[n]; return ok }, names)
	if err != nil {
		return nil, err
	}
	for _, t := range targetNames {
		if k, ok := decl[t]; ok {
			return nil, &Error{Field: k, Message: fmt.Sprintf("column %q is the target; its type follows task= (regression reads numbers, binary or multiclass reads classes)", truncate(t))}
		}
	}

	d := &store.Dataset{Meta: store.DatasetMeta{
		Name:        opt.Name,
		TargetNames: append([]string(nil), targetNames...),
	}}
	m := &meter{reserve: opt.Reserve}
	na := naSet(opt.NAValues)
	x := floats{m: m}
	var typed *tableBuilder
	startTyped := func() error {
		pos := make([]int, len(featureCols))
		for k, i := range featureCols {
			pos[k] = i + 1
		}
		typed = newTableBuilder(m, na, opt.DecimalComma, featureNames, pos, decl)
		if x.len() == 0 {
			return nil
		}
		flat, err := x.flat()
		if err != nil {
			return err
		}
		x = floats{m: m}
		return typed.fromX(flat, len(flat)/len(featureCols))
	}
	// The fast path reads every feature cell as a number; declared types,
	// a decimal comma or a missing token that is a number need each cell
	// looked at as text.
	if decl := len(decl) > 0; decl || opt.DecimalComma || numericNA(na) {
		if err := startTyped(); err != nil {
			return nil, err
		}
	}
	t := targets{k: len(targetCols)}
	targetMissing := make([]int, len(targetCols))
	labels := interner{}
	var lines lineTable // line of each data row, for target errors
	rowVals := make([]float64, len(featureCols))
	accs := make([]numAcc, len(featureCols)) // the fast path's summaries
	rows := 0
	// dr reads the data rows serially, base lines after the file's
	// start; fieldLine is the line of field i of its current record.
	var dr *csv.Reader
	base := 0
	fieldLine := func(i int) int { l, _ := dr.FieldPos(i); return l + base }
	row := func(rec []string, line int) error {
		if len(rec) != len(names) {
			return &Error{Line: line, Message: fmt.Sprintf("row has %d fields, the header has %d", len(rec), len(names))}
		}
		drop := false
		for j, i := range targetCols {
			if c := strings.TrimSpace(rec[i]); c == "" || na[c] {
				targetMissing[j]++
				drop = true
			}
		}
		if drop {
			d.Meta.DroppedRows++
			return nil
		}
		if typed == nil {
			for k, i := range featureCols {
				v, err := parseNumber(rec[i])
				if err != nil {
					if err := startTyped(); err != nil {
						return err
					}
					break
				}
				rowVals[k] = v
			}
		}
		if typed == nil {
			for k, v := range rowVals {
				if err := x.add(v); err != nil {
					return err
				}
				accs[k].add(v)
			}
		} else {
			for k, i := range featureCols {
				l := line
				if dr != nil {
					l = fieldLine(i)
				}
				if err := typed.cell(typed.cols[k], rec[i], rows, l); err != nil {
					return err
				}
			}
			typed.rows++
		}
		for _, i := range targetCols {
			if err := m.take(cellBytes + int64(len(rec[i]))); err != nil {
				return err
			}
			t.cells = append(t.cells, labels.intern(rec[i]))
		}
		lines.add(rows, line)
		rows++
		if opt.MaxCells > 0 && int64(rows)*int64(len(featureCols)) > opt.MaxCells {
			return &Error{Line: line, Err: ErrTooLarge, Message: fmt.Sprintf(
				"more than %d cells (rows × features): the server's limit", opt.MaxCells)}
		}
		return nil
	}
	// commit takes the rows of a block of the parallel path, as row would
	// have taken them one by one, but for missing cells: those are NaN in
	// x, and nan is set, until the features turn typed.
	nan := false
	commit := func(c *chunk) error {
		nan = nan || c.nan
		d.Meta.DroppedRows += c.dropped
		for j, n := range c.missing {
			targetMissing[j] += n
		}
		if c.rows == 0 {
			return nil
		}
		nf, nt := len(featureCols), len(targetCols)
		block := c.x[:c.rows*nf]
		x.chunks = append(x.chunks, block)
		x.n += len(block)
		for r := range c.rows {
			for j := range nt {
				s, e := c.spans[2*(r*nt+j)], c.spans[2*(r*nt+j)+1]
				if err := m.take(cellBytes + int64(e-s)); err != nil {
					return err
				}
				t.cells = append(t.cells, labels.internBytes(c.buf[s:e]))
			}
			line := c.line0 + int(c.rowLine[r])
			lines.add(rows, line)
			rows++
			if opt.MaxCells > 0 && int64(rows)*int64(nf) > opt.MaxCells {
				return &Error{Line: line, Err: ErrTooLarge, Message: fmt.Sprintf(
					"more than %d cells (rows × features): the server's limit", opt.MaxCells)}
			}
		}
		addRows(accs, block)
		return nil
	}
	// parallel reads the data rows on every core, block by block, while
	// they are plain; it returns the reader of the rest, for the serial
	// path, and the line before the rest's first.
	parallel := func() (io.Reader, int, error) {
		spec := &plainSpec{delim: byte(delim), fields: len(names), isTarget: isTarget,
			features: len(featureCols), targets: len(targetCols), na: na, abort: &atomic.Bool{}}
		defer spec.abort.Store(true) // blocks parsed ahead are not wanted
		k := &chunker{r: br, line: headerLines + 1}
		var pending []*chunk
		// The memory for a block's numbers is reserved before it is
		// parsed. Once that is refused, the serial path reads on from
		// that block, taking memory as its rows come, so that it is
		// refused at the row it would be, after any problem before it.
		refused := false
		for {
			for len(pending) < inFlight() && !refused {
				c := k.next()
				if c == nil {
					break
				}
				if m.take(8*int64(c.lines*spec.features)) != nil {
					// Unparsed, the block stops at its first line.
					refused, c.stop = true, true
					close(c.done)
				} else {
					go spec.parse(c)
				}
				pending = append(pending, c)
			}
			if len(pending) == 0 {
				return k.rest(), k.line - 1, nil
			}
			c := pending[0]
			pending = pending[1:]
			<-c.done
			if err := ctx.Err(); err != nil {
				return nil, 0, err
			}

			if err := commit(c); err != nil {
				return nil, 0, err
			}
			if c.stop {
				rest := []io.Reader{bytes.NewReader(c.buf[c.stopOff:])}
				for _, p := range pending {
					rest = append(rest, bytes.NewReader(p.buf))
				}
				return io.MultiReader(append(rest, k.rest())...), c.line0 + c.stopLine - 1, nil
			}
			k.recycle(c)
		}
	}
	if first != nil {
		// The first row's fields are not the reader's current record.
		if err := row(first, 1); err != nil {
			return nil, err
		}
	}
	switch {
	case !split:
		dr = cr
	case csvParallel && typed == nil:
		rest, b, err := parallel()
		if err != nil {
			return nil, err
		}
		dr, base = newReader(rest), b
	default:
		dr, base = newReader(br), headerLines
	}
	for n := 0; ; n++ {
		rec, err := dr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvError(err, base)
		}
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if err := row(rec, fieldLine(0)); err != nil {
			return nil, err
		}
	}
	d.Meta.Rows = rows
	if rows == 0 {
		if d.Meta.DroppedRows > 0 {
			return nil, &Error{Field: targetNames[0], Message: fmt.Sprintf("every row's target is missing (%d rows dropped); check target= and na_values", d.Meta.DroppedRows)}
		}
		return nil, &Error{Line: 2, Message: "no data rows after the header"}
	}
	if typed == nil && nan {
		if err := startTyped(); err != nil {
			return nil, err
		}
	}
	var featureSums []table.Summary
	var warnings []string
	var levelSets []map[string]int32 // each feature's levels, for looksLikeData
	if typed == nil {
		if opt.XParts {
			d.XParts = x.parts()
		} else if d.X, err = x.flat(); err != nil {
			return nil, err
		}
		d.Meta.Features, d.Meta.FeatureNames = len(featureNames), featureNames
		featureSums, warnings = xSummaries(accs, featureNames)
	} else {
		levelSets = make([]map[string]int32, len(typed.cols))
		for k, b := range typed.cols {
			levelSets[k] = b.index
		}
		if featureSums, warnings, err = typed.features(d); err != nil {
			return nil, err
		}
	}
	err = assemble(d, opt.Task, t, func(row, j int, msg string) *Error {
		return &Error{Line: lines.line(row), Column: targetCols[j] + 1, Field: targetNames[j], Message: msg}
	}, true)
	if err != nil {
		return nil, err
	}
	targetSums := targetSummaries(d, targetMissing)
	d.Meta.Columns = make([]table.Summary, len(names))
	fits := make([]func(string) bool, len(names))
	for k, i := range featureCols {
		d.Meta.Columns[i] = featureSums[k]
		if levelSets != nil {
			set := levelSets[k]
			fits[i] = func(h string) bool { _, ok := set[h]; return ok }
		}
	}
	for j, i := range targetCols {
		d.Meta.Columns[i] = targetSums[j]
		// Labels are kept as written but classes are compared trimmed, so
		// a header cell fits a label that differs from it only by spaces.
		fits[i] = func(h string) bool {
			if _, ok := labels[h]; ok {
				return true
			}
			h = strings.TrimSpace(h)
			for l := range labels {
				if strings.TrimSpace(l) == h {
					return true
				}
			}
			return false
		}
	}
	if !opt.NoHeader && looksLikeData(names, d.Meta.Columns, fits, opt.DecimalComma) {
		return nil, &Error{Line: 1, Message: headerLooksLikeData + ": each of its cells fits the column below it; add a header row, or pass header=false to name the columns c1…cN"}
	}
	d.Meta.Warnings = append(warnings, d.Meta.Warnings...)
	if d.Meta.DroppedRows > 0 {
		d.Meta.Warnings = append(d.Meta.Warnings, fmt.Sprintf("%d rows dropped: their target is missing", d.Meta.DroppedRows))
	}
	return d, nil
}

// headerLooksLikeData begins the error for a first row that looksLikeData.
const headerLooksLikeData = "the first row looks like data, not column names"

// looksLikeData reports whether a header row reads as a row of the data
// below it: every cell over a number column is a number, every cell over a
// datetime column a date, and every cell over a category or a target of
// classes one of its values (isValue[i] says which are); ignored columns
// say nothing, and at least one column must say so.
func looksLikeData(header []string, cols []table.Summary, isValue []func(string) bool, decimalComma bool) bool {
	fits := 0
	for i, s := range cols {
		h := strings.TrimSpace(header[i])
		num := h
		if decimalComma {
			num = strings.Replace(h, ",", ".", 1)
		}
		switch {
		case s.Role == table.Ignored:
			continue
		case s.Type == table.Number:
			if _, err := parseNumber(num); err != nil {
				return false
			}
		case s.Type == table.Datetime:
			if _, _, ok := table.ParseDatetime(h); !ok {
				return false
			}
		default:
			if isValue[i] == nil || !(isValue[i](h) || isValue[i](header[i])) {
				return false
			}
		}
		fits++
	}
	return fits > 0
}

// cellBytes is what a target cell costs besides its text: the string
// header in targets.cells.
const cellBytes = 16

// lineTable maps a data row to its line in the file. Rows usually follow
// one a line, so it keeps only the rows where that breaks (after a quoted
// field spanning lines, or a blank line) instead of a line per row: a
// million rows of a plain file cost one entry, not eight megabytes.
type lineTable struct {
	// starts[i] is the first row of a run of rows on consecutive lines,
	// the first of which is on lines[i].
	starts, lines []int
}

func (lt *lineTable) add(row, line int) {
	if n := len(lt.starts); n > 0 && lt.lines[n-1]+(row-lt.starts[n-1]) == line {
		return
	}
	lt.starts = append(lt.starts, row)
	lt.lines = append(lt.lines, line)
}

func (lt *lineTable) line(row int) int {
	i, found := slices.BinarySearch(lt.starts, row)
	if !found {
		i--
	}
	if i < 0 {
		return 0
	}
	return lt.lines[i] + row - lt.starts[i]
}

// csvError turns an encoding/csv error of a reader that started base
// lines into the file into an *Error; other errors (the body reader's)
// pass through.
func csvError(err error, base int) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		msg := pe.Err.Error()
		if errors.Is(pe.Err, csv.ErrQuote) || errors.Is(pe.Err, csv.ErrBareQuote) {
			msg += " (the file may end in the middle of a quoted field)"
		}
		return &Error{Line: pe.Line + base, Column: pe.Column, Message: msg}
	}
	return err
}

// headerBytes returns a copy of the bytes of the file's first record, up
// to and with the first newline outside double quotes, when they are all
// in br's buffer; nil otherwise.
func headerBytes(br *bufio.Reader) []byte {
	b, _ := br.Peek(br.Size())
	quoted := false
	for i, c := range b {
		switch {
		case c == '"':
			quoted = !quoted
		case c == '\n' && !quoted:
			return bytes.Clone(b[:i+1])
		}
	}
	return nil
}
