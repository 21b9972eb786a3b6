package api

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/backpropd/backpropd/internal/store"
)

// FuzzPredictJSON holds the hand-written JSON of the prediction path to
// encoding/json. doc is any document: when it is well formed (the only
// input jsonScan is given), skip consumes exactly one value of the kind
// encoding/json sees, the elements and keys the scanner walks are the ones
// json.Decoder reads, and number agrees with strconv.ParseFloat. label and
// the three floats go through the encoder: appendJSONString is JSON for
// exactly the string json.Marshal would give, and appendPrediction's
// response for a classifier, a binary classifier, a regressor and a
// two-output regressor decodes to exactly the values it was given.
func FuzzPredictJSON(f *testing.F) {
	for _, s := range []struct {
		doc     string
		label   string
		a, b, c float64
	}{
		{`[[5.1,3.5,1.4,0.2]]`, "setosa", 0.97, 0.02, 0.01},
		{`[{"sepal_length":5.1,"petal\u005fwidth":0.2,"\"":1}]`, "", 0, 1, 0.5},
		{` [ 1 , -2.5e-3 , 1e999 , "NaN" , true , null , [ ] , { } ] `, "a\"b\\c", -0.0, 1e308, -1e-308},
		{`{"inputs":[[1,2]],"instances":null,"x":{"a":[1,{"b":"]"}]}}`, "<script>&", 5e-324, 1, 2},
		{`"\ud83d\ude00 \\ \" \/ \b\f\n\r\t"`, "caf\u00e9\x00\x1f", 123456789, 0.1, 0.2},
		{`-0`, "\xff\xfe", 1, 2, 3},
		{`[1,2`, "\u2028", 1, 2, 3},
	} {
		f.Add([]byte(s.doc), s.label, s.a, s.b, s.c)
	}
	served := map[string]*servedModel{}
	for _, kind := range []string{"classifier", "binary", "regressor", "multi"} {
		sm, err := newServedModel(store.ModelMeta{Name: "m-" + kind, Version: 3}, mustTrain(f, kind).model)
		if err != nil {
			f.Fatal(err)
		}
		sm.meta.Task = string(sm.model.Task())
		served[kind] = sm
	}
	f.Fuzz(func(t *testing.T, doc []byte, label string, a, b, c float64) {
		if utf8.Valid(doc) && json.Valid(doc) {
			checkScan(t, doc)
		}
		checkJSONString(t, label)
		if finite(a) && finite(b) && finite(c) {
			checkEncodePrediction(t, served, label, a, b, c)
		}
	})
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// checkScan walks doc, a well-formed JSON document, with jsonScan and
// compares every step with encoding/json.
func checkScan(t *testing.T, doc []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("encoding/json does not decode a valid document %q: %v", doc, err)
	}
	s := jsonScan{b: doc}
	kind := s.skip()
	s.ws()
	if s.i != len(doc) {
		t.Fatalf("skip of %q stopped at byte %d of %d", doc, s.i, len(doc))
	}
	if want := kindOf(v); kind != want {
		t.Fatalf("skip of %q says %s, encoding/json reads %s", doc, kind, want)
	}
	checkNumber(t, doc, v)
	switch v.(type) {
	case []any:
		var want []json.RawMessage
		if err := json.Unmarshal(doc, &want); err != nil {
			t.Fatal(err)
		}
		s := jsonScan{b: doc}
		s.open()
		var got [][]byte
		for first := true; s.more(first); first = false {
			s.ws()
			start := s.i
			s.skip()
			got = append(got, doc[start:s.i])
		}
		if len(got) != len(want) {
			t.Fatalf("scanner walks %d elements of %q, encoding/json %d", len(got), doc, len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("element %d of %q: scanner %q, encoding/json %q", i, doc, got[i], want[i])
			}
			var ev any
			d := json.NewDecoder(bytes.NewReader(want[i]))
			d.UseNumber()
			if err := d.Decode(&ev); err != nil {
				t.Fatal(err)
			}
			checkNumber(t, want[i], ev)
		}
	case map[string]any:
		d := json.NewDecoder(bytes.NewReader(doc))
		if _, err := d.Token(); err != nil { // {
			t.Fatal(err)
		}
		var wantKeys []string
		var wantVals []json.RawMessage
		for d.More() {
			k, err := d.Token()
			if err != nil {
				t.Fatal(err)
			}
			var raw json.RawMessage
			if err := d.Decode(&raw); err != nil {
				t.Fatal(err)
			}
			wantKeys, wantVals = append(wantKeys, k.(string)), append(wantVals, raw)
		}
		s := jsonScan{b: doc}
		s.open()
		var gotKeys []string
		var gotVals [][]byte
		for first := true; s.more(first); first = false {
			gotKeys = append(gotKeys, s.str())
			s.colon()
			s.ws()
			start := s.i
			s.skip()
			gotVals = append(gotVals, doc[start:s.i])
		}
		if !slices.Equal(gotKeys, wantKeys) {
			t.Fatalf("keys of %q: scanner %q, encoding/json %q", doc, gotKeys, wantKeys)
		}
		for i := range gotVals {
			if !bytes.Equal(gotVals[i], wantVals[i]) {
				t.Fatalf("value of %q in %q: scanner %q, encoding/json %q", gotKeys[i], doc, gotVals[i], wantVals[i])
			}
		}
	}
}

// kindOf names the kind of a value decoded with UseNumber, as skip does.
func kindOf(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	default:
		return "a number"
	}
}

// checkNumber reads doc, one value, with jsonScan.number: a number that
// parses to a finite float64 gives that float64 and no message; anything
// else gives a message and is consumed whole.
func checkNumber(t *testing.T, doc []byte, v any) {
	t.Helper()
	s := jsonScan{b: doc}
	got, msg := s.number()
	s.ws()
	if s.i != len(doc) {
		t.Fatalf("number on %q stopped at byte %d of %d", doc, s.i, len(doc))
	}
	n, isNum := v.(json.Number)
	if !isNum {
		if msg == "" {
			t.Fatalf("number on %q, %s, gave %v and no message", doc, kindOf(v), got)
		}
		return
	}
	want, err := strconv.ParseFloat(string(n), 64)
	if err != nil || !finite(want) {
		if msg == "" {
			t.Fatalf("number on %q, out of float64 range, gave %v and no message", doc, got)
		}
		return
	}
	if msg != "" || math.Float64bits(got) != math.Float64bits(want) {
		t.Fatalf("number on %q = %v %q, want %v", doc, got, msg, want)
	}
}

// checkJSONString holds appendJSONString to json.Marshal: both must decode
// to the same string (json.Marshal turns invalid UTF-8 into U+FFFD).
func checkJSONString(t *testing.T, s string) {
	t.Helper()
	got := appendJSONString([]byte("x"), s)
	if got[0] != 'x' {
		t.Fatalf("appendJSONString overwrote what came before")
	}
	var back string
	if err := json.Unmarshal(got[1:], &back); err != nil {
		t.Fatalf("appendJSONString(%q) = %q, not a JSON string: %v", s, got[1:], err)
	}
	ref, _ := json.Marshal(s)
	var want string
	if err := json.Unmarshal(ref, &want); err != nil {
		t.Fatal(err)
	}
	if back != want {
		t.Fatalf("appendJSONString(%q) decodes to %q, json.Marshal's to %q", s, back, want)
	}
}

// encodedPrediction is the /v1 predict response with predictions kept raw.
type encodedPrediction struct {
	ModelName     string            `json:"model_name"`
	ModelVersion  int               `json:"model_version"`
	Predictions   []json.RawMessage `json:"predictions"`
	Probabilities [][]float64       `json:"probabilities"`
	Classes       []string          `json:"classes"`
	Targets       []string          `json:"targets"`
}

// checkEncodePrediction encodes a response for each kind of model from the
// given outputs and checks that it decodes to them exactly (strconv's
// shortest 'g' form round-trips every finite float64).
func checkEncodePrediction(t *testing.T, served map[string]*servedModel, label string, a, b, c float64) {
	t.Helper()
	tests := []struct {
		kind   string
		out    []float64
		labels []string
		rows   int
		// preds are the predictions as encoding/json encodes them; probs
		// the probability rows (classifiers only).
		preds []any
		probs [][]float64
	}{
		{"classifier", []float64{a, b, c}, []string{label}, 1, []any{label}, [][]float64{{a, b, c}}},
		{"binary", []float64{a, b, c}, []string{label, "", label}, 3, []any{label, "", label},
			[][]float64{{1 - a, a}, {1 - b, b}, {1 - c, c}}},
		{"regressor", []float64{a, b, c}, nil, 3, []any{a, b, c}, nil},
		{"multi", []float64{a, b, c, a}, nil, 2, []any{[]float64{a, b}, []float64{c, a}}, nil},
	}
	for _, tc := range tests {
		sm := served[tc.kind]
		body := appendPrediction(nil, sm, tc.out, tc.labels, tc.rows, nil)
		var got encodedPrediction
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%s: the response is not JSON: %v: %s", tc.kind, err, body)
		}
		if got.ModelName != sm.meta.Name || got.ModelVersion != sm.meta.Version {
			t.Fatalf("%s: model %q version %d, want %q %d", tc.kind, got.ModelName, got.ModelVersion, sm.meta.Name, sm.meta.Version)
		}
		if len(got.Predictions) != len(tc.preds) {
			t.Fatalf("%s: %d predictions, want %d: %s", tc.kind, len(got.Predictions), len(tc.preds), body)
		}
		for i, p := range tc.preds {
			want, _ := json.Marshal(p)
			var gv, wv any
			_ = json.Unmarshal(got.Predictions[i], &gv)
			_ = json.Unmarshal(want, &wv)
			gb, _ := json.Marshal(gv)
			wb, _ := json.Marshal(wv)
			if !bytes.Equal(gb, wb) {
				t.Fatalf("%s: prediction %d is %s, want %s", tc.kind, i, got.Predictions[i], want)
			}
		}
		if len(got.Probabilities) != len(tc.probs) {
			t.Fatalf("%s: %d probability rows, want %d", tc.kind, len(got.Probabilities), len(tc.probs))
		}
		for i := range tc.probs {
			if !slices.Equal(got.Probabilities[i], tc.probs[i]) {
				t.Fatalf("%s: probabilities %v, want %v", tc.kind, got.Probabilities[i], tc.probs[i])
			}
		}
		if !slices.Equal(got.Classes, sm.model.Classes()) {
			t.Fatalf("%s: classes %q, want %q", tc.kind, got.Classes, sm.model.Classes())
		}
		if sm.classes == nil && !slices.Equal(got.Targets, sm.model.TargetNames()) {
			t.Fatalf("%s: targets %q, want %q", tc.kind, got.Targets, sm.model.TargetNames())
		}
	}
}
