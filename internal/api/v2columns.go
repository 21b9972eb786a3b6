package api

import (
	"strconv"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/table"
)

// v2IsMatrix reports whether a /v2 request for sm's model of numeric
// features is read as the single 2-D "input" tensor rather than as one 1-D
// tensor per column: it is, unless it has tensors and each is named after
// a feature and is not 2-D "input" (a feature may be named "input"). A
// request that is neither gets the matrix's errors.
func v2IsMatrix(inputs []v2InferInput, sm *servedModel) bool {
	if len(inputs) == 0 || len(inputs) == 1 && inputs[0].Name == v2Input && len(inputs[0].Shape) == 2 {
		return true
	}
	for _, in := range inputs {
		if _, ok := sm.featureIndex[in.Name]; !ok {
			return true
		}
	}
	return false
}

// v2InputTensors are the input tensors model metadata lists for sm: one
// per input column for a typed model (BYTES for categories and
// date-times, FP64 for numbers, shape [-1]), the 2-D "input" tensor for a
// model of numeric features.
func v2InputTensors(sm *servedModel) []v2Tensor {
	if !sm.typed {
		return []v2Tensor{{Name: v2Input, Datatype: "FP64", Shape: []int{-1, sm.model.Features()}}}
	}
	out := make([]v2Tensor, len(sm.inputs))
	for j, in := range sm.inputs {
		out[j] = v2Tensor{Name: in.Name, Datatype: v2ColumnDatatype(in.Kind), Shape: []int{-1}}
	}
	return out
}

// v2ColumnDatatype is the tensor datatype of an input column of kind k.
func v2ColumnDatatype(k table.Kind) string {
	if k == table.Number {
		return "FP64"
	}
	return "BYTES"
}

// v2DecodeColumns reads a /v2 request of one 1-D tensor per input column,
// each named after its column and all of one length, the rows: for a
// typed model into the columns buf.columns makes (null is a missing cell), for
// a model of numeric features row-major into buf.x. Every tensor's name,
// datatype and shape is checked, and its row count bounded by bodyLen
// and limit, before anything is allocated for the rows.
func v2DecodeColumns(inputs []v2InferInput, sm *servedModel, bodyLen, limit int, buf *predictBuffers) (int, error) {
	features := len(sm.names)
	// Sized by the request, not the model: a model may have a million
	// features.
	order := make([]int, len(inputs)) // tensor i is input column order[i]
	given := make(map[int]bool, len(inputs))
	rows := int64(-1)
	for i, in := range inputs {
		at := "inputs[" + strconv.Itoa(i) + "]"
		j, ok := sm.featureIndex[in.Name]
		switch {
		case !ok:
			return 0, invalidField(at+".name", "the model has no input column %s; its input columns are %s",
				engine.QuoteName(in.Name), sm.featureList)
		case given[j]:
			return 0, invalidField(at+".name", "column %s is given more than once", engine.QuoteName(in.Name))
		}
		given[j], order[i] = true, j
		kind := table.Number
		if sm.typed {
			kind = sm.inputs[j].Kind
		}
		want := v2ColumnDatatype(kind)
		if _, number := v2Datatypes[in.Datatype]; kind == table.Number && !number || kind != table.Number && in.Datatype != "BYTES" {
			types := "FP64, FP32 or an integer type (INT8…INT64, UINT8…UINT64)"
			if kind != table.Number {
				types = want
			}
			return 0, invalidField(at+".datatype", "column %s is a %s column: send it as %s, not %q",
				engine.QuoteName(in.Name), kind, types, in.Datatype)
		}
		if len(in.Shape) != 1 {
			return 0, invalidField(at+".shape", "a column's tensor is 1-D, [rows]; got %d dimensions", len(in.Shape))
		}
		n := in.Shape[0]
		switch {
		case n < 1:
			return 0, invalidField(at+".shape[0]", "must be at least 1 row; got %d", n)
		case n > int64(limit):
			return 0, invalidField(at+".shape[0]",
				"%d rows exceed the limit of %d per request (--max-predict-rows); split the request", n, limit)
		case rows >= 0 && n != rows:
			return 0, invalidField(at+".shape[0]", "is %d; the first tensor has %d rows", n, rows)
		case isAbsent(in.Data):
			return 0, invalidField(at+".data", "is required")
		}
		rows = n
	}
	for j := 0; len(given) < features; j++ {
		if !given[j] {
			return 0, invalidField("inputs", "has no tensor for column %s; give one tensor per input column (%s)",
				engine.QuoteName(sm.names[j]), sm.featureList)
		}
	}
	// Every element takes at least two bytes of JSON ("1,"), the last one
	// byte.
	if rows*int64(features) > int64(bodyLen/2)+1 {
		return 0, invalidField("inputs", "%d rows of %d columns are more elements than the data can hold", rows, features)
	}
	var cols []table.Column
	if sm.typed {
		var err error
		if cols, err = buf.columns(int(rows)); err != nil {
			return 0, err
		}
	} else {
		buf.x = grow(buf.x, int(rows)*features)
	}
	var cells *cellReader
	if sm.typed {
		cells = newCellReader(sm, cols)
	}
	for i, in := range inputs {
		if err := v2DecodeColumn(in, i, order[i], int(rows), features, cells, buf.x); err != nil {
			return 0, err
		}
	}
	return int(rows), nil
}

// v2DecodeColumn reads tensor i, input column j, flat [rows] data: into
// cells for a typed model, otherwise (cells nil) into column j of the
// row-major x.
func v2DecodeColumn(in v2InferInput, i, j, rows, features int, cells *cellReader, x []float64) error {
	field := "inputs[" + strconv.Itoa(i) + "].data"
	s := jsonScan{b: in.Data}
	if s.peek() != '[' {
		return invalidField(field, "must be an array, not %s", s.skip())
	}
	s.open()
	n := 0
	for first := true; s.more(first); first = false {
		if n >= rows {
			s.skip()
			n++
			continue
		}
		path := field + "[" + strconv.Itoa(n) + "]"
		if s.peek() == '[' {
			return invalidField(path, "must be a cell; a column's data is flat, [rows]")
		}
		if cells != nil {
			if msg := cells.read(&s, j, n, in.Datatype); msg != "" {
				return invalidField(path, "%s", msg)
			}
		} else {
			v, msg := s.number()
			if msg != "" {
				return invalidField(path, "%s", msg)
			}
			if msg := checkDatatype(v, in.Datatype, v2Datatypes[in.Datatype]); msg != "" {
				return invalidField(path, "%s", msg)
			}
			x[n*features+j] = v
		}
		n++
	}
	if n != rows {
		return invalidField(field, "has %d elements; the shape [%d] needs %d", n, rows, rows)
	}
	return nil
}
