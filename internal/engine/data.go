package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/backpropd/backpropd/internal/table"
)

// Data is an in-memory training or validation set. X is row-major,
// Rows × Features. Exactly one of Targets (Rows × len(TargetNames), numeric)
// or Labels (Rows class labels) is set: Labels for binary and multiclass
// tasks with string classes, Targets for regression and for multi-label
// binary (0/1 columns). When TargetNames is empty the number of target
// columns is len(Targets)/Rows. The engine never modifies Data and keeps
// referring to X while a Trainer lives: it does not copy it.
//
// Typed data comes as Columns instead: numbers with missing cells,
// categories and date-times (package table), in the order of the table
// they came from. With Columns set, X and FeatureNames are nil and
// Features is len(Columns); the trainer learns its preprocessing
// (imputation, scaling, one-hot encoding, date parts) from the training
// rows and encodes every row with it.
type Data struct {
	Rows, Features int
	X              []float64
	FeatureNames   []string
	TargetNames    []string
	Targets        []float64
	Labels         []string
	Columns        []table.Column
}

// Validation says where validation data comes from: a held-out Fraction of
// the training data (stratified by class when the targets are class labels,
// deterministic from the seed), or a separate Set. Both zero means no
// validation.
type Validation struct {
	Fraction float64
	Set      *Data
}

func (v Validation) present() bool { return v.Fraction != 0 || v.Set != nil }

// source is data in the form the training loop reads: the caller's X, and
// targets either as numeric columns or as class indices.
type source struct {
	x        []float64
	features int
	y        []float64 // rows × k numeric targets, or nil
	k        int
	cls      []int32 // class index per row, or nil
}

// prepared is everything NewTrainer derives from the data.
type prepared struct {
	train    *source
	trainIdx []int // rows of train used for training, ascending
	val      *source
	valIdx   []int

	outputs      int
	classes      []string
	featureNames []string
	targetNames  []string
	mean, std    []float64 // shift and scale of every input; nil without scaling

	prep PreprocessingConfig
	// inputs is the encoding of typed data (nil for X), and width the
	// number of network inputs it gives.
	inputs []inputSpec
	width  int
	// target is a classifier's target column name, kept for typed data.
	target string
	// classWeights is the loss weight of each class, nil without.
	classWeights []float64
}

// inputWidth is the number of network inputs: the encoded width of typed
// data, the features of X.
func (pr *prepared) inputWidth(train *Data) int {
	if pr.inputs != nil {
		return pr.width
	}
	return train.Features
}

// shape checks X and the feature names of d; field is where errors go.
func checkShape(p *problems, field string, d *Data, lim Limits) bool {
	ok := true
	if d.Rows < 1 {
		p.add(field, "the data has no rows")
		ok = false
	}
	if d.Features < 1 || d.Features > hardMaxFeatures {
		p.add(field, "the data has %d feature columns; want 1 to %d", d.Features, hardMaxFeatures)
		ok = false
	}
	if !ok {
		return false
	}
	cells := int64(d.Rows) * int64(d.Features)
	if int64(len(d.X)) != cells {
		p.add(field, "X holds %d values; want rows × features = %d × %d", len(d.X), d.Rows, d.Features)
		return false
	}
	if lim.MaxCells > 0 && cells > lim.MaxCells {
		p.add(field, "the data has %d cells (rows × features); the limit is %d", cells, lim.MaxCells)
		return false
	}
	if len(d.FeatureNames) != 0 && len(d.FeatureNames) != d.Features {
		p.add(field, "%d feature names for %d feature columns", len(d.FeatureNames), d.Features)
		ok = false
	}
	for i, v := range d.X {
		if !finite(v) {
			p.add(field, "row %d, feature %d is %v; every input must be a finite number", i/d.Features+1, i%d.Features+1, v)
			return false
		}
	}
	return ok
}

// targetWidth is the number of numeric target columns of d.
func targetWidth(d *Data) int {
	if len(d.TargetNames) > 0 {
		return len(d.TargetNames)
	}
	if d.Rows > 0 && len(d.Targets) > 0 && len(d.Targets)%d.Rows == 0 {
		return len(d.Targets) / d.Rows
	}
	return 0
}

// prepareTargets turns d's targets into a source for task. classes is nil
// when the training set is being prepared (the classes are found here) and
// the training classes when a validation set is.
func prepareTargets(p *problems, field string, task Task, d *Data, classes []string) (src *source, found []string) {
	src = &source{x: d.X, features: d.Features}
	useLabels := task == TaskMulticlass || (task == TaskBinary && (d.Labels != nil || classes != nil))
	if useLabels {
		if d.Targets != nil {
			p.add(field, "a %s task takes class labels, not numeric targets, here", task)
			return nil, nil
		}
		if len(d.Labels) != d.Rows {
			p.add(field, "%d labels for %d rows", len(d.Labels), d.Rows)
			return nil, nil
		}
		if classes == nil {
			classes = slices.Clone(d.Labels)
			slices.Sort(classes)
			classes = slices.Compact(classes)
			found = classes
			switch {
			case task == TaskBinary && len(classes) != 2:
				p.add(field, "a binary task needs exactly 2 classes; the labels have %d%s", len(classes), classList(classes))
				return nil, nil
			case len(classes) < 2:
				p.add(field, "a multiclass task needs at least 2 classes; the labels have %d%s", len(classes), classList(classes))
				return nil, nil
			case len(classes) > hardMaxUnits:
				p.add(field, "%d classes; at most %d are allowed", len(classes), hardMaxUnits)
				return nil, nil
			}
		}
		index := make(map[string]int32, len(classes))
		for i, c := range classes {
			index[c] = int32(i)
		}
		src.cls = make([]int32, d.Rows)
		for i, l := range d.Labels {
			c, ok := index[l]
			if !ok {
				p.add(field, "row %d has label %q, which is not a class of the training data%s", i+1, l, classList(classes))
				return nil, nil
			}
			src.cls[i] = c
		}
		return src, found
	}

	if d.Labels != nil {
		p.add(field, "a %s task takes numeric targets, not class labels", task)
		return nil, nil
	}
	k := targetWidth(d)
	if k < 1 || len(d.Targets) != d.Rows*k {
		p.add(field, "%d target values for %d rows and %d target names", len(d.Targets), d.Rows, len(d.TargetNames))
		return nil, nil
	}
	if k > hardMaxUnits {
		p.add(field, "%d target columns; at most %d are allowed", k, hardMaxUnits)
		return nil, nil
	}
	for i, v := range d.Targets {
		switch {
		case !finite(v):
			p.add(field, "row %d, target %d is %v; targets must be finite numbers", i/k+1, i%k+1, v)
			return nil, nil
		case task == TaskBinary && v != 0 && v != 1:
			p.add(field, "row %d, target %d is %v; binary targets must be 0 or 1", i/k+1, i%k+1, v)
			return nil, nil
		}
	}
	src.y, src.k = d.Targets, k
	return src, nil
}

func classList(classes []string) string {
	if len(classes) == 0 || len(classes) > 10 {
		return ""
	}
	return fmt.Sprintf(" (%q)", classes)
}

// prepare checks the training and validation data, splits off held-out
// rows and fits standardization on the training rows.
//
// Typed data (Columns) gets its encoding fitted on the training rows
// here; encode then builds the network inputs, once memory has been
// checked.
func prepare(p *problems, cfg Config, task Task, train Data, val Validation, lim Limits) *prepared {
	const tf, vf = FieldData, FieldValidationSet
	typed := train.Columns != nil
	if typed && !checkColumns(p, tf, &train, lim) || !typed && !checkShape(p, tf, &train, lim) {
		return nil
	}
	src, classes := prepareTargets(p, tf, task, &train, nil)
	if src == nil {
		return nil
	}
	pr := &prepared{train: src, classes: classes}
	switch {
	case classes == nil:
		pr.outputs = src.k
		pr.targetNames = slices.Clone(train.TargetNames)
		if len(pr.targetNames) == 0 {
			pr.targetNames = defaultNames("y", src.k)
		}
	case task == TaskBinary:
		pr.outputs = 1
	default:
		pr.outputs = len(classes)
	}
	pr.featureNames = slices.Clone(train.FeatureNames)
	if typed {
		pr.featureNames = make([]string, len(train.Columns))
		for j := range train.Columns {
			pr.featureNames[j] = train.Columns[j].Name
		}
	}
	if len(pr.featureNames) == 0 {
		pr.featureNames = defaultNames("x", train.Features)
	}

	switch {
	case val.Fraction != 0 && val.Set != nil:
		p.add("validation", "give either a held-out fraction or a separate validation set, not both")
		return nil
	case val.Set != nil:
		vs := val.Set
		switch {
		case typed != (vs.Columns != nil):
			p.add(vf, "the validation data and the training data must both be typed (Columns) or both numeric (X)")
			return nil
		case typed && (!checkColumns(p, vf, vs, lim) || !sameColumns(p, vf, train.Columns, vs.Columns)):
			return nil
		case !typed && !checkShape(p, vf, vs, lim):
			return nil
		}
		if vs.Features != train.Features {
			p.add(vf, "the validation data has %d feature columns; the training data has %d", vs.Features, train.Features)
			return nil
		}
		vsrc, _ := prepareTargets(p, vf, task, vs, classes)
		if vsrc == nil {
			return nil
		}
		if vsrc.k != src.k {
			p.add(vf, "the validation data has %d target columns; the training data has %d", vsrc.k, src.k)
			return nil
		}
		pr.trainIdx = seq(train.Rows)
		pr.val, pr.valIdx = vsrc, seq(vs.Rows)
	case val.Fraction != 0:
		if !(val.Fraction > 0 && val.Fraction < 1) {
			p.add("validation.fraction", "must be greater than 0 and less than 1, got %v", val.Fraction)
			return nil
		}
		pr.trainIdx, pr.valIdx = split(train.Rows, src.cls, len(classes), val.Fraction, *cfg.Training.Seed)
		if len(pr.valIdx) == 0 || len(pr.trainIdx) == 0 {
			p.add("validation.fraction", "a fraction of %v of %d rows leaves %d validation and %d training rows; both need at least 1", val.Fraction, train.Rows, len(pr.valIdx), len(pr.trainIdx))
			return nil
		}
		pr.val = src
	default:
		pr.trainIdx = seq(train.Rows)
	}
	if typed && classes != nil && len(train.TargetNames) == 1 {
		pr.target = train.TargetNames[0]
	}
	pr.classWeights = classWeights(p, cfg.Training.ClassWeight, src, pr.trainIdx, classes)
	pr.prep = cfg.Prep()
	if typed {
		pr.inputs = fitInputs(train.Columns, pr.trainIdx, pr.prep)
		pr.width = specsWidth(pr.inputs)
		if pr.width < 1 || pr.width > hardMaxFeatures {
			p.add(tf, "the columns encode to %d network inputs; want 1 to %d", pr.width, hardMaxFeatures)
			return nil
		}
	}
	return pr
}

// encode builds the network inputs of typed data, every row once, with
// the encoding prepare fitted (validation rows included: a level seen
// only there is "other"), and fits the scaling on the training rows'
// inputs. For X it fits the scaling only; the trainer reads X itself.
func (pr *prepared) encode(train Data, val Validation) {
	var mask []bool
	if pr.inputs != nil {
		index := indexes(pr.inputs)
		pr.train.x = newEncoder(pr.inputs, index, train.Columns).all(train.Columns, train.Rows)
		pr.train.features = pr.width
		if vs := val.Set; vs != nil {
			pr.val.x = newEncoder(pr.inputs, index, vs.Columns).all(vs.Columns, vs.Rows)
			pr.val.features = pr.width
		}
		mask = scaledMask(pr.inputs)
	}
	pr.mean, pr.std = fitScaling(pr.prep.Scaling, pr.train.x, pr.train.features, pr.trainIdx, mask)
}

func defaultNames(prefix string, n int) []string {
	if n == 1 && prefix == "y" {
		return []string{"y"}
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%d", prefix, i+1)
	}
	return names
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// splitStream is the PCG stream of the validation split, apart from the
// training stream so that changing the split never shifts initialization
// or shuffling.
const splitStream = 0x5bd1e995

// split holds out round(fraction × rows) rows, per class when cls is set
// (so every class keeps at least one training row), chosen by a PCG
// generator seeded from seed. Both index lists come back in ascending
// order.
func split(rows int, cls []int32, classes int, fraction float64, seed int64) (train, val []int) {
	rng := rand.New(rand.NewPCG(uint64(seed), splitStream))
	// Every list is allocated at its final size, so that the split's
	// memory is what EstimateMemory counts for it.
	groups := [][]int{nil}
	if cls != nil {
		counts := make([]int, classes)
		for _, c := range cls {
			counts[c]++
		}
		all := make([]int, 0, rows)
		groups = make([][]int, classes)
		for c, n := range counts {
			groups[c] = all[len(all) : len(all) : len(all)+n]
			all = all[:len(all)+n]
		}
		for i, c := range cls {
			groups[c] = append(groups[c], i)
		}
	} else {
		groups[0] = seq(rows)
	}
	held := make([]bool, rows)
	nval := 0
	for _, g := range groups {
		nv := heldOut(len(g), cls != nil, fraction)
		nval += nv
		rng.Shuffle(len(g), func(i, j int) { g[i], g[j] = g[j], g[i] })
		for _, r := range g[:nv] {
			held[r] = true
		}
	}
	train, val = make([]int, 0, rows-nval), make([]int, 0, nval)
	for r, h := range held {
		if h {
			val = append(val, r)
		} else {
			train = append(train, r)
		}
	}
	return train, val
}

// heldOut is the number of a group's n rows that split holds out:
// round(fraction × n), at most n-1 when the split is stratified by class
// (so that every class keeps a training row), and never negative.
func heldOut(n int, stratified bool, fraction float64) int {
	nv := int(math.Round(fraction * float64(n)))
	if stratified && nv >= n {
		nv = n - 1
	}
	return max(nv, 0)
}

// SplitSizes is the number of training and validation rows that a
// held-out validation fraction leaves, by the rule the trainer splits
// with, without the data: groups is the row count of each class when the
// split is stratified (a classification task with class labels), or the
// single total row count when it is not. Callers use it to reject a
// fraction that leaves either side empty before any data is loaded.
func SplitSizes(groups []int, stratified bool, fraction float64) (train, val int) {
	for _, n := range groups {
		v := heldOut(n, stratified, fraction)
		val += v
		train += n - v
	}
	return train, val
}

// fitStandardization returns the mean and population standard deviation of
// every feature over the rows idx of src. A constant feature gets a
// standard deviation of 1, so it standardizes to 0.
func fitStandardization(src *source, idx []int) (mean, std []float64) {
	f := src.features
	mean = make([]float64, f)
	std = make([]float64, f)
	for _, r := range idx {
		for j, v := range src.x[r*f : r*f+f] {
			mean[j] += v
		}
	}
	n := float64(len(idx))
	for j := range mean {
		mean[j] /= n
	}
	for _, r := range idx {
		for j, v := range src.x[r*f : r*f+f] {
			d := v - mean[j]
			std[j] += d * d
		}
	}
	for j := range std {
		s := math.Sqrt(std[j] / n)
		if !(s > 1e-12) || !finite(s) {
			s = 1
		}
		std[j] = s
	}
	return mean, std
}

// scaler applies standardization: x' = (x - mean)·inv, with inv = 1/std.
// A nil scaler copies.
type scaler struct {
	mean, inv []float64
}

func newScaler(mean, std []float64) *scaler {
	if mean == nil {
		return nil
	}
	s := &scaler{mean: mean, inv: make([]float64, len(std))}
	for j, v := range std {
		s.inv[j] = 1 / v
	}
	return s
}

// scaleRow writes the standardized row x into dst, rounded to T; s nil
// copies it.
func scaleRow[T float](s *scaler, dst []T, x []float64) {
	dst = dst[:len(x)]
	if s == nil {
		for j, v := range x {
			dst[j] = T(v)
		}
		return
	}
	mean, inv := s.mean[:len(x)], s.inv[:len(x)]
	for j, v := range x {
		dst[j] = T((v - mean[j]) * inv[j])
	}
}

// scaleRowDrop is scaleRow with inverted dropout d: each value is written
// scaled by 0 or 1/(1-p), drawn from rng, in the same pass.
func scaleRowDrop[T float](s *scaler, dst []T, x []float64, d *layerDrop, rng *rand.PCG) {
	dst = dst[:len(x)]
	if s == nil {
		for j, v := range x {
			dst[j] = T(v * d.factor(rng))
		}
		return
	}
	mean, inv := s.mean[:len(x)], s.inv[:len(x)]
	for j, v := range x {
		dst[j] = T((v - mean[j]) * inv[j] * d.factor(rng))
	}
}

// gather copies the rows idx of src, standardized, into the input buffer of
// ws, and their targets into ws.y (one-hot for multiclass), converting
// them to the network's precision T: the prepared data stays float64.
// With class weights, ws.w gets each row's weight.
//
// With drop non-nil (training), the inputs are dropped out as they are
// written, with masks drawn from rng (see dropout).
//
// Without dropout the rows are shared out over pool (nil: the caller);
// dropout draws its masks in row order from one generator, so it stays on
// the caller.
func gather[T float](ws *workspace[T], src *source, idx []int, sc *scaler, outputs int, weights []float64, drop *layerDrop, rng *rand.PCG, pool *gemmPool[T]) {
	f := src.features
	x := ws.acts[0]
	if drop != nil && drop.on() {
		for r, row := range idx {
			scaleRowDrop(sc, x[r*f:r*f+f], src.x[row*f:row*f+f], drop, rng)
		}
	} else {
		pool.scaleRows(x, src, idx, sc)
	}
	if weights != nil {
		for r, row := range idx {
			ws.w[r] = T(weights[src.cls[row]])
		}
	}
	y := ws.y[:len(idx)*outputs]
	switch {
	case src.cls == nil:
		k := src.k
		for r, row := range idx {
			yr := y[r*k : r*k+k]
			for j, v := range src.y[row*k : row*k+k] {
				yr[j] = T(v)
			}
		}
	case outputs == 1:
		for r, row := range idx {
			y[r] = T(src.cls[row])
		}
	default:
		clear(y)
		for r, row := range idx {
			y[r*outputs+int(src.cls[row])] = 1
		}
	}
}

// float32Range refuses, on training.precision, data that float32 cannot
// hold: numeric targets, and inputs that no scaling brings into range,
// beyond float32's largest finite value would turn into infinities in the
// first batch, and the job would fail as diverged instead of saying why.
// Scaled inputs are standardized in float64 before the rounding, so only
// their raw values are checked when there is no scaling.
func float32Range(p *problems, pr *prepared) {
	check := func(what string, v []float64, width int) bool {
		for i, x := range v {
			if math.Abs(x) > math.MaxFloat32 {
				p.add("training.precision", "%s %d is %g, beyond float32's largest value %g; train in float64 or rescale the data",
					what, i/width+1, x, math.MaxFloat32)
				return false
			}
		}
		return true
	}
	for i, s := range []*source{pr.train, pr.val} {
		if s == nil {
			continue
		}
		set := "row"
		if i == 1 {
			set = "validation row"
		}
		if s.y != nil && !check("a target of "+set, s.y, max(s.k, 1)) {
			return
		}
		if pr.mean == nil && pr.inputs == nil && !check("a feature of "+set, s.x, max(s.features, 1)) {
			return
		}
		if pr.train == pr.val {
			return
		}
	}
}
