package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// The /v2 routes speak the Open Inference Protocol's HTTP/REST binding (the
// "V2" protocol of KServe, Triton and Seldon; ../shared/specs), so that their
// clients can call backpropd unchanged. A model takes one input tensor per
// input column, named after it, of shape [rows]: BYTES for categories and
// date-times, a number type for numbers (v2DecodeColumns). A model of
// numeric features also takes them as one 2-D tensor, "input" ([rows,
// features]), told apart from a column named "input" by its two
// dimensions. The output tensors are "output"
// ([rows, outputs], FP64: class probabilities for classifiers, values for
// regression) and, for classifiers, "label" ([rows], BYTES). Errors are the
// protocol's {"error": "..."} objects, not problem+json.

// v2Platform is the "platform" of every model in model metadata.
const v2Platform = "backpropd"

// Tensor names.
const (
	v2Input  = "input"
	v2Output = "output"
	v2Label  = "label"
)

// v2ServerMetadataBody is $metadata_server_response.
type v2ServerMetadataBody struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}

func (s *Server) v2ServerMetadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, v2ServerMetadataBody{Name: "backpropd", Version: s.cfg.Version,
		Extensions: []string{}})
}

// v2LiveBody is $live_server_response.
type v2LiveBody struct {
	Live bool `json:"live"`
}

func (s *Server) v2Live(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, v2LiveBody{Live: true})
}

// v2ReadyBody is the server ready response. The protocol's prose shows
// {"live": bool} here, evidently copied from the live response; KServe and
// the protocol's gRPC binding call the field "ready", and so do we. Probes
// go by the status: 200 ready, 503 not.
type v2ReadyBody struct {
	Ready bool `json:"ready"`
}

func (s *Server) v2Ready(w http.ResponseWriter, r *http.Request) {
	if err := s.readiness(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, v2ReadyBody{Ready: false})
		return
	}
	writeJSON(w, http.StatusOK, v2ReadyBody{Ready: true})
}

// v2Tensor is $metadata_tensor.
type v2Tensor struct {
	Name     string `json:"name"`
	Datatype string `json:"datatype"`
	Shape    []int  `json:"shape"`
}

// v2ModelMetadataBody is $metadata_model_response.
type v2ModelMetadataBody struct {
	Name       string            `json:"name"`
	Versions   []string          `json:"versions"`
	Platform   string            `json:"platform"`
	Inputs     []v2Tensor        `json:"inputs"`
	Outputs    []v2Tensor        `json:"outputs"`
	Properties map[string]string `json:"properties,omitempty"`
}

// v2ModelMetadata serves GET /v2/models/{name}[/versions/{version}]. The
// versions listed are all stored versions of the name.
func (s *Server) v2ModelMetadata(w http.ResponseWriter, r *http.Request) {
	name, version, err := modelRef(r)
	if err != nil {
		s.v2WriteError(w, r, err)
		return
	}
	sm, err := s.servedModel(r, name, version)
	if err != nil {
		s.v2WriteError(w, r, err)
		return
	}
	versions, err := s.store.ModelVersions(r.Context(), name)
	if err != nil {
		s.v2WriteError(w, r, modelError(err, name, 0))
		return
	}
	body := v2ModelMetadataBody{
		Name:     name,
		Versions: make([]string, len(versions.Versions)),
		Platform: v2Platform,
		Inputs:   v2InputTensors(sm),
		Outputs:  []v2Tensor{{Name: v2Output, Datatype: "FP64", Shape: []int{-1, sm.model.Outputs()}}},
		Properties: map[string]string{
			"task":    string(sm.model.Task()),
			"version": sm.version,
		},
	}
	for i, v := range versions.Versions {
		body.Versions[i] = strconv.Itoa(v)
	}
	if sm.classes != nil {
		body.Outputs = append(body.Outputs, v2Tensor{Name: v2Label, Datatype: "BYTES", Shape: []int{-1}})
	}
	writeJSON(w, http.StatusOK, body)
}

// v2ModelReadyBody is $ready_model_response.
type v2ModelReadyBody struct {
	Name  string `json:"name"`
	Ready bool   `json:"ready"`
}

// v2ModelReady serves GET /v2/models/{name}[/versions/{version}]/ready: 200
// when the model loads (it is then in the cache, ready to serve), 404 for an
// unknown model, and 503 with ready false for a stored model that does not
// load.
func (s *Server) v2ModelReady(w http.ResponseWriter, r *http.Request) {
	name, version, err := modelRef(r)
	if err != nil {
		s.v2WriteError(w, r, err)
		return
	}
	if _, err := s.servedModel(r, name, version); err != nil {
		if status, _, _, _ := statusOf(err); status < 500 || clientGone(r, err) {
			s.v2WriteError(w, r, err)
			return
		}
		s.logger.ErrorContext(r.Context(), "model not ready", "request_id", RequestID(r.Context()),
			"model", name, "version", version, "err", s.redact(err.Error()))
		writeJSON(w, http.StatusServiceUnavailable, v2ModelReadyBody{Name: name, Ready: false})
		return
	}
	writeJSON(w, http.StatusOK, v2ModelReadyBody{Name: name, Ready: true})
}

// v2InferRequest is $inference_request.
type v2InferRequest struct {
	ID         string             `json:"id,omitempty"`
	Parameters map[string]any     `json:"parameters,omitempty"`
	Inputs     []v2InferInput     `json:"inputs"`
	Outputs    []v2RequestedOuput `json:"outputs,omitempty"`
}

// v2InferInput is $inference_request_input. Data stays raw: decodeTensor
// reads it, flat or nested, straight into the feature matrix.
type v2InferInput struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data"`
}

// v2RequestedOuput is $inference_request_output.
type v2RequestedOuput struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

// v2InferResponse is $inference_response.
type v2InferResponse struct {
	ModelName    string           `json:"model_name"`
	ModelVersion string           `json:"model_version"`
	ID           string           `json:"id,omitempty"`
	Parameters   map[string]any   `json:"parameters,omitempty"`
	Outputs      []v2OutputTensor `json:"outputs"`
}

// v2OutputTensor is $response_output; Data is []float64 or []string.
type v2OutputTensor struct {
	Name     string `json:"name"`
	Datatype string `json:"datatype"`
	Shape    []int  `json:"shape"`
	Data     any    `json:"data"`
}

// intRange is the range of values of an integer datatype.
type intRange struct{ min, max float64 }

// v2Datatypes lists the input datatypes accepted, with their integer range
// (nil for floating point). Values are read at float64 precision whatever
// the declared type; the type decides which values are legal.
var v2Datatypes = map[string]*intRange{
	"FP64":   nil,
	"FP32":   nil,
	"INT8":   {math.MinInt8, math.MaxInt8},
	"INT16":  {math.MinInt16, math.MaxInt16},
	"INT32":  {math.MinInt32, math.MaxInt32},
	"INT64":  {math.MinInt64, math.MaxInt64},
	"UINT8":  {0, math.MaxUint8},
	"UINT16": {0, math.MaxUint16},
	"UINT32": {0, math.MaxUint32},
	"UINT64": {0, math.MaxUint64},
}

// v2Infer serves POST /v2/models/{name}[/versions/{version}]/infer.
func (s *Server) v2Infer(w http.ResponseWriter, r *http.Request) {
	name, version, err := modelRef(r)
	if err != nil {
		s.v2WriteError(w, r, err)
		return
	}
	// Triton's and other protocol clients do not always send a
	// Content-Type; a missing one is taken as JSON, a different one is not.
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if err := requireJSON(r); err != nil {
			s.v2WriteError(w, r, err)
			return
		}
	}
	buf := predictPool.Get().(*predictBuffers)
	defer putPredictBuffers(buf)
	buf.in, err = readBodyInto(w, r, s.cfg.MaxRequestBytes, buf.in[:0])
	if err != nil {
		s.v2WriteError(w, r, err)
		return
	}
	var req v2InferRequest
	if err := decodeStrict(buf.in, &req); err != nil {
		s.v2WriteError(w, r, err)
		return
	}
	var wantOutput, wantLabel bool
	bodyLen := len(buf.in)
	sm, rows, err := s.predictRows(r, name, version, "inputs[0].data", buf,
		func(sm *servedModel, buf *predictBuffers, limit int) (int, error) {
			var err error
			wantOutput, wantLabel, err = v2SelectOutputs(req.Outputs, sm.classes != nil)
			if err != nil {
				return 0, err
			}
			if !sm.typed && v2IsMatrix(req.Inputs, sm) {
				var rows int
				buf.x, rows, err = v2DecodeInputs(req.Inputs, sm.model.Features(), bodyLen, limit, buf.x)
				return rows, err
			}
			return v2DecodeColumns(req.Inputs, sm, bodyLen, limit, buf)
		})
	if err != nil {
		s.v2WriteError(w, r, err)
		return
	}

	resp := v2InferResponse{ModelName: name, ModelVersion: sm.version, ID: req.ID,
		Outputs: make([]v2OutputTensor, 0, 2)}
	if wantOutput {
		outputs := sm.model.Outputs()
		resp.Outputs = append(resp.Outputs, v2OutputTensor{Name: v2Output, Datatype: "FP64",
			Shape: []int{rows, outputs}, Data: buf.out[:rows*outputs]})
	}
	if wantLabel {
		resp.Outputs = append(resp.Outputs, v2OutputTensor{Name: v2Label, Datatype: "BYTES",
			Shape: []int{rows}, Data: buf.labels[:rows]})
	}
	if len(buf.warnings) > 0 {
		// A parameter's value is a string, number or boolean: the
		// warnings go as one string.
		resp.Parameters = map[string]any{"warnings": strings.Join(buf.warnings, "; ")}
	}
	writeJSON(w, http.StatusOK, resp)
}

// v2SelectOutputs reads the request's optional output selection. With none,
// every output is returned.
func v2SelectOutputs(req []v2RequestedOuput, classifier bool) (output, label bool, err error) {
	if len(req) == 0 {
		return true, classifier, nil
	}
	have := v2Output
	if classifier {
		have += ", " + v2Label
	}
	for i, o := range req {
		switch {
		case o.Name == v2Output:
			output = true
		case o.Name == v2Label && classifier:
			label = true
		default:
			return false, false, invalidField(fmt.Sprintf("outputs[%d].name", i),
				"the model has no output %q; its outputs are %s", o.Name, have)
		}
	}
	return output, label, nil
}

// v2DecodeInputs checks the one input tensor against the model and appends
// its rows×features values, row-major, to x: the /v2 rowDecoder. bodyLen
// bounds the allocation: a shape that claims more elements than the body
// could hold is refused before anything is allocated for it.
func v2DecodeInputs(inputs []v2InferInput, features, bodyLen, maxRows int, x []float64) ([]float64, int, error) {
	if len(inputs) != 1 {
		return nil, 0, invalidField("inputs", "must hold exactly one tensor, named %q, or one 1-D tensor per feature, named after it; got %d",
			v2Input, len(inputs))
	}
	in := inputs[0]
	if in.Name != v2Input {
		return nil, 0, invalidField("inputs[0].name", "the model's input tensor is named %q, not %q (or give one 1-D tensor per feature, named after it)",
			v2Input, in.Name)
	}
	rng, ok := v2Datatypes[in.Datatype]
	if !ok {
		return nil, 0, invalidField("inputs[0].datatype",
			"%q is not supported; use FP64, FP32 or an integer type (INT8…INT64, UINT8…UINT64)", in.Datatype)
	}
	if len(in.Shape) != 2 {
		return nil, 0, invalidField("inputs[0].shape", "must be [rows, %d]; got %d dimensions", features, len(in.Shape))
	}
	rows, cols := in.Shape[0], in.Shape[1]
	if rows < 1 {
		return nil, 0, invalidField("inputs[0].shape[0]", "must be at least 1 row; got %d", rows)
	}
	if rows > int64(maxRows) {
		return nil, 0, invalidField("inputs[0].shape[0]",
			"%d rows exceed the limit of %d per request (--max-predict-rows); split the request", rows, maxRows)
	}
	if cols != int64(features) {
		return nil, 0, invalidField("inputs[0].shape[1]", "must be %d, the model's feature count; got %d", features, cols)
	}
	// Every element takes at least two bytes of JSON ("1,"), the last one
	// byte.
	if rows*int64(features) > int64(bodyLen/2)+1 {
		return nil, 0, invalidField("inputs[0].shape", "[%d, %d] has more elements than the data can hold", rows, cols)
	}
	if isAbsent(in.Data) {
		return nil, 0, invalidField("inputs[0].data", "is required")
	}
	return decodeTensor(in.Data, int(rows), features, in.Datatype, rng, slices.Grow(x, int(rows)*features))
}

// decodeTensor reads data, flat ([1,2,3,4]) or nested by row
// ([[1,2],[3,4]]), as rows×features values of datatype into x. The element
// count and, for nested data, every row's length must match the shape.
func decodeTensor(data []byte, rows, features int, datatype string, rng *intRange, x []float64) ([]float64, int, error) {
	const field = "inputs[0].data"
	s := jsonScan{b: data}
	if s.peek() != '[' {
		return nil, 0, invalidField(field, "must be an array, not %s", s.skip())
	}
	s.open()
	want := rows * features
	n := 0
	nested := false
	value := func(path string) error {
		v, msg := s.number()
		if msg != "" {
			return invalidField(path, "%s", msg)
		}
		if err := checkDatatype(v, datatype, rng); err != "" {
			return invalidField(path, "%s", err)
		}
		if n < want {
			x = append(x, v)
		}
		n++
		return nil
	}
	for first := true; s.more(first); first = false {
		if first {
			nested = s.peek() == '['
		}
		if !nested {
			if s.peek() == '[' {
				return nil, 0, invalidField(field, "mixes numbers and arrays; give it flat or nested by row")
			}
			if err := value(field + "[" + strconv.Itoa(n) + "]"); err != nil {
				return nil, 0, err
			}
			continue
		}
		r := n / max(features, 1)
		rowPath := field + "[" + strconv.Itoa(r) + "]"
		if s.peek() != '[' {
			return nil, 0, invalidField(rowPath, "must be an array of %d numbers (the data is nested by row)", features)
		}
		s.open()
		k := 0
		for f := true; s.more(f); f = false {
			if s.peek() == '[' {
				return nil, 0, invalidField(rowPath+"["+strconv.Itoa(k)+"]",
					"must be a number; data nests deeper than its shape [rows, features]")
			}
			if err := value(rowPath + "[" + strconv.Itoa(k) + "]"); err != nil {
				return nil, 0, err
			}
			k++
		}
		if k != features {
			return nil, 0, invalidField(rowPath, "has %d values; the shape says %d", k, features)
		}
	}
	if n != want {
		return nil, 0, invalidField(field, "has %d elements; the shape [%d, %d] needs %d", n, rows, features, want)
	}
	return x, rows, nil
}

// checkDatatype says what is wrong with v as a value of datatype, or "".
func checkDatatype(v float64, datatype string, rng *intRange) string {
	if rng == nil {
		if datatype == "FP32" && math.Abs(v) > math.MaxFloat32 {
			return fmt.Sprintf("%g is out of FP32 range", v)
		}
		return ""
	}
	if v != math.Trunc(v) {
		return fmt.Sprintf("%g is not an integer, as %s requires", v, datatype)
	}
	if v < rng.min || v > rng.max {
		return fmt.Sprintf("%g is out of %s range", v, datatype)
	}
	return ""
}

// readiness is /readyz's condition: not draining, data directory writable.
func (s *Server) readiness() error {
	if s.draining.Load() {
		return errors.New("draining")
	}
	return s.store.Writable()
}
