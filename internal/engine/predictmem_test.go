package engine

import (
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/kernels"
)

// untrainedModel is a regression model of the given hidden layers with
// weights drawn by Glorot initialization (seeded), without training: the
// shape, not the fit, is what these tests need.
func untrainedModel(tb testing.TB, features int, hidden []LayerConfig) *Model {
	tb.Helper()
	cfg := Config{Network: NetworkConfig{Hidden: hidden}}.Resolve(TaskRegression, false)
	specs := architecture(cfg.Network, features, 1)
	m := newModel(TaskRegression, cfg, Summary{}, features, defaultNames("x", features), []string{"y"}, nil, nil, nil,
		specs, cfg.Network.Loss, nil, nil, nil)
	m.n64.initialize(rand.New(rand.NewPCG(1, 2)), Glorot)
	return m
}

// allocated returns the bytes f allocates (runtime.MemStats.TotalAlloc).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestPredictMemoryFollowsWidthNotDepth: hidden layers alternating 65,536
// and 1 units, 25 times over (4,980,763 weights and biases with two inputs, under the
// default cap of 10,000,000), predicting 256 rows. Keeping every layer's
// activations took 256 × 65,536 × 8 bytes per wide layer, 3.4 GB; two
// alternating buffers of chunk rows take 2 × chunk × 65,536 × 8, where
// chunk = 2^20 / 65,536 = 16: 16 MiB, plus, where the passes run on
// package kernels, one set of packing buffers; allowed 64 KiB for the
// workspace's own small allocations.
func TestPredictMemoryFollowsWidthNotDepth(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 39 MB model")
	}
	var hidden []LayerConfig
	for range 25 {
		hidden = append(hidden, LayerConfig{Units: 65536, Activation: ReLU}, LayerConfig{Units: 1, Activation: Tanh})
	}
	m := untrainedModel(t, 2, hidden)
	// Two inputs: (2+1)×65,536 + 65,537 for the first pair, (1+1)×65,536 +
	// 65,537 for each of the 24 others, (1+1)×1 for the output layer.
	if got, want := m.NumParams(), 3*65536+65537+24*(2*65536+65537)+2; got != want {
		t.Fatalf("%d parameters, want %d", got, want)
	}
	const rows, chunk = 256, 16
	if got := chunkRows(65536); got != chunk {
		t.Fatalf("chunkRows(65536) = %d, want %d", got, chunk)
	}
	x := make([]float64, rows*2)
	for i := range x {
		x[i] = float64(i%7) - 3
	}
	dst := make([]float64, rows)
	want := int64(2 * chunk * 65536 * 8)
	if useKernels() {
		want += kernels.WorkspaceBytes[float64]()
	}
	limit := uint64(want + 64<<10)
	got := allocated(func() {
		if err := m.Predict(dst, x, rows); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("Predict of %d rows allocated %d bytes", rows, got)
	if got > limit {
		t.Errorf("Predict of %d rows allocated %d bytes, want at most %d", rows, got, limit)
	}
	if got := m.PredictMemory(rows); got != want {
		t.Errorf("PredictMemory(%d) = %d, want %d", rows, got, want)
	}
}

// TestChunkedPredictMatchesForward: Predict, through two alternating
// buffers in chunks, gives the outputs of the training forward pass (which
// keeps every layer, and whose gradient the gradient checks verify) for
// row counts below, at and across chunk boundaries. A 16,384-unit layer
// makes the chunk 2^20 / 16,384 = 64 rows. Tolerance 1e-12 relative: the
// products sum in the same order either way.
func TestChunkedPredictMatchesForward(t *testing.T) {
	m := untrainedModel(t, 3, []LayerConfig{{Units: 16384, Activation: Tanh}, {Units: 5, Activation: ReLU}, {Units: 7, Activation: Sigmoid}})
	if m.chunk != 64 {
		t.Fatalf("chunk %d rows, want 64", m.chunk)
	}
	for _, rows := range []int{1, 16, 17, 64, 65, 200} {
		x := make([]float64, rows*3)
		for i := range x {
			x[i] = math.Sin(float64(i))
		}
		got := make([]float64, rows)
		if err := m.Predict(got, x, rows); err != nil {
			t.Fatal(err)
		}
		ws := newWorkspace(m.n64, rows, false)
		copy(ws.acts[0], x)
		want := m.n64.forward(ws, rows, nil)
		for i := range want {
			if d := math.Abs(got[i] - want[i]); d > 1e-12*math.Max(1, math.Abs(want[i])) {
				t.Fatalf("rows=%d: output %d is %v, forward gives %v", rows, i, got[i], want[i])
			}
		}
	}
}

func TestChunkRows(t *testing.T) {
	for _, tc := range []struct{ widest, want int }{
		{1, predictChunk}, {4096, predictChunk}, {4097, 255}, {65536, 16},
		{1 << 20, 1}, {1 << 24, 1}, // wider than the bound: one row at a time
	} {
		if got := chunkRows(tc.widest); got != tc.want {
			t.Errorf("chunkRows(%d) = %d, want %d", tc.widest, got, tc.want)
		}
	}
}

// withNames is m with other names, for files a client might craft.
func withNames(m *Model, features, targets, classes []string) *Model {
	var p64 []float64
	var p32 []float32
	if m.n32 != nil {
		p32 = slices.Clone(m.n32.params)
	} else {
		p64 = slices.Clone(m.n64.params)
	}
	return newModel(m.task, m.cfg, m.summary, m.features, features, targets, classes,
		m.mean, m.std, m.specs, m.cfg.Network.Loss, p64, p32, m.inputs)
}

func TestImportModel(t *testing.T) {
	models := trainedModels(t)
	mc := models["multiclass"]
	reg := models["multilabel"]
	features := mc.FeatureNames()
	replace := func(names []string, i int, s string) []string {
		out := slices.Clone(names)
		out[i] = s
		return out
	}
	for _, tc := range []struct {
		name      string
		m         *Model
		lim       Limits
		wantField string // "" accepted
		want      string
	}{
		{"at the cap", mc, Limits{MaxParams: mc.NumParams()}, "", ""},
		{"no cap", mc, Limits{}, "", ""},
		{"one over the cap", mc, Limits{MaxParams: mc.NumParams() - 1}, "params", "the limit is"},
		{"duplicate feature", withNames(mc, replace(features, 2, features[0]), nil, mc.classes), Limits{}, "feature_names[2]", "unique"},
		{"feature with NUL", withNames(mc, replace(features, 1, "a\x00"), nil, mc.classes), Limits{}, "feature_names[1]", "U+0000"},
		{"feature of 257 bytes", withNames(mc, replace(features, 0, strings.Repeat("f", 257)), nil, mc.classes), Limits{}, "feature_names[0]", "257 bytes"},
		{"feature of 256 bytes", withNames(mc, replace(features, 0, strings.Repeat("f", 256)), nil, mc.classes), Limits{}, "", ""},
		{"HTML feature", withNames(mc, replace(features, 0, "<script>x</script>"), nil, mc.classes), Limits{}, "", ""},
		{"target with newline", withNames(reg, reg.featureNames, replace(reg.targetNames, 1, "b\n"), nil), Limits{}, "target_names[1]", "U+000A"},
		{"class with DEL", withNames(mc, features, nil, replace(mc.classes, 1, mc.classes[1]+"\x7f")), Limits{}, "classes[1]", "U+007F"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := mustMarshal(t, tc.m)
			got, err := ImportModel(file, tc.lim)
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("ImportModel: %v", err)
				}
				if got.NumParams() != tc.m.NumParams() {
					t.Errorf("%d parameters, want %d", got.NumParams(), tc.m.NumParams())
				}
				return
			}
			var ie *ImportError
			if !errors.As(err, &ie) || ie.Field != tc.wantField || !strings.Contains(ie.Msg, tc.want) {
				t.Fatalf("ImportModel = %v, want an *ImportError for %s containing %q", err, tc.wantField, tc.want)
			}
			// Files this server stored keep loading: the rules are for
			// files from outside.
			if _, err := DecodeModel(file); err != nil {
				t.Errorf("DecodeModel refuses what only ImportModel should: %v", err)
			}
		})
	}
}
