package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
	"github.com/backpropd/backpropd/internal/table"
)

func mustCSV(tb testing.TB, in string, opt CSVOptions) *store.Dataset {
	tb.Helper()
	d, err := ReadCSV(context.Background(), strings.NewReader(in), opt)
	if err != nil {
		tb.Fatalf("ReadCSV: %v", err)
	}
	return d
}

// column returns the summary of the column called name.
func column(tb testing.TB, d *store.Dataset, name string) table.Summary {
	tb.Helper()
	for _, s := range d.Meta.Columns {
		if s.Name == name {
			return s
		}
	}
	tb.Fatalf("no column %q in %+v", name, d.Meta.Columns)
	return table.Summary{}
}

// typedColumn returns the typed feature column called name.
func typedColumn(tb testing.TB, d *store.Dataset, name string) table.Column {
	tb.Helper()
	for _, c := range d.Columns {
		if c.Name == name {
			return c
		}
	}
	tb.Fatalf("no typed column %q (X path: %v)", name, d.X != nil)
	return table.Column{}
}

// rowsOf is a CSV of a header and n rows made by cell(i).
func rowsOf(header string, n int, cell func(i int) string) string {
	var b strings.Builder
	b.WriteString(header + "\n")
	for i := range n {
		b.WriteString(cell(i) + "\n")
	}
	return b.String()
}

// TestStrayTextEdge: StrayTextShare at its edge. 1 text cell among 20
// present cells is 5%, at the threshold: refused naming the cell. 1 among
// 19 is 5.3%, over it: the column is a category.
func TestStrayTextEdge(t *testing.T) {
	tests := []struct {
		name     string
		n        int // present cells, one of them text
		category bool
	}{
		{"1 of 20 is stray", 20, false},
		{"1 of 19 is a category", 19, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := rowsOf("price,y", tc.n, func(i int) string {
				if i == tc.n-1 {
					return "unknown," + fmt.Sprint(i%2)
				}
				return fmt.Sprintf("%d.5,%d", i, i%2)
			})
			d, err := ReadCSV(context.Background(), strings.NewReader(in), CSVOptions{})
			if tc.category {
				if err != nil {
					t.Fatal(err)
				}
				if got := column(t, d, "price"); got.Type != table.Category || got.Role != table.Feature {
					t.Fatalf("price is %s %s, want a category feature", got.Type, got.Role)
				}
				return
			}
			var es *Errors
			if !errors.As(err, &es) || len(es.List) != 1 {
				t.Fatalf("err = %v, want one collected error", err)
			}
			e := es.List[0]
			want := fmt.Sprintf(`column price: 1 of %d cells are text ("unknown"); add them to na_values or declare the column categorical`, tc.n)
			if e.Line != tc.n+1 || e.Column != 1 || e.Field != "price" || e.Message != want {
				t.Fatalf("got %+v, want line %d column 1 field price message %q", e, tc.n+1, want)
			}
		})
	}
}

// TestIdentifierEdge: IdentifierShare at its edge, with IdentifierMinCells
// rows. 19 distinct values in 20 cells (95%) is identifier-like and
// ignored; 18 in 20 (90%) is a category; 19 distinct in 19 cells is under
// the minimum and stays a category.
func TestIdentifierEdge(t *testing.T) {
	tests := []struct {
		name     string
		rows     int
		distinct int
		ignored  bool
	}{
		{"19 of 20 is an identifier", 20, 19, true},
		{"18 of 20 is a category", 20, 18, false},
		{"19 of 19 is too few rows", 19, 19, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := rowsOf("who,x,y", tc.rows, func(i int) string {
				return fmt.Sprintf("name%d,%d,%d", min(i, tc.distinct-1), i, i%2)
			})
			d := mustCSV(t, in, CSVOptions{})
			got := column(t, d, "who")
			if got.Type != table.Category || (got.Role == table.Ignored) != tc.ignored || got.Distinct != tc.distinct {
				t.Fatalf("who: %+v, want ignored %v with %d distinct", got, tc.ignored, tc.distinct)
			}
			if tc.ignored {
				// The rest is numbers with no blanks: the X path.
				if d.X == nil || d.Meta.Features != 1 || !slices.Equal(d.Meta.FeatureNames, []string{"x"}) {
					t.Fatalf("features %v X %v, want only x on the X path", d.Meta.FeatureNames, d.X != nil)
				}
				if len(d.Meta.Warnings) == 0 || !strings.Contains(d.Meta.Warnings[0], "column who is ignored: it looks like an identifier") {
					t.Fatalf("warnings %q, want the ignored identifier", d.Meta.Warnings)
				}
			}
		})
	}
}

// TestMissingTokens: each default token, and the empty cell, is missing in
// a number column; na_values replaces the list.
func TestMissingTokens(t *testing.T) {
	for _, tok := range append([]string{"", "  "}, DefaultNAValues...) {
		t.Run(fmt.Sprintf("%q", tok), func(t *testing.T) {
			in := "a,y\n1,0\n" + tok + ",1\n3,0\n"
			d := mustCSV(t, in, CSVOptions{})
			c := typedColumn(t, d, "a")
			if c.Kind != table.Number || !math.IsNaN(c.Values[1]) || c.Values[2] != 3 {
				t.Fatalf("a = %v, want a number column with cell 1 missing", c.Values)
			}
			if s := column(t, d, "a"); s.Missing != 1 || *s.Mean != 2 {
				t.Fatalf("summary %+v, want 1 missing and mean 2 (of 1 and 3)", s)
			}
		})
	}
	t.Run("na_values replaces the list", func(t *testing.T) {
		d := mustCSV(t, "a,b,y\n1,NA,0\n-999,NA,1\n3,NA,0\n", CSVOptions{NAValues: []string{"-999"}})
		if c := typedColumn(t, d, "a"); !math.IsNaN(c.Values[1]) {
			t.Fatalf("a = %v, want -999 missing", c.Values)
		}
		if s := column(t, d, "b"); s.Type != table.Category || s.Missing != 0 || s.TopLevels[0].Level != "NA" {
			t.Fatalf("b = %+v, want NA a level once na_values is replaced", s)
		}
	})
	t.Run("missing target drops the row", func(t *testing.T) {
		d := mustCSV(t, "a,y\n1,p\n2,\n3,q\n4,NA\n", CSVOptions{})
		if d.Meta.Rows != 2 || d.Meta.DroppedRows != 2 || !slices.Equal(d.X, []float64{1, 3}) {
			t.Fatalf("rows %d dropped %d X %v, want 2 rows (1, 3) and 2 dropped", d.Meta.Rows, d.Meta.DroppedRows, d.X)
		}
		if s := column(t, d, "y"); s.Role != table.Target || s.Missing != 2 {
			t.Fatalf("y = %+v, want the target with 2 missing", s)
		}
		if !slices.ContainsFunc(d.Meta.Warnings, func(w string) bool { return strings.Contains(w, "2 rows dropped") }) {
			t.Fatalf("warnings %q, want the dropped rows", d.Meta.Warnings)
		}
	})
	t.Run("na_values matching every target", func(t *testing.T) {
		_, err := ReadCSV(context.Background(), strings.NewReader("a,y\n1,p\n2,q\n"), CSVOptions{NAValues: []string{"p", "q"}})
		var ie *Error
		if !errors.As(err, &ie) || !strings.Contains(ie.Message, "every row's target is missing") {
			t.Fatalf("err = %v, want every target missing", err)
		}
	})
}

// TestDialects: the delimiter is detected or given, decimal commas read,
// and each gives the same numbers as the plain file.
func TestDialects(t *testing.T) {
	want := []float64{1.5, 2, 3.25, 4}
	tests := []struct {
		name string
		in   string
		opt  CSVOptions
	}{
		{"comma", "a,b,y\n1.5,2,p\n3.25,4,q\n", CSVOptions{}},
		{"semicolon", "a;b;y\n1.5;2;p\n3.25;4;q\n", CSVOptions{}},
		{"tab", "a\tb\ty\n1.5\t2\tp\n3.25\t4\tq\n", CSVOptions{}},
		{"pipe", "a|b|y\n1.5|2|p\n3.25|4|q\n", CSVOptions{}},
		{"quoted header with commas, semicolons", "\"a,1\";\"b,2\";y\n1.5;2;p\n3.25;4;q\n", CSVOptions{}},
		{"given delimiter", "a;b;y\n1.5;2;p\n3.25;4;q\n", CSVOptions{Delimiter: ';'}},
		{"decimal comma", "a;b;y\n1,5;2;p\n3,25;4;q\n", CSVOptions{DecimalComma: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := mustCSV(t, tc.in, tc.opt)
			if !slices.Equal(d.X, want) || !slices.Equal(d.Meta.Classes, []string{"p", "q"}) {
				t.Fatalf("X %v classes %q, want %v and [p q]", d.X, d.Meta.Classes, want)
			}
		})
	}
	t.Run("decimal comma with comma delimiter", func(t *testing.T) {
		_, err := ReadCSV(context.Background(), strings.NewReader("a,y\n1,2\n"), CSVOptions{DecimalComma: true, Delimiter: ','})
		var ie *Error
		if !errors.As(err, &ie) || ie.Field != "decimal" {
			t.Fatalf("err = %v, want an error on decimal", err)
		}
	})
}

// iris rows without a header: the class column is text, so the first row
// passes as a header unless it is recognized as data.
const irisNoHeader = "5.1,3.5,1.4,0.2,setosa\n4.9,3.0,1.4,0.2,setosa\n7.0,3.2,4.7,1.4,versicolor\n6.3,3.3,6.0,2.5,virginica\n"

func TestHeaderDetection(t *testing.T) {
	t.Run("headerless iris refused", func(t *testing.T) {
		_, err := ReadCSV(context.Background(), strings.NewReader(irisNoHeader), CSVOptions{})
		var ie *Error
		if !errors.As(err, &ie) || ie.Line != 1 || !strings.Contains(ie.Message, "header=false") {
			t.Fatalf("err = %v, want line 1 saying to pass header=false", err)
		}
	})
	t.Run("header=false names c1…cN and keeps the first row", func(t *testing.T) {
		d := mustCSV(t, irisNoHeader, CSVOptions{NoHeader: true})
		if d.Meta.Rows != 4 || !slices.Equal(d.Meta.FeatureNames, []string{"c1", "c2", "c3", "c4"}) ||
			!slices.Equal(d.Meta.TargetNames, []string{"c5"}) || d.X[0] != 5.1 || d.Labels[0] != "setosa" {
			t.Fatalf("rows %d features %q targets %q X[0] %v labels[0] %q", d.Meta.Rows, d.Meta.FeatureNames, d.Meta.TargetNames, d.X[0], d.Labels[0])
		}
	})
	t.Run("a real header is kept", func(t *testing.T) {
		d := mustCSV(t, "sl,sw,pl,pw,species\n"+irisNoHeader, CSVOptions{})
		if d.Meta.Rows != 4 {
			t.Fatalf("rows %d, want 4", d.Meta.Rows)
		}
	})
	t.Run("a header name that is also a value is kept", func(t *testing.T) {
		// "setosa" recurs below, but "sl" is not a number over a number column.
		d := mustCSV(t, "sl,setosa\n1,setosa\n2,virginica\n", CSVOptions{})
		if d.Meta.Rows != 2 {
			t.Fatalf("rows %d, want 2", d.Meta.Rows)
		}
	})
}

// TestInference: the type, role and summary of each kind of column.
func TestInference(t *testing.T) {
	in := "n,c,b,d,dt,y\n" +
		"1,red,yes,2024-01-15,2024-01-15T10:30:00Z,1\n" +
		"2,blue,no,2024-02-20,2024-02-20 08:00,0\n" +
		"3,red,yes,,2024-03-01T00:00:00,1\n" +
		"4,red,no,2024-03-25,2024-03-25 23:59:59,0\n"
	d := mustCSV(t, in, CSVOptions{})
	if d.X != nil || len(d.Columns) != 5 {
		t.Fatalf("X %v columns %d, want 5 typed columns", d.X != nil, len(d.Columns))
	}
	n := column(t, d, "n")
	// Sample std of 1, 2, 3, 4 is sqrt(5/3) = 1.2910 (pandas' describe).
	if n.Type != table.Number || *n.Min != 1 || *n.Max != 4 || *n.Mean != 2.5 || math.Abs(*n.Std-math.Sqrt(5.0/3)) > 1e-12 || n.Distinct != 4 {
		t.Fatalf("n = %+v", n)
	}
	c := typedColumn(t, d, "c")
	if c.Kind != table.Category || !slices.Equal(c.Levels, []string{"red", "blue"}) || !slices.Equal(c.Codes, []int32{0, 1, 0, 0}) {
		t.Fatalf("c = %+v, want levels in order of first appearance", c)
	}
	if s := column(t, d, "c"); s.TopLevels[0] != (table.LevelCount{Level: "red", Count: 3}) || s.Distinct != 2 {
		t.Fatalf("c summary %+v", s)
	}
	if s := column(t, d, "b"); s.Type != table.Category {
		t.Fatalf("b = %+v, want booleans as a category", s)
	}
	dc := typedColumn(t, d, "d")
	jan15 := float64(time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC).Unix())
	if dc.Kind != table.Datetime || dc.Values[0] != jan15 || !math.IsNaN(dc.Values[2]) || dc.HasTime {
		t.Fatalf("d = %+v, want dates from 2024-01-15 with cell 2 missing", dc)
	}
	if s := column(t, d, "d"); s.First.Format(time.DateOnly) != "2024-01-15" || s.Last.Format(time.DateOnly) != "2024-03-25" || s.Missing != 1 {
		t.Fatalf("d summary %+v", s)
	}
	if c := typedColumn(t, d, "dt"); c.Kind != table.Datetime || !c.HasTime || c.Values[0] != jan15+10*3600+30*60 {
		t.Fatalf("dt = %+v, want date-times", c)
	}
	// y is 0/1 integers: classes, with the warning.
	if d.Meta.Task != string(engine.TaskBinary) || !slices.Equal(d.Meta.Classes, []string{"0", "1"}) {
		t.Fatalf("task %s classes %q, want binary 0/1", d.Meta.Task, d.Meta.Classes)
	}
	if !slices.ContainsFunc(d.Meta.Warnings, func(w string) bool { return strings.Contains(w, "task=regression") }) {
		t.Fatalf("warnings %q, want the integer target read as classes", d.Meta.Warnings)
	}
	if len(d.Meta.Columns) != 6 || d.Meta.Columns[5].Role != table.Target {
		t.Fatalf("columns %+v, want 6 in table order ending in the target", d.Meta.Columns)
	}
}

// TestIntegerTarget: MaxIntegerClasses at its edge, and task=regression.
func TestIntegerTarget(t *testing.T) {
	tests := []struct {
		name     string
		distinct int
		opt      CSVOptions
		task     engine.Task
	}{
		{"10 integers are classes", 10, CSVOptions{}, engine.TaskMulticlass},
		{"11 integers are a number", 11, CSVOptions{}, engine.TaskRegression},
		{"task=regression overrides", 2, CSVOptions{Task: engine.TaskRegression}, engine.TaskRegression},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := mustCSV(t, rowsOf("x,y", 30, func(i int) string { return fmt.Sprintf("%d,%d", i, i%tc.distinct) }), tc.opt)
			if d.Meta.Task != string(tc.task) {
				t.Fatalf("task %s, want %s", d.Meta.Task, tc.task)
			}
		})
	}
	t.Run("a fraction is a number", func(t *testing.T) {
		if d := mustCSV(t, "x,y\n1,0\n2,1\n3,0.5\n", CSVOptions{}); d.Meta.Task != string(engine.TaskRegression) {
			t.Fatalf("task %s, want regression", d.Meta.Task)
		}
	})
}

// TestOverrides: declared types win over inference.
func TestOverrides(t *testing.T) {
	in := "zip,grade,id,notes,when,y\n02139,1,a1,x,2024-01-01,p\n10001,2,a2,y,2024-01-02,q\n02139,3,a3,z,2024-01-03,p\n"
	d := mustCSV(t, in, CSVOptions{Overrides: Overrides{Categorical: []string{"zip", "grade"}, Ignore: []string{"id", "notes"}, Datetime: []string{"when"}}})
	if z := typedColumn(t, d, "zip"); z.Kind != table.Category || !slices.Equal(z.Levels, []string{"02139", "10001"}) {
		t.Fatalf("zip = %+v, want the codes as written", z)
	}
	if g := typedColumn(t, d, "grade"); g.Kind != table.Category || len(g.Levels) != 3 {
		t.Fatalf("grade = %+v", g)
	}
	if s := column(t, d, "id"); s.Role != table.Ignored || s.Reason != "declared in ignore" {
		t.Fatalf("id = %+v", s)
	}
	if !slices.Equal(d.Meta.FeatureNames, []string{"zip", "grade", "when"}) {
		t.Fatalf("features %q", d.Meta.FeatureNames)
	}
	errTests := []struct {
		name, in string
		o        Overrides
		field    string
		msg      string
	}{
		{"unknown column", in, Overrides{Ignore: []string{"nope"}}, "ignore", `"nope" is not in the table`},
		{"two kinds", in, Overrides{Ignore: []string{"zip"}, Categorical: []string{"zip"}}, "ignore", "both categorical and ignore"},
		{"the target", in, Overrides{Categorical: []string{"y"}}, "categorical", "is the target"},
		{"everything ignored", in, Overrides{Ignore: []string{"zip", "grade", "id", "notes", "when"}}, "ignore", "no feature columns left"},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadCSV(context.Background(), strings.NewReader(tc.in), CSVOptions{Overrides: tc.o})
			var ie *Error
			if !errors.As(err, &ie) || ie.Field != tc.field || !strings.Contains(ie.Message, tc.msg) {
				t.Fatalf("err = %v, want field %s message containing %q", err, tc.field, tc.msg)
			}
		})
	}
}

// TestCollectedErrors: cells of the wrong type in declared columns are
// collected, up to MaxErrors, each naming its line and column.
func TestCollectedErrors(t *testing.T) {
	in := rowsOf("a,w,y", 30, func(i int) string { return fmt.Sprintf("bad%d,soon,%d", i, i%2) })
	_, err := ReadCSV(context.Background(), strings.NewReader(in), CSVOptions{Overrides: Overrides{Numeric: []string{"a"}, Datetime: []string{"w"}}})
	var es *Errors
	if !errors.As(err, &es) {
		t.Fatalf("err = %v, want *Errors", err)
	}
	if len(es.List) != MaxErrors || es.More != 60-MaxErrors {
		t.Fatalf("%d errors and %d more, want %d and %d", len(es.List), es.More, MaxErrors, 60-MaxErrors)
	}
	first := es.List[0]
	if first.Line != 2 || first.Column != 1 || first.Field != "a" || !strings.Contains(first.Message, `declared numeric but holds "bad0"; add it to na_values`) {
		t.Fatalf("first = %+v", first)
	}
	if second := es.List[1]; second.Line != 2 || second.Column != 2 || !strings.Contains(second.Message, "not a date") {
		t.Fatalf("second = %+v", second)
	}
}

// TestFastToTyped: a table that turns typed after many numeric rows keeps
// every earlier row.
func TestFastToTyped(t *testing.T) {
	in := rowsOf("a,b,y", 10000, func(i int) string {
		if i == 9999 {
			return ",1,0"
		}
		return fmt.Sprintf("%d,%d,%d", i, -i, i%2)
	})
	d := mustCSV(t, in, CSVOptions{})
	a, b := typedColumn(t, d, "a"), typedColumn(t, d, "b")
	if a.Values[5000] != 5000 || b.Values[5000] != -5000 || !math.IsNaN(a.Values[9999]) || len(a.Values) != 10000 {
		t.Fatalf("a[5000] %v b[5000] %v a[9999] %v", a.Values[5000], b.Values[5000], a.Values[9999])
	}
}

// TestMixedTypes: a column of numbers and text, half each, is a category
// whose numbers are levels written one way.
func TestMixedTypes(t *testing.T) {
	d := mustCSV(t, "m,y\n1,p\n1.0,q\nx,p\ny,q\n", CSVOptions{})
	c := typedColumn(t, d, "m")
	if c.Kind != table.Category || !slices.Equal(c.Levels, []string{"1", "x", "y"}) || !slices.Equal(c.Codes, []int32{0, 0, 1, 2}) {
		t.Fatalf("m = %+v", c)
	}
}

// TestDatetimeFormats: the layouts table.ParseDatetime reads, and what it
// does not.
func TestDatetimeFormats(t *testing.T) {
	day := float64(time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).Unix())
	for _, s := range []string{"2024-03-01", "2024/03/01", "1-Mar-2024", "1 Mar 2024", "Mar 1, 2024", "March 1, 2024", "1 March 2024"} {
		if v, hasTime, ok := table.ParseDatetime(s); !ok || hasTime || v != day {
			t.Errorf("%q: %v %v %v, want %v", s, v, hasTime, ok, day)
		}
	}
	for _, s := range []string{"2024-03-01T00:00:00Z", "2024-03-01T01:00:00+01:00", "2024-03-01 00:00", "2024-03-01T00:00:00.000"} {
		if v, hasTime, ok := table.ParseDatetime(s); !ok || !hasTime || v != day {
			t.Errorf("%q: %v %v %v, want %v with a time", s, v, hasTime, ok, day)
		}
	}
	for _, s := range []string{"2024", "03/01/2024", "20240301", "99999-01-01", "2024-13-01", "yesterday"} {
		if _, _, ok := table.ParseDatetime(s); ok {
			t.Errorf("%q parsed as a date", s)
		}
	}
}

// TestMillionLevelsDeclared: a million distinct values in a column
// declared categorical are kept as codes and a level table, and every byte
// of it is reserved: what the parse holds follows what it reserved.
func TestMillionLevelsDeclared(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 20 MB table")
	}
	var b strings.Builder
	b.WriteString("id,x,y\n")
	for i := range 1_000_000 {
		fmt.Fprintf(&b, "user-%d,%d,%c\n", i, i%97, "pq"[i%2])
	}
	var granted int64
	d := mustCSV(t, b.String(), CSVOptions{Overrides: Overrides{Categorical: []string{"id"}},
		Reserve: func(n int64) error { granted += n; return nil }})
	id := typedColumn(t, d, "id")
	if len(id.Levels) != 1_000_000 || len(id.Codes) != 1_000_000 || id.Codes[999_999] != 999_999 {
		t.Fatalf("levels %d codes %d", len(id.Levels), len(id.Codes))
	}
	// Held: 4-byte codes, levels of levelBytes + text, 8-byte x, and the
	// target cells (cellBytes + text): about 110 MB; reserved must cover
	// it and stay within 2x of it, plus the last reservation step.
	held := int64(0)
	for _, l := range id.Levels {
		held += levelBytes + int64(len(l))
	}
	held += 4*1_000_000 + 8*1_000_000 + (cellBytes+1)*1_000_000
	if granted < held || granted > 2*held+meterStep {
		t.Fatalf("reserved %d bytes, want between %d and %d", granted, held, 2*held+meterStep)
	}
}

// TestWideTable: 10,000 columns of numbers take the X path, each
// summarized.
func TestWideTable(t *testing.T) {
	const cols, rows = 10_000, 20
	var b strings.Builder
	for j := range cols {
		fmt.Fprintf(&b, "c%d,", j)
	}
	b.WriteString("y\n")
	for i := range rows {
		for j := range cols {
			fmt.Fprintf(&b, "%d,", (i+j)%7)
		}
		fmt.Fprintf(&b, "%c\n", "pq"[i%2])
	}
	d := mustCSV(t, b.String(), CSVOptions{})
	if d.X == nil || d.Meta.Features != cols || len(d.Meta.Columns) != cols+1 {
		t.Fatalf("features %d columns %d X %v", d.Meta.Features, len(d.Meta.Columns), d.X != nil)
	}
}

// TestFarDates: dates at the ends of what ParseDatetime reads are a
// datetime column whose summary still encodes as JSON (RFC 3339 stops at
// the year 9999), and a year past them is text.
func TestFarDates(t *testing.T) {
	d := mustCSV(t, "w,y\n0001-01-01,p\n9999-12-31T23:59:59.999999999Z,q\n", CSVOptions{})
	s := column(t, d, "w")
	if s.Type != table.Datetime || s.First.Year() != 1 || s.Last.Year() != 9999 {
		t.Fatalf("w = %+v", s)
	}
	if _, err := json.Marshal(d.Meta); err != nil {
		t.Fatalf("the metadata does not encode: %v", err)
	}
	d = mustCSV(t, "w,y\n2024-01-01,p\n99999-01-01,q\n", CSVOptions{})
	if s := column(t, d, "w"); s.Type != table.Category {
		t.Fatalf("w = %+v, want a category of text", s)
	}
}

// TestDistinctSet: the count is exact (a map's) up to maxExactDistinct
// values besides the bitmap's, over the bitmap's range, its edges, -0 and
// fractions; past it, the sketch's estimate is within 10% (3 standard
// errors of 1.04/sqrt(1024) = 3.25%) for counts from 5,000 to a million.
func TestDistinctSet(t *testing.T) {
	var vals []float64
	for i := range 3000 {
		vals = append(vals, float64(i%1500), float64(i%1500)+0.5, -float64(i%7), math.Copysign(0, -1))
	}
	vals = append(vals, 1023, 1024, 1023.999, -1e-300)
	var d distinctSet
	want := map[float64]bool{}
	for _, v := range vals {
		d.add(v)
		want[v] = true // the map keeps -0 and 0 as one key, as d must
	}
	if d.hll != nil || d.count() != len(want) {
		t.Fatalf("distinct %d (sketch %v), want %d exactly (a map's count)", d.count(), d.hll != nil, len(want))
	}
	for _, n := range []int{5000, 50_000, 1_000_000} {
		var d distinctSet
		for i := range n {
			d.add(float64(i) * 0.001)
			d.add(float64(i%100) * 0.001) // repeats count once
		}
		if got := d.count(); math.Abs(float64(got-n)) > 0.1*float64(n) || len(d.hll) != hllRegisters || d.slots != nil {
			t.Errorf("%d distinct: estimated %d, want within 10%%, in %d registers", n, got, len(d.hll))
		}
	}
}

// TestIgnoredColumnsKeepTheirType: a column declared ignored is still
// reported with the type its cells have.
func TestIgnoredColumnsKeepTheirType(t *testing.T) {
	in := "n,txt,when,mixed,kept,y\n1,a,2024-01-01,1,5,p\n2,b,2024-01-02,x,6,q\n,c,,2,7,p\n"
	d := mustCSV(t, in, CSVOptions{Overrides: Overrides{Ignore: []string{"n", "txt", "when", "mixed"}}})
	for name, want := range map[string]table.Kind{"n": table.Number, "txt": table.Category, "when": table.Datetime, "mixed": table.Category} {
		s := column(t, d, name)
		if s.Role != table.Ignored || s.Type != want {
			t.Errorf("%s: role %s, type %s; want ignored, %s", name, s.Role, s.Type, want)
		}
	}
}
