package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/kernels"
)

// TestFloat32TracksFloat64 trains the same network on the same seed and
// data in both precisions, with each optimizer, for 30 epochs of moons
// (2000 rows, two hidden layers of 64 relu and 32 tanh units, batch 64),
// and compares the per-epoch training losses and the accuracy on 1000
// held-out rows.
//
// Both start from the same weights rounded to float32, so the runs
// differ only by float32's rounding (2^-24 ≈ 6e-8 relative per
// operation), which training then amplifies: measured when the test was
// written, the worst per-epoch relative difference was 4e-7 (rmsprop),
// 1e-3 (adam) and 1.1e-2 (sgd with momentum 0.9, the least damped), and
// the accuracies differed by at most 0.1 percentage point. The test
// allows 3e-2 relative per epoch (about three times the worst) and 1
// percentage point of accuracy (10 of the 1000 rows).
func TestFloat32TracksFloat64(t *testing.T) {
	const lossTol, accTol = 3e-2, 0.01
	train, test := moonsData(2000, 0.2, 1), moonsData(1000, 0.2, 2)
	for _, opt := range []OptimizerConfig{
		{Name: "adam", LearningRate: 0.01},
		{Name: "sgd", LearningRate: 0.1, Momentum: 0.9},
		{Name: "rmsprop", LearningRate: 0.003},
	} {
		t.Run(opt.Name, func(t *testing.T) {
			var hist [2][]Epoch
			var acc [2]float64
			for i, p := range []Precision{Float64, Float32} {
				cfg := Config{
					Network:  NetworkConfig{Hidden: []LayerConfig{{Units: 64, Activation: ReLU}, {Units: 32, Activation: Tanh}}},
					Training: TrainingConfig{Epochs: 30, BatchSize: 64, Optimizer: opt, Precision: p},
				}
				tr := mustTrainer(t, cfg, TaskBinary, train, Validation{}, Options{})
				m := mustRun(t, tr)
				if m.Precision() != p {
					t.Fatalf("model precision %s, want %s", m.Precision(), p)
				}
				hist[i], acc[i] = tr.History(), accuracy(t, m, test)
			}
			worst := 0.0
			for e := range hist[0] {
				want, got := hist[0][e].Loss, hist[1][e].Loss
				rel := math.Abs(got-want) / want
				worst = math.Max(worst, rel)
				if rel > lossTol {
					t.Errorf("epoch %d: float32 loss %.9g, float64 %.9g: relative difference %.3g, want at most %g", e+1, got, want, rel, lossTol)
				}
			}
			t.Logf("worst relative loss difference %.3g; accuracy %.4f (float64), %.4f (float32)", worst, acc[0], acc[1])
			if d := math.Abs(acc[1] - acc[0]); d > accTol {
				t.Errorf("test accuracy %.4f in float32, %.4f in float64; want within %g", acc[1], acc[0], accTol)
			}
			if acc[1] < 0.9 {
				t.Errorf("float32 test accuracy %.4f; moons at noise 0.2 is above 0.95 when trained", acc[1])
			}
		})
	}
}

// TestFloat32ModelFile: a float32 model is a format 3 file whose weights
// take 4 bytes each, so for the same network it is the float64 file less
// 4 bytes per weight and bias, give or take the header's precision field
// (here about half: the weights dominate); it decodes to a model that
// re-encodes to the same bytes and predicts the same bits.
func TestFloat32ModelFile(t *testing.T) {
	d := blobsData(300, 20, 4, 3)
	files := map[Precision][]byte{}
	models := map[Precision]*Model{}
	for _, p := range []Precision{"", Float32} {
		cfg := Config{Network: NetworkConfig{Hidden: hidden(64, ReLU, 2)}, Training: TrainingConfig{Epochs: 3, Precision: p}}
		models[p] = mustRun(t, mustTrainer(t, cfg, TaskMulticlass, d, Validation{}, Options{}))
		files[p] = mustMarshal(t, models[p])
	}
	b32, b64 := files[Float32], files[""]
	if v := binary.LittleEndian.Uint32(b32[8:]); v != 3 {
		t.Errorf("float32 model is format %d, want 3", v)
	}
	if v := binary.LittleEndian.Uint32(b64[8:]); v != 1 {
		t.Errorf("a model without a precision is format %d, want 1 as before", v)
	}
	hdr := func(b []byte) int { return int(binary.LittleEndian.Uint32(b[12:])) }
	params := models[Float32].NumParams()
	if got, want := len(b64)-len(b32), 4*params-(hdr(b32)-hdr(b64)); got != want {
		t.Errorf("float32 file is %d bytes smaller than float64's; want %d (4 bytes × %d weights, less the header's growth)", got, want, params)
	}
	if r := float64(len(b32)) / float64(len(b64)); r < 0.5 || r > 0.55 {
		t.Errorf("float32 file is %.3f of the float64 one, want about half", r)
	}

	m := models[Float32]
	got, err := DecodeModel(b32)
	if err != nil {
		t.Fatalf("DecodeModel: %v", err)
	}
	if got.Precision() != Float32 {
		t.Errorf("decoded precision %s", got.Precision())
	}
	if again := mustMarshal(t, got); !bytes.Equal(again, b32) {
		t.Error("the decoded float32 model re-encodes to other bytes")
	}
	requireSameBits(t, "weights", paramsOf(got), paramsOf(m))
	requireSameBits(t, "predictions", mustPredict(t, got, d), mustPredict(t, m, d))
	if acc := accuracy(t, got, d); acc < 0.95 {
		t.Errorf("decoded float32 model's accuracy %.3f on its training blobs", acc)
	}
	checkDecode(t, b32) // the fuzz target's checks: allocation bound, round trip, Predict
}

// TestFloat32PredictMemory: a float32 model's inference buffers are
// float32, 4 bytes a value, plus one float64 row of inputs to encode
// into and, where passes run on package kernels, float32 packing
// buffers; Predict allocates no more than PredictMemory says (64 KiB
// allowed for the workspace's own small allocations).
func TestFloat32PredictMemory(t *testing.T) {
	hidden := []LayerConfig{{Units: 4096, Activation: ReLU}, {Units: 8, Activation: Tanh}}
	m64 := untrainedModel(t, 3, hidden)
	cfg := m64.cfg.clone()
	cfg.Training.Precision = Float32
	m := newModel(TaskRegression, cfg, Summary{}, 3, defaultNames("x", 3), []string{"y"}, nil, nil, nil,
		m64.specs, cfg.Network.Loss, nil, widenedTo32(paramsOf(m64)), nil)
	const rows = 256
	chunk := int64(chunkRows(4096))
	var pack32, pack64 int64
	if useKernels() {
		pack32, pack64 = kernels.WorkspaceBytes[float32](), kernels.WorkspaceBytes[float64]()
	}
	if got, want := m.PredictMemory(rows), chunk*4096*4*2+3*8+pack32; got != want {
		t.Errorf("float32 PredictMemory(%d) = %d, want %d", rows, got, want)
	}
	if got, want := m64.PredictMemory(rows), chunk*4096*8*2+pack64; got != want {
		t.Errorf("float64 PredictMemory(%d) = %d, want %d", rows, got, want)
	}
	x := make([]float64, rows*3)
	for i := range x {
		x[i] = math.Sin(float64(i))
	}
	dst, want := make([]float64, rows), make([]float64, rows)
	got := allocated(func() {
		if err := m.Predict(dst, x, rows); err != nil {
			t.Fatal(err)
		}
	})
	if limit := uint64(m.PredictMemory(rows)) + 64<<10; got > limit {
		t.Errorf("Predict of %d rows allocated %d bytes, want at most %d", rows, got, limit)
	}
	if err := m64.Predict(want, x, rows); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		// The weights are float64's rounded to float32: the outputs
		// agree to float32's precision, amplified by 4096-term sums.
		if d := math.Abs(dst[i] - want[i]); d > 1e-4*math.Max(1, math.Abs(want[i])) {
			t.Fatalf("float32 output %d is %v, float64 %v", i, dst[i], want[i])
		}
	}
}

func widenedTo32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// TestRestoreStateRefusesOtherPrecision: a checkpoint resumes only in the
// precision it was written in; the error names both and the field, and
// the trainer is left as it was.
func TestRestoreStateRefusesOtherPrecision(t *testing.T) {
	base := mediumConfig(OptimizerConfig{Name: "adam", LearningRate: 0.01})
	base.Training.Epochs = 1
	state := func(p Precision) []byte {
		cfg := base.clone()
		cfg.Training.Precision = p
		tr := mustTrainer(t, cfg, TaskMulticlass, mediumData(), Validation{Fraction: 0.25}, Options{})
		mustRun(t, tr)
		b, err := tr.MarshalState()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	s32, s64 := state(Float32), state("")
	if v := binary.LittleEndian.Uint32(s32[8:]); v != 2 {
		t.Errorf("float32 state is format %d, want 2", v)
	}
	if v := binary.LittleEndian.Uint32(s64[8:]); v != 1 {
		t.Errorf("a state without a precision is format %d, want 1 as before", v)
	}
	for _, c := range []struct {
		name      string
		state     []byte
		into      Precision
		has, runs string
	}{
		{"float32 into default", s32, "", "float32", "float64"},
		{"float32 into float64", s32, Float64, "float32", "float64"},
		{"float64 into float32", s64, Float32, "float64", "float32"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := base.clone()
			cfg.Training.Precision = c.into
			tr := mustTrainer(t, cfg, TaskMulticlass, mediumData(), Validation{Fraction: 0.25}, Options{})
			before := paramsOf(tr)
			err := tr.RestoreState(c.state)
			if err == nil {
				t.Fatal("RestoreState accepted it")
			}
			msg := err.Error()
			if !strings.Contains(msg, "holds "+c.has) || !strings.Contains(msg, "trains in "+c.runs) || !strings.Contains(msg, "training.precision") {
				t.Errorf("error %q does not say the state holds %s weights and the configuration trains in %s (training.precision)", msg, c.has, c.runs)
			}
			requireSameBits(t, "weights after a refused state", paramsOf(tr), before)
		})
	}
}

// TestFloat32RefusesOutOfRangeData trains on targets near 1e150 and on
// raw features of 1e39, both beyond float32's range: in float32 that
// would be an infinite loss in the first batch, so NewTrainer refuses it
// on training.precision, naming the row, while float64 accepts it.
func TestFloat32RefusesOutOfRangeData(t *testing.T) {
	targets := Data{Rows: 4, Features: 1, X: []float64{0, 1, 2, 3}, Targets: []float64{1, 3, 5e150, 7}}
	features := Data{Rows: 4, Features: 1, X: []float64{0, 1, -1e39, 3}, Targets: []float64{1, 2, 3, 4}}
	for _, tc := range []struct {
		name        string
		data        Data
		standardize bool
		want        string
	}{
		{"target", targets, true, "a target of row 3 is 5e+150"},
		{"raw feature", features, false, "a feature of row 3 is -1e+39"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			std := tc.standardize
			cfg := Config{Training: TrainingConfig{Epochs: 1, Standardize: &std, Precision: Float32}}
			_, err := NewTrainer(cfg, TaskRegression, tc.data, Validation{}, Options{})
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Errors) != 1 || ve.Errors[0].Field != "training.precision" ||
				!strings.Contains(ve.Errors[0].Message, tc.want) {
				t.Fatalf("NewTrainer in float32 = %v; want one error on training.precision saying %q", err, tc.want)
			}
			cfg.Training.Precision = Float64
			if _, err := NewTrainer(cfg, TaskRegression, tc.data, Validation{}, Options{}); err != nil {
				t.Errorf("NewTrainer in float64 = %v, want it accepted", err)
			}
		})
	}
}
