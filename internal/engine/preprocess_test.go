package engine

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/table"
)

// typedData is n rows of three typed columns and a class label: a number
// "x" (N(0,1), 10% blank), a category "color" (6 levels, 5% missing) and
// a datetime "when" (2020-2023, with times of day). The label is "hi"
// when x + (color is red or blue) > 0.5, else "lo".
func typedData(n int, seed uint64) Data {
	rng := rand.New(rand.NewPCG(seed, 5))
	levels := []string{"red", "green", "blue", "black", "white", "grey"}
	x := table.Column{Name: "x", Kind: table.Number, Values: make([]float64, n)}
	color := table.Column{Name: "color", Kind: table.Category, Codes: make([]int32, n), Levels: levels}
	when := table.Column{Name: "when", Kind: table.Datetime, Values: make([]float64, n), HasTime: true}
	labels := make([]string, n)
	start := float64(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Unix())
	for i := range n {
		v := rng.NormFloat64()
		x.Values[i] = v
		if rng.Float64() < 0.1 {
			x.Values[i] = math.NaN()
		}
		c := int32(rng.IntN(len(levels)))
		color.Codes[i] = c
		if rng.Float64() < 0.05 {
			color.Codes[i] = table.Missing
		}
		when.Values[i] = start + math.Floor(rng.Float64()*4*365*86400)
		s := v
		if c == 0 || c == 2 {
			s++
		}
		labels[i] = "lo"
		if s > 0.5 {
			labels[i] = "hi"
		}
	}
	return Data{Rows: n, Features: 3, Columns: []table.Column{x, color, when}, TargetNames: []string{"label"}, Labels: labels}
}

func typedCfg(epochs int) Config {
	return Config{
		Network:  NetworkConfig{Hidden: hidden(16, Tanh, 1)},
		Training: TrainingConfig{Epochs: epochs, BatchSize: 16, Optimizer: OptimizerConfig{Name: "adam", LearningRate: 0.02}},
	}
}

// predictColumns runs m.PredictColumns and the labels of its rows.
func predictColumns(tb testing.TB, m *Model, cols []table.Column) ([]string, []int) {
	tb.Helper()
	rows := cols[0].Len()
	probs := make([]float64, rows*m.Outputs())
	unseen, err := m.PredictColumns(probs, cols)
	if err != nil {
		tb.Fatalf("PredictColumns: %v", err)
	}
	labels := make([]string, rows)
	if err := m.Labels(labels, probs, rows); err != nil {
		tb.Fatal(err)
	}
	return labels, unseen
}

func share(got, want []string) float64 {
	right := 0
	for i := range got {
		if got[i] == want[i] {
			right++
		}
	}
	return float64(right) / float64(len(got))
}

func TestPreprocessingResolve(t *testing.T) {
	for _, c := range []struct {
		name        string
		pre         *PreprocessingConfig
		standardize *bool
		wantPre     *PreprocessingConfig // nil: stays nil
		wantStd     bool
		wantPrep    string // Prep().Scaling
		wantErr     string // a field that Validate names
	}{
		{"unset stays unset", nil, nil, nil, true, ScalingStandard, ""},
		{"standardize false is none", nil, boolp(false), nil, false, ScalingNone, ""},
		{"minmax sets standardize false", &PreprocessingConfig{Scaling: ScalingMinMax}, nil,
			&PreprocessingConfig{Scaling: ScalingMinMax, Impute: ImputeMedian, MinLevelRows: 5, MaxLevels: 50}, false, ScalingMinMax, ""},
		{"empty scaling follows standardize false", &PreprocessingConfig{MaxLevels: 7}, boolp(false),
			&PreprocessingConfig{Scaling: ScalingNone, Impute: ImputeMedian, MinLevelRows: 5, MaxLevels: 7}, false, ScalingNone, ""},
		{"standard and true agree", &PreprocessingConfig{Scaling: ScalingStandard}, boolp(true),
			&PreprocessingConfig{Scaling: ScalingStandard, Impute: ImputeMedian, MinLevelRows: 5, MaxLevels: 50}, true, ScalingStandard, ""},
		{"minmax contradicts true", &PreprocessingConfig{Scaling: ScalingMinMax}, boolp(true), nil, true, "", "preprocessing.scaling"},
		{"standard contradicts false", &PreprocessingConfig{Scaling: ScalingStandard}, boolp(false), nil, false, "", "preprocessing.scaling"},
		{"unknown scaling", &PreprocessingConfig{Scaling: "log"}, nil, nil, false, "", "preprocessing.scaling"},
		{"unknown impute", &PreprocessingConfig{Impute: "mode"}, nil, nil, true, "", "preprocessing.impute"},
		{"negative min_level_rows", &PreprocessingConfig{MinLevelRows: -1}, nil, nil, true, "", "preprocessing.min_level_rows"},
		{"max_levels over 65536", &PreprocessingConfig{MaxLevels: 65537}, nil, nil, true, "", "preprocessing.max_levels"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := typedCfg(1)
			cfg.Preprocessing, cfg.Training.Standardize = c.pre, c.standardize
			r := cfg.Resolve(TaskBinary, false)
			if again := r.Resolve(TaskBinary, false); !reflect.DeepEqual(again, r) {
				t.Errorf("Resolve is not idempotent: %+v, then %+v", r.Preprocessing, again.Preprocessing)
			}
			err := r.Validate(TaskBinary, 3, 1, Limits{})
			if c.wantErr != "" {
				var ve *ValidationError
				if !errors.As(err, &ve) || len(ve.Errors) != 1 || ve.Errors[0].Field != c.wantErr {
					t.Fatalf("Validate: %v; want one error on %s", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.Preprocessing, c.wantPre) {
				t.Errorf("preprocessing %+v, want %+v", r.Preprocessing, c.wantPre)
			}
			if *r.Training.Standardize != c.wantStd {
				t.Errorf("standardize %v, want %v", *r.Training.Standardize, c.wantStd)
			}
			if got := r.Prep().Scaling; got != c.wantPrep {
				t.Errorf("Prep().Scaling %q, want %q", got, c.wantPrep)
			}
		})
	}
}

// TestUnsetPreprocessingKeepsTheEncoding: a config of today, resolved,
// encodes without preprocessing or class_weight, so its fingerprint
// (TestFingerprintIsStable) and stored configs are unchanged.
func TestUnsetPreprocessingKeepsTheEncoding(t *testing.T) {
	b, err := json.Marshal(typedCfg(1).Resolve(TaskBinary, true))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"preprocessing", "class_weight", "encoded_width"} {
		if strings.Contains(string(b), f) {
			t.Errorf("resolved config %s mentions %s", b, f)
		}
	}
}

func TestClassWeightJSON(t *testing.T) {
	for _, c := range []struct {
		in   string
		want ClassWeight
		err  bool
	}{
		{`"balanced"`, ClassWeight{Balanced: true}, false},
		{`{"a":2,"b":0.5}`, ClassWeight{Weights: map[string]float64{"a": 2, "b": 0.5}}, false},
		{`"heavy"`, ClassWeight{}, true},
		{`[1,2]`, ClassWeight{}, true},
	} {
		var got ClassWeight
		err := json.Unmarshal([]byte(c.in), &got)
		if (err != nil) != c.err {
			t.Errorf("%s: error %v, want error %v", c.in, err, c.err)
			continue
		}
		if c.err {
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %+v, want %+v", c.in, got, c.want)
		}
		if b, _ := json.Marshal(got); string(b) != c.in {
			t.Errorf("%s re-encodes as %s", c.in, b)
		}
	}
}

// TestClassWeights: balanced weights are n / (k · n_c) over the training
// rows (scikit-learn's formula: 100 rows, 90 "a" and 10 "b" give 100/180
// and 100/20); explicit weights default to 1 for the classes they leave
// out; a class the data lacks, a weight of 0 and weights for numeric
// targets are refused, naming the field.
func TestClassWeights(t *testing.T) {
	d := Data{Rows: 100, Features: 1, X: make([]float64, 100), Labels: make([]string, 100)}
	for i := range d.Labels {
		d.X[i] = float64(i)
		d.Labels[i] = "a"
		if i%10 == 0 {
			d.Labels[i] = "b"
		}
	}
	cfg := typedCfg(1)
	cfg.Training.ClassWeight = &ClassWeight{Balanced: true}
	tr := mustTrainer(t, cfg, TaskBinary, d, Validation{}, Options{})
	if want := []float64{100.0 / 180, 100.0 / 20}; !slices.Equal(tr.data.classWeights, want) {
		t.Errorf("balanced weights %v, want %v", tr.data.classWeights, want)
	}
	cfg.Training.ClassWeight = &ClassWeight{Weights: map[string]float64{"b": 4}}
	tr = mustTrainer(t, cfg, TaskBinary, d, Validation{}, Options{})
	if want := []float64{1, 4}; !slices.Equal(tr.data.classWeights, want) {
		t.Errorf("explicit weights %v, want %v", tr.data.classWeights, want)
	}
	for _, c := range []struct {
		w     ClassWeight
		task  Task
		data  Data
		field string
	}{
		{ClassWeight{Weights: map[string]float64{"c": 2}}, TaskBinary, d, `training.class_weight["c"]`},
		{ClassWeight{Weights: map[string]float64{"a": 0}}, TaskBinary, d, `training.class_weight["a"]`},
		{ClassWeight{Balanced: true}, TaskRegression, sineData(20), "training.class_weight"},
	} {
		cfg.Training.ClassWeight = &c.w
		_, err := NewTrainer(cfg, c.task, c.data, Validation{}, Options{})
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Errors[0].Field != c.field {
			t.Errorf("%+v: %v; want an error on %s", c.w, err, c.field)
		}
	}
}

// TestBalancedClassWeightFindsTheRareClass: 95% "a" and 5% "b", where b
// is the rows with x > 1.645 (the 95th percentile of N(0,1)). In 5 epochs
// of sgd an unweighted logistic model predicts "a" nearly everywhere;
// balanced weights must raise the recall of b on the training rows to at
// least 0.8.
func TestBalancedClassWeightFindsTheRareClass(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 1000
	d := Data{Rows: n, Features: 1, X: make([]float64, n), Labels: make([]string, n)}
	for i := range n {
		d.X[i] = rng.NormFloat64()
		d.Labels[i] = "a"
		if d.X[i] > 1.645 {
			d.Labels[i] = "b"
		}
	}
	recall := func(w *ClassWeight) float64 {
		cfg := Config{Network: NetworkConfig{Hidden: []LayerConfig{}},
			Training: TrainingConfig{Epochs: 5, BatchSize: 64, Optimizer: OptimizerConfig{Name: "sgd", LearningRate: 0.05}, ClassWeight: w}}
		m := mustRun(t, mustTrainer(t, cfg, TaskBinary, d, Validation{}, Options{}))
		probs := mustPredict(t, m, d)
		hit, all := 0, 0
		for i, l := range d.Labels {
			if l == "b" {
				all++
				if probs[i] >= 0.5 {
					hit++
				}
			}
		}
		return float64(hit) / float64(all)
	}
	plain, balanced := recall(nil), recall(&ClassWeight{Balanced: true})
	t.Logf("recall of the 5%% class: unweighted %.3f, balanced %.3f", plain, balanced)
	if !(balanced > plain) || balanced < 0.8 {
		t.Errorf("balanced recall %.3f, unweighted %.3f; want balanced above unweighted and at least 0.8", balanced, plain)
	}
}

// TestPreprocessingFitsTrainingRowsOnly: the validation set's cells
// would move the median (they are all 1000) and add a level ("purple",
// on every validation row); the fitted encoding must not see them.
func TestPreprocessingFitsTrainingRowsOnly(t *testing.T) {
	train := Data{Rows: 10, Features: 2, Labels: []string{"a", "b", "a", "b", "a", "b", "a", "b", "a", "b"}, Columns: []table.Column{
		{Name: "n", Kind: table.Number, Values: []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, math.NaN()}},
		{Name: "c", Kind: table.Category, Levels: []string{"x", "y", "purple"}, Codes: []int32{0, 1, 0, 1, 0, 1, 0, 1, 0, 1}},
	}}
	val := Data{Rows: 20, Features: 2, Labels: make([]string, 20), Columns: []table.Column{
		{Name: "n", Kind: table.Number, Values: make([]float64, 20)},
		{Name: "c", Kind: table.Category, Levels: []string{"purple"}, Codes: make([]int32, 20)},
	}}
	for i := range 20 {
		val.Columns[0].Values[i] = 1000
		val.Labels[i] = "a"
	}
	cfg := typedCfg(1)
	cfg.Preprocessing = &PreprocessingConfig{MinLevelRows: 1}
	for _, c := range []struct {
		name string
		val  Validation
		// the median of the training cells of n
		wantImpute float64
	}{
		// 1..9: the median is 5.
		{"separate set", Validation{Set: &val}, 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := mustTrainer(t, cfg, TaskBinary, train, c.val, Options{})
			in := tr.Model().Inputs()
			if got := tr.data.inputs[0].Impute; got != c.wantImpute {
				t.Errorf("impute %v, want %v", got, c.wantImpute)
			}
			if got := *in[0].Max; got != 9 {
				t.Errorf("range max %v, want 9 (the training cells)", got)
			}
			if !in[0].Missing {
				t.Error("n had a blank training cell: the input should say missing")
			}
			if want := []string{"x", "y"}; !slices.Equal(in[1].Levels, want) {
				t.Errorf("levels %q, want %q", in[1].Levels, want)
			}
			// Scaling is fitted on the training rows' inputs: the standard
			// mean of n's encoded training cells is (1+...+9+5)/10 = 5.
			if got := tr.data.mean[0]; got != 5 {
				t.Errorf("scaling mean of n %v, want 5", got)
			}
		})
	}

	// A held-out fraction: the fitted median is that of the training
	// indices, whatever the validation rows hold.
	big := typedData(400, 9)
	for i := range big.Rows {
		if i%2 == 0 {
			big.Columns[0].Values[i] = 1e6 + float64(i)
		}
	}
	tr := mustTrainer(t, typedCfg(1), TaskBinary, big, Validation{Fraction: 0.3}, Options{})
	var cells []float64
	for _, r := range tr.data.trainIdx {
		if v := big.Columns[0].Values[r]; !math.IsNaN(v) {
			cells = append(cells, v)
		}
	}
	slices.Sort(cells)
	want := cells[len(cells)/2]
	if len(cells)%2 == 0 {
		want = cells[len(cells)/2-1] + (cells[len(cells)/2]-cells[len(cells)/2-1])/2
	}
	if got := tr.data.inputs[0].Impute; got != want {
		t.Errorf("fraction: impute %v, want the training rows' median %v", got, want)
	}
}

// TestCategoryEncoding: kept levels by frequency (at least MinLevelRows
// rows, at most MaxLevels), a missing level, an other level for the rest;
// at predict time a level never seen maps to other and is counted.
func TestCategoryEncoding(t *testing.T) {
	// a×6, b×5, c×4, d×1, e×7 (e beyond MaxLevels 2 with b), two missing.
	codes := []int32{0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 4, 4, 4, 4, 4, 4, 4, -1, -1}
	col := table.Column{Name: "c", Kind: table.Category, Levels: []string{"a", "b", "c", "d", "e"}, Codes: codes}
	specs := fitInputs([]table.Column{col}, seq(len(codes)), PreprocessingConfig{MinLevelRows: 5, MaxLevels: 2})
	s := specs[0]
	if want := []string{"e", "a"}; !slices.Equal(s.Levels, want) || !s.MissingLevel || !s.Other {
		t.Fatalf("spec %+v; want levels %q, a missing and an other level", s, want)
	}
	enc := newEncoder(specs, indexes(specs), []table.Column{col})
	row := func(r int) []float64 {
		d := make([]float64, enc.width)
		enc.row(d, []table.Column{col}, r)
		return d
	}
	for _, c := range []struct {
		row  int
		want []float64 // e, a, missing, other
	}{
		{0, []float64{0, 1, 0, 0}},  // a
		{16, []float64{1, 0, 0, 0}}, // e
		{6, []float64{0, 0, 0, 1}},  // b: beyond the top 2
		{15, []float64{0, 0, 0, 1}}, // d: 1 row, rare
		{23, []float64{0, 0, 1, 0}}, // missing
	} {
		if got := row(c.row); !slices.Equal(got, c.want) {
			t.Errorf("row %d (%v): %v, want %v", c.row, codes[c.row], got, c.want)
		}
	}

	// Through a model: "zebra" is unseen and predicts like "d", which
	// training folded into other; "a" is known.
	d := Data{Rows: len(codes), Features: 1, Columns: []table.Column{col}, Labels: make([]string, len(codes))}
	for i := range d.Labels {
		d.Labels[i] = []string{"p", "q"}[i%2]
	}
	cfg := typedCfg(2)
	cfg.Preprocessing = &PreprocessingConfig{MaxLevels: 2}
	m := mustRun(t, mustTrainer(t, cfg, TaskBinary, d, Validation{}, Options{}))
	req := []table.Column{{Kind: table.Category, Levels: []string{"zebra", "d", "a"}, Codes: []int32{0, 1, 2, 0, table.Missing}}}
	probs := make([]float64, 5)
	unseen, err := m.PredictColumns(probs, req)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{3}; !slices.Equal(unseen, want) { // zebra twice and d
		t.Errorf("unseen %v, want %v", unseen, want)
	}
	if probs[0] != probs[1] || probs[0] == probs[2] {
		t.Errorf("probabilities %v: zebra and d should both be other, a not", probs)
	}
}

// TestDatetimeParts: 2024-02-29T13:45:00Z is a Thursday (weekday 4).
func TestDatetimeParts(t *testing.T) {
	s := inputSpec{Kind: table.Datetime, HasTime: true, Indicator: true, Impute: 0}
	got := make([]float64, s.width())
	s.encodeValue(got, float64(time.Date(2024, 2, 29, 13, 45, 0, 0, time.UTC).Unix()))
	month, weekday := 2.0, 4.0 // variables: a constant expression would be rounded once, exactly
	am, aw := 2*math.Pi*(month-1)/12, 2*math.Pi*weekday/7
	want := []float64{2024, 2, 29, 4, 13, math.Sin(am), math.Cos(am), math.Sin(aw), math.Cos(aw), 0}
	if !slices.Equal(got, want) {
		t.Errorf("parts %v, want %v", got, want)
	}
	// Missing takes the imputed instant, 1970-01-01 (a Thursday), and sets
	// the indicator; a far-out instant is clamped to year 9999.
	s.encodeValue(got, math.NaN())
	if got[0] != 1970 || got[3] != 4 || got[9] != 1 {
		t.Errorf("missing: %v; want 1970, a Thursday, indicator 1", got)
	}
	s.encodeValue(got, 1e300)
	if got[0] != 9999 {
		t.Errorf("1e300 seconds: year %v, want 9999", got[0])
	}
	if s.width() != 10 || scaledCount(s) != 5 {
		t.Errorf("width %d with %d scaled; want 10 and 5 (year, month, day, weekday, hour)", s.width(), scaledCount(s))
	}
}

func scaledCount(s inputSpec) int {
	n := 0
	for _, b := range s.scaled(nil) {
		n += b2i(b)
	}
	return n
}

// TestCategoryAloneDecidesTheClass: the class is a function of one
// category column (4 levels, 2 classes) beside a noise number: a model
// gets every held-out row right.
func TestCategoryAloneDecidesTheClass(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	const n = 600
	cls := map[int32]string{0: "yes", 1: "no", 2: "no", 3: "yes"}
	d := Data{Rows: n, Features: 2, Labels: make([]string, n), Columns: []table.Column{
		{Name: "noise", Kind: table.Number, Values: make([]float64, n)},
		{Name: "kind", Kind: table.Category, Levels: []string{"w", "x", "y", "z"}, Codes: make([]int32, n)},
	}}
	for i := range n {
		d.Columns[0].Values[i] = rng.NormFloat64()
		k := int32(rng.IntN(4))
		d.Columns[1].Codes[i] = k
		d.Labels[i] = cls[k]
	}
	train, test := splitTyped(d, 400)
	m := mustRun(t, mustTrainer(t, typedCfg(20), TaskBinary, train, Validation{}, Options{}))
	got, _ := predictColumns(t, m, test.Columns)
	if acc := share(got, test.Labels); acc != 1 {
		t.Errorf("held-out accuracy %.3f, want 1", acc)
	}
}

// TestBlankPredictsTheTarget: a number column with 30% blanks, where the
// blank is the class ("absent") and present cells are N(0,1) for either
// class. Imputed with the median alone, a blank is indistinguishable from
// a cell near 0; the missing indicator makes it separable, so held-out
// accuracy is at least 0.95.
func TestBlankPredictsTheTarget(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	const n = 1000
	d := Data{Rows: n, Features: 1, Labels: make([]string, n), Columns: []table.Column{
		{Name: "reading", Kind: table.Number, Values: make([]float64, n)},
	}}
	for i := range n {
		d.Labels[i] = "present"
		d.Columns[0].Values[i] = rng.NormFloat64()
		if rng.Float64() < 0.3 {
			d.Labels[i] = "absent"
			d.Columns[0].Values[i] = math.NaN()
		}
	}
	train, test := splitTyped(d, 700)
	tr := mustTrainer(t, typedCfg(15), TaskBinary, train, Validation{}, Options{})
	if !tr.data.inputs[0].Indicator || tr.data.width != 2 {
		t.Fatalf("spec %+v, width %d; want an indicator and width 2", tr.data.inputs[0], tr.data.width)
	}
	m := mustRun(t, tr)
	got, _ := predictColumns(t, m, test.Columns)
	if acc := share(got, test.Labels); acc < 0.95 {
		t.Errorf("held-out accuracy %.3f, want at least 0.95", acc)
	}
}

// splitTyped cuts typed data into its first k rows and the rest.
func splitTyped(d Data, k int) (a, b Data) {
	cut := func(lo, hi int) Data {
		out := Data{Rows: hi - lo, Features: d.Features, Labels: d.Labels[lo:hi], TargetNames: d.TargetNames}
		for _, c := range d.Columns {
			cc := c
			if c.Kind == table.Category {
				cc.Codes = c.Codes[lo:hi]
			} else {
				cc.Values = c.Values[lo:hi]
			}
			out.Columns = append(out.Columns, cc)
		}
		return out
	}
	return cut(0, k), cut(k, d.Rows)
}

// TestMinMaxTrainsLikeDividingBy255: integer pixels 0..255 (every pixel
// column has a 0 and a 255 among the training rows, as MNIST's central
// pixels do) scaled by minmax train like the same pixels divided by 255
// with no scaling, on the same seed: minmax computes (x - 0) · (1/255)
// where the other computes x / 255, so the inputs differ by at most an
// ulp, and the held-out accuracies agree within 0.02.
func TestMinMaxTrainsLikeDividingBy255(t *testing.T) {
	const n, f = 600, 16
	rng := rand.New(rand.NewPCG(4, 4))
	raw := Data{Rows: n, Features: f, X: make([]float64, n*f), Labels: make([]string, n)}
	for i := range n {
		c := rng.IntN(3)
		raw.Labels[i] = fmt.Sprint("digit", c)
		for j := range f {
			v := float64(rng.IntN(256))
			if j%3 == c {
				v = min(255, v+100)
			}
			raw.X[i*f+j] = v
		}
	}
	for j := range f {
		raw.X[j], raw.X[f+j] = 0, 255
	}
	scaled := raw
	scaled.X = make([]float64, n*f)
	for i, v := range raw.X {
		scaled.X[i] = v / 255
	}
	accOf := func(d Data, scaling string) float64 {
		cfg := typedCfg(10)
		cfg.Preprocessing = &PreprocessingConfig{Scaling: scaling}
		tr := mustTrainer(t, cfg, TaskMulticlass, d, Validation{Fraction: 0.3}, Options{})
		mustRun(t, tr)
		return *tr.History()[len(tr.History())-1].ValAccuracy
	}
	mm, div := accOf(raw, ScalingMinMax), accOf(scaled, ScalingNone)
	t.Logf("validation accuracy: minmax %.4f, /255 %.4f", mm, div)
	if math.Abs(mm-div) > 0.02 || mm < 0.8 {
		t.Errorf("minmax accuracy %.4f, /255 %.4f; want within 0.02 and at least 0.8", mm, div)
	}
}

// TestTypedModelRoundTrip: a model of typed columns encodes as format 2,
// decodes to the same inputs, predicts the same bits and re-encodes to
// the same bytes; a numeric model without the new settings is format 1.
func TestTypedModelRoundTrip(t *testing.T) {
	d := typedData(300, 1)
	cfg := typedCfg(3)
	cfg.Preprocessing = &PreprocessingConfig{Scaling: ScalingMinMax, MinLevelRows: 2}
	cfg.Training.ClassWeight = &ClassWeight{Balanced: true}
	m := mustRun(t, mustTrainer(t, cfg, TaskBinary, d, Validation{Fraction: 0.2}, Options{}))
	b := mustMarshal(t, m)
	if v := binary.LittleEndian.Uint32(b[8:]); v != 2 {
		t.Errorf("typed model written as format %d, want 2", v)
	}
	got, err := DecodeModel(b)
	if err != nil {
		t.Fatal(err)
	}
	if again := mustMarshal(t, got); string(again) != string(b) {
		t.Error("the decoded model re-encodes to other bytes")
	}
	if !reflect.DeepEqual(got.Inputs(), m.Inputs()) || got.TargetName() != "label" || got.EncodedWidth() != m.EncodedWidth() {
		t.Errorf("inputs %+v, target %q, width %d; want %+v, label, %d", got.Inputs(), got.TargetName(), got.EncodedWidth(), m.Inputs(), m.EncodedWidth())
	}
	if w := m.Summary().EncodedWidth; w != m.EncodedWidth() || w < 10 {
		t.Errorf("summary encoded width %d, model %d", w, m.EncodedWidth())
	}
	p1, p2 := make([]float64, d.Rows), make([]float64, d.Rows)
	if _, err := m.PredictColumns(p1, d.Columns); err != nil {
		t.Fatal(err)
	}
	if _, err := got.PredictColumns(p2, d.Columns); err != nil {
		t.Fatal(err)
	}
	requireSameBits(t, "predictions", p2, p1)
	if err := m.Predict(p1, make([]float64, 3), 1); err == nil {
		t.Error("Predict took rows of a model with category inputs")
	}

	numeric := mustMarshal(t, trainedModels(t)["binary"])
	if v := binary.LittleEndian.Uint32(numeric[8:]); v != 1 {
		t.Errorf("numeric model written as format %d, want 1", v)
	}
}

// TestTypedTrainingIsDeterministicAndResumes: two runs on typed data
// with the same seed end bit-identical, and a run stopped after epoch 2,
// checkpointed and restored into a fresh trainer, ends bit-identical to
// the uninterrupted one.
func TestTypedTrainingIsDeterministicAndResumes(t *testing.T) {
	d := typedData(200, 3)
	cfg := typedCfg(4)
	val := Validation{Fraction: 0.25}
	a := mustRun(t, mustTrainer(t, cfg, TaskBinary, d, val, Options{}))
	b := mustRun(t, mustTrainer(t, cfg, TaskBinary, d, val, Options{Threads: 2}))
	requireSameBits(t, "two runs", paramsOf(b), paramsOf(a))

	first := mustTrainer(t, cfg, TaskBinary, d, val, Options{})
	if err := first.Run(context.Background(), func(e Epoch) bool { return e.Epoch == 2 }); err != nil {
		t.Fatal(err)
	}
	state, err := first.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	second := mustTrainer(t, cfg, TaskBinary, d, val, Options{})
	if err := second.RestoreState(state); err != nil {
		t.Fatal(err)
	}
	requireSameBits(t, "resumed", paramsOf(mustRun(t, second)), paramsOf(a))

	// A state of another encoding (another level rule) is refused.
	other := cfg
	other.Preprocessing = &PreprocessingConfig{MaxLevels: 2}
	if err := mustTrainer(t, other, TaskBinary, d, val, Options{}).RestoreState(state); err == nil {
		t.Error("a state restored into a trainer with another preprocessing")
	}
}

// TestTypedTrainStepAllocs: the encoding happens once in NewTrainer, so
// a training step on typed data allocates nothing, with class weights.
func TestTypedTrainStepAllocs(t *testing.T) {
	cfg := typedCfg(1)
	cfg.Training.ClassWeight = &ClassWeight{Balanced: true}
	tr := mustTrainer(t, cfg, TaskBinary, typedData(200, 4), Validation{Fraction: 0.25}, Options{})
	tr.core.start(1)
	defer tr.core.stop()
	idx := tr.data.trainIdx[:tr.batch]
	if n := testing.AllocsPerRun(20, func() { tr.core.step(tr, idx, 0.01) }); n != 0 {
		t.Errorf("%v allocations per training step, want 0", n)
	}
}

// TestEncodedWidthBound and the refusal of a too-wide network, at submit
// from summaries and in NewTrainer from the fitted encoding, naming the
// column.
func TestEncodedWidthBound(t *testing.T) {
	sums := []table.Summary{
		{Name: "n", Type: table.Number, Role: table.Feature, Missing: 3},
		{Name: "zip", Type: table.Category, Role: table.Feature, Distinct: 900},
		{Name: "small", Type: table.Category, Role: table.Feature, Distinct: 3, Missing: 1},
		{Name: "when", Type: table.Datetime, Role: table.Feature},
		{Name: "id", Type: table.Category, Role: table.Ignored, Distinct: 1000},
		{Name: "y", Type: table.Category, Role: table.Target, Distinct: 2},
	}
	total, per := EncodedWidthBound(sums, PreprocessingConfig{MaxLevels: 100})
	// n 1+1, zip 100+1 (other), small 3+1 (missing), when 9, id 0, y 0.
	if want := []int{2, 101, 4, 9, 0, 0}; !slices.Equal(per, want) || total != 116 {
		t.Errorf("widths %v (total %d), want %v (116)", per, total, want)
	}
	cfg := typedCfg(1)
	cfg.Preprocessing = &PreprocessingConfig{MaxLevels: 100}
	// 116 inputs × 16 units + 16 + 17 = 1889 weights and biases.
	err := CheckEncodedWidth(cfg, TaskBinary, sums, 1, Limits{MaxParams: 1000})
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Errors[0].Field != "preprocessing.max_levels" || !strings.Contains(ve.Errors[0].Message, `column "zip"`) {
		t.Errorf("CheckEncodedWidth: %v; want preprocessing.max_levels naming column zip", err)
	}
	if err := CheckEncodedWidth(cfg, TaskBinary, sums, 1, Limits{MaxParams: 1889}); err != nil {
		t.Errorf("at the cap: %v", err)
	}

	// typedData encodes x to 2 inputs, color to at most 8 and when to 9
	// (the hour, no blanks): when is the widest; the network has
	// width × 16 + 16 + 17 weights and biases.
	d := typedData(100, 5)
	tr := mustTrainer(t, typedCfg(1), TaskBinary, d, Validation{}, Options{})
	params := tr.data.width*16 + 16 + 17
	if got := tr.Model().NumParams(); got != params {
		t.Fatalf("%d params, want %d", got, params)
	}
	_, err = NewTrainer(typedCfg(1), TaskBinary, d, Validation{}, Options{Limits: Limits{MaxParams: params - 1}})
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), `9 of them from column "when"`) {
		t.Errorf("NewTrainer over the cap: %v; want a message naming column when", err)
	}
	if _, err := NewTrainer(typedCfg(1), TaskBinary, d, Validation{}, Options{Limits: Limits{MaxParams: params}}); err != nil {
		t.Errorf("at the cap: %v", err)
	}
}

// TestTypedDataRejects: typed data that does not fit its description is
// an error naming the column and row, never a panic.
func TestTypedDataRejects(t *testing.T) {
	good := func() Data { return typedData(20, 6) }
	for _, c := range []struct {
		name string
		edit func(d *Data)
		want string
	}{
		{"code out of range", func(d *Data) { d.Columns[1].Codes[3] = 9 }, `column "color", row 4 has code 9`},
		{"infinite cell", func(d *Data) { d.Columns[0].Values[5] = math.Inf(1) }, `column "x", row 6 is +Inf`},
		{"short column", func(d *Data) { d.Columns[2].Values = d.Columns[2].Values[:5] }, `column "when": 5 values for 20 rows`},
		{"unknown kind", func(d *Data) { d.Columns[0].Kind = "blob" }, `unknown type "blob"`},
		{"X beside columns", func(d *Data) { d.X = make([]float64, 60) }, "X and FeatureNames must be nil"},
		{"duplicate names", func(d *Data) { d.Columns[1].Name = "x" }, "column names"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := good()
			c.edit(&d)
			_, err := NewTrainer(typedCfg(1), TaskBinary, d, Validation{}, Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v; want an error containing %s", err, c.want)
			}
		})
	}
	m := mustRun(t, mustTrainer(t, typedCfg(1), TaskBinary, good(), Validation{}, Options{}))
	for _, c := range []struct {
		name string
		cols func() []table.Column
		want string
	}{
		{"too few columns", func() []table.Column { return good().Columns[:2] }, "2 columns; the model takes 3"},
		{"wrong kind", func() []table.Column {
			c := good().Columns
			c[2] = table.Column{Name: "when", Kind: table.Number, Values: make([]float64, 20)}
			return c
		}, `column "when" is "number"; the model takes datetime`},
		{"wrong place", func() []table.Column { c := good().Columns; c[0].Name = "y"; return c }, `column "y" is in the place of input "x"`},
		{"ragged", func() []table.Column { c := good().Columns; c[1].Codes = c[1].Codes[:3]; return c }, "has 3 cells; the first column has 20"},
		{"bad code", func() []table.Column {
			c := good().Columns
			c[1].Codes = slices.Clone(c[1].Codes)
			c[1].Codes[0] = 6
			return c
		}, "row 1 has code 6"},
	} {
		t.Run("predict/"+c.name, func(t *testing.T) {
			_, err := m.PredictColumns(make([]float64, 20), c.cols())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v; want an error containing %s", err, c.want)
			}
		})
	}
}
