package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/kernels"
)

// memoryCase is a training setup whose allocations are measured.
type memoryCase struct {
	name string
	task Task
	cfg  Config
	// make builds the data; it runs inside the measurement, as the store's
	// load runs inside a job.
	make func() (Data, Validation)
}

// memData is rows × features of uniform noise, with k numeric targets or,
// when classes > 0, labels drawn from that many class names.
func memData(rows, features, k, classes int, seed uint64) Data {
	rng := rand.New(rand.NewPCG(seed, 3))
	d := Data{Rows: rows, Features: features, X: make([]float64, rows*features)}
	for i := range d.X {
		d.X[i] = rng.Float64()
	}
	if classes > 0 {
		names := make([]string, classes)
		for c := range names {
			names[c] = "class-" + string(rune('a'+c))
		}
		d.Labels = make([]string, rows)
		for i := range d.Labels {
			d.Labels[i] = names[i%classes]
		}
		return d
	}
	d.Targets = make([]float64, rows*k)
	for i := range d.Targets {
		d.Targets[i] = rng.Float64()
	}
	return d
}

func memCfg(batch int, opt OptimizerConfig, units ...int) Config {
	c := Config{Training: TrainingConfig{Epochs: 1, BatchSize: batch, Optimizer: opt}}
	c.Network.Hidden = []LayerConfig{}
	for _, u := range units {
		c.Network.Hidden = append(c.Network.Hidden, LayerConfig{Units: u})
	}
	return c
}

// dropoutMemCfg is a config whose dropout masks (batch × 768 bytes) are
// a visible part of its workspace.
func dropoutMemCfg() Config {
	c := memCfg(2048, OptimizerConfig{}, 512, 256)
	c.Network.InputDropout = 0.2
	c.Network.Hidden[0].Dropout, c.Network.Hidden[1].Dropout = 0.5, 0.3
	c.Training.L1 = 1e-4
	return c
}

// TestEstimateMemoryBoundsMeasured checks, for shapes where each part of
// the estimate dominates in turn, that
//
//	measured <= EstimateMemory(...).Total <= 2 × measured
//
// where measured is every byte allocated (runtime.MemStats.TotalAlloc,
// with the collector off, so nothing is freed and reused in between) while
// the data is built, NewTrainer runs, one epoch trains with a checkpoint
// (MarshalState) at its end, and the model is taken and encoded: what a
// job does in one attempt. With nothing freed, that is at least the peak
// of live memory, so the first inequality says the estimate is
// conservative and the second that it does not refuse jobs that would fit
// in half the memory. Every case runs in both precisions and on 1 and 2
// threads (each thread holds its own GEMM packing buffers).
func TestEstimateMemoryBoundsMeasured(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's shadow memory and instrumentation change what is allocated")
	}
	adam := OptimizerConfig{}
	sgdMomentum := OptimizerConfig{Name: optSGD, Momentum: 0.9}
	cases := []memoryCase{
		{"data: 20000 rows × 50 features, one target", TaskRegression, memCfg(32, adam, 64),
			func() (Data, Validation) { return memData(20000, 50, 1, 0, 1), Validation{} }},
		{"network: 768 rows × 100 features into 512+512 units", TaskRegression, memCfg(256, adam, 512, 512),
			func() (Data, Validation) { return memData(768, 100, 2, 0, 2), Validation{} }},
		{"workspace: batch 4096 into 1024 units", TaskRegression, memCfg(4096, sgdMomentum, 1024),
			func() (Data, Validation) { return memData(3*4096, 8, 1, 0, 3), Validation{} }},
		{"labels: 30000 rows, 5 classes, held-out fraction, early stopping", TaskMulticlass, memCfg(64, adam, 32, 32),
			func() (Data, Validation) { return memData(30000, 10, 0, 5, 4), Validation{Fraction: 0.2} }},
		{"typed: 20000 rows, a number with blanks, a category, a datetime", TaskBinary, memCfg(64, adam, 64),
			func() (Data, Validation) { return typedData(20000, 7), Validation{Fraction: 0.2} }},
		{"dropout: batch 2048 into 512+256 units, both with dropout, input dropout", TaskRegression, dropoutMemCfg(),
			func() (Data, Validation) { return memData(3*2048, 16, 1, 0, 8), Validation{} }},
		{"separate validation set, rmsprop", TaskRegression, memCfg(128, OptimizerConfig{Name: optRMSProp}, 256),
			func() (Data, Validation) {
				v := memData(5000, 20, 1, 0, 6)
				return memData(20000, 20, 1, 0, 5), Validation{Set: &v}
			}},
	}
	for _, c := range cases {
		for _, run := range []struct {
			p       Precision
			threads int
		}{{Float64, 1}, {Float32, 1}, {Float64, 2}, {Float32, 2}} {
			c := c
			c.cfg.Training.Precision = run.p
			t.Run(fmt.Sprintf("%s/%s/threads=%d", c.name, run.p, run.threads), func(t *testing.T) {
				checkMeasured(t, c, run.threads)
			})
		}
	}
}

func checkMeasured(t *testing.T, c memoryCase, threads int) {
	measured, est := measureTraining(t, c, threads)
	ratio := float64(est.Total) / float64(measured)
	t.Logf("measured %s, estimated %s (×%.2f): data %s, workspace %s, network %s, copies %s",
		FormatBytes(measured), FormatBytes(est.Total), ratio,
		FormatBytes(est.Data), FormatBytes(est.Workspace), FormatBytes(est.Network), FormatBytes(est.Copies))
	if est.Total < measured {
		t.Errorf("estimate %d bytes is below the %d bytes allocated", est.Total, measured)
	}
	if ratio > 2 {
		t.Errorf("estimate %d bytes is %.2f× the %d bytes allocated, want at most 2×", est.Total, ratio, measured)
	}
}

// measureTraining runs one attempt of c with the collector off and returns
// the bytes it allocated and the estimate for its shape.
func measureTraining(t *testing.T, c memoryCase, threads int) (int64, MemoryEstimate) {
	t.Helper()
	runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)

	train, val := c.make()
	tr, err := NewTrainer(c.cfg, c.task, train, val, Options{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	var state []byte
	if err := tr.Run(context.Background(), func(Epoch) bool {
		if state, err = tr.MarshalState(); err != nil {
			t.Fatal(err)
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	file, err := tr.Model().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(state)
	runtime.KeepAlive(file)

	pr := tr.data
	est := EstimateMemory(c.cfg, c.task, shapeOf(train, val, pr, threads))
	return int64(after.TotalAlloc - before.TotalAlloc), est
}

// TestEstimateMemoryOfTheCrashingSpec is the spec that used to take the
// process down: 1,048,576 rows × 1 feature, one hidden layer of 65,536
// units, batch 1,048,576. Its workspace alone is rows × (1 + 2 × (65,536 +
// 1) + 1 + 1) × 8 bytes ≈ 1.0 TiB, and the check names both fields.
func TestEstimateMemoryOfTheCrashingSpec(t *testing.T) {
	cfg := Config{Network: NetworkConfig{Hidden: []LayerConfig{{Units: 65536}}},
		Training: TrainingConfig{BatchSize: 1 << 20}}
	est := EstimateMemory(cfg, TaskRegression, DataShape{Rows: 1 << 20, Features: 1, Outputs: 1, TargetColumns: 1})
	wantWS := int64(1<<20) * (1 + 2*(65536+1) + 1 + 1) * 8
	if useKernels() {
		wantWS += kernels.WorkspaceBytes[float64]() // one goroutine's GEMM packing buffers
	}
	if est.Workspace != wantWS {
		t.Errorf("workspace = %d, want %d", est.Workspace, wantWS)
	}
	err := CheckMemory(cfg.Resolve(TaskRegression, false), est, 1<<30)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("CheckMemory = %v, want a *ValidationError", err)
	}
	fields := map[string]string{}
	for _, fe := range ve.Errors {
		fields[fe.Field] = fe.Message
	}
	for _, f := range []string{"training.batch_size", "network.hidden[0].units"} {
		msg, ok := fields[f]
		if !ok {
			t.Errorf("no error on %s; got %v", f, ve.Errors)
			continue
		}
		if !strings.Contains(msg, FormatBytes(est.Total)) || !strings.Contains(msg, "1 GiB") {
			t.Errorf("%s: %q does not state the estimate %s and the limit 1 GiB", f, msg, FormatBytes(est.Total))
		}
	}

	// NewTrainer refuses it the same way before allocating the batch
	// buffers: with a 1 TiB workspace this test would otherwise die.
	d := Data{Rows: 1 << 20, Features: 1, X: make([]float64, 1<<20), Targets: make([]float64, 1<<20)}
	_, err = NewTrainer(cfg, TaskRegression, d, Validation{}, Options{Limits: Limits{MaxMemory: 1 << 30}})
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "training.batch_size") {
		t.Errorf("NewTrainer = %v, want a validation error on training.batch_size", err)
	}
}

// TestEstimateMemoryCountsDropoutMasks: dropout adds exactly its masks, a
// byte per batch row and unit of each hidden layer with dropout (here
// 256 × (64 + 16)), to the workspace; input dropout and L1 add nothing.
func TestEstimateMemoryCountsDropoutMasks(t *testing.T) {
	d := DataShape{Rows: 1000, Features: 10, Outputs: 1, TargetColumns: 1}
	plain := memCfg(256, OptimizerConfig{}, 64, 32, 16)
	drop := memCfg(256, OptimizerConfig{}, 64, 32, 16)
	drop.Network.InputDropout, drop.Training.L1 = 0.5, 0.01
	drop.Network.Hidden[0].Dropout, drop.Network.Hidden[2].Dropout = 0.5, 0.1
	a, b := EstimateMemory(plain, TaskRegression, d), EstimateMemory(drop, TaskRegression, d)
	if got, want := b.Workspace-a.Workspace, int64(256*(64+16)); got != want {
		t.Errorf("dropout adds %d bytes to the workspace, want %d", got, want)
	}
	if b.Total-a.Total != b.Workspace-a.Workspace {
		t.Errorf("dropout changes the total by %d and the workspace by %d", b.Total-a.Total, b.Workspace-a.Workspace)
	}
}

// TestEstimateMemoryPrecisionAndThreads: float32 halves the workspace,
// the weights and their copies, and leaves the data as it is; each
// thread adds one set of GEMM packing buffers of the precision where
// products run on package kernels.
func TestEstimateMemoryPrecisionAndThreads(t *testing.T) {
	d := DataShape{Rows: 1000, Features: 10, Outputs: 1, TargetColumns: 1}
	cfg64 := memCfg(256, OptimizerConfig{}, 64, 32)
	cfg32 := cfg64.clone()
	cfg32.Training.Precision = Float32
	pack := func(p Precision) int64 {
		if !useKernels() {
			return 0
		}
		if p == Float32 {
			return kernels.WorkspaceBytes[float32]()
		}
		return kernels.WorkspaceBytes[float64]()
	}
	a, b := EstimateMemory(cfg64, TaskRegression, d), EstimateMemory(cfg32, TaskRegression, d)
	if b.Data != a.Data {
		t.Errorf("float32 data %d bytes, float64 %d; want the same", b.Data, a.Data)
	}
	if 2*b.Network != a.Network {
		t.Errorf("float32 network %d bytes, float64 %d; want half", b.Network, a.Network)
	}
	if got, want := b.Workspace-pack(Float32), (a.Workspace-pack(Float64))/2; got != want {
		t.Errorf("float32 batch buffers %d bytes, want half of float64's, %d", got, want)
	}
	for _, p := range []Precision{Float64, Float32} {
		cfg := cfg64.clone()
		cfg.Training.Precision = p
		one := EstimateMemory(cfg, TaskRegression, d)
		d3 := d
		d3.Threads = 3
		three := EstimateMemory(cfg, TaskRegression, d3)
		if got, want := three.Workspace-one.Workspace, 2*pack(p); got != want {
			t.Errorf("%s: 3 threads add %d bytes to 1 thread's workspace, want %d", p, got, want)
		}
	}
}

func TestEstimateMemorySaturates(t *testing.T) {
	cfg := Config{Network: NetworkConfig{Hidden: []LayerConfig{{Units: math.MaxInt32}, {Units: math.MaxInt32}}},
		Training: TrainingConfig{BatchSize: math.MaxInt32}}
	est := EstimateMemory(cfg, TaskRegression, DataShape{Rows: math.MaxInt32, Features: math.MaxInt32, Outputs: 1})
	if est.Total != math.MaxInt64 {
		t.Errorf("Total = %d for sizes whose product overflows, want math.MaxInt64", est.Total)
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1 KiB"}, {1536, "1.5 KiB"},
		{2 << 30, "2 GiB"}, {1 << 40, "1 TiB"}, {math.MaxInt64, "8 EiB"},
	}
	for _, tt := range tests {
		if got := FormatBytes(tt.n); got != tt.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
