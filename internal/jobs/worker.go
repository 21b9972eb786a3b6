package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
)

// checkpointStretch sets how a long job's checkpoint interval grows: at
// epoch e a checkpoint is written at least every e/checkpointStretch
// epochs (and every Options.CheckpointEvery epochs before that).
const checkpointStretch = 64

// outcome is how a run ended.
type outcome struct {
	ev      event  // evSucceed, evFail, evCancelled, or evShutdown
	reason  string // evFail
	version int    // evSucceed
	// stop is why the job ended; "" means ReasonFailed or ReasonCancelled,
	// after ev.
	stop      StopReason
	bestEpoch int // evSucceed: the epoch whose weights the model holds
	// checkpointed: evShutdown, and this run's state was checkpointed;
	// without it the job resumes from an earlier checkpoint, if any.
	checkpointed bool
}

// failed is the outcome of an error that ended the run.
func failed(reason string) outcome { return outcome{ev: evFail, reason: reason} }

// worker runs jobs until Shutdown.
func (m *Manager) worker() {
	defer m.wg.Done()
	for {
		j := m.next()
		if j == nil {
			return
		}
		m.runJob(j)
	}
}

// next waits for a queued job and marks it running, or returns nil when
// the manager is closing.
//
// With a memory budget, the job at the head of the queue starts only once
// its memory estimate is reserved; until then it, and every job behind it,
// waits (in submission order: a large job is not overtaken for ever by
// small ones).
func (m *Manager) next() *job {
	m.mu.Lock()
	var release func()
	for {
		for !m.closing && len(m.queue) == 0 {
			m.cond.Wait()
		}
		if m.closing {
			m.mu.Unlock()
			return nil
		}
		if m.opt.Memory == nil {
			break
		}
		var ok bool
		if release, ok = m.opt.Memory.TryReserve(m.queue[0].mem); ok {
			break
		}
		// watchMemory broadcasts when a reservation ends.
		m.cond.Wait()
	}
	j := m.queue[0]
	m.queue = m.queue[1:]
	j.release = release
	now := time.Now().UTC()
	// A job with a stop recorded before a restart starts in
	// stateSavingStopped, which train reads to save instead of training.
	m.advanceLocked(j, evStart)
	j.rec.Attempts++
	if j.rec.StartedAt == nil {
		j.rec.StartedAt = &now
	}
	j.done = make(chan struct{})
	j.ctx, j.cancel = context.WithCancelCause(m.base)
	j.trainer = nil
	m.running++
	busy := m.running
	snap := j.snapshotLocked()
	m.publishStatusLocked(j, snap)
	m.mu.Unlock()
	if m.observer != nil {
		m.observer.JobStarted(snap)
		m.observer.WorkersBusy(busy)
	}
	return j
}

// runJob trains j and records how it ended. A panic anywhere in training
// fails the job, not the worker.
func (m *Manager) runJob(j *job) {
	var o outcome
	func() {
		defer func() {
			if r := recover(); r != nil {
				m.log.Error("panic in training job", "job", j.rec.ID, "panic", r, "stack", string(debug.Stack()))
				o = failed(fmt.Sprintf("internal error: training panicked: %v", r))
			}
		}()
		o = m.train(j)
	}()
	m.finish(j, o)
}

// train runs one attempt of j.
func (m *Manager) train(j *job) outcome {
	ctx := j.ctx
	if err := m.persist(j); err != nil {
		return m.failure(ctx, j, m.reason(j.rec.ID, &storeFault{what: "the job's record", write: true, err: err}))
	}
	if h := m.hooks.beforeTrain; h != nil {
		h(ctx, j.rec.ID, j.rec.ModelName)
	}

	m.mu.Lock()
	spec, stopReq := j.spec, j.state == stateSavingStopped
	m.mu.Unlock()

	// The time limit counts the epochs trained in earlier attempts.
	budget := time.Duration(spec.Training.MaxDurationSeconds * float64(time.Second))
	budget = min(budget, m.opt.MaxDuration)

	train, val, task, err := m.loadData(ctx, spec)
	if err != nil {
		return m.failure(ctx, j, m.reason(j.rec.ID, err))
	}
	cfg := spec.config()
	tr, err := engine.NewTrainer(cfg, task, train, val, engine.Options{Threads: m.threads, Limits: m.opt.Limits})
	if err != nil {
		return m.failure(ctx, j, errText(err))
	}

	cp, err := m.st.Checkpoint(context.WithoutCancel(ctx), j.rec.ID)
	switch {
	case err == nil:
		if rerr := tr.RestoreState(cp); rerr != nil {
			m.log.Error("checkpoint unusable; training from scratch", "job", j.rec.ID, "file", store.CheckpointPath(j.rec.ID), "err", rerr)
			cp = nil
			if tr, err = engine.NewTrainer(cfg, task, train, val, engine.Options{Threads: m.threads, Limits: m.opt.Limits}); err != nil {
				return m.failure(ctx, j, errText(err))
			}
		}
	case errors.Is(err, store.ErrNotFound):
	default:
		m.log.Error("checkpoint unreadable; training from scratch", "job", j.rec.ID, "err", err)
	}
	if stopReq {
		return m.finishStopped(ctx, j, tr, cp != nil)
	}

	// The checkpoint's history is the truth: the record may hold epochs
	// trained after it, which are trained again.
	var restored []engine.Epoch
	if cp != nil {
		restored = tr.History()
	}
	m.mu.Lock()
	j.setHistoryLocked(restored)
	m.mu.Unlock()
	for _, e := range restored {
		budget -= time.Duration(e.DurationSeconds * float64(time.Second))
	}

	m.mu.Lock()
	j.trainer = tr
	if j.state.stopRequested() {
		tr.Stop()
	}
	m.mu.Unlock()
	// The time limit stops the trainer as Stop does, so that the model
	// trained so far is kept (as H2O's max_runtime_secs keeps it).
	timeUp := func() {
		m.mu.Lock()
		// A limit that fires as the run ends may find the job past
		// running, where it means nothing.
		if to, err := next(j.state, evTimeUp); err == nil {
			m.moveLocked(j, evTimeUp, to)
		}
		m.mu.Unlock()
		tr.Stop()
	}
	if budget <= 0 {
		timeUp()
	} else {
		limit := time.AfterFunc(budget, timeUp)
		defer limit.Stop()
	}
	if h := m.hooks.beforeRun; h != nil {
		h(ctx, j.rec.ID, j.rec.ModelName)
	}

	var writeErr error
	sinceCheckpoint := 0
	err = tr.Run(ctx, func(e engine.Epoch) bool {
		m.mu.Lock()
		m.advanceLocked(j, evEpoch)
		j.appendEpochLocked(e)
		snap := j.snapshotLocked()
		m.publishEpochLocked(j, e)
		m.mu.Unlock()
		if m.observer != nil {
			m.observer.JobEpoch(snap, e)
		}
		// The checkpoint first, so that the record never claims epochs
		// the checkpoint lacks. Between checkpoints readers see progress
		// from memory. The record and the checkpoint both hold the whole
		// history, so at a fixed interval the bytes written per epoch
		// would grow with the epochs trained (quadratic over a long job);
		// past checkpointStretch epochs the interval grows with them, which
		// keeps the bytes per epoch bounded and a crash's loss under
		// 1/checkpointStretch of the training done.
		every := max(m.opt.CheckpointEvery, e.Epoch/checkpointStretch)
		if sinceCheckpoint++; sinceCheckpoint >= every {
			sinceCheckpoint = 0
			if err := m.checkpoint(j.rec.ID, tr); err != nil {
				writeErr = &storeFault{what: fmt.Sprintf("the checkpoint after epoch %d", e.Epoch), write: true, err: err}
				return true
			}
			if err := m.persist(j); err != nil {
				writeErr = &storeFault{what: fmt.Sprintf("the job's record of epoch %d", e.Epoch), write: true, err: err}
				return true
			}
		}
		if h := m.hooks.afterEpoch; h != nil {
			h(ctx, j.rec.ID, j.rec.ModelName, e.Epoch)
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		return j.state.stopRequested()
	})

	// The state the run ended in decides how it ends: a cancel that took
	// effect wins; otherwise the job is finishing, past where a cancel
	// could still take effect.
	m.mu.Lock()
	ended := j.state
	if !ended.cancelling() {
		m.advanceLocked(j, evEnd)
	}
	m.mu.Unlock()
	switch {
	case ended.cancelling():
		return outcome{ev: evCancelled}
	case writeErr != nil:
		return failed(m.reason(j.rec.ID, writeErr))
	case err == nil:
		why := ended.endReason(tr.EarlyStopped(), tr.StoppedEarly())
		if why == ReasonTimeLimit && tr.EpochsDone() == 0 {
			return outcome{ev: evFail, stop: ReasonTimeLimit, reason: timeLimitReason(spec)}
		}
		return m.saveModel(ctx, j, tr, why)
	case ctx.Err() != nil && errors.Is(context.Cause(ctx), errShutdown):
		if cerr := m.checkpoint(j.rec.ID, tr); cerr != nil {
			m.log.Error("checkpoint at shutdown; the job resumes from its previous checkpoint", "job", j.rec.ID, "err", cerr)
			return outcome{ev: evShutdown}
		}
		return outcome{ev: evShutdown, checkpointed: true}
	default:
		return failed(errText(err))
	}
}

// errText is an engine error as a job's reason; a validation error lists
// its fields, which its Error text may not.
func errText(err error) string {
	var ve *engine.ValidationError
	if !errors.As(err, &ve) || len(ve.Errors) == 0 {
		return err.Error()
	}
	fes := requestFields(ve.Errors)
	parts := make([]string, len(fes))
	for i, fe := range fes {
		parts[i] = fe.Field + ": " + fe.Message
	}
	return "invalid training setup: " + strings.Join(parts, "; ")
}

// failure is the outcome of an error outside the training loop: a shutdown
// in progress requeues the job, a user cancel cancels it, anything else
// fails it with reason.
func (m *Manager) failure(ctx context.Context, j *job, reason string) outcome {
	m.mu.Lock()
	cancelled := j.state.cancelling()
	m.mu.Unlock()
	switch {
	case cancelled:
		return outcome{ev: evCancelled}
	case ctx.Err() != nil && errors.Is(context.Cause(ctx), errShutdown):
		return outcome{ev: evShutdown}
	default:
		return failed(reason)
	}
}

// timeLimitReason is the error of a job whose time limit ran out before
// its first complete epoch, which leaves no trained model to keep.
func timeLimitReason(s Spec) string {
	return fmt.Sprintf("time limit exceeded before the first epoch completed: training ran for its maximum of %g s (training.max_duration_seconds), so no model was saved; raise the limit or train on fewer rows",
		s.Training.MaxDurationSeconds)
}

// finishStopped completes a job whose stop was recorded before a restart:
// the model in its checkpoint is saved as a stopped-early success, without
// training on (Run with Stop already requested returns before its first
// mini-batch; the model's summary then says it stopped early).
func (m *Manager) finishStopped(ctx context.Context, j *job, tr *engine.Trainer, restored bool) outcome {
	if !restored {
		return failed("stop was requested before the server restarted, and no checkpoint holds a model to save")
	}
	tr.Stop()
	if err := tr.Run(context.WithoutCancel(ctx), nil); err != nil {
		return failed(errText(err))
	}
	m.mu.Lock()
	j.setHistoryLocked(tr.History())
	cancelled := j.state.cancelling()
	if !cancelled {
		m.advanceLocked(j, evEnd)
	}
	m.mu.Unlock()
	if cancelled {
		return outcome{ev: evCancelled}
	}
	return m.saveModel(ctx, j, tr, ReasonStopped)
}

// loadData loads the training set and, when the spec names one, the
// validation set, sharing the store's slices with the engine.
func (m *Manager) loadData(ctx context.Context, s Spec) (engine.Data, engine.Validation, engine.Task, error) {
	ds, err := m.st.LoadDataset(ctx, s.DatasetID)
	if err != nil {
		return engine.Data{}, engine.Validation{}, "", &storeFault{what: "dataset " + s.DatasetID, err: err}
	}
	train := engineData(ds)
	var val engine.Validation
	if v := s.Validation; v != nil {
		val.Fraction = v.Fraction
		if v.DatasetID != "" {
			vds, err := m.st.LoadDataset(ctx, v.DatasetID)
			if err != nil {
				return engine.Data{}, engine.Validation{}, "", &storeFault{what: "validation dataset " + v.DatasetID, err: err}
			}
			vd := engineData(vds)
			val.Set = &vd
		}
	}
	return train, val, engine.Task(ds.Meta.Task), nil
}

// engineData views a stored dataset as engine data without copying.
func engineData(ds *store.Dataset) engine.Data {
	d := engine.Data{
		Rows:         ds.Meta.Rows,
		Features:     ds.Meta.Features,
		X:            ds.X,
		FeatureNames: ds.Meta.FeatureNames,
		TargetNames:  ds.Meta.TargetNames,
		Targets:      ds.Targets,
		Labels:       ds.Labels,
	}
	if ds.Columns != nil {
		// Typed data: the engine names the features by its columns.
		d.X, d.FeatureNames, d.Columns = nil, nil, ds.Columns
	}
	return d
}

// checkpoint writes the trainer's state at its last epoch boundary.
func (m *Manager) checkpoint(id string, tr *engine.Trainer) error {
	state, err := tr.MarshalState()
	if err != nil {
		return fmt.Errorf("encode training state: %w", err)
	}
	return m.st.PutCheckpoint(context.Background(), id, state)
}

// saveModel stores the trainer's model as the next version of the job's
// model name; why is how training ended.
func (m *Manager) saveModel(ctx context.Context, j *job, tr *engine.Trainer, why StopReason) outcome {
	model := tr.Model()
	// Every reason but completed ended before the planned epochs; the
	// model file's summary says the same.
	stopped := why != ReasonCompleted
	file, err := model.MarshalBinary()
	if err != nil {
		return failed(fmt.Sprintf("encode model: %v", err))
	}
	sum := model.Summary()
	metrics := map[string]float64{"loss": sum.Loss}
	for k, v := range map[string]*float64{"val_loss": sum.ValLoss, "accuracy": sum.Accuracy, "val_accuracy": sum.ValAccuracy} {
		if v != nil {
			metrics[k] = *v
		}
	}
	meta := store.ModelMeta{
		Name:         j.rec.ModelName,
		JobID:        j.rec.ID,
		DatasetID:    j.rec.DatasetID,
		Task:         string(model.Task()),
		FeatureNames: model.FeatureNames(),
		TargetNames:  model.TargetNames(),
		Classes:      model.Classes(),
		Outputs:      model.Outputs(),
		Metrics:      metrics,
		StoppedEarly: stopped,
	}
	saved, err := m.st.PutModel(context.WithoutCancel(ctx), meta, file)
	if err != nil {
		return failed(m.reason(j.rec.ID, &storeFault{what: "the trained model", write: true, err: err}))
	}
	return outcome{ev: evSucceed, version: saved.Version, stop: why, bestEpoch: tr.ModelEpoch()}
}

// finish records how a run ended, durably before anyone can see it, then
// wakes Cancel and Stop callers and tells subscribers and the observer.
func (m *Manager) finish(j *job, o outcome) {
	j.wmu.Lock()
	m.mu.Lock()
	from := j.state
	to, err := next(from, o.ev)
	if err != nil {
		// Every state a run ends in allows evFail.
		m.log.Error("job state refuses the run's outcome; failing the job", "job", j.rec.ID, "state", from.String(), "event", o.ev.String())
		o = failed(fmt.Sprintf("internal error: a %s job cannot %s", from, o.ev))
		to = stateFailed
	}
	now := time.Now().UTC()
	rec := j.recordLocked()
	recordState(rec, from, to)
	switch to {
	case stateQueued, stateQueuedStop:
		// Interrupted by Shutdown: resumes at the next Start, and the
		// interrupted run does not count as an attempt.
		rec.Attempts--
	case stateSucceeded:
		rec.ModelVersion = o.version
		rec.StoppedEarly = o.stop != ReasonCompleted
		rec.StopReason = string(o.stop)
		rec.BestEpoch = o.bestEpoch
		rec.FinishedAt = &now
	case stateFailed:
		rec.Error = o.reason
		rec.StopReason = string(cmp.Or(o.stop, ReasonFailed))
		rec.FinishedAt = &now
	case stateCancelled:
		rec.StopReason = string(ReasonCancelled)
		rec.FinishedAt = &now
	}
	if to.terminal() && !slices.Contains(to.stopReasons(), StopReason(rec.StopReason)) {
		m.log.Error("job ended with a stop reason its state does not allow", "job", rec.ID, "state", to.String(), "stop_reason", rec.StopReason)
	}
	hw := j.historyWriteLocked()
	m.mu.Unlock()
	if err := m.writeRecord(j, rec, hw); err != nil {
		m.log.Error("write final job record", "job", rec.ID, "status", rec.Status, "err", err)
	}
	if to.terminal() {
		m.deleteCheckpoint(rec.ID)
	}

	m.mu.Lock()
	if h := m.hooks.transition; h != nil {
		h(j.rec.ID, from, o.ev, to)
	}
	j.rec = *rec
	j.state = to
	cancel := j.cancel
	j.trainer, j.cancel, j.ctx = nil, nil, nil
	m.running--
	busy := m.running
	snap := j.snapshotLocked()
	if to.terminal() {
		m.publishStatusLocked(j, snap)
	}
	close(j.done)
	release := j.release
	j.release = nil
	m.mu.Unlock()
	j.wmu.Unlock()
	cancel(context.Canceled) // releases the job context's resources
	if release != nil {
		// The trainer is unreachable now, so its memory is the
		// collector's to reclaim.
		release()
	}

	switch {
	// Shutdown interrupted the run: the job has not ended, and its status
	// (queued) and attempts (not counting this run) would read as if it
	// never started.
	case !to.terminal() && o.checkpointed:
		m.log.Info("job checkpointed for resume at next start", "job", snap.ID, "epochs", snap.Progress.Epoch)
	case !to.terminal():
		m.log.Info("job interrupted by shutdown; queued again for next start", "job", snap.ID)
	default:
		m.log.Info("job ended", "job", snap.ID, "status", snap.Status, "attempts", snap.Attempts,
			"epochs", snap.Progress.Epoch, "model_version", snap.ModelVersion, "error", snap.Error)
	}
	if m.observer != nil {
		if to.terminal() {
			m.observer.JobFinished(snap)
		}
		m.observer.WorkersBusy(busy)
	}
}
