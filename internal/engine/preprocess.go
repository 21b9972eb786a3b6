package engine

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/backpropd/backpropd/internal/table"
)

// inputSpec is how one typed input column becomes network inputs, learned
// on the training rows and stored in the model header. The encoded
// columns of an input, in order:
//
//   - number: the value (a missing cell takes Impute), then a 0/1
//     missing indicator when Indicator is set;
//   - category: one 0/1 column per kept level in Levels, then one for a
//     missing cell when MissingLevel is set, then one for "other" when
//     Other is set (training levels folded by the level rules). A level
//     not in Levels is "other", or all zeros without an other column; a
//     missing cell without a missing column is all zeros;
//   - datetime (a missing cell takes Impute, in Unix seconds): year,
//     month (1-12), day of month, day of week (0 is Sunday), the hour when
//     HasTime, then the sine and cosine of the month and of the weekday on
//     their circles, then the missing indicator when Indicator is set.
//
// Scaling applies to number values and to the date parts other than the
// sines and cosines; indicators and one-hot columns stay 0/1.
type inputSpec struct {
	Name      string     `json:"name"`
	Kind      table.Kind `json:"type"`
	Impute    float64    `json:"impute,omitempty"`
	Indicator bool       `json:"indicator,omitempty"`
	// Min and Max are the range of the present training cells (numbers,
	// or Unix seconds), nil when the training split had none.
	Min          *float64 `json:"min,omitempty"`
	Max          *float64 `json:"max,omitempty"`
	HasTime      bool     `json:"has_time,omitempty"`
	Levels       []string `json:"levels,omitempty"`
	MissingLevel bool     `json:"missing_level,omitempty"`
	Other        bool     `json:"other,omitempty"`
}

// datetimeParts is the width of a datetime input without the hour and
// the indicator: year, month, day, weekday and two sine-cosine pairs.
const datetimeParts = 8

// Datetime cells are clamped to years 1 to 9999 before their parts are
// taken, so a far-out value gives bounded parts instead of overflowing
// the conversion to an integer.
const (
	minDatetimeSeconds = -62135596800 // 0001-01-01T00:00:00Z
	maxDatetimeSeconds = 253402300799 // 9999-12-31T23:59:59Z
)

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// width is the number of network inputs s encodes to.
func (s *inputSpec) width() int {
	switch s.Kind {
	case table.Number:
		return 1 + b2i(s.Indicator)
	case table.Category:
		return len(s.Levels) + b2i(s.MissingLevel) + b2i(s.Other)
	}
	return datetimeParts + b2i(s.HasTime) + b2i(s.Indicator)
}

// missing reports whether the training split had missing cells in s.
func (s *inputSpec) missing() bool {
	if s.Kind == table.Category {
		return s.MissingLevel
	}
	return s.Indicator
}

// scaled appends, per encoded column of s, whether scaling applies to it.
func (s *inputSpec) scaled(mask []bool) []bool {
	switch s.Kind {
	case table.Number:
		mask = append(mask, true)
		if s.Indicator {
			mask = append(mask, false)
		}
	case table.Category:
		for range s.width() {
			mask = append(mask, false)
		}
	default:
		mask = append(mask, true, true, true, true)
		if s.HasTime {
			mask = append(mask, true)
		}
		mask = append(mask, false, false, false, false)
		if s.Indicator {
			mask = append(mask, false)
		}
	}
	return mask
}

// encodeValue writes the encoded columns of a number or datetime cell v
// (NaN when missing) into dst.
func (s *inputSpec) encodeValue(dst []float64, v float64) {
	miss := math.IsNaN(v)
	if miss {
		v = s.Impute
	}
	if s.Kind == table.Number {
		dst[0] = v
		if s.Indicator {
			dst[1] = float64(b2i(miss))
		}
		return
	}
	t := time.Unix(int64(math.Floor(min(max(v, minDatetimeSeconds), maxDatetimeSeconds))), 0).UTC()
	month, wd := float64(t.Month()), float64(t.Weekday())
	dst[0], dst[1], dst[2], dst[3] = float64(t.Year()), month, float64(t.Day()), wd
	i := 4
	if s.HasTime {
		dst[i] = float64(t.Hour())
		i++
	}
	am, aw := 2*math.Pi*(month-1)/12, 2*math.Pi*wd/7
	dst[i], dst[i+1], dst[i+2], dst[i+3] = math.Sin(am), math.Cos(am), math.Sin(aw), math.Cos(aw)
	if s.Indicator {
		dst[i+4] = float64(b2i(miss))
	}
}

// Slots of category cells that have no one-hot column.
const noSlot = -1

// missingSlot is the one-hot column of a missing cell, or noSlot.
func (s *inputSpec) missingSlot() int32 {
	if s.MissingLevel {
		return int32(len(s.Levels))
	}
	return noSlot
}

// otherSlot is the one-hot column of a level not kept, or noSlot.
func (s *inputSpec) otherSlot() int32 {
	if s.Other {
		return int32(len(s.Levels) + b2i(s.MissingLevel))
	}
	return noSlot
}

// levelSlots maps the levels of a column (a training column or a
// request's) to s's one-hot columns through index, the position of each
// kept level; unseen marks the levels that are not kept.
func (s *inputSpec) levelSlots(levels []string, index map[string]int32) (slots []int32, unseen []bool) {
	slots = make([]int32, len(levels))
	unseen = make([]bool, len(levels))
	other := s.otherSlot()
	for i, l := range levels {
		if k, ok := index[l]; ok {
			slots[i] = k
		} else {
			slots[i], unseen[i] = other, true
		}
	}
	return slots, unseen
}

// levelIndex is the position of each kept level of s.
func (s *inputSpec) levelIndex() map[string]int32 {
	m := make(map[string]int32, len(s.Levels))
	for i, l := range s.Levels {
		m[l] = int32(i)
	}
	return m
}

// fitInputs learns the encoding of every column of cols from the rows idx
// (the training split, never the validation rows): per number or
// datetime column the imputed value (the median or mean of the present
// cells, 0 when none is present), a missing indicator when some cell is
// missing, and the range; per category column the kept levels (at least
// pre.MinLevelRows rows, the pre.MaxLevels most frequent, ties in the
// order of the column's level table, which is the order of first
// appearance), a missing level when some cell is missing and an other
// level when a present level was not kept.
func fitInputs(cols []table.Column, idx []int, pre PreprocessingConfig) []inputSpec {
	specs := make([]inputSpec, len(cols))
	var buf []float64
	for j := range cols {
		c := &cols[j]
		s := inputSpec{Name: c.Name, Kind: c.Kind}
		if c.Kind == table.Category {
			fitCategory(&s, c, idx, pre)
			specs[j] = s
			continue
		}
		if buf == nil {
			buf = make([]float64, 0, len(idx))
		}
		buf = buf[:0]
		for _, r := range idx {
			v := c.Values[r]
			if math.IsNaN(v) {
				s.Indicator = true
				continue
			}
			if c.Kind == table.Datetime {
				v = min(max(v, minDatetimeSeconds), maxDatetimeSeconds)
			}
			buf = append(buf, v)
		}
		s.HasTime = c.Kind == table.Datetime && c.HasTime
		if n := len(buf); n > 0 {
			slices.Sort(buf)
			s.Min, s.Max = ptr(buf[0]), ptr(buf[n-1])
			if pre.Impute == ImputeMean {
				var sum float64
				for _, v := range buf {
					sum += v
				}
				s.Impute = sum / float64(n)
			} else if n%2 == 1 {
				s.Impute = buf[n/2]
			} else {
				s.Impute = buf[n/2-1] + (buf[n/2]-buf[n/2-1])/2
			}
		}
		specs[j] = s
	}
	return specs
}

func fitCategory(s *inputSpec, c *table.Column, idx []int, pre PreprocessingConfig) {
	counts := make([]int, len(c.Levels))
	for _, r := range idx {
		if k := c.Codes[r]; k == table.Missing {
			s.MissingLevel = true
		} else {
			counts[k]++
		}
	}
	var order []int
	for k, n := range counts {
		if n >= pre.MinLevelRows {
			order = append(order, k)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return counts[b] - counts[a] })
	order = order[:min(len(order), pre.MaxLevels)]
	kept := 0
	for _, k := range order {
		kept += counts[k]
	}
	present := 0
	for _, n := range counts {
		present += n
	}
	s.Other = present > kept
	s.Levels = make([]string, len(order))
	for i, k := range order {
		s.Levels[i] = c.Levels[k]
	}
}

// encoder writes typed rows as network inputs: the specs, their offsets
// in an encoded row, and per category column the slot of each of the
// column's levels.
type encoder struct {
	specs  []inputSpec
	off    []int
	width  int
	slots  [][]int32
	unseen [][]bool
}

// newEncoder prepares encoding cols, which have the kinds of specs, with
// index holding the kept-level positions of each category spec.
func newEncoder(specs []inputSpec, index []map[string]int32, cols []table.Column) *encoder {
	e := &encoder{specs: specs, off: make([]int, len(specs)), slots: make([][]int32, len(specs)), unseen: make([][]bool, len(specs))}
	for j := range specs {
		e.off[j] = e.width
		e.width += specs[j].width()
		if specs[j].Kind == table.Category {
			e.slots[j], e.unseen[j] = specs[j].levelSlots(cols[j].Levels, index[j])
		}
	}
	return e
}

// row writes row r of cols, encoded, into dst (width values).
func (e *encoder) row(dst []float64, cols []table.Column, r int) {
	for j := range e.specs {
		s := &e.specs[j]
		d := dst[e.off[j] : e.off[j]+s.width()]
		c := &cols[j]
		if s.Kind != table.Category {
			s.encodeValue(d, c.Values[r])
			continue
		}
		clear(d)
		slot := s.missingSlot()
		if k := c.Codes[r]; k != table.Missing {
			slot = e.slots[j][k]
		}
		if slot != noSlot {
			d[slot] = 1
		}
	}
}

// all encodes every row of cols into a new rows × width matrix.
func (e *encoder) all(cols []table.Column, rows int) []float64 {
	x := make([]float64, rows*e.width)
	for r := range rows {
		e.row(x[r*e.width:(r+1)*e.width], cols, r)
	}
	return x
}

func indexes(specs []inputSpec) []map[string]int32 {
	idx := make([]map[string]int32, len(specs))
	for j := range specs {
		if specs[j].Kind == table.Category {
			idx[j] = specs[j].levelIndex()
		}
	}
	return idx
}

func specsWidth(specs []inputSpec) int {
	w := 0
	for j := range specs {
		w += specs[j].width()
	}
	return w
}

func scaledMask(specs []inputSpec) []bool {
	var mask []bool
	for j := range specs {
		mask = specs[j].scaled(mask)
	}
	return mask
}

// fitScaling returns the shift and scale of every column of the rows idx
// of the rows × f matrix x for scaling (x' = (x - shift) / scale): the
// mean and population standard deviation for standard, the minimum and
// the range for minmax, nil for none. A constant column gets a scale of
// 1, so it maps to 0. Columns where mask is false (mask nil: none) get a
// shift of 0 and a scale of 1.
func fitScaling(scaling string, x []float64, f int, idx []int, mask []bool) (shift, scale []float64) {
	src := &source{x: x, features: f}
	switch scaling {
	case ScalingStandard:
		shift, scale = fitStandardization(src, idx)
	case ScalingMinMax:
		shift, scale = fitMinMax(src, idx)
	default:
		return nil, nil
	}
	for j, s := range mask {
		if !s {
			shift[j], scale[j] = 0, 1
		}
	}
	return shift, scale
}

// fitMinMax returns the minimum and the range of every feature over the
// rows idx of src; a constant feature gets a range of 1.
func fitMinMax(src *source, idx []int) (lo, span []float64) {
	f := src.features
	lo = make([]float64, f)
	span = make([]float64, f)
	for j := range lo {
		lo[j], span[j] = math.Inf(1), math.Inf(-1)
	}
	for _, r := range idx {
		for j, v := range src.x[r*f : r*f+f] {
			lo[j] = min(lo[j], v)
			span[j] = max(span[j], v)
		}
	}
	for j := range span {
		s := span[j] - lo[j]
		if !(s > 1e-12) || !finite(s) {
			s = 1
		}
		if !finite(lo[j]) {
			lo[j] = 0
		}
		span[j] = s
	}
	return lo, span
}

// EncodedWidthBound is an upper bound on the network inputs the feature
// columns among summaries encode to with pre, before any data is read,
// so that a job that would exceed the parameter cap is refused at
// submit. perColumn gives each summary's share (0 for a target or
// ignored column): a number 1, plus 1 for a missing indicator when it
// has missing cells; a category min(distinct, max_levels), plus 1 for
// other when it has more than max_levels distinct levels, plus 1 for
// missing; a datetime 9 (the date parts and the hour), plus 1 for
// missing. pre's unset fields take their defaults.
func EncodedWidthBound(summaries []table.Summary, pre PreprocessingConfig) (total int, perColumn []int) {
	maxLevels := pre.MaxLevels
	if maxLevels <= 0 {
		maxLevels = DefaultMaxLevels
	}
	perColumn = make([]int, len(summaries))
	for i, s := range summaries {
		if s.Role != table.Feature {
			continue
		}
		miss := b2i(s.Missing > 0)
		switch s.Type {
		case table.Number:
			perColumn[i] = 1 + miss
		case table.Category:
			perColumn[i] = min(max(s.Distinct, 0), maxLevels) + b2i(s.Distinct > maxLevels) + miss
		default:
			perColumn[i] = datetimeParts + 1 + miss
		}
		total += perColumn[i]
	}
	return total, perColumn
}

// CheckEncodedWidth refuses, with a *ValidationError, a network of cfg
// whose inputs, bounded by EncodedWidthBound over summaries, give more
// weights and biases than lim.MaxParams. The message names the column
// that contributes most inputs; the field is preprocessing.max_levels
// when that is a category column, network.hidden otherwise.
func CheckEncodedWidth(cfg Config, task Task, summaries []table.Summary, outputs int, lim Limits) error {
	if lim.MaxParams <= 0 {
		return nil
	}
	cfg = cfg.Resolve(task, false)
	width, per := EncodedWidthBound(summaries, cfg.Prep())
	params, ok := cfg.Network.numParams(max(width, 1), max(outputs, 1))
	if !ok || params <= int64(lim.MaxParams) {
		return nil
	}
	var p problems
	widthProblem(&p, params, lim.MaxParams, width, summaryWidths(summaries, per))
	return p.err()
}

type columnWidth struct {
	name  string
	kind  table.Kind
	width int
}

func summaryWidths(s []table.Summary, per []int) []columnWidth {
	out := make([]columnWidth, len(s))
	for i := range s {
		out[i] = columnWidth{s[i].Name, s[i].Type, per[i]}
	}
	return out
}

func specWidths(specs []inputSpec) []columnWidth {
	out := make([]columnWidth, len(specs))
	for i := range specs {
		out[i] = columnWidth{specs[i].Name, specs[i].Kind, specs[i].width()}
	}
	return out
}

// widthProblem reports a network over the parameter cap because of its
// encoded inputs, naming the widest column.
func widthProblem(p *problems, params int64, limit, width int, cols []columnWidth) {
	w := -1
	for i, c := range cols {
		if w < 0 || c.width > cols[w].width {
			w = i
		}
	}
	if w < 0 {
		return
	}
	c := cols[w]
	field, fix := "network.hidden", "narrow the first hidden layer or ignore the column"
	if c.kind == table.Category {
		field, fix = "preprocessing.max_levels", "lower preprocessing.max_levels, narrow the first hidden layer or ignore the column"
	}
	p.add(field, "the inputs encode to %d network inputs, %d of them from column %s; the network then has %d weights and biases, over the limit of %d; %s",
		width, c.width, QuoteName(c.name), params, limit, fix)
}

// checkColumns checks the typed columns of d; field is where errors go.
func checkColumns(p *problems, field string, d *Data, lim Limits) bool {
	switch {
	case d.Rows < 1:
		p.add(field, "the data has no rows")
		return false
	case len(d.Columns) < 1 || len(d.Columns) > hardMaxFeatures || d.Features != len(d.Columns):
		p.add(field, "the data has %d typed columns and %d features; want 1 to %d, equal", len(d.Columns), d.Features, hardMaxFeatures)
		return false
	case d.X != nil || d.FeatureNames != nil:
		p.add(field, "typed data has Columns; X and FeatureNames must be nil")
		return false
	}
	if cells := int64(d.Rows) * int64(d.Features); lim.MaxCells > 0 && cells > lim.MaxCells {
		p.add(field, "the data has %d cells (rows × features); the limit is %d", cells, lim.MaxCells)
		return false
	}
	names := make([]string, len(d.Columns))
	for j := range d.Columns {
		names[j] = d.Columns[j].Name
	}
	if err := CheckNames(names); err != nil {
		p.add(field, "column names: %v", err)
		return false
	}
	for j := range d.Columns {
		c := &d.Columns[j]
		where := fmt.Sprintf("column %s", QuoteName(c.Name))
		switch c.Kind {
		case table.Number, table.Datetime:
			if len(c.Values) != d.Rows || c.Codes != nil {
				p.add(field, "%s: %d values for %d rows", where, len(c.Values), d.Rows)
				return false
			}
			for i, v := range c.Values {
				if math.IsInf(v, 0) {
					p.add(field, "%s, row %d is %v; a cell is a finite number or missing", where, i+1, v)
					return false
				}
			}
		case table.Category:
			if len(c.Codes) != d.Rows || c.Values != nil {
				p.add(field, "%s: %d codes for %d rows", where, len(c.Codes), d.Rows)
				return false
			}
			for i, k := range c.Codes {
				if k != table.Missing && (k < 0 || int(k) >= len(c.Levels)) {
					p.add(field, "%s, row %d has code %d; the column has %d levels", where, i+1, k, len(c.Levels))
					return false
				}
			}
		default:
			p.add(field, "%s has unknown type %q (want number, category or datetime)", where, c.Kind)
			return false
		}
	}
	return true
}

// sameColumns checks that the validation columns have the training
// columns' names and kinds, in order.
func sameColumns(p *problems, field string, train, val []table.Column) bool {
	if len(train) != len(val) {
		p.add(field, "the validation data has %d columns; the training data has %d", len(val), len(train))
		return false
	}
	for j := range train {
		if train[j].Name != val[j].Name || train[j].Kind != val[j].Kind {
			p.add(field, "validation column %d is %s (%s); the training data has %s (%s)", j+1,
				QuoteName(val[j].Name), val[j].Kind, QuoteName(train[j].Name), train[j].Kind)
			return false
		}
	}
	return true
}
