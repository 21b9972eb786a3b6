package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// env is a store in a temporary directory and a started Manager over it.
type env struct {
	dir string
	st  *store.Store
	m   *Manager
}

// logWriter is a goroutine-safe buffer for the manager's log.
type logWriter struct {
	mu  sync.Mutex
	buf *bytes.Buffer
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// testOptions are small, fast defaults for tests.
func testOptions() Options {
	return Options{Workers: 1, QueueSize: 64, ShutdownTimeout: 10 * time.Second}
}

// openStore opens the real store in dir.
func openStore(tb testing.TB, dir string) *store.Store {
	tb.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	return st
}

// newManager creates a manager over st with hooks set, starts it and shuts
// it down at cleanup.
func newManager(tb testing.TB, st Store, opt Options, hooks testHooks) *Manager {
	tb.Helper()
	m, err := New(st, opt)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	m.hooks = hooks
	if err := m.Start(context.Background()); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() {
		if err := m.Shutdown(context.Background()); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
	})
	return m
}

// newEnv opens a store in a fresh directory and starts a manager on it.
// Cleanups run last-registered first: the manager shuts down before the
// store closes.
func newEnv(tb testing.TB, opt Options, hooks testHooks) *env {
	tb.Helper()
	e := &env{dir: tb.TempDir()}
	e.st = openStore(tb, e.dir)
	tb.Cleanup(func() { e.st.Close() })
	e.m = newManager(tb, e.st, opt, hooks)
	return e
}

// binaryData is a linearly separable two-class problem: the label is "yes"
// when x0 + x1 > 0. Points come from a fixed PCG seed.
func binaryData(rows int) *store.Dataset {
	r := rand.New(rand.NewPCG(1, 2))
	d := &store.Dataset{Meta: store.DatasetMeta{
		Name: "binary", Rows: rows, Features: 2,
		FeatureNames: []string{"x0", "x1"}, TargetNames: []string{"label"},
		Task: "binary", Classes: []string{"no", "yes"},
	}}
	for range rows {
		x0, x1 := r.Float64()*2-1, r.Float64()*2-1
		d.X = append(d.X, x0, x1)
		if x0+x1 > 0 {
			d.Labels = append(d.Labels, "yes")
		} else {
			d.Labels = append(d.Labels, "no")
		}
	}
	return d
}

// regressionData is y = 2·x0 - x1 over rows points (three features, the
// third is noise-free zero), for a dataset with a different shape.
func regressionData(rows int) *store.Dataset {
	r := rand.New(rand.NewPCG(3, 4))
	d := &store.Dataset{Meta: store.DatasetMeta{
		Name: "regression", Rows: rows, Features: 3,
		FeatureNames: []string{"a", "b", "c"}, TargetNames: []string{"y"},
		Task: "regression",
	}}
	for range rows {
		a, b := r.Float64(), r.Float64()
		d.X = append(d.X, a, b, 0)
		d.Targets = append(d.Targets, 2*a-b)
	}
	return d
}

// mustDataset stores d and returns its id.
func mustDataset(tb testing.TB, st *store.Store, d *store.Dataset) string {
	tb.Helper()
	meta, err := st.CreateDataset(context.Background(), d)
	if err != nil {
		tb.Fatalf("create dataset: %v", err)
	}
	return meta.ID
}

// smallSpec is a tiny network trained for epochs epochs; everything else
// takes its default.
func smallSpec(name, datasetID string, epochs int) Spec {
	seed := int64(7)
	return Spec{
		ModelName: name,
		DatasetID: datasetID,
		Network:   engine.NetworkConfig{Hidden: []engine.LayerConfig{{Units: 4, Activation: engine.Tanh}}},
		Training:  TrainingSpec{TrainingConfig: engine.TrainingConfig{Epochs: epochs, BatchSize: 8, Seed: &seed}},
	}
}

// mustSubmit submits s and fails the test on error.
func mustSubmit(tb testing.TB, m *Manager, s Spec) Job {
	tb.Helper()
	j, err := m.Submit(context.Background(), s)
	if err != nil {
		tb.Fatalf("Submit(%s): %v", s.ModelName, err)
	}
	return j
}

// waitFor polls the job until cond holds, failing after 30 s.
func waitFor(tb testing.TB, m *Manager, id string, what string, cond func(Job) bool) Job {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		j, err := m.Get(context.Background(), id)
		if err == nil && cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			tb.Fatalf("job %s: timed out waiting for %s; last: status=%s err=%v error=%q", id, what, j.Status, err, j.Error)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitTerminal waits for the job to end.
func waitTerminal(tb testing.TB, m *Manager, id string) Job {
	tb.Helper()
	return waitFor(tb, m, id, "a terminal status", func(j Job) bool { return j.Status.Terminal() })
}

// gate blocks hooked workers until opened. Reached is signalled (without
// blocking) each time a worker arrives.
type gate struct {
	once    sync.Once
	open    chan struct{}
	reached chan string
}

func newGate() *gate { return &gate{open: make(chan struct{}), reached: make(chan string, 100)} }

// wait blocks until the gate opens or ctx (the job's context) ends.
func (g *gate) wait(ctx context.Context, id string) {
	select {
	case g.reached <- id:
	default:
	}
	select {
	case <-g.open:
	case <-ctx.Done():
	}
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// await waits for a worker to reach the gate.
func (g *gate) await(tb testing.TB) string {
	tb.Helper()
	select {
	case id := <-g.reached:
		return id
	case <-time.After(30 * time.Second):
		tb.Fatal("timed out waiting for a worker to reach the gate")
		return ""
	}
}

// crashStore wraps a store; after crash() every write fails, which is what
// a dead process's abandoned goroutines amount to for the next process.
type crashStore struct {
	Store
	dead atomic.Bool
}

var errDead = errors.New("process is dead")

func (c *crashStore) check() error {
	if c.dead.Load() {
		return errDead
	}
	return nil
}

func (c *crashStore) PutModel(ctx context.Context, meta store.ModelMeta, file []byte) (store.ModelMeta, error) {
	if err := c.check(); err != nil {
		return store.ModelMeta{}, err
	}
	return c.Store.PutModel(ctx, meta, file)
}

func (c *crashStore) PutJob(ctx context.Context, j *store.JobRecord) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.Store.PutJob(ctx, j)
}

func (c *crashStore) DeleteJob(ctx context.Context, id string) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.Store.DeleteJob(ctx, id)
}

func (c *crashStore) PutCheckpoint(ctx context.Context, id string, state []byte) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.Store.PutCheckpoint(ctx, id, state)
}

func (c *crashStore) DeleteCheckpoint(ctx context.Context, id string) error {
	if err := c.check(); err != nil {
		return err
	}
	return c.Store.DeleteCheckpoint(ctx, id)
}

// faultStore fails chosen writes with a given error.
type faultStore struct {
	Store
	putModel error
}

func (f *faultStore) PutModel(ctx context.Context, meta store.ModelMeta, file []byte) (store.ModelMeta, error) {
	if f.putModel != nil {
		return store.ModelMeta{}, fmt.Errorf("store: write model: %w", f.putModel)
	}
	return f.Store.PutModel(ctx, meta, file)
}

// modelFile returns a stored model version's file.
func modelFile(tb testing.TB, st *store.Store, name string, version int) []byte {
	tb.Helper()
	_, b, err := st.ModelFile(context.Background(), name, version)
	if err != nil {
		tb.Fatalf("model file %s v%d: %v", name, version, err)
	}
	return b
}

// storedJob reads a job record straight from disk.
func storedJob(tb testing.TB, st *store.Store, id string) *store.JobRecord {
	tb.Helper()
	rec, err := st.Job(context.Background(), id)
	if err != nil {
		tb.Fatalf("stored job %s: %v", id, err)
	}
	return rec
}

// fieldsOf lists a validation error's field paths.
func fieldsOf(tb testing.TB, err error) []string {
	tb.Helper()
	var ve *engine.ValidationError
	if !errors.As(err, &ve) {
		tb.Fatalf("error %v (%T) is not an *engine.ValidationError", err, err)
	}
	var out []string
	for _, fe := range ve.Errors {
		out = append(out, fe.Field)
	}
	return out
}
