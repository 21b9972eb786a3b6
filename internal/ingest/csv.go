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

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
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
}

// The parser never sizes its buffers from what a client announces (such as
// a Content-Length): a false announcement would cost memory for data that
// never comes. Its buffers grow with the rows that have arrived, in chunks
// that are not copied as they grow (floats).

// ErrTooLarge is wrapped by the *Error for a dataset over
// CSVOptions.MaxCells.
var ErrTooLarge = errors.New("dataset too large")

// ReadCSV parses a CSV file with a header row. Every column that is not a
// target is a feature and must hold finite numbers. A leading UTF-8 BOM is
// skipped and CRLF line endings are fine. Errors are *Error values naming
// the line, the column (the field's 1-based position in the row) and the
// column's name; read errors from r (such as
// *http.MaxBytesError) are returned wrapped.
func ReadCSV(ctx context.Context, r io.Reader, opt CSVOptions) (*store.Dataset, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1 // checked here, to name both counts
	cr.ReuseRecord = true

	header, err := cr.Read()
	if err == io.EOF {
		return nil, &Error{Line: 1, Message: "empty file: expected a header row of column names"}
	}
	if err != nil {
		return nil, csvError(err)
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
	if allNumeric {
		return nil, &Error{Line: 1, Message: "the first row must be a header of column names, but it holds only numbers"}
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

	d := &store.Dataset{Meta: store.DatasetMeta{
		Name:         opt.Name,
		Features:     len(featureCols),
		FeatureNames: featureNames,
		TargetNames:  append([]string(nil), targetNames...),
	}}
	m := &meter{reserve: opt.Reserve}
	x := floats{m: m}
	t := targets{k: len(targetCols)}
	labels := interner{}
	var lines lineTable // line of each data row, for target errors
	rows := 0
	for ; ; rows++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvError(err)
		}
		line, _ := cr.FieldPos(0)
		if rows%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if len(rec) != len(names) {
			return nil, &Error{Line: line, Message: fmt.Sprintf("row has %d fields, the header has %d", len(rec), len(names))}
		}
		for k, i := range featureCols {
			v, err := parseNumber(rec[i])
			if err != nil {
				l, _ := cr.FieldPos(i)
				return nil, &Error{Line: l, Column: i + 1, Field: featureNames[k], Message: err.Error()}
			}
			if err := x.add(v); err != nil {
				return nil, err
			}
		}
		for _, i := range targetCols {
			if err := m.take(cellBytes + int64(len(rec[i]))); err != nil {
				return nil, err
			}
			t.cells = append(t.cells, labels.intern(rec[i]))
		}
		lines.add(rows, line)
		if opt.MaxCells > 0 && int64(x.len()) > opt.MaxCells {
			return nil, &Error{Line: line, Err: ErrTooLarge, Message: fmt.Sprintf(
				"more than %d cells (rows × features): the server's limit", opt.MaxCells)}
		}
	}
	d.Meta.Rows = rows
	if d.Meta.Rows == 0 {
		return nil, &Error{Line: 2, Message: "no data rows after the header"}
	}
	if d.X, err = x.flat(); err != nil {
		return nil, err
	}
	err = assemble(d, opt.Task, t, func(row, j int, msg string) *Error {
		return &Error{Line: lines.line(row), Column: targetCols[j] + 1, Field: targetNames[j], Message: msg}
	})
	if err != nil {
		return nil, err
	}
	return d, nil
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

// csvError turns an encoding/csv error into an *Error; other errors (the
// body reader's) pass through.
func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		msg := pe.Err.Error()
		if errors.Is(pe.Err, csv.ErrQuote) || errors.Is(pe.Err, csv.ErrBareQuote) {
			msg += " (the file may end in the middle of a quoted field)"
		}
		return &Error{Line: pe.Line, Column: pe.Column, Message: msg}
	}
	return err
}
