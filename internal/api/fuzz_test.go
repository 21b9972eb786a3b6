package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/backpropd/backpropd/internal/allocbound"
	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/jobs"
)

// FuzzJobRequest feeds the job request decoder, its check and the engine's
// resolve and validate steps arbitrary bytes. Properties: no panic; a
// rejected body is a 4xx *Error; decoding allocates at most requestBound
// (hardening_fuzz_test.go); an accepted one re-encodes to JSON that
// decodes again and encodes to the same bytes; every problem check finds
// names a field; resolving and validating the accepted request's config
// returns nil or a *engine.ValidationError, never anything else.
func FuzzJobRequest(f *testing.F) {
	for _, s := range []string{
		`{"model_name":"iris","dataset_id":"0b6f2c1e-8d3a-4f5e-9c7b-1a2b3c4d5e6f"}`,
		`{"model_name":"m","data":{"features":[[1,2],[3,4]],"targets":["a","b"]}}`,
		`{"model_name":"m","dataset_id":"x","validation":{"fraction":0.2},
		  "network":{"hidden":[{"units":256,"activation":"relu"},{"units":128,"activation":"leaky_relu","slope":0.1}],
		             "output_activation":"softmax","loss":"cross_entropy","init":"glorot"},
		  "training":{"epochs":10,"batch_size":64,"shuffle":true,"seed":1,"standardize":true,
		              "optimizer":{"name":"adam","learning_rate":0.001},"l2":0,"lr_schedule":{"name":"constant"},
		              "early_stopping":{"patience":5,"min_delta":0,"restore_best":true},"max_duration_seconds":3600}}`,
		`{"model_name":"m","training":{"optimizer":{"name":"sgd","momentum":0.9,"nesterov":true},"lr_schedule":{"name":"step","step_size":3,"gamma":0.5}}}`,
		`{"model_name":"m","network":{"hidden":[{"units":0}]},"training":{"epochs":-1}}`,
		`{"model_name":"m","extra":1}`,
		`{"model_name":"m"} trailing`,
		`[[[[`,
		`{"network":{"hidden":[{"units":"x"}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req jobRequest
		var err error
		allocbound.Check(t, "decodeStrict", len(body), requestBound, func() { req = jobRequest{}; err = decodeStrict(body, &req) })
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Status < 400 || ae.Status >= 500 {
				t.Fatalf("decode error %v (%T) is not a 4xx *Error", err, err)
			}
			return
		}
		b1, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var again jobRequest
		if err := decodeStrict(b1, &again); err != nil {
			t.Fatalf("re-encoded request %s does not decode: %v", b1, err)
		}
		b2, _ := json.Marshal(again)
		if !bytes.Equal(b1, b2) {
			t.Fatalf("re-encoding is not stable:\n%s\n%s", b1, b2)
		}
		if req.Data != nil {
			if _, err := req.Data.Dataset("n", "data"); err != nil {
				var ve interface{ Location() string }
				if !errors.As(err, &ve) {
					t.Fatalf("inline data error %v (%T) names no location", err, err)
				}
			}
		}
		for _, fe := range req.check() {
			if fe.Field == "" || fe.Message == "" {
				t.Fatalf("request check gave a problem without field or message: %+v", fe)
			}
		}
		cfg := req.config()
		for _, task := range []engine.Task{engine.TaskRegression, engine.TaskBinary, engine.TaskMulticlass} {
			hasVal := req.Validation != nil && val(req.Validation.Fraction) > 0
			err := cfg.Resolve(task, hasVal).ValidateFor(task, 4, 3, hasVal, engine.Limits{MaxParams: jobs.DefaultMaxParams})
			var ve *engine.ValidationError
			if err != nil && !errors.As(err, &ve) {
				t.Fatalf("validate: %v (%T), want *engine.ValidationError", err, err)
			}
		}
	})
}
