package jobs

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
)

// TestSpecRecordCarriesVersion checks that a stored spec carries its
// version, SpecVersion when the spec given had none, and that loadJob
// decodes it back to the spec that was encoded, with that version.
func TestSpecRecordCarriesVersion(t *testing.T) {
	seed := int64(7)
	s := Spec{
		ModelName: "m", DatasetID: "d",
		Validation: &ValidationSpec{Fraction: 0.2},
		Network:    engine.NetworkConfig{Hidden: []engine.LayerConfig{{Units: 3, Activation: engine.ReLU}}},
		Training:   TrainingSpec{TrainingConfig: engine.TrainingConfig{Epochs: 2, Seed: &seed}, MaxDurationSeconds: 60},
	}
	b, err := encodeSpec(s)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.Version == nil || *v.Version != store.JobSpecVersion {
		t.Fatalf("encoded spec %s: version %v, want %d", b, v.Version, store.JobSpecVersion)
	}
	j, err := loadJob(&store.JobRecord{ID: "x", Status: string(Queued), Spec: b})
	if err != nil {
		t.Fatal(err)
	}
	s.Version = SpecVersion
	if !reflect.DeepEqual(j.spec, s) {
		t.Errorf("decoded spec %+v, want %+v", j.spec, s)
	}
}

// TestVersion1SpecStaysVersion1: a version 1 spec, as loaded from a record
// written before training.precision existed, is encoded as version 1
// without a precision, so that it keeps meaning float64 and an older
// build reads it as it did.
func TestVersion1SpecStaysVersion1(t *testing.T) {
	j, err := loadJob(&store.JobRecord{ID: "x", Status: string(Queued),
		Spec: []byte(`{"model_name":"m","dataset_id":"d","network":{"hidden":[{"units":3,"activation":"relu"}]},"training":{"epochs":2,"max_duration_seconds":60}}`)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := encodeSpec(j.spec)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Version  int `json:"version"`
		Training map[string]json.RawMessage
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.Training["precision"]; v.Version != 1 || ok {
		t.Errorf("re-encoded version 1 spec %s: want version 1 and no training.precision", b)
	}
}
