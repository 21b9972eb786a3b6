package resources

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/engine"
)

// modelFile builds an untrained regression model with the engine, for
// features inputs (named names, or x1, x2, … when nil) and hidden layers,
// and returns it as the model file that POST /v1/models/{name}/versions
// takes. The trainer only sets the weights up; nothing is trained.
func modelFile(tb testing.TB, features int, names []string, hidden []engine.LayerConfig) []byte {
	tb.Helper()
	const rows = 2
	r := rand.New(rand.NewPCG(3, 5))
	x := make([]float64, rows*features)
	for i := range x {
		x[i] = r.Float64()
	}
	data := engine.Data{Rows: rows, Features: features, X: x, FeatureNames: names, Targets: []float64{0, 1}}
	cfg := engine.Config{
		Network: engine.NetworkConfig{Hidden: hidden},
		Training: engine.TrainingConfig{Epochs: 1, BatchSize: 1,
			Optimizer: engine.OptimizerConfig{Name: "sgd", LearningRate: 0.01}},
	}
	tr, err := engine.NewTrainer(cfg, engine.TaskRegression, data, engine.Validation{}, engine.Options{})
	if err != nil {
		tb.Fatalf("build a model of %d features and %d hidden layers: %v", features, len(hidden), err)
	}
	b, err := tr.Model().MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// deepHidden is attack 4's network: layers alternating 65,536 and 1 units,
// 25 times over; with two inputs, 4,980,763 weights and biases
// (internal/engine's TestPredictMemoryFollowsWidthNotDepth counts them),
// under the default cap of 10,000,000.
func deepHidden() []engine.LayerConfig {
	var h []engine.LayerConfig
	for range 25 {
		h = append(h, engine.LayerConfig{Units: 65536, Activation: engine.ReLU}, engine.LayerConfig{Units: 1, Activation: engine.Tanh})
	}
	return h
}

// Container layout of a model file (internal/engine/container.go): an
// 8-byte magic number, the format version and the header's length as
// uint32s, the JSON header, the count of float64 values as a uint64, the
// values, and a CRC-32C of everything before it.
const (
	fileHead = 8 + 4 + 4
	fileTail = 4
)

// overCapModelFile crafts a well-formed model file of 10,018,003 weights
// and biases, over the default cap of 10,000,000, without building the
// network: it takes a small engine-built model (2 inputs, hidden layers of
// 17 and 13 units), widens the layers in its header to 3,334 and 3,000
// units and writes the floats that header announces, all zero. 2 inputs:
// (2+1)×3,334 + (3,334+1)×3,000 + (3,000+1)×1 = 10,018,003; the file also
// holds the 2 means and 2 standard deviations of the standardization.
func overCapModelFile(tb testing.TB) []byte {
	tb.Helper()
	small := modelFile(tb, 2, nil, []engine.LayerConfig{{Units: 17, Activation: engine.ReLU}, {Units: 13, Activation: engine.ReLU}})
	hlen := int(binary.LittleEndian.Uint32(small[12:]))
	header := string(small[fileHead : fileHead+hlen])
	smallParams := (2+1)*17 + (17+1)*13 + (13+1)*1
	const params = (2+1)*3334 + (3334+1)*3000 + (3000+1)*1
	for _, r := range [][2]string{
		{`"units":17`, `"units":3334`}, {`"units":13`, `"units":3000`},
		{`"out":17`, `"out":3334`}, {`"in":17`, `"in":3334`},
		{`"out":13`, `"out":3000`}, {`"in":13`, `"in":3000`},
		{fmt.Sprintf(`"params":%d`, smallParams), fmt.Sprintf(`"params":%d`, params)},
	} {
		if strings.Count(header, r[0]) != 1 {
			tb.Fatalf("the small model's header holds %q %d times, want once: %s", r[0], strings.Count(header, r[0]), header)
		}
		header = strings.Replace(header, r[0], r[1], 1)
	}
	count := params + 2*2
	var b bytes.Buffer
	b.Grow(fileHead + len(header) + 8 + 8*count + fileTail)
	b.Write(small[:12])
	_ = binary.Write(&b, binary.LittleEndian, uint32(len(header)))
	b.WriteString(header)
	_ = binary.Write(&b, binary.LittleEndian, uint64(count))
	b.Write(make([]byte, 8*params))
	for _, v := range []uint64{0, 0, 0x3ff0000000000000, 0x3ff0000000000000} { // means 0, standard deviations 1.0
		_ = binary.Write(&b, binary.LittleEndian, v)
	}
	_ = binary.Write(&b, binary.LittleEndian, crc32.Checksum(b.Bytes(), crc32.MakeTable(crc32.Castagnoli)))
	return b.Bytes()
}
