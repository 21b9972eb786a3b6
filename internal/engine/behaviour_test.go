package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/allocbound"
)

// sameBits reports the first index where a and b differ in any bit, or -1.
func sameBits(a, b []float64) int {
	if len(a) != len(b) {
		return 0
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return i
		}
	}
	return -1
}

func requireSameBits(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if i := sameBits(got, want); i >= 0 {
		if len(got) != len(want) {
			t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
		}
		t.Fatalf("%s: value %d is %v, want %v (bit-identical)", what, i, got[i], want[i])
	}
}

// sameHistory compares everything but timings.
func requireSameHistory(t *testing.T, got, want []Epoch) {
	t.Helper()
	strip := func(h []Epoch) string {
		var b strings.Builder
		for _, e := range h {
			fmt.Fprintf(&b, "%d %x %v %v %v %x;", e.Epoch, math.Float64bits(e.Loss), deref(e.ValLoss), deref(e.Accuracy), deref(e.ValAccuracy), math.Float64bits(e.LearningRate))
		}
		return b.String()
	}
	if g, w := strip(got), strip(want); g != w {
		t.Fatalf("history differs:\ngot  %s\nwant %s", g, w)
	}
}

func deref(p *float64) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprintf("%x", math.Float64bits(*p))
}

// mediumConfig is large enough that its products are tiled and run on
// several goroutines when Threads > 1.
func mediumConfig(opt OptimizerConfig) Config {
	return Config{
		Network: NetworkConfig{Hidden: []LayerConfig{{Units: 96, Activation: ReLU}, {Units: 80, Activation: Tanh}}},
		Training: TrainingConfig{
			Epochs: 6, BatchSize: 70, Optimizer: opt, L2: 1e-4, ClipNorm: 5,
			LRSchedule:    ScheduleConfig{Name: "cosine", MinLR: opt.LearningRate / 10},
			EarlyStopping: &EarlyStoppingConfig{Patience: ptr(100)},
		},
	}
}

// mediumDropoutConfig is mediumConfig with input dropout, dropout on both
// hidden layers and L1: its masks come from the trainer's random stream.
func mediumDropoutConfig(opt OptimizerConfig) Config {
	c := mediumConfig(opt)
	c.Network.InputDropout = 0.1
	c.Network.Hidden[0].Dropout, c.Network.Hidden[1].Dropout = 0.5, 0.2
	c.Training.L1 = 1e-4
	return c
}

func mediumData() Data { return blobsData(400, 70, 5, 3) }

func TestDeterminism(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"plain", mediumConfig(OptimizerConfig{Name: "adam", LearningRate: 0.01})},
		{"dropout and l1", mediumDropoutConfig(OptimizerConfig{Name: "adam", LearningRate: 0.01})},
		{"float32", inFloat32(mediumConfig(OptimizerConfig{Name: "adam", LearningRate: 0.01}))},
		{"float32 dropout and l1", inFloat32(mediumDropoutConfig(OptimizerConfig{Name: "adam", LearningRate: 0.01}))},
	} {
		t.Run(c.name, func(t *testing.T) { checkDeterminism(t, c.cfg, mediumData) })
	}
	// Batches wide enough (rows × values at least rowsParallelMin) that
	// gathering the inputs and the activation gradients are shared out by
	// rows too.
	wide := mediumConfig(OptimizerConfig{Name: "adam", LearningRate: 0.01})
	wide.Network.Hidden[0].Units = 256
	wideData := func() Data { return blobsData(400, 240, 5, 3) }
	if 70*240 < rowsParallelMin || 70*256 < rowsParallelMin {
		t.Fatal("the wide case no longer shares rows out")
	}
	for _, cfg := range []Config{wide, inFloat32(wide)} {
		t.Run("wide "+string(cfg.Training.precision()), func(t *testing.T) { checkDeterminism(t, cfg, wideData) })
	}
}

// inFloat32 is cfg trained in float32.
func inFloat32(cfg Config) Config {
	cfg = cfg.clone()
	cfg.Training.Precision = Float32
	return cfg
}

func checkDeterminism(t *testing.T, cfg Config, data func() Data) {
	val := Validation{Fraction: 0.25}
	a := mustTrainer(t, cfg, TaskMulticlass, data(), val, Options{Threads: 1})
	mustRun(t, a)
	for _, threads := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("threads=%d", threads), func(t *testing.T) {
			b := mustTrainer(t, cfg, TaskMulticlass, data(), val, Options{Threads: threads})
			mustRun(t, b)
			requireSameBits(t, "weights", paramsOf(b), paramsOf(a))
			requireSameHistory(t, b.History(), a.History())
		})
	}
	t.Run("other seed differs", func(t *testing.T) {
		c := cfg
		c.Training.Seed = seed(2)
		b := mustTrainer(t, c, TaskMulticlass, data(), val, Options{})
		mustRun(t, b)
		if sameBits(paramsOf(b), paramsOf(a)) < 0 {
			t.Fatal("seed 2 gave the same weights as seed 1")
		}
	})
}

// TestResume proves checkpoint-resume equivalence: a run stopped after
// epoch k (from onEpoch), or cancelled in the middle of epoch k+1, and
// resumed from MarshalState in a fresh Trainer, ends with weights and
// history bit-identical to an uninterrupted run with the same seed; with
// dropout too, whose masks come from the random stream the state holds.
func TestResume(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
	}{
		{"adam", mediumConfig(OptimizerConfig{Name: "adam", LearningRate: 0.01})},
		{"sgd", mediumConfig(OptimizerConfig{Name: "sgd", LearningRate: 0.05, Momentum: 0.9, Nesterov: true})},
		{"rmsprop", mediumConfig(OptimizerConfig{Name: "rmsprop", LearningRate: 0.002})},
		{"adam with dropout and l1", mediumDropoutConfig(OptimizerConfig{Name: "adam", LearningRate: 0.01})},
		{"float32 adam", inFloat32(mediumConfig(OptimizerConfig{Name: "adam", LearningRate: 0.01}))},
		{"float32 sgd", inFloat32(mediumConfig(OptimizerConfig{Name: "sgd", LearningRate: 0.05, Momentum: 0.9, Nesterov: true}))},
		{"float32 rmsprop", inFloat32(mediumConfig(OptimizerConfig{Name: "rmsprop", LearningRate: 0.002}))},
		{"float32 adam with dropout and l1", inFloat32(mediumDropoutConfig(OptimizerConfig{Name: "adam", LearningRate: 0.01}))},
	}
	val := Validation{Fraction: 0.25}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			ref := mustTrainer(t, cfg, TaskMulticlass, mediumData(), val, Options{})
			mustRun(t, ref)

			t.Run("after epoch 3", func(t *testing.T) {
				a := mustTrainer(t, cfg, TaskMulticlass, mediumData(), val, Options{Threads: 2})
				var state []byte
				err := a.Run(context.Background(), func(e Epoch) bool {
					if e.Epoch == 3 {
						var err error
						state, err = a.MarshalState()
						if err != nil {
							t.Fatal(err)
						}
						return true
					}
					return false
				})
				if err != nil || !a.StoppedEarly() || a.EpochsDone() != 3 {
					t.Fatalf("Run = %v, StoppedEarly %v, EpochsDone %d; want nil, true, 3", err, a.StoppedEarly(), a.EpochsDone())
				}
				b := mustTrainer(t, cfg, TaskMulticlass, mediumData(), val, Options{})
				if err := b.RestoreState(state); err != nil {
					t.Fatal(err)
				}
				mustRun(t, b)
				requireSameBits(t, "weights", paramsOf(b), paramsOf(ref))
				requireSameHistory(t, b.History(), ref.History())
			})

			for _, how := range []string{"cancelled", "stopped"} {
				t.Run(how+" mid-epoch", func(t *testing.T) {
					a := mustTrainer(t, cfg, TaskMulticlass, mediumData(), val, Options{})
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					batches := 0
					a.afterBatch = func() {
						batches++
						if batches == 4*5+2 { // 5 batches per epoch: inside epoch 5
							if how == "cancelled" {
								cancel()
							} else {
								a.Stop()
							}
						}
					}
					err := a.Run(ctx, nil)
					if how == "cancelled" && !errors.Is(err, context.Canceled) || how == "stopped" && err != nil {
						t.Fatalf("Run = %v", err)
					}
					state, err := a.MarshalState()
					if err != nil {
						t.Fatal(err)
					}
					b := mustTrainer(t, cfg, TaskMulticlass, mediumData(), val, Options{})
					if err := b.RestoreState(state); err != nil {
						t.Fatal(err)
					}
					if b.EpochsDone() != 4 {
						t.Fatalf("restored EpochsDone = %d, want 4 (the last completed epoch)", b.EpochsDone())
					}
					mustRun(t, b)
					requireSameBits(t, "weights after restore", paramsOf(b), paramsOf(ref))
					requireSameHistory(t, b.History(), ref.History())

					a.afterBatch = nil // the same trainer, run again, rewinds to epoch 4
					mustRun(t, a)
					requireSameBits(t, "weights after re-Run", paramsOf(a), paramsOf(ref))
				})
			}
		})
	}
}

func TestRestoreStateRejects(t *testing.T) {
	cfg := mediumConfig(OptimizerConfig{Name: "adam", LearningRate: 0.01})
	cfg.Training.Epochs = 1
	a := mustTrainer(t, cfg, TaskMulticlass, mediumData(), Validation{Fraction: 0.25}, Options{})
	mustRun(t, a)
	state, err := a.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	other := cfg
	other.Training.Seed = seed(9)
	damaged := slices.Clone(state)
	damaged[len(damaged)/2] ^= 1
	cases := []struct {
		name  string
		cfg   Config
		state []byte
	}{
		{"other config", other, state},
		{"damaged", cfg, damaged},
		{"truncated", cfg, state[:len(state)-9]},
		{"empty", cfg, nil},
		{"model file", cfg, mustMarshal(t, a.Model())},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := mustTrainer(t, c.cfg, TaskMulticlass, mediumData(), Validation{Fraction: 0.25}, Options{})
			before := slices.Clone(paramsOf(b))
			if err := b.RestoreState(c.state); err == nil {
				t.Fatal("RestoreState accepted it")
			}
			requireSameBits(t, "weights after a rejected state", paramsOf(b), before)
		})
	}
}

func mustMarshal(tb testing.TB, m *Model) []byte {
	tb.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestCancellationLatency counts the mini-batches that start after ctx is
// cancelled (or Stop is called): Run checks before every batch, so there
// must be none.
func TestCancellationLatency(t *testing.T) {
	cfg := mediumConfig(OptimizerConfig{Name: "adam", LearningRate: 0.01})
	cfg.Training.BatchSize = 8
	for _, how := range []string{"cancel", "stop"} {
		t.Run(how, func(t *testing.T) {
			tr := mustTrainer(t, cfg, TaskMulticlass, mediumData(), Validation{Fraction: 0.25}, Options{Threads: 2})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			batches, after := 0, -1
			var atStop []float64
			tr.afterBatch = func() {
				batches++
				if batches == 7 {
					if how == "cancel" {
						cancel()
					} else {
						tr.Stop()
					}
					atStop = slices.Clone(paramsOf(tr))
					after = 0
				} else if after >= 0 {
					after++
				}
			}
			err := tr.Run(ctx, nil)
			if after != 0 {
				t.Errorf("%d mini-batches ran after the %s; want 0", after, how)
			}
			if how == "cancel" {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Run = %v, want context.Canceled", err)
				}
				return
			}
			if err != nil || !tr.StoppedEarly() {
				t.Errorf("Run = %v, StoppedEarly %v; want nil, true", err, tr.StoppedEarly())
			}
			if tr.EarlyStopped() {
				t.Error("EarlyStopped = true after a Stop")
			}
			// Stop keeps the weights trained so far, mid-epoch included.
			requireSameBits(t, "model weights after Stop", paramsOf(tr.Model()), atStop)
		})
	}
}

// TestEarlyStoppingRestoresBest overfits a small noisy problem so that the
// validation loss turns up, and checks that the model has the weights of
// the epoch with the lowest validation loss.
func TestEarlyStoppingRestoresBest(t *testing.T) {
	d := moonsData(120, 0.35, 4)
	cfg := Config{
		Network: NetworkConfig{Hidden: hidden(128, ReLU, 2)},
		Training: TrainingConfig{
			Epochs: 400, BatchSize: 8, Optimizer: OptimizerConfig{LearningRate: 0.01},
			EarlyStopping: &EarlyStoppingConfig{Patience: ptr(4)},
		},
	}
	tr := mustTrainer(t, cfg, TaskBinary, d, Validation{Fraction: 0.3}, Options{})
	var weights [][]float64
	err := tr.Run(context.Background(), func(Epoch) bool {
		weights = append(weights, slices.Clone(paramsOf(tr)))
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	h := tr.History()
	if !tr.StoppedEarly() || len(h) == cfg.Training.Epochs {
		t.Fatalf("no early stop within %d epochs", len(h))
	}
	best := 0
	for i, e := range h {
		if *e.ValLoss < *h[best].ValLoss {
			best = i
		}
	}
	if got, want := len(h), best+1+4; got != want {
		t.Errorf("stopped after %d epochs; want best epoch %d + patience 4 = %d", got, best+1, want)
	}
	m := tr.Model()
	requireSameBits(t, "model weights", paramsOf(m), weights[best])
	if s := m.Summary(); s.ValLoss == nil || *s.ValLoss != *h[best].ValLoss || !s.StoppedEarly {
		t.Errorf("summary %+v does not describe the best epoch %d", s, best+1)
	}
	if got, want := tr.ModelEpoch(), best+1; got != want {
		t.Errorf("ModelEpoch = %d; want the best epoch %d", got, want)
	}
	if !tr.EarlyStopped() {
		t.Error("EarlyStopped = false after the patience ran out")
	}

	t.Run("restore_best false keeps the last weights", func(t *testing.T) {
		c := cfg
		c.Training.EarlyStopping = &EarlyStoppingConfig{Patience: ptr(4), RestoreBest: boolp(false)}
		tr := mustTrainer(t, c, TaskBinary, d, Validation{Fraction: 0.3}, Options{})
		var last []float64
		if err := tr.Run(context.Background(), func(Epoch) bool { last = slices.Clone(paramsOf(tr)); return false }); err != nil {
			t.Fatal(err)
		}
		requireSameBits(t, "model weights", paramsOf(tr.Model()), last)
		if got, want := tr.ModelEpoch(), len(tr.History()); got != want {
			t.Errorf("ModelEpoch = %d; want the last epoch %d", got, want)
		}
	})
}

// TestPatienceZero: with patience 0 training stops at the end of the first
// epoch whose validation loss does not improve on the best so far (Keras's
// EarlyStopping with patience=0), and patience 1 behaves the same.
func TestPatienceZero(t *testing.T) {
	d := moonsData(120, 0.35, 4)
	run := func(t *testing.T, patience int) (*Trainer, []Epoch) {
		cfg := Config{
			Network: NetworkConfig{Hidden: hidden(128, ReLU, 2)},
			Training: TrainingConfig{
				Epochs: 400, BatchSize: 8, Optimizer: OptimizerConfig{LearningRate: 0.01},
				EarlyStopping: &EarlyStoppingConfig{Patience: ptr(patience), RestoreBest: boolp(false)},
			},
		}
		tr := mustTrainer(t, cfg, TaskBinary, d, Validation{Fraction: 0.3}, Options{})
		mustRun(t, tr)
		return tr, tr.History()
	}
	tr, h := run(t, 0)
	if !tr.StoppedEarly() || len(h) < 2 {
		t.Fatalf("patience 0: StoppedEarly %v after %d epochs; want an early stop after at least 2", tr.StoppedEarly(), len(h))
	}
	// The stop epoch is the first one not below the running minimum.
	want := 0
	for i, best := 1, *h[0].ValLoss; i < len(h); i++ {
		if !(*h[i].ValLoss < best) {
			want = h[i].Epoch
			break
		}
		best = *h[i].ValLoss
	}
	if got := h[len(h)-1].Epoch; want == 0 || got != want {
		t.Fatalf("patience 0 stopped after epoch %d; the first epoch without improvement is %d", got, want)
	}
	if _, h1 := run(t, 1); len(h1) != len(h) {
		t.Errorf("patience 1 stopped after %d epochs, patience 0 after %d; want the same", len(h1), len(h))
	}
	if _, h5 := run(t, 5); len(h5) <= len(h) {
		t.Errorf("patience 5 stopped after %d epochs, no later than patience 0 (%d)", len(h5), len(h))
	}
}

// TestAdamBeta1Zero: adam with beta1 0 (no first-moment averaging, which
// PyTorch allows) trains, and its weights differ bit for bit from those of
// the default beta1 0.9 on the same data and seed.
func TestAdamBeta1Zero(t *testing.T) {
	train := func(beta1 *float64) *Trainer {
		tr := mustTrainer(t, mediumConfig(OptimizerConfig{Name: "adam", LearningRate: 0.001, Beta1: beta1}), TaskMulticlass, mediumData(), Validation{Fraction: 0.25}, Options{})
		mustRun(t, tr)
		return tr
	}
	zero, dflt := train(ptr(0.0)), train(nil)
	if got := *zero.Config().Training.Optimizer.Beta1; got != 0 {
		t.Fatalf("resolved beta1 = %v, want the explicit 0", got)
	}
	h := zero.History()
	if first, last := h[0].Loss, h[len(h)-1].Loss; !(last < first/2) {
		t.Errorf("beta1 0: training loss went from %v to %v; want it at least halved", first, last)
	}
	if sameBits(paramsOf(zero), paramsOf(dflt)) < 0 {
		t.Error("beta1 0 gave the same weights as the default beta1 0.9")
	}
}

func TestDivergenceNamesTheEpoch(t *testing.T) {
	cases := []struct {
		name      string
		scale     float64
		lr        float64
		wantEpoch int // 0: any epoch, checked against EpochsDone
	}{
		{"targets overflow the squared error", 1e200, 0.001, 1},
		{"learning rate far too high", 1e3, 10, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := randomRegression(64, 3, 1, 1)
			for i := range d.Targets {
				d.Targets[i] *= c.scale
			}
			cfg := Config{
				Network: NetworkConfig{Hidden: hidden(16, ReLU, 1)},
				Training: TrainingConfig{
					Epochs: 500, BatchSize: 16, Standardize: boolp(false),
					Optimizer: OptimizerConfig{Name: "sgd", LearningRate: c.lr},
				},
			}
			tr := mustTrainer(t, cfg, TaskRegression, d, Validation{}, Options{})
			err := tr.Run(context.Background(), nil)
			if !errors.Is(err, ErrDiverged) {
				t.Fatalf("Run = %v, want ErrDiverged", err)
			}
			epoch := c.wantEpoch
			if epoch == 0 {
				epoch = tr.EpochsDone() + 1
			}
			if want := fmt.Sprintf("epoch %d", epoch); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}
		})
	}
}

// TestTrainStepAllocs shows that a training step (gather, forward,
// backward, clip, update) allocates nothing once the trainer exists, on
// one goroutine and with worker goroutines, with and without dropout
// (whose masks are allocated once, by NewTrainer), in both precisions.
func TestTrainStepAllocs(t *testing.T) {
	for _, p := range []Precision{Float64, Float32} {
		for _, threads := range []int{1, 2} {
			for _, drop := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/threads=%d/dropout=%v", p, threads, drop), func(t *testing.T) {
					cfg := mediumConfig(OptimizerConfig{Name: "adam", LearningRate: 0.001})
					if drop {
						cfg = mediumDropoutConfig(OptimizerConfig{Name: "adam", LearningRate: 0.001})
					}
					cfg.Training.Precision = p
					checkTrainStepAllocs(t, cfg, threads)
				})
			}
		}
	}
}

func checkTrainStepAllocs(t *testing.T, cfg Config, threads int) {
	tr := mustTrainer(t, cfg, TaskMulticlass, mediumData(), Validation{Fraction: 0.25}, Options{Threads: threads})
	tr.core.start(threads)
	defer tr.core.stop()
	full := tr.data.trainIdx[:tr.batch]
	partial := tr.data.trainIdx[:tr.batch/3] // the last, short batch reuses the buffers
	if n := testing.AllocsPerRun(20, func() {
		tr.core.step(tr, full, 0.001)
		tr.core.step(tr, partial, 0.001)
	}); n != 0 {
		t.Errorf("%v allocations per training step, want 0", n)
	}
}

func TestPredictAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector; the plain test run checks this")
	}
	m := mustTrainer(t, mediumConfig(OptimizerConfig{Name: "adam", LearningRate: 0.001}), TaskMulticlass, mediumData(), Validation{Fraction: 0.25}, Options{}).Model()
	for _, rows := range []int{1, 256, 300} {
		x := make([]float64, rows*m.Features())
		dst := make([]float64, rows*m.Outputs())
		m.Predict(dst, x, rows) // warm the pool
		if n := testing.AllocsPerRun(20, func() { m.Predict(dst, x, rows) }); n != 0 {
			t.Errorf("rows=%d: %v allocations per Predict, want 0", rows, n)
		}
	}
}

// FuzzRestoreState: RestoreState never panics on damaged input, allocates
// at most decodeBound (model_test.go), and a rejected state leaves the
// trainer as it was. Seeds: a valid state of each precision and
// truncations of them; each input is also tried with its checksum
// repaired, on a float64 and a float32 trainer.
func FuzzRestoreState(f *testing.F) {
	cfg := Config{
		Network:  NetworkConfig{Hidden: hidden(3, Tanh, 1)},
		Training: TrainingConfig{Epochs: 3, BatchSize: 4, Optimizer: OptimizerConfig{Name: "sgd", LearningRate: 0.1, Momentum: 0.5}},
	}
	cfgs := []Config{cfg, inFloat32(cfg)}
	d := moonsData(20, 0.1, 1)
	val := Validation{Fraction: 0.25}
	for _, cfg := range cfgs {
		a := mustTrainer(f, cfg, TaskBinary, d, val, Options{})
		if err := a.Run(context.Background(), func(e Epoch) bool { return e.Epoch == 2 }); err != nil {
			f.Fatal(err)
		}
		state, err := a.MarshalState()
		if err != nil {
			f.Fatal(err)
		}
		for _, cut := range []int{len(state), len(state) - 1, len(state) / 2, 20, 0} {
			f.Add(state[:cut])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, try := range []struct {
			in  []byte
			cfg Config
		}{{b, cfgs[0]}, {fixCRC(b), cfgs[0]}, {b, cfgs[1]}, {fixCRC(b), cfgs[1]}} {
			in := try.in
			tr := mustTrainer(t, try.cfg, TaskBinary, d, val, Options{})
			before := slices.Clone(paramsOf(tr))
			var err error
			allocbound.Check(t, "RestoreState", len(in), decodeBound, func() { err = tr.RestoreState(in) })
			if err != nil {
				requireSameBits(t, "weights after a rejected state", paramsOf(tr), before)
				if tr.EpochsDone() != 0 || len(tr.History()) != 0 {
					t.Fatal("a rejected state changed the epoch or history")
				}
				continue
			}
			if err := tr.Run(context.Background(), nil); err != nil && !errors.Is(err, ErrDiverged) {
				t.Fatalf("Run after restore: %v", err)
			}
		}
	})
}

// fixCRC returns b with its trailing CRC-32C made to match, so that fuzzed
// mutations reach the checks behind the checksum.
func fixCRC(b []byte) []byte {
	if len(b) < 4 {
		return b
	}
	c := slices.Clone(b)
	binary.LittleEndian.PutUint32(c[len(c)-4:], crc32c(c[:len(c)-4]))
	return c
}
