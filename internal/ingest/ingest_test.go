package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
	"github.com/backpropd/backpropd/internal/table"
)

func TestReadCSV(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		opt     CSVOptions
		task    string
		x       []float64
		targets []float64
		labels  []string
		classes []string
	}{
		{"regression", "a,b,y\n1,2,3\n4,5,6.5\n", CSVOptions{}, "regression",
			[]float64{1, 2, 4, 5}, []float64{3, 6.5}, nil, nil},
		{"target in the middle", "a,y,b\n1,x,2\n3,z,4\n4,x,5\n", CSVOptions{Targets: []string{"y"}}, "binary",
			[]float64{1, 2, 3, 4, 4, 5}, nil, []string{"x", "z", "x"}, []string{"x", "z"}},
		{"three classes", "x,c\n1,b\n2,a\n3,c\n", CSVOptions{}, "multiclass",
			[]float64{1, 2, 3}, nil, []string{"b", "a", "c"}, []string{"a", "b", "c"}},
		{"numeric labels normalized", "x,c\n1,1\n2,1.0\n3,2\n", CSVOptions{Task: engine.TaskMulticlass}, "multiclass",
			[]float64{1, 2, 3}, nil, []string{"1", "1", "2"}, []string{"1", "2"}},
		{"BOM, CRLF, spaces", "\ufeff a , y \r\n 1 , 2 \r\n3,4.5\r\n", CSVOptions{}, "regression",
			[]float64{1, 3}, []float64{2, 4.5}, nil, nil},
		{"no final newline", "a,y\n1,2\n3,4", CSVOptions{Task: engine.TaskRegression}, "regression",
			[]float64{1, 3}, []float64{2, 4}, nil, nil},
		{"multi-label binary", "a,p,q\n1,0,1\n2,1,1\n", CSVOptions{Targets: []string{"p", "q"}, Task: engine.TaskBinary}, "binary",
			[]float64{1, 2}, []float64{0, 1, 1, 1}, nil, nil},
		{"quoted label with comma", "a,y\n1,\"x,y\"\n2,z\n", CSVOptions{}, "binary",
			[]float64{1, 2}, nil, []string{"x,y", "z"}, []string{"x,y", "z"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ReadCSV(context.Background(), strings.NewReader(tc.in), tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if d.Meta.Task != tc.task || !slices.Equal(d.X, tc.x) || !slices.Equal(d.Targets, tc.targets) ||
				!slices.Equal(d.Labels, tc.labels) || !slices.Equal(d.Meta.Classes, tc.classes) {
				t.Fatalf("got task %s X %v targets %v labels %q classes %q", d.Meta.Task, d.X, d.Targets, d.Labels, d.Meta.Classes)
			}
			if d.Meta.Rows*d.Meta.Features != len(d.X) {
				t.Fatalf("rows %d × features %d != len(X) %d", d.Meta.Rows, d.Meta.Features, len(d.X))
			}
		})
	}
}

func TestReadCSVErrors(t *testing.T) {
	tests := []struct {
		name, in       string
		opt            CSVOptions
		line, col      int
		field, message string
	}{
		{"empty", "", CSVOptions{}, 1, 0, "", "header"},
		{"numeric header", "1,2\n3,4\n", CSVOptions{}, 1, 0, "", "header"},
		{"empty name", "a,,y\n1,2,3\n", CSVOptions{}, 1, 2, "", "no name"},
		{"duplicate", "a,b,a\n1,2,3\n", CSVOptions{}, 1, 3, "a", "duplicate"},
		{"missing target", "a,b\n1,2\n", CSVOptions{Targets: []string{"c"}}, 0, 0, "target", `"c" is not in the header`},
		{"missing target lists every column", "sepal_length,sepal_width,petal_length,petal_width,species\n1,2,3,4,5\n",
			CSVOptions{Targets: []string{"class"}}, 0, 0, "target",
			`(columns: sepal_length, sepal_width, petal_length, petal_width, species)`},
		{"missing target among many columns", manyColumns(25) + "\n" + strings.Repeat("1,", 24) + "1\n",
			CSVOptions{Targets: []string{"class"}}, 0, 0, "target", `c18, c19 and 5 more)`},
		{"header only", "a,y\n", CSVOptions{}, 2, 0, "", "no data rows"},
		{"ragged", "a,b,y\n1,2,3\n1,2\n", CSVOptions{}, 3, 0, "", "2 fields, the header has 3"},
		{"extra field", "a,b,y\n1,2,3,4\n", CSVOptions{}, 2, 0, "", "4 fields"},
		{"open quote", "a,y\n1,\"2\n", CSVOptions{}, 2, 0, "", "quote"},
		{"infinite target", "a,y\n1,2\n2,1e999\n", CSVOptions{}, 3, 2, "y", "not a finite number"},
		{"regression of labels", "a,y\n1,p\n2,q\n", CSVOptions{Task: engine.TaskRegression}, 2, 2, "y", "not a finite number"},
		{"multi-label not 0/1", "a,p,q\n1,0,2\n", CSVOptions{Targets: []string{"p", "q"}, Task: engine.TaskBinary}, 2, 3, "q", "0 or 1"},
		{"multi-target labels", "a,p,q\n1,x,y\n2,z,w\n", CSVOptions{Targets: []string{"p", "q"}}, 2, 2, "p", "must be a number"},
		{"label on line after a quoted newline", "a,y\n\"1\n\",p\n2,q\n3,\"\x01\"\n", CSVOptions{}, 5, 2, "y", "control character"},
		{"label with a newline", "a,y\n1,\"p\nq\"\n2,r\n", CSVOptions{}, 2, 2, "y", "control character U+000A"},
		{"label of 257 bytes", "a,y\n1," + strings.Repeat("p", 257) + "\n2,r\n", CSVOptions{}, 2, 2, "y", "at most 256"},
		{"column name with DEL", "a\x7f,y\n1,p\n2,r\n", CSVOptions{}, 1, 1, "", "control character U+007F"},
		{"column name of 257 bytes", strings.Repeat("a", 257) + ",y\n1,p\n2,r\n", CSVOptions{}, 1, 1, "", "257 bytes long"},
		{"column name not UTF-8", "a\xff,y\n1,p\n2,r\n", CSVOptions{}, 1, 1, "", "not valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadCSV(context.Background(), strings.NewReader(tc.in), tc.opt)
			var ie *Error
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if ie.Line != tc.line || (tc.col != 0 && ie.Column != tc.col) || ie.Field != tc.field || !strings.Contains(ie.Message, tc.message) {
				t.Fatalf("got line %d col %d field %q message %q; want line %d col %d field %q message containing %q",
					ie.Line, ie.Column, ie.Field, ie.Message, tc.line, tc.col, tc.field, tc.message)
			}
		})
	}
}

// errReader fails after its data, as a body over its size limit does.
type errReader struct {
	data string
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestReadCSVPassesReadErrors(t *testing.T) {
	sentinel := errors.New("body too large")
	_, err := ReadCSV(context.Background(), &errReader{"a,y\n1,2\n3,", sentinel}, CSVOptions{})
	if !errors.Is(err, sentinel) {
		t.Fatalf("err = %v, want the reader's error", err)
	}
}

func TestJSONData(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		field string // "" means success
	}{
		{"ok", `{"features":[[1,2],[3,4]],"targets":[0.5,1.5]}`, ""},
		{"null cell", `{"features":[[1,2],[3,null]],"targets":[1,2]}`, "d.features[1][1]"},
		{"ragged", `{"features":[[1,2],[3]],"targets":[1,2]}`, "d.features[1]"},
		{"no features", `{"targets":[1]}`, "d.features"},
		{"no targets", `{"features":[[1]]}`, "d.targets"},
		{"bool target", `{"features":[[1],[2]],"targets":[true,false]}`, "d.targets[0]"},
		{"null target", `{"features":[[1],[2]],"targets":[1,null]}`, "d.targets[1]"},
		{"ragged target arrays", `{"features":[[1],[2]],"targets":[[1,2],[3]]}`, "d.targets[1]"},
		{"null in a target array", `{"features":[[1],[2]],"targets":[[1,2],[3,null]]}`, "d.targets[1][1]"},
		{"duplicate feature names", `{"feature_names":["a","a"],"features":[[1,2]],"targets":[1]}`, "d.feature_names[1]"},
		{"feature name with NUL", `{"feature_names":["a","b\u0000"],"features":[[1,2]],"targets":[1]}`, "d.feature_names[1]"},
		{"feature name of 257 bytes", `{"feature_names":["` + strings.Repeat("a", 257) + `","b"],"features":[[1,2]],"targets":[1]}`, "d.feature_names[0]"},
		{"target name with a newline", `{"target_names":["y\n"],"features":[[1,2]],"targets":[1]}`, "d.target_names[0]"},
		{"class label with a tab", `{"features":[[1],[2]],"targets":["a\tb","c"]}`, "d.targets[0]"},
		{"string regression", `{"task":"regression","features":[[1],[2]],"targets":["1","2"]}`, "d.targets[0]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var j JSONData
			if err := json.Unmarshal([]byte(tc.in), &j); err != nil {
				t.Fatal(err)
			}
			d, err := j.Dataset("n", "d")
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(d.X, []float64{1, 2, 3, 4}) || !slices.Equal(d.Targets, []float64{0.5, 1.5}) || d.Meta.Task != "regression" {
					t.Fatalf("got %+v", d)
				}
				return
			}
			var ie *Error
			if !errors.As(err, &ie) || ie.Field != tc.field {
				t.Fatalf("err = %v, want an *Error for field %s", err, tc.field)
			}
		})
	}
}

// FuzzReadCSV: no panic; the parse allocates at most allocBound
// (fuzz_test.go); accepted input gives a consistent dataset of finite
// numbers; rejected input gives an *Error or the reader's error.
func FuzzReadCSV(f *testing.F) {
	for _, s := range []string{
		"a,b,y\n1,2,3\n4,5,6\n",
		"\ufeffa,y\r\n1,p\r\n2,q\r\n",
		"a,y\n1,\"x\ny\"\n2,z\n",
		"a,y\n1,2\n3,",
		"a,a\n1,2\n",
		"1,2\n3,4\n",
		"a,y\nNaN,1\n",
		"a,\"y\n1,2\n",
		"a,p,q\n1,0,1\n2,1,0\n",
	} {
		f.Add([]byte(s), "", "")
	}
	f.Add([]byte("a,p,q\n1,0,1\n2,1,0\n"), "p,q", "binary")
	f.Add([]byte("x,c\n1,1\n2,2\n3,3\n"), "c", "multiclass")
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
			d, err = ReadCSV(context.Background(), strings.NewReader(string(in)), CSVOptions{Targets: targets, Task: tk})
		})
		if n > allocBound(len(in)) {
			t.Fatalf("parsing %d bytes allocated %d bytes, more than %d", len(in), n, allocBound(len(in)))
		}
		if err != nil {
			var ie *Error
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			return
		}
		checkDataset(t, d)
	})
}

func checkDataset(t *testing.T, d *store.Dataset) {
	t.Helper()
	m := d.Meta
	if m.Rows < 1 || m.Features < 1 || len(m.FeatureNames) != m.Features {
		t.Fatalf("inconsistent shape: %+v", m)
	}
	if d.Columns != nil {
		checkColumns(t, d)
	} else {
		if len(d.X) != m.Rows*m.Features {
			t.Fatalf("inconsistent shape: %+v, len(X) %d", m, len(d.X))
		}
		for _, v := range d.X {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("non-finite feature %v", v)
			}
		}
	}
	switch m.Task {
	case "regression":
		if len(d.Targets) != m.Rows*len(m.TargetNames) || d.Labels != nil {
			t.Fatalf("regression targets %d for %d rows × %d", len(d.Targets), m.Rows, len(m.TargetNames))
		}
		for _, v := range d.Targets {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("non-finite target %v", v)
			}
		}
	case "binary", "multiclass":
		if d.Labels == nil {
			if m.Task != "binary" || len(d.Targets) != m.Rows*len(m.TargetNames) {
				t.Fatalf("classification without labels: %+v", m)
			}
			return
		}
		if len(d.Labels) != m.Rows || len(m.Classes) < 2 || (m.Task == "binary" && len(m.Classes) != 2) {
			t.Fatalf("labels %d for %d rows, classes %q, task %s", len(d.Labels), m.Rows, m.Classes, m.Task)
		}
		for _, l := range d.Labels {
			if _, ok := slices.BinarySearch(m.Classes, l); !ok {
				t.Fatalf("label %q not in classes %q", l, m.Classes)
			}
		}
	default:
		t.Fatalf("task %q", m.Task)
	}
}

// TestParseNumberMatchesStrconv holds the integer fast path to
// strconv.ParseFloat, the oracle, bit for bit.
func TestParseNumberMatchesStrconv(t *testing.T) {
	for _, s := range []string{"0", "-0", "7", "-7", "255", "123456789012345", "-123456789012345",
		"1234567890123456", "9999999999999999", "1.5", " 3 ", "-", "", "1e3", "0x10", "+4", "007", "1_000", "٣"} {
		got, gerr := parseNumber(s)
		want, werr := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if (gerr != nil) != (werr != nil) || math.Float64bits(got) != math.Float64bits(want) && gerr == nil {
			t.Errorf("parseNumber(%q) = %v, %v; strconv says %v, %v", s, got, gerr, want, werr)
		}
	}
}

func TestReadCSVMaxCells(t *testing.T) {
	in := "a,b,y\n1,2,3\n4,5,6\n7,8,9\n"
	if _, err := ReadCSV(context.Background(), strings.NewReader(in), CSVOptions{MaxCells: 6}); err != nil {
		t.Fatalf("6 cells under a cap of 6: %v", err)
	}
	_, err := ReadCSV(context.Background(), strings.NewReader(in), CSVOptions{MaxCells: 5})
	var ie *Error
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &ie) || ie.Line != 4 {
		t.Fatalf("over the cap: %v, want ErrTooLarge at line 4", err)
	}
}

// BenchmarkReadCSV parses a Fashion-MNIST-shaped file (784 pixel columns
// of 0-255 and a label) from memory and reports MB/s.
func BenchmarkReadCSV(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("label")
	for i := range 784 {
		fmt.Fprintf(&sb, ",px%d", i)
	}
	sb.WriteString("\n")
	for r := range 2000 {
		sb.WriteString("c" + strconv.Itoa(r%10))
		for c := range 784 {
			sb.WriteString("," + strconv.Itoa((r*31+c*17)%256))
		}
		sb.WriteString("\n")
	}
	data := sb.String()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadCSV(context.Background(), strings.NewReader(data), CSVOptions{Targets: []string{"label"}}); err != nil {
			b.Fatal(err)
		}
	}
}

// manyColumns is a header of n columns c0, c1, ….
func manyColumns(n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("c%d", i)
	}
	return strings.Join(names, ",")
}

// checkColumns checks the typed features of d: one column per feature,
// named after it, Rows cells long, with category codes inside their level
// table and no infinite number (NaN is a missing cell).
func checkColumns(t *testing.T, d *store.Dataset) {
	t.Helper()
	m := d.Meta
	if d.X != nil || len(d.Columns) != m.Features {
		t.Fatalf("typed dataset with %d columns and %d X values for %d features", len(d.Columns), len(d.X), m.Features)
	}
	for i := range d.Columns {
		c := &d.Columns[i]
		if c.Name != m.FeatureNames[i] || c.Len() != m.Rows {
			t.Fatalf("column %d is %q with %d cells; want %q with %d", i, c.Name, c.Len(), m.FeatureNames[i], m.Rows)
		}
		for _, code := range c.Codes {
			if code < table.Missing || int(code) >= len(c.Levels) {
				t.Fatalf("column %q: code %d outside %d levels", c.Name, code, len(c.Levels))
			}
		}
		for _, v := range c.Values {
			if math.IsInf(v, 0) {
				t.Fatalf("column %q: infinite value", c.Name)
			}
		}
	}
}
