package engine

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// oldModelFixture is a model file written before float32 models existed,
// with inputs and the predictions that build made for them.
type oldModelFixture struct {
	File    string    `json:"file"`
	Format  uint32    `json:"format"`
	Rows    int       `json:"rows"`
	X       []float64 `json:"x"`
	Predict []float64 `json:"predict"`
}

// TestOldModelFilesPredict: float64 model files of formats 1 and 2,
// written by an earlier build (testdata/models, regenerated only with
// -update), still decode, re-encode to the same bytes and predict what
// that build predicted, within 1e-12 relative: inference runs on the
// installed BLAS, which may round differently from the one that wrote
// the fixture.
func TestOldModelFilesPredict(t *testing.T) {
	dir := filepath.Join("testdata", "models")
	index := filepath.Join(dir, "index.json")
	if *update {
		writeOldModelFixtures(t, dir, index)
	}
	raw, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	var fixtures []oldModelFixture
	if err := json.Unmarshal(raw, &fixtures); err != nil {
		t.Fatal(err)
	}
	formats := map[uint32]bool{}
	for _, f := range fixtures {
		t.Run(f.File, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, f.File))
			if err != nil {
				t.Fatal(err)
			}
			if got := binary.LittleEndian.Uint32(b[8:]); got != f.Format {
				t.Fatalf("file is format %d, index says %d", got, f.Format)
			}
			formats[f.Format] = true
			m, err := DecodeModel(b)
			if err != nil {
				t.Fatalf("DecodeModel: %v", err)
			}
			if again := mustMarshal(t, m); string(again) != string(b) {
				t.Error("re-encodes to other bytes")
			}
			got := make([]float64, f.Rows*m.Outputs())
			if err := m.Predict(got, f.X, f.Rows); err != nil {
				t.Fatalf("Predict: %v", err)
			}
			for i, w := range f.Predict {
				if math.Abs(got[i]-w) > 1e-12*math.Max(1, math.Abs(w)) {
					t.Fatalf("prediction %d is %v; the build that wrote the file predicted %v", i, got[i], w)
				}
			}
		})
	}
	if !formats[1] || !formats[2] {
		t.Errorf("fixtures cover formats %v; want 1 and 2", formats)
	}
}

func writeOldModelFixtures(t *testing.T, dir, index string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	short := func(c Config) Config { c.Training.Epochs = 4; return c }
	blobs := blobsData(80, 4, 3, 7)
	models := []struct {
		file string
		m    *Model
		d    Data
	}{
		{"multiclass-v1.model", mustRun(t, mustTrainer(t, short(Config{Network: NetworkConfig{Hidden: hidden(6, ReLU, 2)}}),
			TaskMulticlass, blobs, Validation{}, Options{})), blobs},
		{"regression-dropout-v2.model", mustRun(t, mustTrainer(t, short(Config{Network: NetworkConfig{Hidden: []LayerConfig{{Units: 8, Activation: Tanh, Dropout: 0.2}}},
			Training: TrainingConfig{L1: 1e-4}}), TaskRegression, randomRegression(60, 3, 2, 5), Validation{}, Options{})), randomRegression(60, 3, 2, 5)},
	}
	var fixtures []oldModelFixture
	for _, c := range models {
		b := mustMarshal(t, c.m)
		if err := os.WriteFile(filepath.Join(dir, c.file), b, 0o644); err != nil {
			t.Fatal(err)
		}
		rows := 10
		x := c.d.X[:rows*c.d.Features]
		fixtures = append(fixtures, oldModelFixture{File: c.file, Format: binary.LittleEndian.Uint32(b[8:]), Rows: rows, X: x,
			Predict: mustPredict(t, c.m, Data{Rows: rows, Features: c.d.Features, X: x})})
	}
	out, err := json.MarshalIndent(fixtures, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(index, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
