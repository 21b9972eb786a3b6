package engine

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/backpropd/backpropd/internal/table"
)

const modelMagic = "BPDMODEL"

// modelFormat is the format version of model files this build writes and
// the newest it reads. Bump it when an older build would misread the new
// files, for example a header field whose absence does not mean what an
// older build does.
//
// Format 2 adds typed inputs (the header's inputs, width and target),
// the preprocessing, class_weight, dropout, input_dropout and l1 settings
// of the configuration and the summary's encoded_width. A model that uses
// none of them is still
// written as format 1, which it is byte for byte, so that the files of
// numeric models stay readable by builds that know only format 1 and a
// decoded format 1 file re-encodes to its input.
//
// Format 3 adds the precision (the configuration's training.precision):
// a float32 model holds its weights and biases as float32, half the
// bytes; the standardization stays float64. A model whose configuration
// has no precision is written as format 1 or 2, as before.
const modelFormat = 3

// maxModelHeader caps the JSON header of a model file: it holds names and
// settings, never weights.
const maxModelHeader = 16 << 20

// modelHeader is the JSON header of a model file. The floats that follow
// are the parameters, layer by layer (weights row-major in×out, then
// biases), then, when Standardized, the shift and then the scale of every
// network input (the names predate minmax scaling: with it they are the
// minimum and the range).
//
// For a model of typed columns, Features and FeatureNames are the input
// columns, Inputs their encoding, Width the number of network inputs
// they encode to (the first layer's In), and Target a classifier's
// target column name.
type modelHeader struct {
	Task         Task        `json:"task"`
	Features     int         `json:"features"`
	Outputs      int         `json:"outputs"`
	FeatureNames []string    `json:"feature_names"`
	TargetNames  []string    `json:"target_names,omitempty"`
	Classes      []string    `json:"classes,omitempty"`
	Layers       []layerSpec `json:"layers"`
	Params       int         `json:"params"`
	Standardized bool        `json:"standardized"`
	Config       Config      `json:"config"`
	Summary      Summary     `json:"summary"`
	Inputs       []inputSpec `json:"inputs,omitempty"`
	Width        int         `json:"width,omitempty"`
	Target       string      `json:"target,omitempty"`
}

// version is the oldest format that holds h.
func (h *modelHeader) version() uint32 {
	if h.Config.Training.Precision != "" {
		return 3
	}
	if h.Inputs != nil || h.Width != 0 || h.Target != "" || h.Summary.EncodedWidth != 0 ||
		h.Config.Preprocessing != nil || h.Config.Training.ClassWeight != nil ||
		h.Config.Network.usesDropout() || h.Config.Training.L1 != 0 {
		return 2
	}
	return 1
}

// inputWidth is the number of network inputs.
func (h *modelHeader) inputWidth() int {
	if h.Inputs != nil {
		return h.Width
	}
	return h.Features
}

func (m *Model) header() modelHeader {
	h := modelHeader{
		Task: m.task, Features: m.features, Outputs: m.outputs,
		FeatureNames: m.featureNames, TargetNames: m.targetNames, Classes: m.classes,
		Layers: m.specs, Params: m.net.numParams(), Standardized: m.mean != nil,
		Config: m.cfg, Summary: m.summary,
		Inputs: m.inputs, Target: m.target,
	}
	if m.inputs != nil {
		h.Width = m.net.inputs()
	}
	return h
}

// MarshalBinary encodes the model in the versioned, checksummed, data-only
// model format (see container.go): a JSON header with the task,
// architecture, names, configuration and summary, then every weight and
// the standardization as raw bits: the weights in the model's precision
// (float32 or float64), the standardization in float64. Decoding the
// result gives a model that encodes to the same bytes.
func (m *Model) MarshalBinary() ([]byte, error) {
	hd := m.header()
	h, err := json.Marshal(hd)
	if err != nil {
		return nil, fmt.Errorf("encode model header: %w", err)
	}
	if m.n64 != nil {
		return encodeContainer(modelMagic, hd.version(), h, m.n64.params, m.mean, m.std), nil
	}
	scale := len(m.mean) + len(m.std)
	count := len(m.n32.params) + scale
	return encodeContainerWith(modelMagic, hd.version(), h, count, 4*len(m.n32.params)+8*scale, func(b []byte) []byte {
		b = appendFloats(b, m.n32.params)
		b = appendFloats(b, m.mean)
		return appendFloats(b, m.std)
	}), nil
}

// DecodeModel decodes a model file, checking its checksum and every size
// against caps before allocating, and checking that the architecture, the
// configuration and the weights agree. Malformed input gives an error,
// never a panic. Only the exact bytes MarshalBinary writes are accepted,
// so a decoded model re-encodes to its input.
func DecodeModel(b []byte) (*Model, error) {
	return decodeModel(b, nil)
}

// ImportModel is DecodeModel for a file from outside the server, held to
// the rules a trained model meets: no more weights and biases than
// lim.MaxParams (when positive), and feature, target and class names that
// CheckNames accepts. Both are checked from the header, before the weights
// are read. A file that breaks them gives an *ImportError.
func ImportModel(b []byte, lim Limits) (*Model, error) {
	return decodeModel(b, func(h *modelHeader) error {
		if lim.MaxParams > 0 && h.Params > lim.MaxParams {
			return &ImportError{Field: "params", Msg: fmt.Sprintf(
				"the model has %d weights and biases; the limit is %d", h.Params, lim.MaxParams)}
		}
		for _, l := range []struct {
			field string
			names []string
		}{{"feature_names", h.FeatureNames}, {"target_names", h.TargetNames}, {"classes", h.Classes}} {
			var ne *NameError
			if err := CheckNames(l.names); errors.As(err, &ne) {
				return &ImportError{Field: fmt.Sprintf("%s[%d]", l.field, ne.Index), Msg: ne.Msg}
			}
		}
		return nil
	})
}

// ImportError is a well-formed model file that ImportModel refuses. Field
// names the header field ("feature_names[3]", "params").
type ImportError struct {
	Field string
	Msg   string
}

// Error returns the field and the message.
func (e *ImportError) Error() string { return e.Field + ": " + e.Msg }

func decodeModel(b []byte, accept func(*modelHeader) error) (*Model, error) {
	raw, values, count, err := decodeContainer("model", modelMagic, modelFormat, b)
	if err != nil {
		return nil, err
	}
	if len(raw) > maxModelHeader {
		return nil, corrupt("model: header of %d bytes exceeds the cap of %d", len(raw), maxModelHeader)
	}
	var h modelHeader
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, corrupt("model header: %v", err)
	}
	if again, err := json.Marshal(h); err != nil || !bytes.Equal(again, raw) {
		return nil, corrupt("model header is not in canonical form")
	}
	if err := h.check(count); err != nil {
		return nil, err
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != h.version() {
		return nil, corrupt("model: a format %d file whose header is of format %d", v, h.version())
	}
	if accept != nil {
		if err := accept(&h); err != nil {
			return nil, err
		}
	}
	n32 := 0
	if h.Config.Training.precision() == Float32 {
		n32 = h.Params
	}
	if err := checkValues("model", values, count, n32); err != nil {
		return nil, err
	}
	var p64 []float64
	var p32 []float32
	var bad int
	if n32 > 0 {
		p32 = readFloats[float32](&values, h.Params)
		bad = firstNonFinite(p32)
	} else {
		p64 = readFloats[float64](&values, h.Params)
		bad = firstNonFinite(p64)
	}
	if bad >= 0 {
		v := 0.0
		if p32 != nil {
			v = float64(p32[bad])
		} else {
			v = p64[bad]
		}
		return nil, corrupt("model: parameter %d is %v", bad, v)
	}
	var mean, std []float64
	if h.Standardized {
		w := h.inputWidth()
		mean = readFloats[float64](&values, w)
		std = readFloats[float64](&values, w)
		for j := range std {
			if !finite(mean[j]) || !finite(std[j]) || !(std[j] > 0) {
				return nil, corrupt("model: standardization of feature %d is mean %v, standard deviation %v", j+1, mean[j], std[j])
			}
		}
	}
	m := newModel(h.Task, h.Config, h.Summary, h.Features, h.FeatureNames, h.TargetNames, h.Classes, mean, std, h.Layers, h.Config.Network.Loss, p64, p32, h.Inputs)
	m.target = h.Target
	return m, nil
}

// check verifies that the header describes a consistent model whose
// floats number count.
func (h *modelHeader) check(count int) error {
	switch h.Task {
	case TaskRegression, TaskBinary, TaskMulticlass:
	default:
		return corrupt("model: unknown task %q", h.Task)
	}
	if h.Features < 1 || h.Features > hardMaxFeatures || h.Outputs < 1 || h.Outputs > hardMaxUnits {
		return corrupt("model: %d features and %d outputs are out of range", h.Features, h.Outputs)
	}
	if len(h.FeatureNames) != h.Features {
		return corrupt("model: %d feature names for %d features", len(h.FeatureNames), h.Features)
	}
	switch {
	case h.Classes != nil:
		if h.Task == TaskRegression || len(h.TargetNames) != 0 {
			return corrupt("model: a %s model with class labels and target names", h.Task)
		}
		want := h.Outputs
		if h.Task == TaskBinary {
			want = 2
			if h.Outputs != 1 {
				return corrupt("model: a binary model with class labels has 1 output, not %d", h.Outputs)
			}
		}
		if len(h.Classes) != want || !slices.IsSorted(h.Classes) || len(slices.Compact(slices.Clone(h.Classes))) != len(h.Classes) {
			return corrupt("model: %d class labels for %d outputs, or not sorted and distinct", len(h.Classes), h.Outputs)
		}
	case h.Task == TaskMulticlass:
		return corrupt("model: a multiclass model without class labels")
	case len(h.TargetNames) != h.Outputs:
		return corrupt("model: %d target names for %d outputs", len(h.TargetNames), h.Outputs)
	}
	if h.Config.Network.Hidden == nil {
		return corrupt("model: the configuration has no hidden layer list")
	}
	if err := h.checkInputs(); err != nil {
		return err
	}
	width := h.inputWidth()
	if err := h.Config.Validate(h.Task, width, h.Outputs, Limits{}); err != nil {
		return corrupt("model: %v", err)
	}
	if !slices.Equal(h.Layers, architecture(h.Config.Network, width, h.Outputs)) {
		return corrupt("model: the layers do not match the configuration")
	}
	want := countParams(h.Layers)
	if h.Params != want {
		return corrupt("model: %d parameters announced, the layers have %d", h.Params, want)
	}
	if h.Standardized {
		want += 2 * width
	}
	if count != want {
		return corrupt("model: %d values present, %d expected", count, want)
	}
	return nil
}

// checkInputs verifies a typed model's input encodings: one per feature
// name, of a known kind, with finite numbers, distinct levels, and the
// width they encode to; and that a model of numeric features has none of
// the typed fields.
func (h *modelHeader) checkInputs() error {
	if h.Inputs == nil {
		if h.Width != 0 || h.Target != "" || h.Summary.EncodedWidth != 0 {
			return corrupt("model: width, target or encoded_width without typed inputs")
		}
		return nil
	}
	if len(h.Inputs) != h.Features {
		return corrupt("model: %d input encodings for %d features", len(h.Inputs), h.Features)
	}
	if h.Classes == nil && h.Target != "" {
		return corrupt("model: a target column name without class labels")
	}
	width := 0
	for j := range h.Inputs {
		s := &h.Inputs[j]
		if s.Name != h.FeatureNames[j] {
			return corrupt("model: input %d is %q, feature name %q", j+1, s.Name, h.FeatureNames[j])
		}
		switch s.Kind {
		case table.Number, table.Datetime:
			if s.Levels != nil || s.MissingLevel || s.Other || s.HasTime && s.Kind == table.Number {
				return corrupt("model: input %d (%s) has fields of another type", j+1, s.Kind)
			}
			if !finite(s.Impute) || s.Min != nil && !finite(*s.Min) || s.Max != nil && !finite(*s.Max) {
				return corrupt("model: input %d has a value that is not finite", j+1)
			}
		case table.Category:
			if s.Impute != 0 || s.Indicator || s.Min != nil || s.Max != nil || s.HasTime {
				return corrupt("model: input %d (category) has fields of another type", j+1)
			}
			if len(s.Levels) > hardMaxUnits || len(slices.Compact(slices.Sorted(slices.Values(s.Levels)))) != len(s.Levels) {
				return corrupt("model: input %d has more than %d levels, or levels that repeat", j+1, hardMaxUnits)
			}
		default:
			return corrupt("model: input %d has unknown type %q", j+1, s.Kind)
		}
		width += s.width()
	}
	if width != h.Width || h.Summary.EncodedWidth != h.Width {
		return corrupt("model: the inputs encode to %d columns; the header says %d (summary %d)", width, h.Width, h.Summary.EncodedWidth)
	}
	return nil
}
