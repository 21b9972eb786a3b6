package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
)

// FuzzResolve decodes arbitrary bytes as a job spec, the way POST /v1/jobs
// does (one JSON object, unknown fields rejected), and resolves it against
// a real store holding a three-class dataset (whose id replaces "@c") and
// a two-target regression dataset ("@r"). Properties:
//   - no panic; a rejection is an *engine.ValidationError whose every entry
//     names a field and says what is wrong (the API's 400), never another
//     error (a 500);
//   - Resolve allocates at most 64 bytes per input byte plus 1 MiB (it
//     reads dataset metadata, never the data, and must not size anything
//     from the spec before checking it against the caps);
//   - a resolved spec encodes, decodes and resolves again to the same
//     bytes: the spec stored in the job record is the one that runs, also
//     when a recovered job is resolved anew.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{
		`{"model_name":"m","dataset_id":"@c"}`,
		`{"model_name":"m","dataset_id":"@r","network":{"loss":"mse","output_activation":"identity"}}`,
		`{"model_name":"m","dataset_id":"@c","validation":{"fraction":0.25},"network":{"hidden":[{"units":8,"activation":"relu"},{"units":4,"activation":"tanh"}],"output_activation":"softmax","loss":"cross_entropy","init":"glorot"},"training":{"epochs":5,"batch_size":4,"shuffle":true,"seed":3,"standardize":true,"optimizer":{"name":"adam","learning_rate":0.01},"l2":0.001,"lr_schedule":{"name":"constant"},"early_stopping":{"patience":2,"min_delta":0,"restore_best":true},"max_duration_seconds":60}}`,
		`{"model_name":"m","dataset_id":"@c","validation":{"dataset_id":"@r"}}`,
		`{"model_name":"m","dataset_id":"@r","network":{"loss":"cross_entropy"}}`,
		`{"model_name":"m","dataset_id":"@c","network":{"hidden":[{"units":8,"activation":"softmax"}]}}`,
		`{"model_name":"m","dataset_id":"@c","network":{"hidden":[{"units":65536},{"units":65536},{"units":65536}]}}`,
		`{"model_name":"m","dataset_id":"@c","network":{"hidden":[{"units":0},{"units":-3,"activation":"gelu"}]}}`,
		`{"model_name":"m","dataset_id":"@c","training":{"epochs":0,"batch_size":-1,"optimizer":{"name":"lbfgs","learning_rate":-1}}}`,
		`{"model_name":"m","dataset_id":"@c","training":{"epochs":1000000000,"learning_rate":1e308}}`,
		`{"model_name":"m","dataset_id":"@c","training":{"lr_schedule":{"name":"cosine"},"early_stopping":{"patience":3}}}`,
		`{"model_name":"m","dataset_id":"@c","training":{"max_duration_seconds":1e300}}`,
		`{"model_name":"m","dataset_id":"@c","validation":{"fraction":0.5,"dataset_id":"@r"}}`,
		`{"model_name":"../m","dataset_id":"..\\..\\x"}`,
		`{"model_name":"","dataset_id":""}`,
	} {
		f.Add([]byte(s))
	}
	st, err := store.Open(f.TempDir(), store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	classes, err := st.CreateDataset(context.Background(), &store.Dataset{
		Meta: store.DatasetMeta{Name: "c", Rows: 8, Features: 2, FeatureNames: []string{"a", "b"},
			TargetNames: []string{"y"}, Task: string(engine.TaskMulticlass), Classes: []string{"p", "q", "r"}},
		X:      []float64{0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7},
		Labels: []string{"p", "q", "r", "p", "q", "r", "p", "q"},
	})
	if err != nil {
		f.Fatal(err)
	}
	reg, err := st.CreateDataset(context.Background(), &store.Dataset{
		Meta: store.DatasetMeta{Name: "r", Rows: 4, Features: 2, FeatureNames: []string{"a", "b"},
			TargetNames: []string{"y", "z"}, Task: string(engine.TaskRegression)},
		X:       []float64{0, 1, 2, 3, 4, 5, 6, 7},
		Targets: []float64{1, 2, 3, 4, 5, 6, 7, 8},
	})
	if err != nil {
		f.Fatal(err)
	}
	m, err := New(st, Options{Workers: 1, QueueSize: 1})
	if err != nil {
		f.Fatal(err)
	}
	ids := strings.NewReplacer(`"@c"`, `"`+classes.ID+`"`, `"@r"`, `"`+reg.ID+`"`)
	ctx := context.Background()

	f.Fuzz(func(t *testing.T, in []byte) {
		in = []byte(ids.Replace(string(in)))
		var s Spec
		if decodeSpec(in, &s) != nil {
			return
		}
		var rs Spec
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		rs, err := m.Resolve(ctx, s)
		runtime.ReadMemStats(&after)
		if n, bound := after.TotalAlloc-before.TotalAlloc, 64*uint64(len(in))+1<<20; n > bound {
			t.Fatalf("Resolve of a %d-byte spec allocated %d bytes, more than %d", len(in), n, bound)
		}
		if err != nil {
			var ve *engine.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Resolve: %v (%T), want *engine.ValidationError", err, err)
			}
			if len(ve.Errors) == 0 {
				t.Fatal("ValidationError without entries")
			}
			for _, fe := range ve.Errors {
				if fe.Field == "" || fe.Message == "" {
					t.Fatalf("entry %+v does not name a field and a problem", fe)
				}
			}
			return
		}
		b1, err := json.Marshal(rs)
		if err != nil {
			t.Fatalf("encode the resolved spec: %v", err)
		}
		var back Spec
		if err := decodeSpec(b1, &back); err != nil {
			t.Fatalf("the resolved spec %s does not decode: %v", b1, err)
		}
		again, err := m.Resolve(ctx, back)
		if err != nil {
			t.Fatalf("the resolved spec %s does not resolve again: %v", b1, err)
		}
		b2, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("resolving a resolved spec changed it:\n%s\n%s", b1, b2)
		}
	})
}

// decodeSpec decodes exactly one JSON object with no unknown fields, as the
// API's strict decoder does.
func decodeSpec(b []byte, s *Spec) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(s); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}
