package engine

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
)

// TestOptimizerSteps checks two update steps of each optimizer on one
// weight (0.5) and one bias (0.2) with constant gradients (0.3, -0.2)
// against the update rules worked by hand; tolerance 1e-15 absolute.
func TestOptimizerSteps(t *testing.T) {
	const lr, gw, gb = 0.1, 0.3, -0.2
	adamStep := func(g float64) float64 { return lr * g / (math.Abs(g) + 1e-8) } // bias-corrected: the same every step
	cases := []struct {
		name   string
		cfg    OptimizerConfig
		l2     float64
		w2, b2 float64 // after two steps
	}{
		{"sgd", OptimizerConfig{Name: "sgd"}, 0, 0.5 - 2*lr*gw, 0.2 - 2*lr*gb},
		{"sgd l2 decays weights only", OptimizerConfig{Name: "sgd"}, 0.01,
			func() float64 { w := 0.5 - lr*(gw+0.01*0.5); return w - lr*(gw+0.01*w) }(), 0.2 - 2*lr*gb},
		// v1 = g, v2 = 1.9g: p2 = p - lr·g - lr·1.9g.
		{"sgd momentum", OptimizerConfig{Name: "sgd", Momentum: 0.9}, 0, 0.5 - lr*gw - lr*1.9*gw, 0.2 - lr*gb - lr*1.9*gb},
		// Nesterov: p -= lr(g + μv): 1.9g, then v2 = 1.9g gives 2.71g.
		{"sgd nesterov", OptimizerConfig{Name: "sgd", Momentum: 0.9, Nesterov: true}, 0, 0.5 - lr*1.9*gw - lr*2.71*gw, 0.2 - lr*1.9*gb - lr*2.71*gb},
		// Adam with bias correction by step count moves lr·g/(|g|+ε) on
		// every step of a constant gradient; were it counted in epochs
		// (t stuck at 1), the second step would be 1.34 times larger.
		{"adam", OptimizerConfig{Name: "adam", Beta1: ptr(0.9), Beta2: ptr(0.999), Epsilon: 1e-8}, 0, 0.5 - 2*adamStep(gw), 0.2 - 2*adamStep(gb)},
		// beta1 = beta2 = 0 keep no history: m = g, v = g², and the
		// corrections are 1, so each step is lr·g/(|g|+ε) as well.
		{"adam beta1 beta2 0", OptimizerConfig{Name: "adam", Beta1: ptr(0.0), Beta2: ptr(0.0), Epsilon: 1e-8}, 0, 0.5 - 2*adamStep(gw), 0.2 - 2*adamStep(gb)},
		// RMSprop with rho 0: s = g² on every step.
		{"rmsprop rho 0", OptimizerConfig{Name: "rmsprop", Rho: ptr(0.0), Epsilon: 1e-8}, 0, 0.5 - 2*adamStep(gw), 0.2 - 2*adamStep(gb)},
		// RMSprop: s1 = 0.1g², s2 = 0.19g².
		{"rmsprop", OptimizerConfig{Name: "rmsprop", Rho: ptr(0.9), Epsilon: 1e-8}, 0,
			0.5 - lr*gw/(math.Sqrt(0.1*gw*gw)+1e-8) - lr*gw/(math.Sqrt(0.19*gw*gw)+1e-8),
			0.2 - lr*gb/(math.Sqrt(0.1*gb*gb)+1e-8) - lr*gb/(math.Sqrt(0.19*gb*gb)+1e-8)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			net := newNetwork([]layerSpec{{In: 1, Out: 1, Activation: Identity}}, MSE, []float64{0.5, 0.2}, true)
			o := newOptimizer(c.cfg, c.l2, 0, net)
			for range 2 {
				net.grads[0], net.grads[1] = gw, gb
				o.update(net, lr, nil)
			}
			if math.Abs(net.params[0]-c.w2) > 1e-15 || math.Abs(net.params[1]-c.b2) > 1e-15 {
				t.Errorf("after two steps w, b = %v, %v; want %v, %v", net.params[0], net.params[1], c.w2, c.b2)
			}
			if o.step != 2 {
				t.Errorf("step counter = %d, want 2", o.step)
			}
		})
	}
}

// TestAdamBeta1Step: with beta1 0 the second step follows the second
// gradient alone (m2 = g2), while v still averages both; checked against
// the update rule worked by hand, tolerance 1e-15 absolute. With beta1 0.9,
// m2 = 0.09·g1 + 0.1·g2 would move the weight the other way.
func TestAdamBeta1Step(t *testing.T) {
	const lr, g1, g2, b2, eps = 0.1, 0.3, -0.1, 0.999, 1e-8
	net := newNetwork([]layerSpec{{In: 1, Out: 1, Activation: Identity}}, MSE, []float64{0.5, 0.2}, true)
	o := newOptimizer(OptimizerConfig{Name: "adam", Beta1: ptr(0.0), Beta2: ptr(b2), Epsilon: eps}, 0, 0, net)
	for _, g := range []float64{g1, g2} {
		net.grads[0], net.grads[1] = g, 0
		o.update(net, lr, nil)
	}
	w1 := 0.5 - lr*g1/(math.Sqrt((1-b2)*g1*g1)/math.Sqrt(1-b2)+eps)
	v2 := b2*(1-b2)*g1*g1 + (1-b2)*g2*g2
	want := w1 - lr*g2/(math.Sqrt(v2)/math.Sqrt(1-b2*b2)+eps)
	if got := net.params[0]; math.Abs(got-want) > 1e-15 {
		t.Errorf("after two steps w = %v, want %v", got, want)
	}
	if want <= w1 {
		t.Fatalf("oracle: a negative second gradient must raise the weight (%v -> %v)", w1, want)
	}
}

func TestClipGradients(t *testing.T) {
	g := []float64{3, 4}
	if norm := clipGradients(g, 10); norm != 5 || g[0] != 3 || g[1] != 4 {
		t.Errorf("norm 5 under the cap: got %v, gradient %v; want unchanged", norm, g)
	}
	clipGradients(g, 1)
	if math.Abs(g[0]-0.6) > 1e-15 || math.Abs(g[1]-0.8) > 1e-15 {
		t.Errorf("clipped to norm 1: %v, want [0.6 0.8]", g)
	}
}

func TestLearningRateSchedules(t *testing.T) {
	cases := []struct {
		name string
		s    ScheduleConfig
		want []float64 // epochs 0..4 of 4, lr 1
	}{
		{"constant", ScheduleConfig{Name: "constant"}, []float64{1, 1, 1, 1}},
		{"step", ScheduleConfig{Name: "step", StepSize: 2, Gamma: 0.5}, []float64{1, 1, 0.5, 0.5}},
		// PyTorch CosineAnnealingLR, T_max 4, eta_min 0.2.
		{"cosine", ScheduleConfig{Name: "cosine", MinLR: 0.2}, []float64{1, 0.2 + 0.8*(1+math.Sqrt2/2)/2, 0.6, 0.2 + 0.8*(1-math.Sqrt2/2)/2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{
				Network:  NetworkConfig{Hidden: hidden(4, Tanh, 1)},
				Training: TrainingConfig{Epochs: 4, Optimizer: OptimizerConfig{Name: "sgd", LearningRate: 1e-3}, LRSchedule: c.s},
			}
			cfg.Training.Optimizer.LearningRate = 1
			tr := mustTrainer(t, cfg, TaskRegression, sineData(20), Validation{}, Options{})
			mustRun(t, tr)
			for i, e := range tr.History() {
				if math.Abs(e.LearningRate-c.want[i]) > 1e-15 {
					t.Errorf("epoch %d: learning rate %v, want %v", i+1, e.LearningRate, c.want[i])
				}
			}
		})
	}
}

func TestStratifiedSplit(t *testing.T) {
	d := blobsData(150, 2, 3, 1) // a, b, c: 50 rows each
	for i := range 30 {          // relabel 30 b rows as a: 80 a, 20 b, 50 c
		d.Labels[3*i+1] = "a"
	}
	count := func(idx []int, src *source) map[int32]int {
		m := map[int32]int{}
		for _, r := range idx {
			m[src.cls[r]]++
		}
		return m
	}
	cfg := Config{}.Resolve(TaskMulticlass, true)
	var p problems
	pr := prepare(&p, cfg, TaskMulticlass, d, Validation{Fraction: 0.2}, Limits{})
	if pr == nil {
		t.Fatal(p.err())
	}
	got := count(pr.valIdx, pr.train)
	want := map[int32]int{0: 16, 1: 4, 2: 10} // 20% of 80, 20, 50
	for c, n := range want {
		if got[c] != n {
			t.Errorf("class %d: %d validation rows, want %d (20%% of its rows)", c, got[c], n)
		}
	}
	all := append(slices.Clone(pr.trainIdx), pr.valIdx...)
	slices.Sort(all)
	if !slices.Equal(all, seq(d.Rows)) {
		t.Error("training and validation rows do not partition the data")
	}
	again := prepare(&p, cfg, TaskMulticlass, d, Validation{Fraction: 0.2}, Limits{})
	if !slices.Equal(again.valIdx, pr.valIdx) {
		t.Error("the same seed chose other validation rows")
	}
	cfg.Training.Seed = seed(2)
	other := prepare(&p, cfg, TaskMulticlass, d, Validation{Fraction: 0.2}, Limits{})
	if slices.Equal(other.valIdx, pr.valIdx) {
		t.Error("another seed chose the same validation rows")
	}
}

// TestStandardizationUsesTrainingRows: the stored mean is that of the
// training split, not of all rows, and prediction applies it.
func TestStandardizationUsesTrainingRows(t *testing.T) {
	d := sineData(50)
	for i := range d.X {
		d.X[i] = float64(i * i) // skewed, so held-out rows move the mean
	}
	cfg := Config{Training: TrainingConfig{Epochs: 1}}
	tr := mustTrainer(t, cfg, TaskRegression, d, Validation{Fraction: 0.3}, Options{})
	var mean, all float64
	for _, r := range tr.data.trainIdx {
		mean += d.X[r]
	}
	mean /= float64(len(tr.data.trainIdx))
	for _, v := range d.X {
		all += v
	}
	all /= float64(d.Rows)
	m := tr.Model()
	if math.Abs(m.mean[0]-mean) > 1e-9*mean || math.Abs(m.mean[0]-all) < 1 {
		t.Errorf("stored mean %v; want the training rows' %v, not all rows' %v", m.mean[0], mean, all)
	}
	// Predicting x gives the same as the raw network on (x-mean)/std.
	x := []float64{1234}
	got := make([]float64, 1)
	if err := m.Predict(got, x, 1); err != nil {
		t.Fatal(err)
	}
	raw := newModel(m.task, m.cfg, m.summary, 1, m.featureNames, m.targetNames, nil, nil, nil, m.specs, m.cfg.Network.Loss, paramsOf(m), nil, nil)
	want := make([]float64, 1)
	if err := raw.Predict(want, []float64{(1234 - m.mean[0]) * (1 / m.std[0])}, 1); err != nil {
		t.Fatal(err)
	}
	if got[0] != want[0] {
		t.Errorf("Predict = %v, want %v from the standardized input", got[0], want[0])
	}
}

func TestSeparateValidationSet(t *testing.T) {
	train, val := moonsData(200, 0.1, 1), moonsData(50, 0.1, 2)
	cfg := Config{Training: TrainingConfig{Epochs: 3}}
	tr := mustTrainer(t, cfg, TaskBinary, train, Validation{Set: &val}, Options{})
	mustRun(t, tr)
	h := tr.History()
	if h[0].ValLoss == nil || h[0].ValAccuracy == nil || tr.Model().Summary().TrainRows != 200 {
		t.Fatalf("history %+v, summary %+v: want validation figures and all 200 training rows", h[0], tr.Model().Summary())
	}
	// The validation loss is the model's mean cross-entropy on val.
	m := tr.Model()
	p := mustPredict(t, m, val)
	var loss float64
	for i, l := range val.Labels {
		if l == m.Classes()[1] {
			loss -= math.Log(p[i])
		} else {
			loss -= math.Log(1 - p[i])
		}
	}
	loss /= float64(val.Rows)
	if got := *h[len(h)-1].ValLoss; math.Abs(got-loss) > 1e-12 {
		t.Errorf("last ValLoss %v, want %v recomputed from Predict", got, loss)
	}
}

func TestBinaryPositiveClass(t *testing.T) {
	d := Data{Rows: 40, Features: 1, X: make([]float64, 40), Labels: make([]string, 40)}
	for i := range 40 {
		d.X[i] = float64(i - 20)
		d.Labels[i] = map[bool]string{true: "yes", false: "no"}[i >= 20]
	}
	cfg := Config{Training: TrainingConfig{Epochs: 50, Optimizer: OptimizerConfig{LearningRate: 0.05}}}
	m := mustRun(t, mustTrainer(t, cfg, TaskBinary, d, Validation{}, Options{}))
	p := make([]float64, 2)
	if err := m.Predict(p, []float64{-15, 15}, 2); err != nil {
		t.Fatal(err)
	}
	if !(p[0] < 0.5 && p[1] > 0.5) || m.Classes()[1] != "yes" {
		t.Errorf("p = %v with classes %q: the output must be the probability of Classes()[1] = yes", p, m.Classes())
	}
}

func TestPredictAndLabelsErrors(t *testing.T) {
	m := mustRun(t, mustTrainer(t, Config{Training: TrainingConfig{Epochs: 1}}, TaskRegression, randomRegression(20, 3, 2, 1), Validation{}, Options{}))
	dst := make([]float64, 10)
	cases := []struct {
		name string
		err  error
	}{
		{"x too short", m.Predict(dst, make([]float64, 5), 2)},
		{"x too long", m.Predict(dst, make([]float64, 7), 2)},
		{"dst too short", m.Predict(dst[:3], make([]float64, 6), 2)},
		{"negative rows", m.Predict(dst, nil, -1)},
		{"labels of a regression", m.Labels(make([]string, 2), dst, 2)},
	}
	for _, c := range cases {
		if c.err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	if err := m.Predict(nil, nil, 0); err != nil {
		t.Errorf("zero rows: %v", err)
	}
	c := mustRun(t, mustTrainer(t, Config{Training: TrainingConfig{Epochs: 1}}, TaskMulticlass, blobsData(30, 2, 3, 1), Validation{}, Options{}))
	if err := c.Labels(make([]string, 1), make([]float64, 5), 2); err == nil {
		t.Error("Labels with short probs and dst: no error")
	}
}

func TestCountCorrectMultiLabel(t *testing.T) {
	// Two rows, two labels: 3 of 4 outputs on the right side of 0.5.
	c, n := countCorrect([]float64{0.9, 0.2, 0.4, 0.6}, []float64{1, 0, 1, 1}, 2, 2, Sigmoid)
	if c != 3 || n != 4 {
		t.Errorf("countCorrect = %d of %d, want 3 of 4", c, n)
	}
}

// TestRunAfterFinish: Run on a finished trainer returns at once and leaves
// the weights alone.
func TestRunAfterFinish(t *testing.T) {
	tr := mustTrainer(t, Config{Training: TrainingConfig{Epochs: 2}}, TaskRegression, sineData(20), Validation{}, Options{})
	mustRun(t, tr)
	before := slices.Clone(paramsOf(tr))
	if err := tr.Run(context.Background(), nil); err != nil || tr.EpochsDone() != 2 {
		t.Fatalf("second Run = %v with %d epochs done", err, tr.EpochsDone())
	}
	requireSameBits(t, "weights", paramsOf(tr), before)
}

// TestPredictConcurrent runs Predict from several goroutines at once (the
// race detector watches the shared pools) and compares every result with a
// serial call over all rows: within 1e-12 relative, as a BLAS may round a
// row differently in batches of other sizes (gonum does not; OpenBLAS does).
func TestPredictConcurrent(t *testing.T) {
	m := mustRun(t, mustTrainer(t, Config{Training: TrainingConfig{Epochs: 1}}, TaskMulticlass, blobsData(300, 5, 4, 1), Validation{}, Options{}))
	d := blobsData(300, 5, 4, 2)
	want := mustPredict(t, m, d)
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			rows := 1 + g*37 // small and large pools, several chunks
			for s := 0; s+rows <= d.Rows; s += rows {
				got := make([]float64, rows*m.Outputs())
				if err := m.Predict(got, d.X[s*5:(s+rows)*5], rows); err != nil {
					errs <- err
					return
				}
				for i, v := range got {
					if w := want[s*m.Outputs()+i]; math.Abs(v-w) > 1e-12*(1+math.Abs(w)) {
						errs <- fmt.Errorf("rows=%d at row %d: value %d is %v, want %v", rows, s, i, v, w)
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
