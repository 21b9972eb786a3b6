package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"
)

// Epoch is one entry of the training history. Accuracy fields are NaN-free
// pointers: nil when they do not apply.
//
// Loss is the mean training loss per sample over the epoch, accumulated
// batch by batch as the weights were being updated (each batch's mean loss
// weighted by its rows), not a second pass at the epoch's end; Accuracy is
// the accuracy of those same batch predictions. ValLoss and ValAccuracy are
// computed on the whole validation split after the epoch, in batched
// forward passes. Accuracy applies to classifiers only; for multi-label
// binary models it is the per-label accuracy averaged over labels.
// SamplesPerSecond counts training rows over the training part of the epoch.
type Epoch struct {
	Epoch            int           `json:"epoch"` // 1-based
	Loss             float64       `json:"loss"`
	ValLoss          *float64      `json:"val_loss,omitempty"`
	Accuracy         *float64      `json:"accuracy,omitempty"`
	ValAccuracy      *float64      `json:"val_accuracy,omitempty"`
	LearningRate     float64       `json:"learning_rate"`
	Duration         time.Duration `json:"-"`
	DurationSeconds  float64       `json:"duration_seconds"`
	SamplesPerSecond float64       `json:"samples_per_second"`
}

// Options are the run-time knobs of a Trainer that are not part of the
// model's configuration.
type Options struct {
	// Threads is the number of goroutines this run's matrix products may
	// use; 0 means 1. With several jobs at once, keep the sum of their
	// Threads at or below the number of cores. Results do not depend on it.
	Threads int
	// Limits are checked by NewTrainer before anything large is allocated.
	Limits Limits
}

// maxThreads caps Options.Threads.
const maxThreads = 256

// trainStream is the PCG stream for initialization and shuffling.
const trainStream = 0x9e3779b97f4a7c15

// Trainer runs backpropagation for one configuration and data set. It is not
// safe for concurrent use, except Stop.
type Trainer struct {
	cfg     Config
	task    Task
	threads int
	data    *prepared
	scaler  *scaler
	core    trainCore // *core[float32] or *core[float64], by precision
	batch   int       // the rows of a full mini-batch
	pcg     *rand.PCG
	rng     *rand.Rand
	perm    []int
	swap    func(i, j int)
	finger  string

	epoch    int
	history  []Epoch
	es       esState
	keepBest bool // early stopping keeps the best weights to restore them
	finished bool // early stopping ended the run

	snap  snapshot
	dirty bool // the live state is past snap (an epoch was interrupted)

	stop         atomic.Bool
	stoppedEarly bool

	afterBatch func() // test hook, run after every mini-batch
}

// esState is the early-stopping bookkeeping.
type esState struct {
	HasBest   bool    `json:"has_best"`
	BestLoss  float64 `json:"best_loss"`
	BestEpoch int     `json:"best_epoch"`
	Wait      int     `json:"wait"`
}

// snapshot is the training state at the last completed epoch boundary;
// its vectors (weights, moments, best weights) are in the core, copied
// into buffers allocated once.
type snapshot struct {
	step     int64
	rng      []byte
	epoch    int
	history  int
	es       esState
	finished bool
}

// NewTrainer resolves cfg for task (Resolve is idempotent, so a resolved
// cfg is fine), validates it against task and data, splits off validation
// data, fits the preprocessing (for typed data the imputation, missing
// indicators, category levels and date parts, then the scaling) on the
// training split and allocates every
// buffer the training loop needs. All problems come back together as a
// *ValidationError.
func NewTrainer(cfg Config, task Task, train Data, val Validation, opt Options) (*Trainer, error) {
	cfg = cfg.Resolve(task, val.present())
	var p problems
	pr := prepare(&p, cfg, task, train, val, opt.Limits)
	if pr != nil && cfg.Training.precision() == Float32 {
		float32Range(&p, pr)
	}
	features, outputs := max(train.Features, 1), 1
	if pr != nil {
		outputs = pr.outputs
		features = pr.inputWidth(&train)
	} else if task == TaskMulticlass {
		outputs = 2
	}
	var cp problems
	cfg.validate(&cp, task, features, outputs, opt.Limits)
	if pr != nil && pr.inputs != nil && opt.Limits.MaxParams > 0 {
		if params, ok := cfg.Network.numParams(features, outputs); ok && params > int64(opt.Limits.MaxParams) {
			widthProblem(&cp, params, opt.Limits.MaxParams, features, specWidths(pr.inputs))
		}
	}
	if !val.present() && cfg.earlyStopping() {
		cp.add("training.early_stopping", earlyStoppingNeedsValidation)
	}
	p = append(cp, p...)
	if err := p.err(); err != nil {
		return nil, err
	}
	if err := CheckMemory(cfg, EstimateMemory(cfg, task, shapeOf(train, val, pr, opt.Threads)), opt.Limits.MaxMemory); err != nil {
		return nil, err
	}

	pr.encode(train, val)
	t := &Trainer{cfg: cfg, task: task, threads: min(max(opt.Threads, 1), maxThreads), data: pr}
	t.scaler = newScaler(pr.mean, pr.std)
	t.batch = min(cfg.Training.BatchSize, len(pr.trainIdx))
	t.keepBest = t.restoresBest()
	if cfg.Training.precision() == Float32 {
		t.core = newCore[float32](t)
	} else {
		t.core = newCore[float64](t)
	}
	t.pcg = rand.NewPCG(uint64(*cfg.Training.Seed), trainStream)
	t.rng = rand.New(t.pcg)
	t.perm = make([]int, len(pr.trainIdx))
	t.swap = func(i, j int) { t.perm[i], t.perm[j] = t.perm[j], t.perm[i] }
	t.core.initialize(t.rng, cfg.Network.Init)
	t.finger = fingerprint(cfg, task, train.Features, pr)
	t.takeSnapshot()
	return t, nil
}

// fingerprint identifies the config and data shape a training state
// belongs to. Stored checkpoints resume only while it stays the same for
// their configs, so a field added to Config later must be omitempty (a
// pointer if it is a struct) with its zero value meaning the behaviour
// before it existed, and Resolve must leave it zero when unset: the JSON
// of an old config, and so its fingerprint, is then unchanged.
// TestConfigFieldsKeepFingerprint and TestFingerprintIsStable check this.
func fingerprint(cfg Config, task Task, features int, pr *prepared) string {
	width := 0
	if pr.inputs != nil {
		width = pr.width
	}
	b, _ := json.Marshal(struct {
		Config   Config   `json:"config"`
		Task     Task     `json:"task"`
		Features int      `json:"features"`
		Width    int      `json:"width,omitempty"` // typed data only
		Outputs  int      `json:"outputs"`
		Classes  []string `json:"classes"`
		Train    int      `json:"train_rows"`
		Val      int      `json:"val_rows"`
	}{cfg, task, features, width, pr.outputs, pr.classes, len(pr.trainIdx), len(pr.valIdx)})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (t *Trainer) restoresBest() bool {
	es := t.cfg.Training.EarlyStopping
	return t.cfg.earlyStopping() && t.data.val != nil && (es.RestoreBest == nil || *es.RestoreBest)
}

// Config returns the resolved configuration.
func (t *Trainer) Config() Config { return t.cfg.clone() }

// Stop asks a running Run to return at the end of the current mini-batch,
// keeping the weights trained so far (no restoring of the best weights). It
// is safe to call from any goroutine. A Stop before Run makes that Run
// return at once.
func (t *Trainer) Stop() { t.stop.Store(true) }

// StoppedEarly reports whether the last Run ended before its planned epochs
// (early stopping, onEpoch or Stop).
func (t *Trainer) StoppedEarly() bool { return t.stoppedEarly }

// EarlyStopped reports whether early stopping ended training: its patience
// ran out in a Run, or in the run a restored state came from.
func (t *Trainer) EarlyStopped() bool { return t.finished }

// EpochsDone is the number of completed epochs.
func (t *Trainer) EpochsDone() int { return t.epoch }

// History returns a copy of the per-epoch history so far.
func (t *Trainer) History() []Epoch {
	h := slices.Clone(t.history)
	for i := range h {
		h[i].ValLoss, h[i].Accuracy, h[i].ValAccuracy = clonePtr(h[i].ValLoss), clonePtr(h[i].Accuracy), clonePtr(h[i].ValAccuracy)
	}
	return h
}

func (t *Trainer) classifier() bool { return t.task != TaskRegression }

// Run trains until the configured epochs are done, early stopping triggers,
// onEpoch returns true, Stop is called, or ctx is done. onEpoch (may be nil)
// runs after every epoch with that epoch's history entry; MarshalState
// called from it encodes the state after that epoch. Run checks ctx and Stop
// before every mini-batch, so it returns ctx.Err() within one mini-batch of
// cancellation. It returns an error wrapping ErrDiverged, naming the epoch,
// when the loss or the weights become NaN or Inf.
//
// Run may be called again, after a Restore or after an interrupted Run: it
// always continues from the last completed epoch, discarding a partial one.
// After a nil return, Model gives the trained model.
func (t *Trainer) Run(ctx context.Context, onEpoch func(Epoch) (stop bool)) error {
	defer t.stop.Store(false)
	t.stoppedEarly = false
	if t.dirty {
		t.rewind()
	}
	t.core.start(t.threads)
	defer t.core.stop()

	cfg := t.cfg.Training
	batch := t.batch
	done := ctx.Done()
	for t.epoch < cfg.Epochs && !t.finished {
		start := time.Now()
		lr := learningRate(cfg, t.epoch)
		copy(t.perm, t.data.trainIdx)
		if *cfg.Shuffle {
			t.rng.Shuffle(len(t.perm), t.swap)
		}
		t.dirty = true
		var lossSum float64
		var correct, judged int
		for s := 0; s < len(t.perm); s += batch {
			select {
			case <-done:
				return ctx.Err()
			default:
			}
			if t.stop.Load() {
				t.stoppedEarly = true
				return nil
			}
			idx := t.perm[s:min(s+batch, len(t.perm))]
			loss, c, n := t.core.step(t, idx, lr)
			if !finite(loss) {
				return fmt.Errorf("epoch %d, batch %d: the training loss is %v: %w", t.epoch+1, s/batch+1, loss, ErrDiverged)
			}
			lossSum += loss * float64(len(idx))
			correct += c
			judged += n
			if t.afterBatch != nil {
				t.afterBatch()
			}
		}
		if i, v := t.core.nonFinite(); i >= 0 {
			return fmt.Errorf("epoch %d: parameter %d is %v: %w", t.epoch+1, i, v, ErrDiverged)
		}
		trainTime := time.Since(start)
		e := Epoch{Epoch: t.epoch + 1, Loss: lossSum / float64(len(t.perm)), LearningRate: lr}
		if t.classifier() && judged > 0 {
			e.Accuracy = ptr(float64(correct) / float64(judged))
		}
		if t.data.val != nil {
			vl, va := t.core.evaluate(t)
			if !finite(vl) {
				return fmt.Errorf("epoch %d: the validation loss is %v: %w", t.epoch+1, vl, ErrDiverged)
			}
			e.ValLoss = &vl
			if t.classifier() {
				e.ValAccuracy = &va
			}
		}
		e.Duration = time.Since(start)
		e.DurationSeconds = e.Duration.Seconds()
		if trainTime > 0 {
			e.SamplesPerSecond = float64(len(t.perm)) / trainTime.Seconds()
		}
		t.epoch++
		t.history = append(t.history, e)
		stop := t.earlyStop(e)
		t.takeSnapshot()
		if onEpoch != nil && onEpoch(e) {
			stop = true
		}
		if stop {
			t.stoppedEarly = true
			return nil
		}
	}
	return nil
}

// earlyStop updates the early-stopping bookkeeping after epoch e and
// reports whether training should end; when it ends and restore_best is
// set, the best weights are put back.
func (t *Trainer) earlyStop(e Epoch) bool {
	if !t.cfg.earlyStopping() || e.ValLoss == nil {
		return false
	}
	es := t.cfg.Training.EarlyStopping
	if !t.es.HasBest || *e.ValLoss < t.es.BestLoss-es.MinDelta {
		t.es = esState{HasBest: true, BestLoss: *e.ValLoss, BestEpoch: e.Epoch}
		if t.keepBest {
			t.core.saveBest()
		}
		return false
	}
	t.es.Wait++
	if t.es.Wait < *es.Patience {
		return false
	}
	t.finished = true
	if t.keepBest {
		t.core.restoreBest()
	}
	return true
}

// firstNonFinite is the index of the first NaN or Inf in v, or -1.
func firstNonFinite[T float](v []T) int {
	for i, x := range v {
		if !finite(float64(x)) {
			return i
		}
	}
	return -1
}

// takeSnapshot records the live state as the last epoch boundary.
func (t *Trainer) takeSnapshot() {
	s := &t.snap
	s.step = t.core.snapshot()
	s.rng, _ = t.pcg.MarshalBinary() // PCG's MarshalBinary cannot fail
	s.epoch = t.epoch
	s.history = len(t.history)
	s.es = t.es
	s.finished = t.finished
	t.dirty = false
}

// rewind puts the live state back to the last epoch boundary.
func (t *Trainer) rewind() {
	s := &t.snap
	t.core.rewind(s.step)
	if err := t.pcg.UnmarshalBinary(s.rng); err != nil {
		panic("engine: PCG state does not round-trip: " + err.Error())
	}
	t.epoch = s.epoch
	t.history = t.history[:s.history]
	t.es = s.es
	t.finished = s.finished
	t.dirty = false
}

// trainCore is the numeric part of a Trainer in its precision: the
// network, its workspace, dropout, optimizer, best weights and the
// snapshot's vectors, all in one element type. The Trainer keeps the
// rest (data, random numbers, epochs, history) in one place for both.
type trainCore interface {
	// initialize draws the initial weights from rng.
	initialize(rng *rand.Rand, init Init)
	// start makes the goroutines and packing buffers of one Run; stop
	// ends them.
	start(threads int)
	stop()
	// step trains on the mini-batch idx of t's training rows.
	step(t *Trainer, idx []int, lr float64) (loss float64, correct, judged int)
	// evaluate is the mean loss and accuracy over t's validation rows.
	evaluate(t *Trainer) (loss, accuracy float64)
	// nonFinite is the first parameter that is NaN or Inf, and its
	// value; -1 when there is none.
	nonFinite() (int, float64)
	// saveBest copies the weights into the best weights; restoreBest
	// puts them back.
	saveBest()
	restoreBest()
	// snapshot copies the live vectors into the snapshot's and returns
	// the optimizer's step; rewind copies them back and sets the step.
	snapshot() int64
	rewind(step int64)
	// params, moments and hasBest give the vectors' shapes.
	params() int
	moments() int
	// appendState appends the snapshot's vectors, in the training
	// state's order, as T's bits.
	appendState(b []byte) []byte
	// restoreState reads the snapshot's vectors from the raw bits of a
	// training state, which hold exactly as many values as they need.
	restoreState(values []byte) error
}

// core is trainCore in precision T.
type core[T float] struct {
	net  *network[T]
	ws   *workspace[T]
	drop *dropout // nil without dropout
	opt  *optimizer[T]
	best []T // best weights, when early stopping restores them
	pool *gemmPool[T]

	snapParams  []T
	snapMoments [][]T
	snapBest    []T
}

// newCore allocates every buffer of t's training loop in precision T.
func newCore[T float](t *Trainer) *core[T] {
	pr, cfg := t.data, t.cfg
	specs := architecture(cfg.Network, pr.train.features, pr.outputs)
	c := &core[T]{net: newNetwork[T](specs, cfg.Network.Loss, nil, true)}
	c.ws = newWorkspace(c.net, t.batch, true)
	if pr.classWeights != nil {
		c.ws.w = make([]T, c.ws.rows)
	}
	c.drop = newDropout(cfg.Network, c.net, c.ws.rows)
	c.opt = newOptimizer(cfg.Training.Optimizer, cfg.Training.L2, cfg.Training.L1, c.net)
	n := len(c.net.params)
	if t.keepBest {
		c.best = make([]T, n)
		c.snapBest = make([]T, n)
	}
	c.snapParams = make([]T, n)
	for range c.opt.moments() {
		c.snapMoments = append(c.snapMoments, make([]T, n))
	}
	return c
}

func (c *core[T]) initialize(rng *rand.Rand, init Init) { c.net.initialize(rng, init) }

func (c *core[T]) start(threads int) { c.pool = newGemmPool[T](threads) }

func (c *core[T]) stop() {
	c.pool.close()
	c.pool = nil
}

// step trains on one mini-batch: gather, forward, backward, clip, update,
// with dropout when configured.
func (c *core[T]) step(t *Trainer, idx []int, lr float64) (loss float64, correct, judged int) {
	n := len(idx)
	outs := t.data.outputs
	var in *layerDrop
	if c.drop != nil {
		in = &c.drop.input
	}
	gather(c.ws, t.data.train, idx, t.scaler, outs, t.data.classWeights, in, t.pcg, c.pool)
	out := c.net.forwardDrop(c.ws, n, c.pool, c.drop, t.pcg)
	if t.classifier() {
		correct, judged = countCorrect(out, c.ws.y, n, outs, c.net.layers[len(c.net.layers)-1].act)
	}
	loss = c.net.backward(c.ws, n, c.pool, c.drop)
	if cn := t.cfg.Training.ClipNorm; cn > 0 {
		clipGradients(c.net.grads, cn)
	}
	c.opt.update(c.net, lr, c.pool)
	return loss, correct, judged
}

// evaluate returns the mean loss and the accuracy (0 for regression) over
// the validation split, in forward passes of up to one batch.
func (c *core[T]) evaluate(t *Trainer) (loss, accuracy float64) {
	outs := t.data.outputs
	idx := t.data.valIdx
	act := c.net.layers[len(c.net.layers)-1].act
	var sum float64
	var correct, judged int
	for s := 0; s < len(idx); s += c.ws.rows {
		chunk := idx[s:min(s+c.ws.rows, len(idx))]
		n := len(chunk)
		gather(c.ws, t.data.val, chunk, t.scaler, outs, t.data.classWeights, nil, nil, c.pool)
		out := c.net.forward(c.ws, n, c.pool)
		sum += lossOnly(out, c.ws.y, c.ws.w, n, outs, c.net.loss) * float64(n)
		if t.classifier() {
			cr, j := countCorrect(out, c.ws.y, n, outs, act)
			correct += cr
			judged += j
		}
	}
	loss = sum / float64(len(idx))
	if judged > 0 {
		accuracy = float64(correct) / float64(judged)
	}
	return loss, accuracy
}

func (c *core[T]) nonFinite() (int, float64) {
	i := firstNonFinite(c.net.params)
	if i < 0 {
		return -1, 0
	}
	return i, float64(c.net.params[i])
}

func (c *core[T]) saveBest()    { copy(c.best, c.net.params) }
func (c *core[T]) restoreBest() { copy(c.net.params, c.best) }

func (c *core[T]) snapshot() int64 {
	copy(c.snapParams, c.net.params)
	for i, m := range c.opt.moments() {
		copy(c.snapMoments[i], m)
	}
	copy(c.snapBest, c.best)
	return c.opt.step
}

func (c *core[T]) rewind(step int64) {
	copy(c.net.params, c.snapParams)
	for i, m := range c.opt.moments() {
		copy(m, c.snapMoments[i])
	}
	copy(c.best, c.snapBest)
	c.opt.step = step
}

func (c *core[T]) params() int  { return len(c.net.params) }
func (c *core[T]) moments() int { return len(c.snapMoments) }

func (c *core[T]) appendState(b []byte) []byte {
	b = appendFloats(b, c.snapParams)
	for _, m := range c.snapMoments {
		b = appendFloats(b, m)
	}
	return appendFloats(b, c.snapBest)
}

func (c *core[T]) restoreState(values []byte) error {
	n := len(c.snapParams)
	params := readFloats[T](&values, n)
	if i := firstNonFinite(params); i >= 0 {
		return corrupt("training state: parameter %d is %v", i, params[i])
	}
	copy(c.snapParams, params)
	for _, m := range c.snapMoments {
		copy(m, readFloats[T](&values, n))
	}
	if c.snapBest != nil {
		copy(c.snapBest, readFloats[T](&values, n))
	}
	return nil
}
