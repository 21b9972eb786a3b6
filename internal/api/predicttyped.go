package api

import (
	"fmt"
	"math"
	"strconv"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/table"
)

// The raw rows of a typed model (one trained on a table of numbers,
// categories and date-times): each cell is read by the kind of its input
// column, as the upload read it, into the columns engine.PredictColumns
// takes.

// newColumns makes sm's input columns, rows cells long, every cell
// missing.
func (sm *servedModel) newColumns(rows int) []table.Column {
	cols := make([]table.Column, len(sm.inputs))
	for j, in := range sm.inputs {
		c := &cols[j]
		c.Name, c.Kind = in.Name, in.Kind
		if in.Kind == table.Category {
			c.Codes = make([]int32, rows)
			for i := range c.Codes {
				c.Codes[i] = table.Missing
			}
			continue
		}
		c.Values = make([]float64, rows)
		for i := range c.Values {
			c.Values[i] = math.NaN()
		}
	}
	return cols
}

// cellReader reads the raw cells of one request into typed columns. A
// category column's request levels get their codes in order of first
// appearance.
type cellReader struct {
	sm     *servedModel
	cols   []table.Column // nil once a problem is found: cells are then only checked
	levels []map[string]int32
}

func newCellReader(sm *servedModel, cols []table.Column) *cellReader {
	return &cellReader{sm: sm, cols: cols, levels: make([]map[string]int32, len(cols))}
}

// read consumes the next JSON value of s as row r of input column j and
// stores it, unless the reader has stopped storing. It returns what is
// wrong with the value, or "". null is a missing cell in every column.
// datatype, when not "", is the /v2 tensor's number type, whose range a
// number must respect.
func (c *cellReader) read(s *jsonScan, j, r int, datatype string) string {
	in := &c.sm.inputs[j]
	if s.peek() == 'n' {
		s.literal()
		return ""
	}
	col := engine.QuoteName(in.Name)
	switch in.Kind {
	case table.Number:
		if k := s.peek(); k != '-' && (k < '0' || k > '9') {
			return "column " + col + " is a number column: the cell must be a finite number or null, not " + s.skip()
		}
		v, msg := s.number()
		if msg != "" {
			return "column " + col + ": the cell " + msg
		}
		if datatype != "" {
			if msg := checkDatatype(v, datatype, v2Datatypes[datatype]); msg != "" {
				return "column " + col + ": " + msg
			}
		}
		if c.cols != nil {
			c.cols[j].Values[r] = v
		}
		return ""
	case table.Category:
		var level string
		switch k := s.peek(); k {
		case '"':
			level = s.str()
		case '[', '{':
			return "column " + col + " is a category column: the cell must be a level (a string) or null, not " + s.skip()
		default:
			// A number or boolean is read by its text, as the upload read
			// the cell: a declared category of codes keeps levels like "12".
			level = string(s.literal())
		}
		if c.cols != nil {
			c.cols[j].Codes[r] = c.code(j, level)
		}
		return ""
	case table.Datetime:
		if s.peek() != '"' {
			return "column " + col + " is a datetime column: the cell must be a date string such as " +
				"2007-11-09 or 2007-11-09T10:30:00Z, or null, not " + s.skip()
		}
		str := s.str()
		sec, hasTime, ok := table.ParseDatetime(str)
		if !ok {
			return "column " + col + " is a datetime column: " + engine.QuoteName(str) +
				" is not a date; give 2007-11-09, 2007-11-09T10:30:00Z or 2007-11-09 10:30:00"
		}
		if c.cols != nil {
			c.cols[j].Values[r] = sec
			c.cols[j].HasTime = c.cols[j].HasTime || hasTime
		}
		return ""
	}
	s.skip()
	return "column " + col + " has a type this server does not know"
}

// code is the request-local code of level in category column j.
func (c *cellReader) code(j int, level string) int32 {
	m := c.levels[j]
	if m == nil {
		m = map[string]int32{}
		c.levels[j] = m
	}
	k, ok := m[level]
	if !ok {
		k = int32(len(c.cols[j].Levels))
		m[level] = k
		c.cols[j].Levels = append(c.cols[j].Levels, level)
	}
	return k
}

// decodeTypedRows is decodeRows for a typed model. A row is an object
// keyed by input column name, where an absent key or null is a missing
// cell, or an array of raw cells in the order of the model's inputs. It
// counts the rows before it reads them, so that buf.columns can refuse
// too many and reserve their memory before anything per row is
// allocated; once a problem is found no further cell is stored, only
// checked.
func decodeTypedRows(raw []byte, field string, sm *servedModel, buf *predictBuffers) (int, error) {
	s := jsonScan{b: raw}
	if s.peek() != '[' {
		return 0, invalidField(field, "must be an array of rows, not %s", s.skip())
	}
	at := s.i
	rows := s.count()
	s.i = at
	cols, err := buf.columns(rows)
	if err != nil {
		return 0, err
	}
	features := len(sm.inputs)
	cells := newCellReader(sm, cols)
	var errs rowErrors
	fail := func(path, msg string) {
		cells.cols = nil
		if errs.room() {
			errs.add(path, msg)
		}
	}
	seen := make([]uint64, (features+63)/64)
	s.open()
	r := 0
	for first := true; !errs.more && s.more(first); first = false {
		switch s.peek() {
		case '[':
			s.open()
			n := 0
			for f := true; !errs.more && s.more(f); f = false {
				if n >= features {
					s.skip()
					n++
					continue
				}
				if msg := cells.read(&s, n, r, ""); msg != "" {
					fail(field+"["+strconv.Itoa(r)+"]["+strconv.Itoa(n)+"]", msg)
				}
				n++
			}
			if n != features {
				fail(field+"["+strconv.Itoa(r)+"]", fmt.Sprintf(
					"has %d values; the model takes %d input columns, in order (%s)", n, features, sm.featureList))
			}
		case '{':
			clear(seen)
			s.open()
			for f := true; !errs.more && s.more(f); f = false {
				key := s.str()
				s.colon()
				j, ok := sm.featureIndex[key]
				switch {
				case !ok && key == sm.target && key != "":
					s.skip()
					fail(keyPath(field, r, key), "is the target column, which the model predicts; leave it out")
				case !ok:
					s.skip()
					fail(keyPath(field, r, key), "unknown column; the model's input columns are "+sm.featureList)
				case seen[j/64]&(1<<(j%64)) != 0:
					s.skip()
					fail(keyPath(field, r, key), "given more than once")
				default:
					seen[j/64] |= 1 << (j % 64)
					if msg := cells.read(&s, j, r, ""); msg != "" {
						fail(keyPath(field, r, key), msg)
					}
				}
			}
		default:
			fail(field+"["+strconv.Itoa(r)+"]", fmt.Sprintf(
				"must be an array of %d cells or an object keyed by input column name, not %s", features, s.skip()))
		}
		r++
	}
	if err := errs.err(); err != nil {
		return rows, err
	}
	return rows, nil
}

// appendUnseenWarnings appends a warning per category column with cells
// whose level the model did not keep (unseen[j] of them, of rows): they
// were encoded as the column's "other" level, which the model has only
// when training folded some levels into it, and otherwise as none of its
// levels.
func appendUnseenWarnings(w []string, sm *servedModel, unseen []int, rows int) []string {
	for j, n := range unseen {
		if n > 0 {
			w = append(w, fmt.Sprintf("column %s: %d of %d rows hold a level the model did not keep "+
				"(not seen in training, or too rare there); they were encoded as its \"other\" level, or as none of its levels where the model keeps no \"other\"",
				engine.QuoteName(sm.inputs[j].Name), n, rows))
		}
	}
	return w
}
