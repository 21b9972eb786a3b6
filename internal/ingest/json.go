package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
)

// JSONData is a dataset given as JSON: in a dataset upload, or inline in a
// job request. Features are rows of numbers. Targets hold one value per
// row: numbers (regression), strings (class labels) or arrays of numbers
// (several target columns).
type JSONData struct {
	FeatureNames []string `json:"feature_names,omitempty"`
	TargetNames  []string `json:"target_names,omitempty"`
	// Task overrides inference: regression, binary or multiclass.
	Task     string            `json:"task,omitempty"`
	Features [][]*float64      `json:"features"`
	Targets  []json.RawMessage `json:"targets"`
}

// Dataset checks the data and converts it. prefix is the JSON path of the
// data in the request ("" or "data"), so errors name fields like
// "data.features[3][1]".
func (j *JSONData) Dataset(name, prefix string) (*store.Dataset, error) {
	path := func(f string) string {
		if prefix == "" {
			return f
		}
		return prefix + "." + f
	}
	task, err := ParseTask(j.Task)
	if err != nil {
		return nil, &Error{Field: path("task"), Message: err.Error()}
	}
	rows := len(j.Features)
	switch {
	case j.Features == nil:
		return nil, &Error{Field: path("features"), Message: "required"}
	case rows == 0:
		return nil, &Error{Field: path("features"), Message: "must hold at least one row"}
	case j.Targets == nil:
		return nil, &Error{Field: path("targets"), Message: "required"}
	case len(j.Targets) != rows:
		return nil, &Error{Field: path("targets"), Message: fmt.Sprintf("has %d values, features has %d rows", len(j.Targets), rows)}
	}
	nf := len(j.Features[0])
	if nf == 0 {
		return nil, &Error{Field: path("features[0]"), Message: "must hold at least one number"}
	}
	if j.FeatureNames != nil && len(j.FeatureNames) != nf {
		return nil, &Error{Field: path("feature_names"), Message: fmt.Sprintf("has %d names, rows have %d features", len(j.FeatureNames), nf)}
	}
	names := j.FeatureNames
	if names == nil {
		names = defaultNames("x", nf)
	}
	if err := checkNames(names, path("feature_names")); err != nil {
		return nil, err
	}
	x := make([]float64, 0, rows*nf)
	for r, row := range j.Features {
		if len(row) != nf {
			return nil, &Error{Field: path(fmt.Sprintf("features[%d]", r)), Message: fmt.Sprintf("has %d values, row 0 has %d", len(row), nf)}
		}
		for c, v := range row {
			if v == nil {
				return nil, &Error{Field: path(fmt.Sprintf("features[%d][%d]", r, c)), Message: "must be a finite number, got null"}
			}
			if math.IsNaN(*v) || math.IsInf(*v, 0) {
				return nil, &Error{Field: path(fmt.Sprintf("features[%d][%d]", r, c)), Message: "must be a finite number"}
			}
			x = append(x, *v)
		}
	}

	t, err := jsonTargets(j.Targets, path)
	if err != nil {
		return nil, err
	}
	tnames := j.TargetNames
	if tnames == nil {
		tnames = []string{"target"}
		if t.k > 1 {
			tnames = defaultNames("y", t.k)
		}
	}
	if len(tnames) != t.k {
		return nil, &Error{Field: path("target_names"), Message: fmt.Sprintf("has %d names, targets have %d columns", len(tnames), t.k)}
	}
	if err := checkNames(tnames, path("target_names")); err != nil {
		return nil, err
	}
	d := &store.Dataset{
		Meta: store.DatasetMeta{Name: name, Rows: rows, Features: nf, FeatureNames: names, TargetNames: tnames},
		X:    x,
	}
	err = assemble(d, task, t, func(row, col int, msg string) *Error {
		f := fmt.Sprintf("targets[%d]", row)
		if t.k > 1 {
			f += fmt.Sprintf("[%d]", col)
		}
		return &Error{Field: path(f), Message: msg}
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// jsonTargets reads the raw target values: all numbers, all strings, or
// all arrays of numbers of one length.
func jsonTargets(raw []json.RawMessage, path func(string) string) (targets, error) {
	kindOf := func(m json.RawMessage) byte {
		b := bytes.TrimSpace(m)
		if len(b) == 0 {
			return 0
		}
		switch c := b[0]; {
		case c == '"':
			return 's'
		case c == '[':
			return 'a'
		case c == '-' || (c >= '0' && c <= '9'):
			return 'n'
		}
		return 0
	}
	at := func(i int, msg string) error {
		return &Error{Field: path(fmt.Sprintf("targets[%d]", i)), Message: msg}
	}
	want := kindOf(raw[0])
	t := targets{k: 1, labels: want == 's'}
	for i, m := range raw {
		k := kindOf(m)
		if k == 0 {
			return t, at(i, fmt.Sprintf("must be a number, a string or an array of numbers, got %s", truncate(string(bytes.TrimSpace(m)))))
		}
		if k != want {
			return t, at(i, "targets must all be numbers, all strings, or all arrays; this one differs from targets[0]")
		}
		switch k {
		case 's':
			var s string
			if err := json.Unmarshal(m, &s); err != nil {
				return t, at(i, "invalid string")
			}
			t.cells = append(t.cells, s)
		case 'n':
			t.cells = append(t.cells, string(bytes.TrimSpace(m)))
		case 'a':
			var a []*float64
			if err := json.Unmarshal(m, &a); err != nil {
				return t, at(i, "must be an array of finite numbers")
			}
			if i == 0 {
				t.k = len(a)
				if t.k == 0 {
					return t, at(0, "must not be empty")
				}
			}
			if len(a) != t.k {
				return t, at(i, fmt.Sprintf("has %d values, targets[0] has %d", len(a), t.k))
			}
			for c, v := range a {
				if v == nil {
					return t, &Error{Field: path(fmt.Sprintf("targets[%d][%d]", i, c)), Message: "must be a finite number, got null"}
				}
				t.cells = append(t.cells, strconv.FormatFloat(*v, 'g', -1, 64))
			}
		}
	}
	return t, nil
}

func defaultNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i+1)
	}
	return out
}

// checkNames applies engine.CheckNames, naming the refused entry of field.
func checkNames(names []string, field string) error {
	var ne *engine.NameError
	if err := engine.CheckNames(names); errors.As(err, &ne) {
		return &Error{Field: fmt.Sprintf("%s[%d]", field, ne.Index), Message: ne.Msg}
	}
	return nil
}
