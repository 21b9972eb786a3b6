package engine

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/backpropd/backpropd/internal/table"
)

// errTypedInputs is Predict's error for a model with category or
// datetime inputs.
var errTypedInputs = errors.New("predict: the model takes typed columns (category or datetime); use PredictColumns")

// InputColumn describes one input column a model takes, as a client
// needs it to build a request or a form.
type InputColumn struct {
	Name string     `json:"name"`
	Kind table.Kind `json:"type"`
	// Levels are a category column's kept levels, in the order of its
	// one-hot columns; any other value is accepted as "other".
	Levels []string `json:"levels,omitempty"`
	// Min and Max are the range of a number or datetime column's present
	// training cells (Unix seconds for datetimes); nil when unknown (a
	// model of numeric features keeps no ranges).
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
	// HasTime says a datetime column's training cells had times of day.
	HasTime bool `json:"has_time,omitempty"`
	// Missing says the training split had missing cells in the column.
	// A missing cell is accepted either way by PredictColumns (and, for
	// numbers, as NaN by Predict of a typed model): without missing
	// training cells it takes the imputed value, or for a category no
	// level at all.
	Missing bool `json:"missing"`
}

// Typed reports whether the model was trained on typed columns: it then
// takes raw cells, missing ones included, through PredictColumns (or, when
// every input is a number, through Predict with NaN for a missing cell).
// A model of numeric features takes finite numbers only.
func (m *Model) Typed() bool { return m.inputs != nil }

// Inputs lists the input columns the model takes, in order: the typed
// columns it was trained on, or, for numeric features, one number column
// per feature.
func (m *Model) Inputs() []InputColumn {
	out := make([]InputColumn, m.features)
	if m.inputs == nil {
		for j := range out {
			out[j] = InputColumn{Name: m.featureNames[j], Kind: table.Number}
		}
		return out
	}
	for j := range m.inputs {
		s := &m.inputs[j]
		out[j] = InputColumn{Name: s.Name, Kind: s.Kind, Levels: slices.Clone(s.Levels),
			Min: clonePtr(s.Min), Max: clonePtr(s.Max), HasTime: s.HasTime, Missing: s.missing()}
	}
	return out
}

// PredictColumns is Predict for typed rows: cols holds one column per
// input, in the order of Inputs() and of its kind, all of one length
// (the rows), each with request-local Codes and Levels for a category;
// NaN or table.Missing marks a missing cell. dst must hold at least
// rows × Outputs() values. A category level the model did not keep is
// encoded as "other"; unseen[j] counts such cells of column j.
//
// It checks every column (names, when given, kinds, lengths, codes and
// finite values) before it allocates anything proportional to the rows,
// and returns an error naming the column and row, never panics. Its
// memory is that of Predict (PredictMemory) plus one slot per request
// level of each category column.
func (m *Model) PredictColumns(dst []float64, cols []table.Column) (unseen []int, err error) {
	if len(cols) != m.features {
		return nil, fmt.Errorf("predict: %d columns; the model takes %d", len(cols), m.features)
	}
	rows := cols[0].Len()
	specs := m.inputs
	if specs == nil {
		specs = make([]inputSpec, m.features)
		for j := range specs {
			specs[j] = inputSpec{Name: m.featureNames[j], Kind: table.Number}
		}
	}
	for j := range cols {
		if err := checkRequestColumn(&cols[j], &specs[j], rows); err != nil {
			return nil, err
		}
	}
	if len(dst) < rows*m.outputs {
		return nil, fmt.Errorf("predict: dst holds %d values; want at least rows × outputs = %d × %d", len(dst), rows, m.outputs)
	}
	enc := newEncoder(specs, m.index, cols)
	unseen = make([]int, len(cols))
	for j := range cols {
		if u := enc.unseen[j]; u != nil {
			for _, k := range cols[j].Codes {
				if k != table.Missing && u[k] {
					unseen[j]++
				}
			}
		}
	}
	pool := &m.large
	if rows <= min(smallRows, m.chunk) {
		pool = &m.small
	}
	if m.n32 != nil {
		predictColumnsIn(m, m.n32, pool, enc, dst, cols, rows)
	} else {
		predictColumnsIn(m, m.n64, pool, enc, dst, cols, rows)
	}
	return unseen, nil
}

// predictColumnsIn is PredictColumns in net's precision, as predictRows is
// Predict's.
func predictColumnsIn[T float](m *Model, net *network[T], pool *sync.Pool, enc *encoder, dst []float64, cols []table.Column, rows int) {
	ws := pool.Get().(*inferWorkspace[T])
	defer pool.Put(ws)
	pack := getPack[T](min(rows, ws.rows))
	defer putPack(pack)
	w, k := enc.width, m.outputs
	for s := 0; s < rows; s += ws.rows {
		n := min(ws.rows, rows-s)
		for r := range n {
			row := ws.encodeRow(r, w)
			enc.row(row, cols, s+r)
			scaleRow(m.scaler, ws.a[r*w:(r+1)*w], row)
		}
		widen(dst[s*k:(s+n)*k], net.inferPass(ws, n, pack))
	}
}

// checkRequestColumn checks a request column c against the model input s.
func checkRequestColumn(c *table.Column, s *inputSpec, rows int) error {
	where := fmt.Sprintf("predict: column %s", QuoteName(s.Name))
	switch {
	case c.Name != "" && c.Name != s.Name:
		return fmt.Errorf("predict: column %s is in the place of input %s", QuoteName(c.Name), QuoteName(s.Name))
	case c.Kind != s.Kind:
		return fmt.Errorf("%s is %q; the model takes %s", where, c.Kind, s.Kind)
	case c.Len() != rows:
		return fmt.Errorf("%s has %d cells; the first column has %d", where, c.Len(), rows)
	}
	if c.Kind == table.Category {
		for i, k := range c.Codes {
			if k != table.Missing && (k < 0 || int(k) >= len(c.Levels)) {
				return fmt.Errorf("%s, row %d has code %d; the column has %d levels", where, i+1, k, len(c.Levels))
			}
		}
		return nil
	}
	for i, v := range c.Values {
		if math.IsInf(v, 0) {
			return fmt.Errorf("%s, row %d is %v; a cell is a finite number or missing", where, i+1, v)
		}
	}
	return nil
}
