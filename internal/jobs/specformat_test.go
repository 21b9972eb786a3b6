package jobs

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
)

// TestSpecRecordCarriesVersion checks that a stored spec carries its
// version, even when the spec given had none (one loaded from a record
// written before specs carried it), and that loadJob decodes it back to
// the spec that was encoded, with that version.
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
