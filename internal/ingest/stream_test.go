package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/engine"
)

// TestReadJSON: the streaming reader accepts the upload form and names
// where each problem is: a JSON path for the data's meaning, a line and
// column for malformed JSON.
func TestReadJSON(t *testing.T) {
	tests := []struct {
		name, in string
		loc      string // "" means success
	}{
		{"ok", `{"name":"n","features":[[1,2],[3,4]],"targets":[0.5,1.5]}`, ""},
		{"fields in any order, whitespace", "{\n \"targets\": [0.5, 1.5],\n \"features\": [[1, 2], [3, 4]],\n \"name\": \"n\"\n}\n", ""},
		{"unknown field", `{"name":"n","features":[[1,2],[3,4]],"targets":[0.5,1.5],"bogus":1}`, "bogus"},
		{"field twice", `{"name":"n","name":"m","features":[[1]],"targets":[1]}`, "name"},
		{"array cell", `{"features":[[1,2],[3,[4]]],"targets":[1,2]}`, "features[1][1]"},
		{"1e999", `{"features":[[1],[1e999]],"targets":[1,2]}`, "features[1][0]"},
		{"long row", `{"features":[[1,2],[3,4,5]],"targets":[1,2]}`, "features[1]"},
		{"too many cells", `{"features":[[1,2],[3,4],[5,6]],"targets":[1,2,3]}`, "features[2]"},
		{"malformed on line 3", "{\"features\":\n[[1,2],\n[3,,4]],\"targets\":[1,2]}", "line 3, column 4"},
		{"trailing data", `{"features":[[1]],"targets":[1]} {}`, "line 1, column 34"},
		{"not an object", `[1]`, "body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ReadJSON(context.Background(), strings.NewReader(tc.in), JSONOptions{MaxCells: 4 + 1})
			if tc.loc == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(d.X, []float64{1, 2, 3, 4}) || !slices.Equal(d.Targets, []float64{0.5, 1.5}) || d.Meta.Name != "n" {
					t.Fatalf("got %+v", d)
				}
				return
			}
			var ie *Error
			if !errors.As(err, &ie) || ie.Location() != tc.loc {
				t.Fatalf("err = %v, want an *Error at %s", err, tc.loc)
			}
		})
	}
}

// TestChunkedBuffersMatch: a table large enough to span many chunks of
// every size reads back exactly, in CSV and JSON, with the memory its
// Reserve callback granted at least the numbers' size and at most twice
// it plus the target cells and a step.
func TestChunkedBuffersMatch(t *testing.T) {
	const rows, cols = 3000, 50 // 150,000 values: chunks of 256 up to 65,536
	var csv, js strings.Builder
	csv.WriteString(manyColumns(cols) + ",y\n")
	js.WriteString(`{"features":[`)
	want := make([]float64, 0, rows*cols)
	for r := range rows {
		if r > 0 {
			js.WriteByte(',')
		}
		js.WriteByte('[')
		for c := range cols {
			v := float64(r*cols+c) / 4
			want = append(want, v)
			fmt.Fprintf(&csv, "%v,", v)
			if c > 0 {
				js.WriteByte(',')
			}
			fmt.Fprintf(&js, "%v", v)
		}
		fmt.Fprintf(&csv, "%d\n", r)
		js.WriteByte(']')
	}
	js.WriteString(`],"targets":[` + strings.Repeat("1,", rows-1) + `2]}`)
	for _, format := range []string{"csv", "json"} {
		var granted int64
		reserve := func(n int64) error { granted += n; return nil }
		var x []float64
		var err error
		if format == "csv" {
			var d, e = ReadCSV(context.Background(), strings.NewReader(csv.String()), CSVOptions{Reserve: reserve})
			if e == nil {
				x = d.X
			}
			err = e
		} else {
			var d, e = ReadJSON(context.Background(), strings.NewReader(js.String()), JSONOptions{Reserve: reserve})
			if e == nil {
				x = d.X
			}
			err = e
		}
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if !slices.Equal(x, want) {
			t.Errorf("%s: the numbers read back differ", format)
		}
		numbers := int64(8 * len(want))
		if hi := 2*numbers + rows*(cellBytes+8) + 2*meterStep; granted < numbers || granted > hi {
			t.Errorf("%s: reserved %d bytes, want between %d and %d", format, granted, numbers, hi)
		}
	}
}

// TestReserveRefusal: a refused reservation stops the parse with an error
// wrapping ErrMemory and the callback's.
func TestReserveRefusal(t *testing.T) {
	full := errors.New("full")
	in := "a,y\n" + strings.Repeat("1,2\n", 200000)
	_, err := ReadCSV(context.Background(), strings.NewReader(in), CSVOptions{Reserve: func(int64) error { return full }})
	if !errors.Is(err, ErrMemory) || !errors.Is(err, full) {
		t.Fatalf("err = %v, want ErrMemory wrapping the callback's error", err)
	}
}

// TestCSVTargetErrorLines: a target error names the right line after a
// quoted field that spans lines, though rows keep no line each.
func TestCSVTargetErrorLines(t *testing.T) {
	in := "a,b,y\n1,\"x\ny\",1\n2,z,2\n3,w,oops\n"
	_, err := ReadCSV(context.Background(), strings.NewReader(in), CSVOptions{Task: engine.TaskRegression})
	var ie *Error
	if !errors.As(err, &ie) || ie.Line != 5 {
		t.Fatalf("err = %v, want an *Error on line 5", err)
	}
}
