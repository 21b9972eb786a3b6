package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/table"
)

// penguinsIslands decide the class of penguinsLike: each island has one
// species.
var penguinsIslands = map[string]string{"Biscoe": "Gentoo", "Dream": "Chinstrap", "Torgersen": "Adelie"}

// penguinsLike is a typed table shaped like Palmer penguins, from a fixed
// seed: "island" (a category that alone decides "species"; one row holds
// the rare level "Rare", folded into "other" by the default minimum of 5
// rows per level), "bill_length_mm" (a number, every tenth cell missing),
// "date" (a datetime in 2007-2009, days only) and "input" (a number of
// noise, a column that happens to share the /v2 matrix tensor's name).
func penguinsLike(rows int) engine.Data {
	rng := rand.New(rand.NewPCG(5, 6))
	islands := []string{"Biscoe", "Dream", "Torgersen", "Rare"}
	island := table.Column{Name: "island", Kind: table.Category, Levels: islands}
	bill := table.Column{Name: "bill_length_mm", Kind: table.Number}
	date := table.Column{Name: "date", Kind: table.Datetime}
	noise := table.Column{Name: "input", Kind: table.Number}
	d := engine.Data{Rows: rows, Features: 4, TargetNames: []string{"species"}}
	start := time.Date(2007, 11, 9, 0, 0, 0, 0, time.UTC).Unix()
	for i := range rows {
		k := int32(i % 3)
		if i == rows-1 {
			k = 3
		}
		island.Codes = append(island.Codes, k)
		b := 40 + 5*float64(k%3) + rng.NormFloat64()
		if i%10 == 9 {
			b = math.NaN()
		}
		bill.Values = append(bill.Values, b)
		date.Values = append(date.Values, float64(start+int64(rng.IntN(700))*86400))
		noise.Values = append(noise.Values, rng.NormFloat64())
		d.Labels = append(d.Labels, penguinsIslands[islands[k%3]])
	}
	d.Columns = []table.Column{island, bill, date, noise}
	return d
}

// typedEnv is a model server holding the typed classifier as "typed", the
// iris classifier as "iris", and the regressor whose features are named
// "input" and "b" as "inputcol".
func typedEnv(t testing.TB) (*modelEnv, *trainedModel) {
	t.Helper()
	e := newModelEnv(t)
	tm := mustTrain(t, "typed")
	e.putModel("typed", tm)
	e.putModel("iris", mustTrain(t, "classifier"))
	e.putModel("inputcol", mustTrain(t, "inputcol"))
	return e, tm
}

// typedPrediction is the /v1 predict answer of the typed classifier.
type typedPrediction struct {
	Predictions   []string    `json:"predictions"`
	Probabilities [][]float64 `json:"probabilities"`
	Classes       []string    `json:"classes"`
	Warnings      []string    `json:"warnings"`
}

// oracleProbabilities is the engine's own answer for rows of (island,
// bill, date, input) cells, nil for missing: engine.PredictColumns on
// columns built by hand, in the order of the model's classes.
func oracleProbabilities(t *testing.T, m *engine.Model, rows [][4]any) [][]float64 {
	t.Helper()
	cols := []table.Column{
		{Name: "island", Kind: table.Category},
		{Name: "bill_length_mm", Kind: table.Number},
		{Name: "date", Kind: table.Datetime},
		{Name: "input", Kind: table.Number},
	}
	for _, r := range rows {
		if r[0] == nil {
			cols[0].Codes = append(cols[0].Codes, table.Missing)
		} else {
			cols[0].Codes = append(cols[0].Codes, int32(len(cols[0].Levels)))
			cols[0].Levels = append(cols[0].Levels, r[0].(string))
		}
		for j := 1; j < 4; j++ {
			v := math.NaN()
			switch c := r[j].(type) {
			case float64:
				v = c
			case string:
				sec, _, ok := table.ParseDatetime(c)
				if !ok {
					t.Fatalf("oracle: %q is not a date", c)
				}
				v = sec
			}
			cols[j].Values = append(cols[j].Values, v)
		}
	}
	out := make([]float64, len(rows)*m.Outputs())
	if _, err := m.PredictColumns(out, cols); err != nil {
		t.Fatalf("oracle PredictColumns: %v", err)
	}
	var probs [][]float64
	for i := range rows {
		probs = append(probs, out[i*m.Outputs():(i+1)*m.Outputs()])
	}
	return probs
}

func TestPredictTypedRawRows(t *testing.T) {
	e, tm := typedEnv(t)
	// The oracle's rows, and the same rows as objects and as arrays. The
	// third leaves bill_length_mm and date out (objects) or null
	// (arrays); the fourth is all null.
	rows := [][4]any{
		{"Biscoe", 45.0, "2008-03-01", 0.1},
		{"Dream", 50.0, "2009-07-14T10:30:00Z", -1.0},
		{"Torgersen", nil, nil, 0.0},
		{nil, nil, nil, nil},
	}
	want := oracleProbabilities(t, tm.model, rows)
	objects := `{"inputs":[
		{"island":"Biscoe","bill_length_mm":45,"date":"2008-03-01","input":0.1},
		{"date":"2009-07-14T10:30:00Z","island":"Dream","bill_length_mm":50,"input":-1},
		{"island":"Torgersen","input":0},
		{"island":null,"bill_length_mm":null,"date":null,"input":null}]}`
	arrays := `{"instances":[
		["Biscoe",45,"2008-03-01",0.1],
		["Dream",50,"2009-07-14T10:30:00Z",-1],
		["Torgersen",null,null,0],
		[null,null,null,null]]}`
	for name, body := range map[string]string{"objects": objects, "arrays": arrays} {
		t.Run(name, func(t *testing.T) {
			res := e.postJSON(t, "/v1/models/typed/predict", body)
			if res.Status != http.StatusOK {
				t.Fatalf("status %d: %s", res.Status, res.Body)
			}
			var got typedPrediction
			res.JSON(t, &got)
			if len(got.Probabilities) != len(want) {
				t.Fatalf("%d rows of probabilities, want %d", len(got.Probabilities), len(want))
			}
			for i := range want {
				// Exact: the same engine call, and the JSON numbers are
				// shortest round-trip encodings.
				if !slices.Equal(got.Probabilities[i], want[i]) {
					t.Errorf("row %d: probabilities %v, want the engine's %v", i, got.Probabilities[i], want[i])
				}
			}
			// The island alone decides the species in the training data.
			for i, isl := range []string{"Biscoe", "Dream", "Torgersen"} {
				if got.Predictions[i] != penguinsIslands[isl] {
					t.Errorf("row %d (%s): predicted %q, want %q", i, isl, got.Predictions[i], penguinsIslands[isl])
				}
			}
			if len(got.Warnings) != 0 {
				t.Errorf("warnings %q for rows of kept levels only", got.Warnings)
			}
		})
	}
}

func TestPredictTypedUnseenLevel(t *testing.T) {
	e, tm := typedEnv(t)
	// "Atlantis" was never seen and "Rare" was folded into other in
	// training: both are counted, and predicted as other.
	res := e.postJSON(t, "/v1/models/typed/predict",
		`{"inputs":[{"island":"Atlantis"},{"island":"Biscoe"},{"island":"Rare"}]}`)
	if res.Status != http.StatusOK {
		t.Fatalf("status %d: %s", res.Status, res.Body)
	}
	var got typedPrediction
	res.JSON(t, &got)
	if len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], `column "island": 2 of 3 rows`) {
		t.Fatalf("warnings %q, want one naming island with 2 of 3 rows", got.Warnings)
	}
	want := oracleProbabilities(t, tm.model, [][4]any{{"Atlantis", nil, nil, nil}, {"Biscoe", nil, nil, nil}, {"other level", nil, nil, nil}})
	if !slices.Equal(got.Probabilities[0], want[0]) || !slices.Equal(got.Probabilities[2], want[2]) {
		t.Errorf("unseen rows %v and %v; want both as the engine's other level %v", got.Probabilities[0], got.Probabilities[2], want[0])
	}
}

func TestPredictTypedBadCells(t *testing.T) {
	e, _ := typedEnv(t)
	tests := []struct {
		name, body string
		field      string // the error's field: row and column
		msg        string
	}{
		{"string in a number column", `{"inputs":[{"island":"Dream"},{"bill_length_mm":"45"}]}`,
			"inputs[1].bill_length_mm", `column "bill_length_mm" is a number column: the cell must be a finite number or null, not a string`},
		{"boolean in a number column", `{"inputs":[[null,true,null,null]]}`,
			"inputs[0][1]", `column "bill_length_mm" is a number column`},
		{"number in a datetime column", `{"inputs":[{"date":20080301}]}`,
			"inputs[0].date", `column "date" is a datetime column: the cell must be a date string`},
		{"date that does not parse", `{"inputs":[[null,null,"01/03/2008",null]]}`,
			"inputs[0][2]", `"01/03/2008" is not a date`},
		{"array in a category column", `{"inputs":[{"island":["Dream"]}]}`,
			"inputs[0].island", `column "island" is a category column: the cell must be a level (a string) or null, not an array`},
		{"overflowing number", `{"inputs":[{"input":1e999}]}`,
			"inputs[0].input", "out of range"},
		{"unknown column", `{"inputs":[{"island":"Dream","flipper":1}]}`,
			"inputs[0].flipper", "unknown column; the model's input columns are island, bill_length_mm, date, input"},
		{"target column", `{"inputs":[{"species":"Gentoo"}]}`,
			"inputs[0].species", "is the target column"},
		{"column twice", `{"inputs":[{"island":"Dream","island":"Biscoe"}]}`,
			"inputs[0].island", "given more than once"},
		{"short array row", `{"inputs":[["Dream",45]]}`,
			"inputs[0]", "has 2 values; the model takes 4 input columns"},
		{"row of a number", `{"inputs":[7]}`,
			"inputs[0]", "must be an array of 4 cells or an object keyed by input column name, not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := e.postJSON(t, "/v1/models/typed/predict", tt.body)
			if res.Status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", res.Status, res.Body)
			}
			var p Problem
			res.JSON(t, &p)
			found := false
			for _, fe := range p.Errors {
				found = found || fe.Field == tt.field && strings.Contains(fe.Message, tt.msg)
			}
			if !found {
				t.Errorf("no error for %s containing %q: %s", tt.field, tt.msg, res.Body)
			}
		})
	}
	t.Run("20 errors at most", func(t *testing.T) {
		rows := strings.TrimSuffix(strings.Repeat(`{"bill_length_mm":"x"},`, 50), ",")
		res := e.postJSON(t, "/v1/models/typed/predict", `{"inputs":[`+rows+`]}`)
		var p Problem
		res.JSON(t, &p)
		if res.Status != http.StatusBadRequest || len(p.Errors) != maxFieldErrors || !strings.Contains(p.Detail, "not listed") {
			t.Errorf("status %d with %d errors (%s), want 400 with %d and a note", res.Status, len(p.Errors), p.Detail, maxFieldErrors)
		}
	})
}

// TestPredictTypedLargeCell: a 1 MB cell (under the default 8 MiB request
// limit) is a category level never seen, or a date that does not parse;
// neither answer echoes it.
func TestPredictTypedLargeCell(t *testing.T) {
	e, _ := typedEnv(t)
	big := strings.Repeat("x", 1<<20)
	res := e.postJSON(t, "/v1/models/typed/predict", `{"inputs":[{"island":"`+big+`"}]}`)
	if res.Status != http.StatusOK || len(res.Body) > 4096 || !strings.Contains(string(res.Body), `column \"island\": 1 of 1 rows`) {
		t.Errorf("category: status %d, %d bytes: %.300s; want 200 with an unseen-level warning", res.Status, len(res.Body), res.Body)
	}
	res = e.postJSON(t, "/v1/models/typed/predict", `{"inputs":[{"date":"`+big+`"}]}`)
	if res.Status != http.StatusBadRequest || len(res.Body) > 4096 || !strings.Contains(string(res.Body), "inputs[0].date") {
		t.Errorf("datetime: status %d, %d bytes: %.300s; want a short 400 naming inputs[0].date", res.Status, len(res.Body), res.Body)
	}
}

// TestNumericPredictUnchanged: a model of numeric features still refuses
// null and absent features, which a typed model takes as missing.
func TestNumericPredictUnchanged(t *testing.T) {
	e, _ := typedEnv(t)
	for body, field := range map[string]string{
		`{"inputs":[[5.1,null,1.4,0.2]]}`:                                        "inputs[0][1]",
		`{"inputs":[{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4}]}`: "inputs[0].petal_width",
	} {
		res := e.postJSON(t, "/v1/models/iris/predict", body)
		if res.Status != http.StatusBadRequest || !strings.Contains(string(res.Body), field) {
			t.Errorf("%s: status %d %s, want 400 naming %s", body, res.Status, res.Body, field)
		}
	}
}

// modelMetaJSON is the metadata answer, decoded as a client would.
type modelMetaJSON struct {
	Target       string `json:"target"`
	EncodedWidth int    `json:"encoded_width"`
	Inputs       []struct {
		Name   string   `json:"name"`
		Type   string   `json:"type"`
		Levels []string `json:"levels"`
		Range  *struct {
			Min, Max json.RawMessage
		} `json:"range"`
		Nullable          bool `json:"nullable"`
		MissingInTraining bool `json:"missing_in_training"`
	} `json:"inputs"`
}

// formField is what a form needs for one input: a label, a control (a
// select of levels, a number field with bounds, or a date field with
// bounds) and whether the field may be left blank.
type formField struct {
	label, control string
	options        []string
	min, max       string
	required       bool
}

// buildForm builds a form from model metadata, failing on any input that
// lacks what its control needs.
func buildForm(t *testing.T, meta modelMetaJSON) []formField {
	t.Helper()
	var form []formField
	for _, in := range meta.Inputs {
		f := formField{label: in.Name, required: !in.Nullable}
		switch in.Type {
		case "category":
			if len(in.Levels) == 0 {
				t.Errorf("input %s: a category without levels has no options", in.Name)
			}
			f.control, f.options = "select", in.Levels
		case "number", "datetime":
			f.control = in.Type
			if in.Range != nil {
				f.min, f.max = string(in.Range.Min), string(in.Range.Max)
			}
			if in.Type == "datetime" {
				var lo, hi time.Time
				if in.Range == nil || json.Unmarshal(in.Range.Min, &lo) != nil || json.Unmarshal(in.Range.Max, &hi) != nil || hi.Before(lo) {
					t.Errorf("input %s: a datetime needs an RFC 3339 range, got %+v", in.Name, in.Range)
				}
			}
		default:
			t.Errorf("input %s: type %q has no control", in.Name, in.Type)
		}
		form = append(form, f)
	}
	return form
}

func TestModelMetadataInputs(t *testing.T) {
	e, tm := typedEnv(t)
	for _, target := range []string{"/v1/models/typed", "/v1/models/typed/versions/1"} {
		t.Run(target, func(t *testing.T) {
			res := e.get(t, target)
			if res.Status != http.StatusOK {
				t.Fatalf("status %d: %s", res.Status, res.Body)
			}
			var meta modelMetaJSON
			res.JSON(t, &meta)
			if meta.Target != "species" || meta.EncodedWidth != tm.model.EncodedWidth() {
				t.Errorf("target %q, encoded width %d; want species and the engine's %d", meta.Target, meta.EncodedWidth, tm.model.EncodedWidth())
			}
			form := buildForm(t, meta)
			var names []string
			for _, f := range form {
				names = append(names, f.label+":"+f.control)
				if f.required {
					t.Errorf("field %s is required; every input of a typed model may be missing", f.label)
				}
			}
			if want := []string{"island:select", "bill_length_mm:number", "date:datetime", "input:number"}; !slices.Equal(names, want) {
				t.Errorf("form %v, want %v", names, want)
			}
			// Kept levels: the three islands, in training order; "Rare"
			// (one row, under the default minimum of 5) is folded into other.
			if got := form[0].options; !slices.Equal(got, []string{"Biscoe", "Dream", "Torgersen"}) {
				t.Errorf("island levels %v, want Biscoe, Dream, Torgersen", got)
			}
			// penguinsLike's dates start on 2007-11-09 and span fewer than
			// 700 days.
			if !strings.HasPrefix(form[2].min, `"2007-11-`) || !strings.HasPrefix(form[2].max, `"2009-`) {
				t.Errorf("date range %s … %s, want from 2007-11 into 2009", form[2].min, form[2].max)
			}
			if !meta.Inputs[1].MissingInTraining || meta.Inputs[3].MissingInTraining {
				t.Errorf("missing in training: bill %v, input %v; want true (every tenth cell) and false",
					meta.Inputs[1].MissingInTraining, meta.Inputs[3].MissingInTraining)
			}
		})
	}
	t.Run("numeric model", func(t *testing.T) {
		res := e.get(t, "/v1/models/iris")
		var meta modelMetaJSON
		res.JSON(t, &meta)
		form := buildForm(t, meta)
		if len(form) != 4 || meta.EncodedWidth != 4 || form[0].label != "sepal_length" || !form[0].required {
			t.Errorf("form %+v, width %d; want the 4 iris features as required number fields", form, meta.EncodedWidth)
		}
	})
}

// v2Answer is the /v2 infer answer, decoded.
type v2Answer struct {
	Parameters map[string]any `json:"parameters"`
	Outputs    []struct {
		Name  string          `json:"name"`
		Shape []int           `json:"shape"`
		Data  json.RawMessage `json:"data"`
	} `json:"outputs"`
	Error string `json:"error"`
}

func (a v2Answer) output(t *testing.T) []float64 {
	t.Helper()
	for _, o := range a.Outputs {
		if o.Name == "output" {
			var v []float64
			if err := json.Unmarshal(o.Data, &v); err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no output tensor in %+v", a)
	return nil
}

func TestV2TypedColumns(t *testing.T) {
	e, tm := typedEnv(t)
	rows := [][4]any{{"Biscoe", 45.0, "2008-03-01", 0.1}, {"Atlantis", nil, nil, -1.0}}
	want := slices.Concat(oracleProbabilities(t, tm.model, rows)...)
	// The column named "input" is 1-D here: a column, not the matrix.
	body := `{"inputs":[
		{"name":"date","shape":[2],"datatype":"BYTES","data":["2008-03-01",null]},
		{"name":"island","shape":[2],"datatype":"BYTES","data":["Biscoe","Atlantis"]},
		{"name":"input","shape":[2],"datatype":"FP32","data":[0.1,-1]},
		{"name":"bill_length_mm","shape":[2],"datatype":"INT32","data":[45,null]}]}`
	res := e.postJSON(t, "/v2/models/typed/infer", body)
	if res.Status != http.StatusOK {
		t.Fatalf("status %d: %s", res.Status, res.Body)
	}
	var got v2Answer
	res.JSON(t, &got)
	if out := got.output(t); !slices.Equal(out, want) {
		t.Errorf("output %v, want the engine's %v", out, want)
	}
	if w, _ := got.Parameters["warnings"].(string); !strings.Contains(w, `column "island": 1 of 2 rows`) {
		t.Errorf("parameters %v, want a warnings string naming island", got.Parameters)
	}

	t.Run("metadata", func(t *testing.T) {
		res := e.get(t, "/v2/models/typed")
		var meta v2ModelMetadataBody
		res.JSON(t, &meta)
		var got []string
		for _, in := range meta.Inputs {
			got = append(got, fmt.Sprintf("%s %s %v", in.Name, in.Datatype, in.Shape))
		}
		want := []string{"island BYTES [-1]", "bill_length_mm FP64 [-1]", "date BYTES [-1]", "input FP64 [-1]"}
		if !slices.Equal(got, want) {
			t.Errorf("inputs %v, want %v", got, want)
		}
	})

	bad := []struct{ name, body, want string }{
		{"the 2-D matrix", `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]}]}`,
			"inputs[0].shape: a column's tensor is 1-D, [rows]; got 2 dimensions"},
		{"category as FP64", `{"inputs":[{"name":"island","shape":[1],"datatype":"FP64","data":[1]}]}`,
			`inputs[0].datatype: column "island" is a category column: send it as BYTES`},
		{"number as BYTES", `{"inputs":[{"name":"input","shape":[1],"datatype":"BYTES","data":["1"]}]}`,
			`inputs[0].datatype: column "input" is a number column`},
		{"missing column", `{"inputs":[{"name":"island","shape":[1],"datatype":"BYTES","data":["Dream"]}]}`,
			`inputs: has no tensor for column "bill_length_mm"`},
		{"unknown column", `{"inputs":[{"name":"flipper","shape":[1],"datatype":"FP64","data":[1]}]}`,
			`inputs[0].name: the model has no input column "flipper"`},
		{"bad date", typedV2(`"2008-02-30"`),
			`inputs[2].data[0]: column "date" is a datetime column: "2008-02-30" is not a date`},
		{"rows disagree", strings.Replace(typedV2(`"2008-03-01"`), `"shape":[1],"datatype":"FP64","data":[0]`, `"shape":[2],"datatype":"FP64","data":[0,0]`, 1),
			"inputs[3].shape[0]: is 2; the first tensor has 1 rows"},
		{"INT8 out of range", strings.Replace(typedV2(`"2008-03-01"`), `"datatype":"FP64","data":[45]`, `"datatype":"INT8","data":[450]`, 1),
			`inputs[1].data[0]: column "bill_length_mm": 450 is out of INT8 range`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			res := e.postJSON(t, "/v2/models/typed/infer", tt.body)
			var got v2Answer
			res.JSON(t, &got)
			if res.Status != http.StatusBadRequest || !strings.Contains(got.Error, tt.want) {
				t.Errorf("status %d %q, want 400 containing %q", res.Status, got.Error, tt.want)
			}
		})
	}
}

// typedV2 is a one-row /v2 request for the typed model with date cell d.
func typedV2(d string) string {
	return `{"inputs":[{"name":"island","shape":[1],"datatype":"BYTES","data":["Dream"]},
		{"name":"bill_length_mm","shape":[1],"datatype":"FP64","data":[45]},
		{"name":"date","shape":[1],"datatype":"BYTES","data":[` + d + `]},
		{"name":"input","shape":[1],"datatype":"FP64","data":[0]}]}`
}

// TestV2NumericColumns: a model of numeric features takes the 2-D "input"
// matrix and, equally, one 1-D tensor per feature, even when a feature is
// itself named "input".
func TestV2NumericColumns(t *testing.T) {
	e, _ := typedEnv(t)
	infer := func(t *testing.T, model, body string) []float64 {
		t.Helper()
		res := e.postJSON(t, "/v2/models/"+model+"/infer", body)
		if res.Status != http.StatusOK {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		var a v2Answer
		res.JSON(t, &a)
		return a.output(t)
	}
	matrix := infer(t, "inputcol", `{"inputs":[{"name":"input","shape":[2,2],"datatype":"FP64","data":[[0.5,-0.25],[1,0]]}]}`)
	columns := infer(t, "inputcol", `{"inputs":[{"name":"b","shape":[2],"datatype":"FP64","data":[-0.25,0]},
		{"name":"input","shape":[2],"datatype":"FP32","data":[0.5,1]}]}`)
	if len(matrix) != 2 || !slices.Equal(matrix, columns) {
		t.Errorf("per-column outputs %v, want the matrix's %v", columns, matrix)
	}
	res := e.postJSON(t, "/v2/models/inputcol/infer", `{"inputs":[{"name":"input","shape":[2],"datatype":"FP64","data":[0.5,1]}]}`)
	if res.Status != http.StatusBadRequest || !strings.Contains(string(res.Body), `has no tensor for column \"b\"`) {
		t.Errorf("the column input alone: %d %s, want 400 naming the missing column b", res.Status, res.Body)
	}
	iris := infer(t, "iris", `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP64","data":[5.1,3.5,1.4,0.2]}]}`)
	irisCols := infer(t, "iris", `{"inputs":[{"name":"sepal_length","shape":[1],"datatype":"FP64","data":[5.1]},
		{"name":"sepal_width","shape":[1],"datatype":"FP64","data":[3.5]},{"name":"petal_length","shape":[1],"datatype":"FP64","data":[1.4]},
		{"name":"petal_width","shape":[1],"datatype":"FP64","data":[0.2]}]}`)
	if !slices.Equal(iris, irisCols) {
		t.Errorf("iris per column %v, want the matrix's %v", irisCols, iris)
	}
}

// TestPredictTypedBounds: typed rows are counted before anything per row
// is allocated: more than --max-predict-rows is a 400, and the memory
// reserved is that of numeric rows, PredictMemory(rows) plus rows ×
// (inputs + outputs) × 8 bytes, a 503 when it does not fit, on /v1 and
// /v2.
func TestPredictTypedBounds(t *testing.T) {
	tm := mustTrain(t, "typed")
	m := tm.model
	const rows = 3
	need := m.PredictMemory(rows) + 8*rows*int64(m.Features()+m.Outputs())
	v1 := `{"inputs":[{"island":"Dream"},["Biscoe",45,"2008-03-01",0],{}]}`
	v2 := `{"inputs":[{"name":"island","shape":[3],"datatype":"BYTES","data":["Dream","Biscoe",null]},
		{"name":"bill_length_mm","shape":[3],"datatype":"FP64","data":[null,45,null]},
		{"name":"date","shape":[3],"datatype":"BYTES","data":[null,"2008-03-01",null]},
		{"name":"input","shape":[3],"datatype":"FP64","data":[null,0,null]}]}`
	for _, tc := range []struct {
		name, path, body string
		free             int64
		maxRows          int
		status           int
		want             string
	}{
		{"v1 fits", "/v1/models/typed/predict", v1, need, 0, http.StatusOK, ""},
		{"v1 one byte short", "/v1/models/typed/predict", v1, need - 1, 0, http.StatusServiceUnavailable, "at its memory budget"},
		{"v2 fits", "/v2/models/typed/infer", v2, need, 0, http.StatusOK, ""},
		{"v2 one byte short", "/v2/models/typed/infer", v2, need - 1, 0, http.StatusServiceUnavailable, "at its memory budget"},
		{"v1 over the row limit", "/v1/models/typed/predict", v1, need, 2, http.StatusBadRequest, "more than 2 rows"},
		{"v2 over the row limit", "/v2/models/typed/infer", v2, need, 2, http.StatusBadRequest, "3 rows exceed the limit of 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newModelEnv(t)
			e.putModel("typed", tm)
			budget := &fakeReserver{free: tc.free}
			srv := New(Options{Store: e.store, Jobs: e.jobs, Config: Config{Memory: budget, MaxPredictRows: tc.maxRows}})
			res := doRaw(t, srv.Handler(), http.MethodPost, tc.path, jsonCT, []byte(tc.body))
			if res.Status != tc.status || !strings.Contains(string(res.Body), tc.want) {
				t.Fatalf("status %d, want %d with %q: %s", res.Status, tc.status, tc.want, res.Body)
			}
			if tc.maxRows > 0 {
				if len(budget.asked) != 0 {
					t.Errorf("reserved %v for a request over the row limit", budget.asked)
				}
				return
			}
			if len(budget.asked) != 1 || budget.asked[0] != need {
				t.Errorf("reserved %v, want [%d]", budget.asked, need)
			}
			if budget.free != tc.free {
				t.Errorf("%d bytes free after the request, want all %d back", budget.free, tc.free)
			}
		})
	}
}

// TestModelMetadataOfUnloadableFile: the stored metadata of a model whose
// file does not load is still served, without the inputs that come from
// the file.
func TestModelMetadataOfUnloadableFile(t *testing.T) {
	e := newModelEnv(t)
	tm := mustTrain(t, "classifier")
	meta := importedMeta("broken", tm.model)
	if _, err := e.store.PutModel(context.Background(), meta, tm.file[:len(tm.file)/2]); err != nil {
		t.Fatalf("PutModel: %v", err)
	}
	res := e.get(t, "/v1/models/broken")
	var got map[string]any
	res.JSON(t, &got)
	if _, has := got["inputs"]; res.Status != http.StatusOK || has || got["name"] != "broken" {
		t.Errorf("status %d %s, want 200 with the stored metadata and no inputs", res.Status, res.Body)
	}
}
