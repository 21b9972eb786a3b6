package engine

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/allocbound"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus under testdata/")

// trainedModels returns small trained models of every kind the format
// must carry.
func trainedModels(tb testing.TB) map[string]*Model {
	tb.Helper()
	short := func(c Config) Config { c.Training.Epochs = 3; return c }
	multi := randomRegression(50, 3, 2, 1)
	for i := range multi.Targets {
		multi.Targets[i] = float64(boolToInt(multi.Targets[i] > 0))
	}
	multi.TargetNames = []string{"a<b", "ü"}
	return map[string]*Model{
		"multiclass": mustRun(tb, mustTrainer(tb, short(Config{Network: NetworkConfig{Hidden: []LayerConfig{{Units: 5, Activation: LeakyReLU, Slope: ptr(0.2)}}}}),
			TaskMulticlass, blobsData(60, 3, 3, 1), Validation{Fraction: 0.2}, Options{})),
		"binary": mustRun(tb, mustTrainer(tb, short(Config{Network: NetworkConfig{Hidden: hidden(4, Tanh, 2)}}), TaskBinary, xorData(), Validation{}, Options{})),
		"regression-no-hidden": mustRun(tb, mustTrainer(tb, short(Config{Network: NetworkConfig{Hidden: []LayerConfig{}},
			Training: TrainingConfig{Standardize: boolp(false)}}), TaskRegression, sineData(20), Validation{}, Options{})),
		"multilabel": mustRun(tb, mustTrainer(tb, short(Config{Network: NetworkConfig{Hidden: hidden(3, Sigmoid, 1)}}), TaskBinary, multi, Validation{}, Options{})),
		"float32": mustRun(tb, mustTrainer(tb, short(Config{Network: NetworkConfig{Hidden: hidden(4, Tanh, 1)}, Training: TrainingConfig{Precision: Float32}}),
			TaskMulticlass, blobsData(40, 2, 3, 2), Validation{}, Options{})),
	}
}

func TestModelRoundTrip(t *testing.T) {
	for name, m := range trainedModels(t) {
		t.Run(name, func(t *testing.T) {
			b := mustMarshal(t, m)
			got, err := DecodeModel(b)
			if err != nil {
				t.Fatalf("DecodeModel: %v", err)
			}
			requireSameBits(t, "weights", paramsOf(got), paramsOf(m))
			requireSameBits(t, "means", got.mean, m.mean)
			requireSameBits(t, "standard deviations", got.std, m.std)
			if again := mustMarshal(t, got); !bytes.Equal(again, b) {
				t.Error("re-encoding the decoded model gives other bytes")
			}
			for _, acc := range []struct {
				what      string
				got, want any
			}{
				{"task", got.Task(), m.Task()}, {"features", got.Features(), m.Features()},
				{"feature names", got.FeatureNames(), m.FeatureNames()}, {"target names", got.TargetNames(), m.TargetNames()},
				{"outputs", got.Outputs(), m.Outputs()}, {"classes", got.Classes(), m.Classes()},
				{"config", got.Config(), m.Config()}, {"summary", got.Summary(), m.Summary()},
				{"params", got.NumParams(), m.NumParams()},
			} {
				if !reflect.DeepEqual(acc.got, acc.want) {
					t.Errorf("%s: got %v, want %v", acc.what, acc.got, acc.want)
				}
			}
			x := make([]float64, 7*m.Features())
			for i := range x {
				x[i] = float64(i%5) - 2
			}
			p1, p2 := make([]float64, 7*m.Outputs()), make([]float64, 7*m.Outputs())
			if err := m.Predict(p1, x, 7); err != nil {
				t.Fatal(err)
			}
			if err := got.Predict(p2, x, 7); err != nil {
				t.Fatal(err)
			}
			requireSameBits(t, "predictions", p2, p1)
		})
	}
}

func TestDecodeModelRejects(t *testing.T) {
	m := trainedModels(t)["multiclass"]
	good := mustMarshal(t, m)
	hdrLen := int(binary.LittleEndian.Uint32(good[12:]))
	header := good[16 : 16+hdrLen]

	// rebuild re-encodes a container with another header or float count,
	// with a correct checksum, so the checks behind the checksum are hit.
	version := binary.LittleEndian.Uint32(good[8:])
	rebuild := func(h []byte, floats []float64) []byte { return encodeContainer(modelMagic, version, h, floats) }
	params := readFloats[float64](ptr(good[16+hdrLen+8:]), (len(good)-16-hdrLen-12)/8)
	withNaN := slices.Clone(params)
	withNaN[3] = math.NaN()
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"wrong magic", append([]byte("NOTMODEL"), good[8:]...), "magic"},
		{"future version", func() []byte {
			b := slices.Clone(good)
			binary.LittleEndian.PutUint32(b[8:], modelFormat+1)
			return b
		}(), fmt.Sprintf("version %d", modelFormat+1)},
		{"flipped bit", func() []byte { b := slices.Clone(good); b[len(b)/2] ^= 4; return b }(), "checksum"},
		{"truncated", good[:len(good)-8], "checksum"},
		{"header length beyond data", func() []byte {
			b := slices.Clone(good[:len(good)-4])
			binary.LittleEndian.PutUint32(b[12:], 1<<31)
			return binary.LittleEndian.AppendUint32(b, crc32c(b))
		}(), "header length"},
		{"non-canonical header", rebuild(append([]byte(" "), header...), params), "canonical"},
		{"too few floats", rebuild(header, params[:len(params)-1]), "expected"},
		{"NaN weight", rebuild(header, withNaN), "NaN"},
		{"invalid config", rebuild(bytes.Replace(header, []byte(`"loss":"cross_entropy"`), []byte(`"loss":"binary_cross_entropy"`), 1), params), "requires output_activation sigmoid"},
		{"layer mismatch", rebuild(bytes.Replace(header, []byte(`"units":5`), []byte(`"units":6`), 1), params), "layers do not match"},
		{"features out of range", rebuild(bytes.Replace(header, []byte(`"features":3`), []byte(`"features":99999999999`), 1), params), "out of range"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeModel(c.b)
			if err == nil {
				t.Fatal("DecodeModel accepted it")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// FuzzDecodeModel: DecodeModel never panics, allocates at most
// decodeBound, and whatever it accepts re-encodes to the same bytes and
// predicts without error. Each input is
// tried as is and with its checksum repaired, so that mutations also reach
// the header and size checks behind the checksum. The seed corpus under
// testdata/fuzz/FuzzDecodeModel holds valid models of every kind and
// truncations of them (regenerate with go test -run TestFuzzCorpus -update).
func FuzzDecodeModel(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, b)
		checkDecode(t, fixCRC(b))
	})
}

// decodeBound is the most DecodeModel and RestoreState may allocate per
// input byte: the values become float64s one for one (1 byte per byte) and
// the JSON header is decoded and, for a model, encoded again to check its
// form, a few bytes per header byte. Measured: 1.0 per byte for a 2 MB
// model with 512-unit layers, 3.1 for a model of 3000 four-letter feature
// names (each name comes with its weight and its mean and deviation), 1.1
// for a training state; the most is 4.5 KB for a 1.1 KB model, the
// network's fixed parts. k = 16 leaves room without letting a size from
// the header allocate past its data, and c = 64 KiB covers the fixed parts
// and the error messages.
var decodeBound = allocbound.Bound{PerByte: 16, Fixed: 64 << 10}

func checkDecode(t *testing.T, b []byte) {
	var m *Model
	var err error
	allocbound.Check(t, "DecodeModel", len(b), decodeBound, func() { m, err = DecodeModel(b) })
	if err != nil {
		if m != nil {
			t.Fatal("a model and an error")
		}
		return
	}
	again, err := m.MarshalBinary()
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	if !bytes.Equal(again, b) {
		t.Fatal("a decoded model re-encodes to other bytes")
	}
	x := make([]float64, 2*m.Features())
	dst := make([]float64, 2*m.Outputs())
	if err := m.Predict(dst, x, 2); err != nil {
		t.Fatalf("Predict: %v", err)
	}
}

// TestFuzzCorpus writes the seed corpus with -update, and otherwise checks
// that every valid-* seed still decodes and re-encodes to itself, so that a
// format change cannot leave the fuzz target with stale seeds. (Fresh
// training is not compared byte for byte: another BLAS rounds differently.)
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeModel")
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, m := range trainedModels(t) {
			b := mustMarshal(t, m)
			for _, cut := range []int{0, 7, 20, len(b) / 2, len(b) - 1, len(b)} {
				file := fmt.Sprintf("truncated-%s-%d", name, cut)
				if cut == len(b) {
					file = "valid-" + name
				}
				if err := os.WriteFile(filepath.Join(dir, file), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b[:cut])), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "valid-*"))
	if err != nil || len(files) < 4 {
		t.Fatalf("%d valid seeds in %s (%v); regenerate with go test -run TestFuzzCorpus -update", len(files), dir, err)
	}
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		quoted, ok := strings.CutPrefix(strings.TrimSpace(string(text)), "go test fuzz v1\n[]byte(")
		quoted, ok2 := strings.CutSuffix(quoted, ")")
		b, err := strconv.Unquote(quoted)
		if !ok || !ok2 || err != nil {
			t.Fatalf("%s: not a corpus file (%v)", f, err)
		}
		m, err := DecodeModel([]byte(b))
		if err != nil {
			t.Fatalf("%s no longer decodes: %v; regenerate with go test -run TestFuzzCorpus -update", f, err)
		}
		if again := mustMarshal(t, m); string(again) != b {
			t.Errorf("%s re-encodes to other bytes", f)
		}
	}
}
