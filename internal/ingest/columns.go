package ingest

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/backpropd/backpropd/internal/store"
	"github.com/backpropd/backpropd/internal/table"
)

// The thresholds of type inference.
const (
	// StrayTextShare is the largest share of a column's present cells that
	// may be text in a column of numbers before the column counts as text:
	// a column with at most this share of text cells (and at least one
	// number) is refused, naming the cells, because those cells are far
	// more often unlisted missing-value markers ("unknown", "n.a.") than
	// categories. 1 text cell in 20 (5%) is refused; 1 in 19 (5.3%) makes
	// the column categorical.
	StrayTextShare = 0.05
	// IdentifierShare is the share of distinct values among the present
	// cells of a text column from which it is identifier-like (names,
	// ids): such a column is ignored unless declared. 19 distinct values
	// in 20 cells (95%) is identifier-like; 18 in 20 (90%) is a category.
	IdentifierShare = 0.95
	// IdentifierMinCells is the fewest present cells for the identifier
	// rule: in a handful of rows every value of a real category may be
	// distinct.
	IdentifierMinCells = 20
	// MaxIntegerClasses is the most distinct values an all-integer target
	// may have to be read as classes (0/1, digit labels) when no task is
	// given.
	MaxIntegerClasses = 10
	// MaxErrors is the most problems one upload reports.
	MaxErrors = 20
	// maxTopLevels is the most levels a category's summary lists.
	maxTopLevels = 10
)

// DefaultNAValues are the cell texts read as missing when an upload gives
// no na_values: pandas' default list, plus "?" and "-". An empty cell is
// always missing.
var DefaultNAValues = []string{"NA", "N/A", "NaN", "nan", "null", "NULL", "None", "?", "-",
	"n/a", "<NA>", "#N/A", "#N/A N/A", "#NA", "-NaN", "-nan", "1.#IND", "1.#QNAN", "-1.#IND", "-1.#QNAN"}

// Overrides declare the types of columns by name, instead of inferring
// them.
type Overrides struct {
	Categorical []string
	Numeric     []string
	Datetime    []string
	Ignore      []string
}

// declared kinds of a column; "" is inferred.
const (
	declNone     = ""
	declNumber   = "numeric"
	declCategory = "categorical"
	declDatetime = "datetime"
	declIgnore   = "ignore"
)

// any reports whether o declares anything.
func (o Overrides) any() bool {
	return len(o.Categorical)+len(o.Numeric)+len(o.Datetime)+len(o.Ignore) > 0
}

// resolve maps each declared column to its declared kind. field names the
// parameter an unknown column came from; in reports whether a name is a
// column of the table, and columns lists them for the message.
func (o Overrides) resolve(in func(string) bool, columns []string) (map[string]string, error) {
	out := map[string]string{}
	for _, l := range []struct {
		kind  string
		names []string
	}{{declCategory, o.Categorical}, {declNumber, o.Numeric}, {declDatetime, o.Datetime}, {declIgnore, o.Ignore}} {
		for _, n := range l.names {
			if !in(n) {
				return nil, &Error{Field: l.kind, Message: fmt.Sprintf("column %q is not in the table (columns: %s)", truncate(n), columnList(columns))}
			}
			if k, dup := out[n]; dup && k != l.kind {
				return nil, &Error{Field: l.kind, Message: fmt.Sprintf("column %q is declared both %s and %s", truncate(n), k, l.kind)}
			}
			out[n] = l.kind
		}
	}
	return out, nil
}

// colBuilder collects one feature column's cells as they arrive, before
// its type is known. It keeps every cell as a number (NaN when missing or
// text) and, once the column has shown text or was declared categorical,
// as a code into a level table too; finish decides which the column is.
type colBuilder struct {
	name string
	pos  int // 1-based field position in a CSV row, 0 for JSON
	decl string

	vals   []float64
	codes  []int32 // nil until the first text cell
	levels []string
	index  map[string]int32

	rows, missing, text int
	hasTime             bool
	// examples are the first distinct text cells, for the stray-text
	// message, and firstLine where the first one is (its line in a CSV
	// file, or 0), firstRow its data row.
	examples  []string
	firstLine int
	firstRow  int
	// notDate is set once a text cell of a column declared ignored does
	// not read as a date, so that its summary still names its type.
	notDate bool
}

// tableBuilder collects the typed features of an upload.
type tableBuilder struct {
	m       *meter
	na      map[string]bool
	decimal bool // cells use a decimal comma
	cols    []*colBuilder
	rows    int
	errs    *Errors
	// path, when set, names a cell by its JSON path ("[3].price",
	// "features[3][1]") instead of its line and column.
	path func(row int, b *colBuilder) string
}

// cellErr records a problem with column b's cell at data row row on line
// line.
func (t *tableBuilder) cellErr(b *colBuilder, row, line int, msg string) {
	e := &Error{Line: line, Column: b.pos, Field: b.name, Message: msg}
	if t.path != nil {
		e = &Error{Field: t.path(row, b), Message: msg}
	}
	t.errs.add(e, row)
}

func newTableBuilder(m *meter, na map[string]bool, decimal bool, names []string, pos []int, decl map[string]string) *tableBuilder {
	t := &tableBuilder{m: m, na: na, decimal: decimal, errs: &Errors{}}
	t.cols = make([]*colBuilder, len(names))
	for i, n := range names {
		b := &colBuilder{name: n, decl: decl[n]}
		if pos != nil {
			b.pos = pos[i]
		}
		if b.decl == declCategory {
			b.codes = []int32{}
		}
		t.cols[i] = b
	}
	return t
}

// naSet is the set of missing tokens: DefaultNAValues, or values when
// given.
func naSet(values []string) map[string]bool {
	if values == nil {
		values = DefaultNAValues
	}
	s := make(map[string]bool, len(values))
	for _, v := range values {
		s[strings.TrimSpace(v)] = true
	}
	return s
}

// numericNA reports whether a missing token reads as a number (such as
// -999): then no cell may be taken as a number without looking it up.
func numericNA(na map[string]bool) bool {
	for v := range na {
		if _, err := parseNumber(v); err == nil {
			return true
		}
	}
	return false
}

// fromX starts the typed columns from the rows of numbers read so far,
// x row-major with len(t.cols) values a row, NaN where a cell is missing.
func (t *tableBuilder) fromX(x []float64, rows int) error {
	k := len(t.cols)
	for j, b := range t.cols {
		if err := b.grow(t.m, rows); err != nil {
			return err
		}
		for r := 0; r < rows; r++ {
			v := x[r*k+j]
			var err error
			if math.IsNaN(v) {
				err = b.miss(t) // a missing cell of CSV's parallel path
			} else {
				err = b.number(t, v, "", r, 0)
			}
			if err != nil {
				return err
			}
		}
	}
	t.rows = rows
	return nil
}

// cell adds a CSV cell (s, as it is in the file) to column b at data row
// row on line line.
func (t *tableBuilder) cell(b *colBuilder, s string, row, line int) error {
	if len(s) > 0 && (s[0] <= ' ' || s[len(s)-1] <= ' ') {
		s = strings.TrimSpace(s)
	}
	if s == "" || t.na[s] {
		return b.miss(t)
	}
	if b.decl == declCategory {
		b.rows++
		return b.code(t, s)
	}
	num := s
	if t.decimal && strings.IndexByte(s, ',') >= 0 {
		num = strings.Replace(s, ",", ".", 1)
	}
	if v, err := parseNumber(num); err == nil {
		return b.number(t, v, s, row, line)
	}
	return b.str(t, s, row, line)
}

// grow makes room for n more cells, accounted to m.
func (b *colBuilder) grow(m *meter, n int) error {
	if b.decl == declIgnore {
		return nil
	}
	if b.decl != declCategory && cap(b.vals)-len(b.vals) < n {
		if err := m.take(8 * int64(n)); err != nil {
			return err
		}
		b.vals = slices.Grow(b.vals, n)
	}
	if b.codes != nil && cap(b.codes)-len(b.codes) < n {
		if err := m.take(4 * int64(n)); err != nil {
			return err
		}
		b.codes = slices.Grow(b.codes, n)
	}
	return nil
}

// room grows b's buffers by half again when they are full.
func (b *colBuilder) room(m *meter) error {
	if (b.decl != declCategory && b.decl != declIgnore && len(b.vals) == cap(b.vals)) ||
		(b.codes != nil && len(b.codes) == cap(b.codes)) {
		return b.grow(m, max(64, b.rows/2))
	}
	return nil
}

func (b *colBuilder) miss(t *tableBuilder) error {
	if err := b.room(t.m); err != nil {
		return err
	}
	b.rows++
	b.missing++
	if b.decl == declIgnore {
		return nil
	}
	if b.decl != declCategory {
		b.vals = append(b.vals, math.NaN())
	}
	if b.codes != nil {
		b.codes = append(b.codes, table.Missing)
	}
	return nil
}

// number adds a cell that reads as v; raw is its text ("" when it came as
// a number), which a declared category keeps as its level.
func (b *colBuilder) number(t *tableBuilder, v float64, raw string, row, line int) error {
	if err := b.room(t.m); err != nil {
		return err
	}
	b.rows++
	switch b.decl {
	case declIgnore:
		return nil
	case declCategory:
		if raw == "" {
			raw = canonical(v)
		}
		return b.code(t, raw)
	case declDatetime:
		b.vals = append(b.vals, math.NaN())
		t.cellErr(b, row, line, fmt.Sprintf(
			"column %s is declared datetime but %s is a number, not a date; declare the column numeric or add it to na_values", truncate(b.name), canonical(v)))
		return nil
	}
	b.vals = append(b.vals, v)
	if b.codes != nil {
		return b.code(t, canonical(v))
	}
	return nil
}

// str adds a cell of text s at data row row on line line.
func (b *colBuilder) str(t *tableBuilder, s string, row, line int) error {
	if err := b.room(t.m); err != nil {
		return err
	}
	b.rows++
	switch b.decl {
	case declIgnore:
		b.text++
		if !b.notDate {
			_, _, ok := table.ParseDatetime(s)
			b.notDate = !ok
		}
		return nil
	case declCategory:
		return b.code(t, s)
	case declNumber:
		b.vals = append(b.vals, math.NaN())
		t.cellErr(b, row, line, fmt.Sprintf(
			"column %s is declared numeric but holds %q; add it to na_values or declare the column categorical", truncate(b.name), truncate(s)))
		return nil
	case declDatetime:
		v, hasTime, ok := table.ParseDatetime(s)
		if !ok {
			v = math.NaN()
			t.cellErr(b, row, line, fmt.Sprintf(
				"column %s is declared datetime but %q is not a date (use ISO 8601, such as 2024-03-01 or 2024-03-01T12:30:00Z); add it to na_values or declare the column categorical",
				truncate(b.name), truncate(s)))
		}
		b.hasTime = b.hasTime || hasTime
		b.vals = append(b.vals, v)
		return nil
	}
	if b.text == 0 {
		b.firstLine, b.firstRow = line, row
	}
	b.text++
	if len(b.examples) < 2 && (len(b.examples) == 0 || b.examples[0] != s) {
		b.examples = append(b.examples, strings.Clone(s))
	}
	if b.codes == nil {
		// The first text cell: the numbers before it become levels too,
		// in the order they came.
		if err := t.m.take(4 * int64(cap(b.vals))); err != nil {
			return err
		}
		b.codes = make([]int32, 0, cap(b.vals))
		for _, v := range b.vals {
			if math.IsNaN(v) {
				b.codes = append(b.codes, table.Missing)
			} else if err := b.code(t, canonical(v)); err != nil {
				return err
			}
		}
	}
	b.vals = append(b.vals, math.NaN())
	return b.code(t, s)
}

// levelBytes is what a level costs besides its text: the string in the
// level table and its map entry.
const levelBytes = 64

// code appends the code of level s, adding it to the level table (copied)
// when it is new.
func (b *colBuilder) code(t *tableBuilder, s string) error {
	if b.index == nil {
		b.index = map[string]int32{}
	}
	c, ok := b.index[s]
	if !ok {
		if len(b.levels) >= math.MaxInt32 {
			return &Error{Column: b.pos, Field: b.name, Message: "too many distinct values"}
		}
		if err := t.m.take(levelBytes + int64(len(s))); err != nil {
			return err
		}
		s = strings.Clone(s)
		c = int32(len(b.levels))
		b.levels = append(b.levels, s)
		b.index[s] = c
	}
	if b.codes != nil && len(b.codes) == cap(b.codes) {
		if err := b.grow(t.m, max(64, len(b.codes)/2)); err != nil {
			return err
		}
	}
	b.codes = append(b.codes, c)
	return nil
}

// canonical is the text of a number read as a category level, the same
// for "1", "1.0" and "1e0".
func canonical(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// colResult is what finish makes of a column.
type colResult struct {
	col     *table.Column // nil when ignored
	summary table.Summary
	warning string
}

// finish decides the column's type and role, and summarizes it. A number
// column with a few stray text cells is an error added to t.errs.
func (b *colBuilder) finish(t *tableBuilder) colResult {
	s := table.Summary{Name: b.name, Role: table.Feature, Missing: b.missing}
	present := b.rows - b.missing
	ignore := func(kind table.Kind, reason string) colResult {
		s.Type, s.Role, s.Reason = kind, table.Ignored, reason
		return colResult{summary: s}
	}
	switch b.decl {
	case declIgnore:
		kind := table.Number
		switch {
		case b.text == present && present > 0 && !b.notDate:
			kind = table.Datetime
		case b.text > 0:
			kind = table.Category
		}
		return ignore(kind, "declared in ignore")
	case declCategory:
		return b.category(s, "declared categorical")
	case declNumber:
		return b.numbers(s, "declared numeric")
	case declDatetime:
		return b.datetimes(s, "declared datetime")
	}
	switch {
	case present == 0:
		r := ignore(table.Number, "every cell is missing")
		r.warning = fmt.Sprintf("column %s is ignored: every cell is missing", b.name)
		return r
	case b.text == 0:
		return b.numbers(s, "every present cell is a number")
	case b.text < present && float64(b.text) <= StrayTextShare*float64(present):
		quoted := make([]string, len(b.examples))
		for i, e := range b.examples {
			quoted[i] = strconv.Quote(truncate(e))
		}
		t.cellErr(b, b.firstRow, b.firstLine, fmt.Sprintf(
			"column %s: %d of %d cells are text (%s); add them to na_values or declare the column categorical",
			truncate(b.name), b.text, present, strings.Join(quoted, ", ")))
		s.Type = table.Number
		return colResult{summary: s}
	case b.text == present && b.allDates():
		return b.datetimesFromLevels(s)
	}
	r := b.category(s, "text cells")
	if present >= IdentifierMinCells && float64(len(b.levels)) >= IdentifierShare*float64(present) {
		s := r.summary
		s.Role = table.Ignored
		s.Reason = fmt.Sprintf("identifier-like: %d distinct values in %d cells; declare it categorical to use it", len(b.levels), present)
		return colResult{summary: s, warning: fmt.Sprintf("column %s is ignored: it looks like an identifier (%d distinct values in %d cells)", b.name, len(b.levels), present)}
	}
	if len(b.levels) == 1 {
		r.warning = fmt.Sprintf("column %s is constant: every present cell is %q", b.name, truncate(b.levels[0]))
	}
	return r
}

// allDates reports whether every level parses as a date.
func (b *colBuilder) allDates() bool {
	for _, l := range b.levels {
		if _, _, ok := table.ParseDatetime(l); !ok {
			return false
		}
	}
	return len(b.levels) > 0
}

func (b *colBuilder) numbers(s table.Summary, reason string) colResult {
	s.Type, s.Reason = table.Number, reason
	c := &table.Column{Name: b.name, Kind: table.Number, Values: b.vals}
	numberSummary(&s, b.vals)
	r := colResult{col: c, summary: s}
	if s.Distinct == 1 {
		r.warning = fmt.Sprintf("column %s is constant: every present cell is %s", b.name, canonical(*s.Min))
	}
	return r
}

func (b *colBuilder) datetimes(s table.Summary, reason string) colResult {
	s.Type, s.Reason = table.Datetime, reason
	c := &table.Column{Name: b.name, Kind: table.Datetime, Values: b.vals, HasTime: b.hasTime}
	datetimeSummary(&s, b.vals)
	return colResult{col: c, summary: s}
}

// datetimesFromLevels turns a text column whose every level is a date
// into a datetime column, in place of its numbers.
func (b *colBuilder) datetimesFromLevels(s table.Summary) colResult {
	secs := make([]float64, len(b.levels))
	for i, l := range b.levels {
		v, hasTime, _ := table.ParseDatetime(l)
		secs[i] = v
		b.hasTime = b.hasTime || hasTime
	}
	for i, c := range b.codes {
		if c == table.Missing {
			b.vals[i] = math.NaN()
		} else {
			b.vals[i] = secs[c]
		}
	}
	b.codes, b.levels, b.index = nil, nil, nil
	return b.datetimes(s, "every present cell is a date")
}

func (b *colBuilder) category(s table.Summary, reason string) colResult {
	s.Type, s.Reason = table.Category, reason
	codes := b.codes
	if codes == nil {
		codes = []int32{}
	}
	c := &table.Column{Name: b.name, Kind: table.Category, Codes: codes, Levels: b.levels}
	if c.Levels == nil {
		c.Levels = []string{}
	}
	b.vals, b.index = nil, nil
	counts := make([]int, len(c.Levels))
	for _, k := range codes {
		if k != table.Missing {
			counts[k]++
		}
	}
	s.Distinct = len(c.Levels)
	s.TopLevels = topLevels(c.Levels, counts)
	return colResult{col: c, summary: s}
}

// topLevels lists the most frequent levels, most frequent first, ties in
// the order of first appearance.
func topLevels(levels []string, counts []int) []table.LevelCount {
	idx := make([]int, len(levels))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return counts[b] - counts[a] })
	n := min(len(idx), maxTopLevels)
	out := make([]table.LevelCount, n)
	for i, k := range idx[:n] {
		out[i] = table.LevelCount{Level: levels[k], Count: counts[k]}
	}
	return out
}

// numAcc accumulates a number column's summary one value at a time, so
// that the fast path summarizes the numbers as it reads them instead of in
// a second pass over the matrix. The variance is of values shifted by the
// first one (the shifted-data algorithm), which keeps it accurate without
// a division per value.
type numAcc struct {
	n             int
	shift, s1, s2 float64
	lo, hi        float64
	set           distinctSet
}

// add accounts for v, which is not NaN.
func (a *numAcc) add(v float64) {
	if a.n == 0 {
		a.shift, a.lo, a.hi = v, v, v
	}
	a.n++
	d := v - a.shift
	a.s1 += d
	a.s2 += d * d
	if v < a.lo {
		a.lo = v
	}
	if v > a.hi {
		a.hi = v
	}
	a.set.add(v)
}

// addRows adds the rows of x, len(accs) values a row, to accs, each value
// as add would, in the same order, with add's common case (a small
// integer, counted in the set's bitmap) written out here: the summaries
// of an all-numeric upload are a few operations a value.
func addRows(accs []numAcc, x []float64) {
	nf := len(accs)
	for r := 0; r+nf <= len(x); r += nf {
		for k, v := range x[r : r+nf] {
			if math.IsNaN(v) {
				continue // missing: the features will be typed columns
			}
			a := &accs[k]
			if a.n == 0 || a.set.hll != nil || !(v >= 0 && v < 1024) || float64(int(v)) != v {
				a.add(v)
				continue
			}
			a.n++
			d := v - a.shift
			a.s1 += d
			a.s2 += d * d
			if v < a.lo {
				a.lo = v
			}
			if v > a.hi {
				a.hi = v
			}
			i := int(v)
			if bit := uint64(1) << (i & 63); a.set.small[i>>6]&bit == 0 {
				a.set.small[i>>6] |= bit
				a.set.n++
			}
		}
	}
}

// summary fills s's range, moments and distinct count. Std is the sample
// standard deviation (n-1), as pandas' describe gives it; 0 for one value.
func (a *numAcc) summary(s *table.Summary) {
	s.Distinct = a.set.count()
	if a.n == 0 {
		return
	}
	n := float64(a.n)
	lo, hi := a.lo, a.hi
	mean := a.shift + a.s1/n
	std := 0.0
	if a.n > 1 {
		std = math.Sqrt(max(0, (a.s2-a.s1*a.s1/n)/(n-1)))
	}
	s.Min, s.Max = &lo, &hi
	// Values near ±1.8e308 overflow the sums: such a mean or deviation
	// is left out rather than given as an infinity, which JSON cannot
	// hold (the dataset's metadata could not be written).
	if !math.IsInf(mean, 0) && !math.IsNaN(mean) {
		s.Mean = &mean
	}
	if !math.IsInf(std, 0) && !math.IsNaN(std) {
		s.Std = &std
	}
}

// numberSummary fills s from the values x (NaN is missing).
func numberSummary(s *table.Summary, x []float64) {
	var a numAcc
	for _, v := range x {
		if !math.IsNaN(v) {
			a.add(v)
		}
	}
	a.summary(s)
}

func datetimeSummary(s *table.Summary, x []float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	var set distinctSet
	for _, v := range x {
		if math.IsNaN(v) {
			continue
		}
		lo, hi = min(lo, v), max(hi, v)
		set.add(v)
	}
	s.Distinct = set.count()
	if set.count() > 0 {
		f, l := table.FormatDatetime(lo), table.FormatDatetime(hi)
		s.First, s.Last = &f, &l
	}
}

// distinctSet counts the distinct float64 values of a column in bounded
// memory: exactly up to maxExactDistinct values, then as an estimate.
//
// The integers 0 to 1023 (pixels, counts, codes) are counted in a bitmap:
// a bit test per value, with no hashing, keeps the summary of all-numeric
// uploads from slowing their ingest. Other values go to an open-addressed
// hash set of their bits, with the last value remembered since runs of
// one value are common. Past maxExactDistinct values in the set, it turns
// into a HyperLogLog sketch of hllRegisters one-byte registers (standard
// error 1.04/sqrt(1024), about 3%), so that a column of a million
// distinct floats costs a kilobyte, not 16 MB.
type distinctSet struct {
	small   [16]uint64 // bit i: the integer i was seen
	slots   []uint64   // bits+1 of the other values; 0 is empty
	inSlots int        // values in slots
	n       int        // values in all, while exact
	last    uint64
	any     bool
	hll     []uint8 // the sketch, once past maxExactDistinct
}

const (
	maxExactDistinct = 4096
	hllBits          = 10
	hllRegisters     = 1 << hllBits
)

// mix is MurmurHash3's 64-bit finalizer: small integers as float64 differ
// only in their top bits, which a plain product would leave out of the low
// bits that pick a slot.
func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

func (d *distinctSet) add(v float64) {
	if v == 0 {
		v = 0 // -0 and 0 are one value
	}
	if d.hll != nil {
		d.sketch(math.Float64bits(v))
		return
	}
	if v >= 0 && v < 1024 {
		if i := int(v); float64(i) == v {
			if bit := uint64(1) << (i & 63); d.small[i>>6]&bit == 0 {
				d.small[i>>6] |= bit
				d.n++
			}
			return
		}
	}
	k := math.Float64bits(v)
	if d.any && k == d.last {
		return
	}
	d.any, d.last = true, k
	if d.inSlots == maxExactDistinct {
		d.toSketch()
		d.sketch(k)
		return
	}
	if 2*(d.inSlots+1) > len(d.slots) {
		old := d.slots
		d.slots = make([]uint64, max(16, 2*len(old)))
		d.n -= d.inSlots
		d.inSlots = 0
		for _, o := range old {
			if o != 0 {
				d.insert(o - 1)
			}
		}
	}
	d.insert(k)
}

func (d *distinctSet) insert(k uint64) {
	mask := uint64(len(d.slots) - 1)
	for i := mix(k) & mask; ; i = (i + 1) & mask {
		switch d.slots[i] {
		case 0:
			d.slots[i] = k + 1
			d.n++
			d.inSlots++
			return
		case k + 1:
			return
		}
	}
}

// toSketch moves every value counted so far into a new sketch.
func (d *distinctSet) toSketch() {
	d.hll = make([]uint8, hllRegisters)
	for i := range 1024 {
		if d.small[i>>6]&(1<<(i&63)) != 0 {
			d.sketch(math.Float64bits(float64(i)))
		}
	}
	for _, o := range d.slots {
		if o != 0 {
			d.sketch(o - 1)
		}
	}
	d.slots = nil
}

func (d *distinctSet) sketch(k uint64) {
	h := mix(k)
	r := uint8(bits.LeadingZeros64(h<<hllBits|1<<(hllBits-1))) + 1
	if i := h >> (64 - hllBits); r > d.hll[i] {
		d.hll[i] = r
	}
}

// count is the number of distinct values: exact, or the sketch's
// estimate (with the small-range correction of Flajolet et al.).
func (d *distinctSet) count() int {
	if d.hll == nil {
		return d.n
	}
	m := float64(hllRegisters)
	sum, zeros := 0.0, 0
	for _, r := range d.hll {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	e := 0.7213 / (1 + 1.079/m) * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		e = m * math.Log(m/float64(zeros))
	}
	return int(math.Round(e))
}

// Errors is every problem of an upload that does not stop it from being
// read to the end (a column's cells of the wrong type), at most MaxErrors
// of them, in the order of their rows.
type Errors struct {
	List []*Error
	// More is how many further problems there were.
	More int
	rows []int
}

// add records e, found at data row row.
func (es *Errors) add(e *Error, row int) {
	if len(es.List) >= MaxErrors {
		es.More++
		return
	}
	es.List = append(es.List, e)
	es.rows = append(es.rows, row)
}

func (es *Errors) len() int { return len(es.List) }

// Error lists the problems.
func (es *Errors) Error() string {
	parts := make([]string, len(es.List))
	for i, e := range es.List {
		parts[i] = e.Error()
	}
	s := strings.Join(parts, "; ")
	if es.More > 0 {
		s += fmt.Sprintf("; and %d more problems", es.More)
	}
	return s
}

// Unwrap returns the problems, so that errors.As finds an *Error in them.
func (es *Errors) Unwrap() []error {
	out := make([]error, len(es.List))
	for i, e := range es.List {
		out[i] = e
	}
	return out
}

// features finishes the typed columns into d: X when every kept column is
// a number with no missing cell (the form of today's all-numeric
// datasets), else Columns. It returns the summary of every column, kept or
// ignored, in order, and the warnings; the problems found are t.errs.
func (t *tableBuilder) features(d *store.Dataset) ([]table.Summary, []string, error) {
	sums := make([]table.Summary, len(t.cols))
	var warnings []string
	var kept []*table.Column
	allNumbers := true
	for i, b := range t.cols {
		r := b.finish(t)
		sums[i] = r.summary
		if r.warning != "" {
			warnings = append(warnings, r.warning)
		}
		t.cols[i] = nil // let its buffers go once kept or dropped
		if r.col == nil {
			continue
		}
		kept = append(kept, r.col)
		if r.col.Kind != table.Number || r.summary.Missing > 0 {
			allNumbers = false
		}
	}
	if t.errs.len() > 0 {
		return nil, nil, t.errs
	}
	if len(kept) == 0 {
		var ignored []string
		for _, s := range sums {
			ignored = append(ignored, s.Name+" ("+s.Reason+")")
		}
		return nil, nil, &Error{Field: "ignore", Message: "no feature columns left: every column but the target is ignored: " + columnList(ignored)}
	}
	names := make([]string, len(kept))
	for i, c := range kept {
		names[i] = c.Name
	}
	d.Meta.Features, d.Meta.FeatureNames = len(kept), names
	if !allNumbers {
		d.Columns = make([]table.Column, len(kept))
		for i, c := range kept {
			d.Columns[i] = *c
		}
		return sums, warnings, nil
	}
	k := len(kept)
	if err := t.m.take(8 * int64(t.rows*k)); err != nil {
		return nil, nil, err
	}
	x := make([]float64, t.rows*k)
	for j, c := range kept {
		for r, v := range c.Values {
			x[r*k+j] = v
		}
		kept[j] = nil
	}
	d.X = x
	return sums, warnings, nil
}

// xSummaries summarizes the columns of the fast path from their
// accumulators: all numbers, no missing cell.
func xSummaries(accs []numAcc, names []string) ([]table.Summary, []string) {
	sums := make([]table.Summary, len(names))
	var warnings []string
	for j, n := range names {
		s := table.Summary{Name: n, Type: table.Number, Role: table.Feature, Reason: "every present cell is a number"}
		accs[j].summary(&s)
		if s.Distinct == 1 {
			warnings = append(warnings, fmt.Sprintf("column %s is constant: every present cell is %s", n, canonical(*s.Min)))
		}
		sums[j] = s
	}
	return sums, warnings
}

// targetSummaries summarizes d's targets, once assemble has filled them;
// missing[j] is how many rows target j was missing in (and dropped).
func targetSummaries(d *store.Dataset, missing []int) []table.Summary {
	names := d.Meta.TargetNames
	out := make([]table.Summary, len(names))
	for j, n := range names {
		s := table.Summary{Name: n, Role: table.Target, Missing: missing[j]}
		if d.Labels != nil {
			s.Type, s.Reason = table.Category, "target of task "+d.Meta.Task
			counts := classCounts(d.Meta.Classes, d.Labels)
			s.Distinct = len(d.Meta.Classes)
			s.TopLevels = topLevels(d.Meta.Classes, counts)
		} else {
			s.Type, s.Reason = table.Number, "target of task "+d.Meta.Task
			var a numAcc
			for i := j; i < len(d.Targets); i += len(names) {
				a.add(d.Targets[i])
			}
			a.summary(&s)
		}
		out[j] = s
	}
	return out
}

func classCounts(classes, labels []string) []int {
	index := make(map[string]int, len(classes))
	for i, c := range classes {
		index[c] = i
	}
	counts := make([]int, len(classes))
	for _, l := range labels {
		counts[index[l]]++
	}
	return counts
}
