package ingest

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
	"github.com/backpropd/backpropd/internal/table"
)

// allocBound is the most a parse may allocate for n input bytes. A parse
// holds each cell once as a float64 or a string plus its bookkeeping, and
// slices grow by doubling; 256 bytes per input byte plus 4 MiB for the
// buffers (bufio's 64 KiB, csv's record) is far above that and far below
// what a decoder that trusted a count from the input would allocate.
func allocBound(n int) uint64 { return 256*uint64(n) + 4<<20 }

// measureAlloc runs f and returns the bytes it allocated. Fuzz workers run
// one input at a time, so the process-wide counter is f's own.
func measureAlloc(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// encodeCSV writes d back as the CSV it could have come from: a BOM (so a
// first column name that itself starts with U+FEFF survives), the header,
// then features and targets with the shortest decimal that reads back as
// the same float64.
func encodeCSV(tb testing.TB, d *store.Dataset) []byte {
	tb.Helper()
	var buf bytes.Buffer
	buf.WriteString("\ufeff")
	w := csv.NewWriter(&buf)
	m := d.Meta
	rec := append(append([]string(nil), m.FeatureNames...), m.TargetNames...)
	if err := w.Write(rec); err != nil {
		tb.Fatal(err)
	}
	k := len(m.TargetNames)
	for r := range m.Rows {
		rec = rec[:0]
		if d.Columns != nil {
			for _, c := range d.Columns {
				rec = append(rec, typedCell(&c, r))
			}
		} else {
			for _, v := range d.X[r*m.Features : (r+1)*m.Features] {
				rec = append(rec, strconv.FormatFloat(v, 'g', -1, 64))
			}
		}
		if d.Labels != nil {
			rec = append(rec, d.Labels[r])
		} else {
			for _, v := range d.Targets[r*k : (r+1)*k] {
				rec = append(rec, strconv.FormatFloat(v, 'g', -1, 64))
			}
		}
		if err := w.Write(rec); err != nil {
			tb.Fatal(err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// onlyNumbers reports whether every name reads as a number.
func onlyNumbers(names []string) bool {
	for _, n := range names {
		if _, err := parseNumber(n); err != nil {
			return false
		}
	}
	return true
}

// typedCell is cell r of c as CSV text that reads back as the same value
// when c's kind is declared: "" for a missing cell.
func typedCell(c *table.Column, r int) string {
	if c.IsMissing(r) {
		return ""
	}
	switch c.Kind {
	case table.Category:
		return c.Levels[c.Codes[r]]
	case table.Datetime:
		t := table.FormatDatetime(c.Values[r])
		if c.HasTime {
			return t.Format(time.RFC3339Nano)
		}
		return t.Format(time.DateOnly)
	}
	return strconv.FormatFloat(c.Values[r], 'g', -1, 64)
}

// declared is the overrides that make a re-read of d's typed columns read
// each as the kind it has.
func declared(d *store.Dataset) Overrides {
	var o Overrides
	for _, c := range d.Columns {
		switch c.Kind {
		case table.Category:
			o.Categorical = append(o.Categorical, c.Name)
		case table.Datetime:
			o.Datetime = append(o.Datetime, c.Name)
		default:
			o.Numeric = append(o.Numeric, c.Name)
		}
	}
	return o
}

// sameColumns compares typed columns, values to a millisecond: a
// datetime's text has nanoseconds, but its float64 seconds have 30 µs of
// resolution in the year 9999 (2.5e11 s, 52-bit mantissa), and numbers
// are written back in full.
func sameColumns(tb testing.TB, a, b []table.Column) {
	tb.Helper()
	if len(a) != len(b) {
		tb.Fatalf("%d typed columns, then %d", len(a), len(b))
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Name != y.Name || x.Kind != y.Kind || x.HasTime != y.HasTime || !reflect.DeepEqual(x.Codes, y.Codes) ||
			!reflect.DeepEqual(x.Levels, y.Levels) || len(x.Values) != len(y.Values) {
			tb.Fatalf("column %d differs after a round trip:\nfirst  %+v\nsecond %+v", i, x, y)
		}
		for r := range x.Values {
			u, v := x.Values[r], y.Values[r]
			if (math.IsNaN(u) != math.IsNaN(v)) || (!math.IsNaN(u) && math.Abs(u-v) > 1e-3) {
				tb.Fatalf("column %s cell %d: %v, then %v", x.Name, r, u, v)
			}
		}
	}
}

func sameDataset(tb testing.TB, a, b *store.Dataset) {
	tb.Helper()
	am, bm := a.Meta, b.Meta
	if am.Rows != bm.Rows || am.Features != bm.Features || am.Task != bm.Task ||
		!reflect.DeepEqual(am.FeatureNames, bm.FeatureNames) || !reflect.DeepEqual(am.TargetNames, bm.TargetNames) ||
		!reflect.DeepEqual(am.Classes, bm.Classes) {
		tb.Fatalf("metadata differs after a round trip:\nfirst  %+v\nsecond %+v", am, bm)
	}
	sameColumns(tb, a.Columns, b.Columns)
	if !reflect.DeepEqual(a.X, b.X) || !reflect.DeepEqual(a.Targets, b.Targets) || !reflect.DeepEqual(a.Labels, b.Labels) {
		tb.Fatalf("values differ after a round trip:\nX %v / %v\ntargets %v / %v\nlabels %q / %q",
			a.X, b.X, a.Targets, b.Targets, a.Labels, b.Labels)
	}
}

// FuzzCSVRoundTrip feeds arbitrary bytes to ReadCSV, as a dataset upload
// does. Properties: no panic; a rejection is an *Error (which the API
// turns into a 400 naming the line and column), never another error type
// (a 500); the parse allocates at most allocBound(len(in)); and an
// accepted file, written back as CSV and read again with the task it was
// given, yields the same dataset. FuzzReadCSV (ingest_test.go) checks the
// accepted dataset's internal consistency.
func FuzzCSVRoundTrip(f *testing.F) {
	for _, s := range []string{
		"a,b,y\n1,2,3\n4,5,6\n",
		"\ufeffa,y\r\n1,p\r\n2,q\r\n",
		"a,y\n1,\"x\ny\"\n2,z\n",
		"a,y\n1,2\n3,",
		"x,\"label, with comma\"\n1,\"he said \"\"hi\"\"\"\n2,b\n",
		"a,p,q\n1,0,1\n2,1,0\n",
		"a,y\n1e308,1.0\n-0,1\n5e-324,2\n",
		"a,y\n 1 , 1\n2,1.0\n3,x\n",
		"\ufeff\ufeffa,y\n1,2\n",
		"a,y\n1,\"\r\"\n2,b\n",
		// Typed tables: blanks and missing tokens, text, booleans, dates,
		// date-times, dialects, an integer target, a headerless file.
		"a,b,c,y\n1,red,yes,0\n,blue,no,1\nNA,red,?,0\n",
		"d,t,y\n2024-01-15,2024-01-15T10:30:00Z,p\n2024-02-20,2024-02-20 08:00,q\n,,p\n",
		"a;b;y\n1,5;x;p\n2,25;y;q\n",
		"a\tb\ty\n1\tx\tp\n2\ty\tq\n",
		"a|b|y\n1|x|p\n2|y|q\n",
		"5.1,3.5,setosa\n4.9,3.0,setosa\n7.0,3.2,versicolor\n",
		"m,y\n1,p\n1.0,q\nx,p\ny,q\n",
		"a,y\n1,p\n2,\n3,q\n",
		"w,y\n0001-01-01,p\n9999-12-31T23:59:59.999999999Z,q\n",
	} {
		f.Add([]byte(s), "", "")
	}
	f.Add([]byte("a,p,q\n1,0,1\n2,1,0\n"), "p,q", "binary")
	f.Add([]byte("x,c\n1,1\n2,2\n3,3\n"), "c", "multiclass")
	f.Add([]byte("y,x\n1,2\n3,4\n"), "y", "regression")
	f.Fuzz(func(t *testing.T, in []byte, target, task string) {
		tk, err := ParseTask(task)
		if err != nil {
			return
		}
		var targets []string
		if target != "" {
			targets = strings.Split(target, ",")
		}
		var d *store.Dataset
		n := measureAlloc(func() {
			d, err = ReadCSV(context.Background(), bytes.NewReader(in), CSVOptions{Targets: targets, Task: tk})
		})
		if n > allocBound(len(in)) {
			t.Fatalf("parsing %d bytes allocated %d bytes, more than %d", len(in), n, allocBound(len(in)))
		}
		if err != nil {
			var ie *Error
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if ie.Message == "" {
				t.Fatalf("error without a message: %+v", ie)
			}
			return
		}
		if onlyNumbers(append(append([]string(nil), d.Meta.FeatureNames...), d.Meta.TargetNames...)) {
			// The columns kept are those named by numbers: the written
			// back file's header would be one the parser refuses, as it
			// should, for a row of data.
			return
		}
		again, err := ReadCSV(context.Background(), bytes.NewReader(encodeCSV(t, d)),
			CSVOptions{Targets: d.Meta.TargetNames, Task: engine.Task(d.Meta.Task), Overrides: declared(d), NAValues: []string{}})
		var ie *Error
		if errors.As(err, &ie) && ie.Line == 1 && strings.HasPrefix(ie.Message, headerLooksLikeData) {
			// The values written back are the stored ones, trimmed and
			// canonical (" setosa" is "setosa", "00" is the class "0"),
			// so they may now match the header's cells where the values
			// read did not: the file written back is not the same table
			// to header detection, which refuses it, as it should.
			return
		}
		if err != nil {
			t.Fatalf("re-reading the dataset written back: %v\n%s", err, encodeCSV(t, d))
		}
		sameDataset(t, d, again)
	})
}

// FuzzJSONDataset decodes arbitrary bytes as a JSON dataset upload (as
// POST /v1/datasets and inline job data do: unknown fields rejected) and
// converts it. Properties: no panic; a rejection by Dataset is an *Error
// naming the given prefix or a field under it; allocation stays within
// allocBound; and an accepted dataset, encoded back as JSON and decoded
// again, yields the same dataset.
func FuzzJSONDataset(f *testing.F) {
	for _, s := range []string{
		`{"features":[[1,2],[3,4]],"targets":[1,2]}`,
		`{"features":[[1],[2],[3]],"targets":["a","b","c"],"feature_names":["f"]}`,
		`{"features":[[1],[2]],"targets":[[0,1],[1,0]],"task":"binary","target_names":["p","q"]}`,
		`{"features":[[1],[null]],"targets":[1,2]}`,
		`{"features":[[1],[1e999]],"targets":[1,2]}`,
		`{"features":[[1,2],[3]],"targets":[1,2]}`,
		`{"features":[],"targets":[]}`,
		`{"features":[[1],[2]],"targets":[1,"a"]}`,
		`{"features":[[1],[2]],"targets":["1","1.0"],"task":"multiclass"}`,
		`{"features":[[1],[2]],"targets":[true,false]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var d *store.Dataset
		var decErr, err error
		n := measureAlloc(func() {
			var j JSONData
			dec := json.NewDecoder(bytes.NewReader(in))
			dec.DisallowUnknownFields()
			if decErr = dec.Decode(&j); decErr != nil {
				return
			}
			d, err = j.Dataset("d", "data")
		})
		if n > allocBound(len(in)) {
			t.Fatalf("decoding %d bytes allocated %d bytes, more than %d", len(in), n, allocBound(len(in)))
		}
		if decErr != nil {
			return
		}
		if err != nil {
			var ie *Error
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if (ie.Field != "data" && !strings.HasPrefix(ie.Field, "data.")) || ie.Message == "" {
				t.Fatalf("error does not name a field under data.: %+v", ie)
			}
			return
		}
		for _, v := range d.X {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("accepted a non-finite feature %v", v)
			}
		}
		b, err := json.Marshal(jsonOf(d))
		if err != nil {
			t.Fatal(err)
		}
		var j2 JSONData
		if err := json.Unmarshal(b, &j2); err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		again, err := j2.Dataset("d", "data")
		if err != nil {
			t.Fatalf("re-reading the dataset written back: %v\n%s", err, b)
		}
		sameDataset(t, d, again)
	})
}

// jsonOf is the JSON upload that describes d, with its task made explicit.
func jsonOf(d *store.Dataset) map[string]any {
	m := d.Meta
	k := len(m.TargetNames)
	features := make([][]any, m.Rows)
	targets := make([]any, m.Rows)
	for r := range m.Rows {
		features[r] = make([]any, m.Features)
		for j := range m.Features {
			switch {
			case d.Columns == nil:
				features[r][j] = d.X[r*m.Features+j]
			case d.Columns[j].IsMissing(r):
				features[r][j] = nil
			case d.Columns[j].Kind == table.Number:
				features[r][j] = d.Columns[j].Values[r]
			default:
				features[r][j] = typedCell(&d.Columns[j], r)
			}
		}
		switch {
		case d.Labels != nil:
			targets[r] = d.Labels[r]
		case k == 1 && m.Task == string(engine.TaskRegression):
			targets[r] = d.Targets[r]
		default:
			targets[r] = d.Targets[r*k : (r+1)*k]
		}
	}
	out := map[string]any{"feature_names": m.FeatureNames, "target_names": m.TargetNames, "task": m.Task,
		"features": features, "targets": targets}
	if o := declared(d); d.Columns != nil {
		out["categorical"], out["numeric"], out["datetime"] = o.Categorical, o.Numeric, o.Datetime
	}
	return out
}
