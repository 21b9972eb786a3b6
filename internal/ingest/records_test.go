package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
	"github.com/backpropd/backpropd/internal/table"
)

func TestReadJSONRecords(t *testing.T) {
	t.Run("pandas records", func(t *testing.T) {
		// As pandas' to_json(orient="records") writes a frame with a
		// blank: NaN as null.
		in := `[{"bill":39.1,"island":"Torgersen","alive":true,"species":"Adelie"},
			{"bill":null,"island":"Biscoe","alive":false,"species":"Gentoo"},
			{"island":"Torgersen","bill":40.3,"species":"Adelie"},
			{"bill":41,"island":"Dream","alive":true,"species":null}]`
		d, err := ReadJSONRecords(context.Background(), strings.NewReader(in), RecordsOptions{Name: "p"})
		if err != nil {
			t.Fatal(err)
		}
		if d.Meta.Rows != 3 || d.Meta.DroppedRows != 1 || !slices.Equal(d.Meta.TargetNames, []string{"species"}) ||
			d.Meta.Task != string(engine.TaskBinary) || !slices.Equal(d.Labels, []string{"Adelie", "Gentoo", "Adelie"}) {
			t.Fatalf("rows %d dropped %d targets %q task %s labels %q", d.Meta.Rows, d.Meta.DroppedRows, d.Meta.TargetNames, d.Meta.Task, d.Labels)
		}
		bill := typedColumn(t, d, "bill")
		if bill.Kind != table.Number || bill.Values[0] != 39.1 || !math.IsNaN(bill.Values[1]) || bill.Values[2] != 40.3 {
			t.Fatalf("bill = %+v", bill)
		}
		if c := typedColumn(t, d, "island"); c.Kind != table.Category || !slices.Equal(c.Levels, []string{"Torgersen", "Biscoe"}) {
			t.Fatalf("island = %+v", c)
		}
		alive := typedColumn(t, d, "alive")
		if alive.Kind != table.Category || !slices.Equal(alive.Levels, []string{"true", "false"}) || alive.Codes[2] != table.Missing {
			t.Fatalf("alive = %+v, want booleans as a category, the absent key missing", alive)
		}
	})
	t.Run("all numbers take the X path", func(t *testing.T) {
		d, err := ReadJSONRecords(context.Background(), strings.NewReader(`[{"a":1,"y":0.5},{"a":2,"y":1.5}]`), RecordsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(d.X, []float64{1, 2}) || !slices.Equal(d.Targets, []float64{0.5, 1.5}) {
			t.Fatalf("X %v targets %v", d.X, d.Targets)
		}
	})
	errTests := []struct {
		name, in string
		opt      RecordsOptions
		field    string
		msg      string
	}{
		{"not an array", `{"a":1}`, RecordsOptions{}, "", "array of records"},
		{"no records", `[]`, RecordsOptions{}, "", "no records"},
		{"a record that is not an object", `[{"a":1,"y":2},[1,2]]`, RecordsOptions{}, "[1]", "must be an object"},
		{"a new key", `[{"a":1,"y":2},{"a":1,"b":2,"y":3}]`, RecordsOptions{}, "[1].b", "not a key of record 0"},
		{"a key twice", `[{"a":1,"a":2,"y":3}]`, RecordsOptions{}, "[0].a", "given twice"},
		{"an object value", `[{"a":{"b":1},"y":3}]`, RecordsOptions{}, "[0].a", "a number, a string, a boolean or null"},
		{"unknown target", `[{"a":1,"y":3}]`, RecordsOptions{Targets: []string{"z"}}, "target", `"z" is not a key`},
		{"text in a declared number", `[{"a":1,"y":"p"},{"a":"x","y":"q"}]`, RecordsOptions{Overrides: Overrides{Numeric: []string{"a"}}}, "[1].a", "declared numeric"},
		{"every target null", `[{"a":1,"y":null}]`, RecordsOptions{}, "y", "every record's target is missing"},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadJSONRecords(context.Background(), strings.NewReader(tc.in), tc.opt)
			var ie *Error
			if !errors.As(err, &ie) || ie.Field != tc.field || !strings.Contains(ie.Message, tc.msg) {
				t.Fatalf("err = %v, want field %q message containing %q", err, tc.field, tc.msg)
			}
		})
	}
}

// FuzzJSONRecords reads arbitrary bytes as an array of records.
// Properties: no panic; a rejection is an *Error with a message; the parse
// allocates at most allocBound(len(in)); an accepted dataset is
// consistent: rows and features positive, and X or every typed column
// Rows cells long.
func FuzzJSONRecords(f *testing.F) {
	for _, s := range []string{
		`[{"a":1,"y":0.5},{"a":2,"y":1.5}]`,
		`[{"bill":39.1,"island":"Torgersen","alive":true,"species":"Adelie"},{"bill":null,"island":"Biscoe","species":"Gentoo"}]`,
		`[{"d":"2024-01-15","y":"p"},{"d":"2024-02-01T10:00:00Z","y":"q"}]`,
		`[{"a":1,"y":null},{"a":2,"y":1},{"a":3,"y":0}]`,
		`[{"a":1,"y":2},{"a":1,"b":2,"y":3}]`,
		`[{"a":{"b":1},"y":3}]`,
		`[{"a":1e999,"y":3}]`,
		`[]`,
		` [ {"a" : "x" , "y" : "p"} ] `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var d *store.Dataset
		var err error
		n := measureAlloc(func() {
			d, err = ReadJSONRecords(context.Background(), bytes.NewReader(in), RecordsOptions{})
		})
		if n > allocBound(len(in)) {
			t.Fatalf("parsing %d bytes allocated %d bytes, more than %d", len(in), n, allocBound(len(in)))
		}
		if err != nil {
			var ie *Error
			if !errors.As(err, &ie) || ie.Message == "" {
				t.Fatalf("err = %v (%T), want an *Error with a message", err, err)
			}
			return
		}
		m := d.Meta
		if m.Rows < 1 || m.Features < 1 || len(m.Columns) < m.Features+len(m.TargetNames) {
			t.Fatalf("rows %d features %d columns %d", m.Rows, m.Features, len(m.Columns))
		}
		if d.Columns == nil && len(d.X) != m.Rows*m.Features {
			t.Fatalf("X has %d values for %d×%d", len(d.X), m.Rows, m.Features)
		}
		for _, c := range d.Columns {
			if c.Len() != m.Rows {
				t.Fatalf("column %s has %d cells for %d rows", c.Name, c.Len(), m.Rows)
			}
		}
		if _, err := json.Marshal(m); err != nil {
			t.Fatalf("the metadata does not encode: %v", err)
		}
	})
}

// TestReadJSONTyped: the object form takes null (missing), strings and
// booleans in features, and declared types as body fields.
func TestReadJSONTyped(t *testing.T) {
	in := `{"name":"t","feature_names":["bill","island","zip"],"categorical":["zip"],
		"features":[[39.1,"Torgersen",2139],[null,"Biscoe",10001],[40.3,true,2139]],"targets":["a","b","a"]}`
	d, err := ReadJSON(context.Background(), strings.NewReader(in), JSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if bill := typedColumn(t, d, "bill"); !math.IsNaN(bill.Values[1]) || bill.Values[2] != 40.3 {
		t.Fatalf("bill = %+v", bill)
	}
	if is := typedColumn(t, d, "island"); is.Kind != table.Category || !slices.Equal(is.Levels, []string{"Torgersen", "Biscoe", "true"}) {
		t.Fatalf("island = %+v", is)
	}
	if zip := typedColumn(t, d, "zip"); zip.Kind != table.Category || !slices.Equal(zip.Levels, []string{"2139", "10001"}) {
		t.Fatalf("zip = %+v", zip)
	}
	if len(d.Meta.Columns) != 4 || d.Meta.Columns[3].Role != table.Target {
		t.Fatalf("columns %+v", d.Meta.Columns)
	}
	t.Run("numbers keep the X path and are summarized", func(t *testing.T) {
		d, err := ReadJSON(context.Background(), strings.NewReader(`{"name":"n","features":[[1],[3]],"targets":[0.5,1.5]}`), JSONOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.X == nil || len(d.Meta.Columns) != 2 || *d.Meta.Columns[0].Mean != 2 {
			t.Fatalf("X %v columns %+v", d.X, d.Meta.Columns)
		}
	})
}

// TestReadJSONDeclaredErrors: a cell of the wrong type in a declared
// column of the object form is named by its path.
func TestReadJSONDeclaredErrors(t *testing.T) {
	in := `{"name":"t","numeric":["x2"],"features":[[1,2],[3,"x"]],"targets":["a","b"]}`
	_, err := ReadJSON(context.Background(), strings.NewReader(in), JSONOptions{})
	var ie *Error
	if !errors.As(err, &ie) || ie.Field != "features[1][1]" || !strings.Contains(ie.Message, "declared numeric") {
		t.Fatalf("err = %v, want features[1][1] declared numeric", err)
	}
}
