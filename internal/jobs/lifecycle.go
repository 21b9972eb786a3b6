package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/backpropd/backpropd/internal/store"
	"github.com/google/uuid"
)

// Submit validates, durably records and queues a job. It returns
// ErrQueueFull when the queue is at capacity and ErrShuttingDown after
// Shutdown; in both cases nothing is written.
//
// The spec's datasets count as in use from before Resolve looks them up
// until the job is queued (or refused), so that DeleteDataset either sees
// the submission and refuses, or has deleted the dataset before Resolve
// looks, which then reports it missing. A deletion in progress is waited
// for.
func (m *Manager) Submit(ctx context.Context, s Spec) (Job, error) {
	dsIDs := datasetIDs(s)
	if err := m.holdDatasets(ctx, dsIDs); err != nil {
		return Job{}, err
	}
	j, err := m.submit(ctx, s)
	m.mu.Lock()
	m.releaseDatasetsLocked(dsIDs)
	m.mu.Unlock()
	return j, err
}

// holdDatasets counts ids as used by a submission in progress, once no
// DeleteDataset is deleting any of them.
func (m *Manager) holdDatasets(ctx context.Context, ids []string) error {
	m.mu.Lock()
	for {
		var wait chan struct{}
		for _, id := range ids {
			if ch, ok := m.deletingDS[id]; ok {
				wait = ch
				break
			}
		}
		if wait == nil {
			break
		}
		m.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
		m.mu.Lock()
	}
	for _, id := range ids {
		m.pendingDS[id]++
	}
	m.mu.Unlock()
	return nil
}

// releaseDatasetsLocked undoes holdDatasets.
func (m *Manager) releaseDatasetsLocked(ids []string) {
	for _, id := range ids {
		if m.pendingDS[id]--; m.pendingDS[id] <= 0 {
			delete(m.pendingDS, id)
		}
	}
}

// submit is Submit once the spec's datasets are held.
func (m *Manager) submit(ctx context.Context, s Spec) (Job, error) {
	rs, mem, err := m.resolve(ctx, s)
	if err != nil {
		return Job{}, err
	}
	specJSON, err := encodeSpec(rs)
	if err != nil {
		return Job{}, fmt.Errorf("encode spec: %w", err)
	}
	m.mu.Lock()
	switch {
	case m.closing:
		m.mu.Unlock()
		return Job{}, ErrShuttingDown
	case !m.started:
		m.mu.Unlock()
		return Job{}, errors.New("jobs: Submit before Start")
	case len(m.queue)+m.pending >= m.opt.QueueSize:
		m.mu.Unlock()
		return Job{}, ErrQueueFull
	}
	m.pending++
	seq := m.nextSeq
	m.nextSeq++
	m.mu.Unlock()

	j := &job{
		rec: store.JobRecord{
			ID:        uuid.NewString(),
			ModelName: rs.ModelName,
			DatasetID: rs.DatasetID,
			Spec:      specJSON,
			Seq:       seq,
			CreatedAt: time.Now().UTC(),
		},
		spec: rs,
		mem:  mem,
		subs: make(map[*subscriber]struct{}),
	}
	m.advanceLocked(j, evSubmit) // j is not shared yet: no lock needed
	if rs.Validation != nil {
		j.rec.ValDatasetID = rs.Validation.DatasetID
	}
	err = m.persist(j)
	if err == nil && m.observer != nil {
		// Before a worker can see the job, so that the observer hears of
		// it queued before started.
		m.observer.JobQueued(j.snapshot(m))
	}

	m.mu.Lock()
	m.pending--
	if err != nil {
		m.mu.Unlock()
		return Job{}, fmt.Errorf("record job: %w", err)
	}
	m.jobs[j.rec.ID] = j
	i, _ := slices.BinarySearchFunc(m.queue, seq, func(q *job, s int64) int { return cmp.Compare(q.rec.Seq, s) })
	m.queue = slices.Insert(m.queue, i, j)
	m.cond.Signal()
	snap := j.snapshotLocked()
	m.mu.Unlock()
	return snap, nil
}

// datasetIDs lists the datasets a spec reads.
func datasetIDs(s Spec) []string {
	var ids []string
	if s.DatasetID != "" {
		ids = append(ids, s.DatasetID)
	}
	if s.Validation != nil && s.Validation.DatasetID != "" {
		ids = append(ids, s.Validation.DatasetID)
	}
	return ids
}

// Cancel cancels a queued or running job. A queued job leaves the queue and
// its cancelled record is written before Cancel returns. A running job is
// stopped within one mini-batch; Cancel waits for that (bounded by ctx) and
// returns the cancelled job. A finished job gives ErrConflict, as does a
// running job that finished before the cancel took effect.
func (m *Manager) Cancel(ctx context.Context, id string) (Job, error) {
	m.mu.Lock()
	j, ok := m.jobs[id]
	if !ok {
		m.mu.Unlock()
		return Job{}, ErrNotFound
	}
	from := j.state
	to, err := next(from, evCancel)
	if err != nil {
		snap := j.snapshotLocked()
		m.mu.Unlock()
		return snap, jobError(id, err)
	}
	m.moveLocked(j, evCancel, to)
	if to == stateCancelled {
		// Queued: no worker holds the job, so it ends here.
		if i := slices.Index(m.queue, j); i >= 0 {
			m.queue = slices.Delete(m.queue, i, i+1)
			// A worker may be waiting for memory for this job, at the
			// head of the queue; the next one may fit.
			m.cond.Broadcast()
		}
		now := time.Now().UTC()
		j.rec.FinishedAt = &now
		j.rec.StopReason = string(ReasonCancelled)
		snap := j.snapshotLocked()
		m.publishStatusLocked(j, snap)
		m.mu.Unlock()
		if m.observer != nil {
			m.observer.JobFinished(snap)
		}
		if err := m.persist(j); err != nil {
			return snap, fmt.Errorf("record cancelled job %s: %w", id, err)
		}
		m.deleteCheckpoint(id)
		return snap, nil
	}
	// Running. Once finishing, the run has produced its outcome and ends
	// on its own; wait for it and report it.
	if to.cancelling() && !from.cancelling() {
		j.cancel(errCancelled)
	}
	done := j.done
	m.mu.Unlock()
	if err := waitDone(ctx, done); err != nil {
		return j.snapshot(m), err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	snap := j.snapshotLocked()
	if j.state == stateCancelled {
		return snap, nil
	}
	// The run ended otherwise (it was finishing, or a shutdown requeued
	// it); say how.
	return snap, jobError(id, refusal(j.state, evCancel))
}

// Stop stops a running job at the end of the current mini-batch and saves
// the model trained so far as a new version; the job succeeds with
// stop_reason stopped (and stopped_early set). It waits for that (bounded
// by ctx). A job that is not running, or is being cancelled, gives
// ErrConflict naming its state.
func (m *Manager) Stop(ctx context.Context, id string) (Job, error) {
	m.mu.Lock()
	j, ok := m.jobs[id]
	if !ok {
		m.mu.Unlock()
		return Job{}, ErrNotFound
	}
	from := j.state
	to, err := next(from, evStop)
	if err != nil {
		snap := j.snapshotLocked()
		m.mu.Unlock()
		return snap, jobError(id, err)
	}
	m.moveLocked(j, evStop, to)
	first := !from.stopRequested()
	done := j.done
	m.mu.Unlock()

	if first {
		// Durable before the trainer stops, so that a crash in between
		// finishes the job from its checkpoint instead of training on.
		if err := m.persist(j); err != nil {
			m.log.Error("record stop request", "job", id, "err", err)
		}
		m.mu.Lock()
		tr := j.trainer
		m.mu.Unlock()
		if tr != nil {
			tr.Stop()
		}
	}
	if err := waitDone(ctx, done); err != nil {
		return j.snapshot(m), err
	}
	return j.snapshot(m), nil
}

// Delete deletes a finished job's record and checkpoint. An unfinished job
// gives ErrConflict.
func (m *Manager) Delete(ctx context.Context, id string) error {
	m.mu.Lock()
	j, ok := m.jobs[id]
	m.mu.Unlock()
	if !ok {
		return ErrNotFound
	}
	j.wmu.Lock()
	defer j.wmu.Unlock()
	m.mu.Lock()
	to, err := next(j.state, evDelete)
	m.mu.Unlock()
	if err != nil {
		return jobError(id, err)
	}
	if err := m.st.DeleteJob(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("delete job %s: %w", id, err)
	}
	m.deleteCheckpoint(id)
	m.mu.Lock()
	m.moveLocked(j, evDelete, to)
	delete(m.jobs, id)
	m.closeSubsLocked(j)
	m.mu.Unlock()
	return nil
}

// DatasetInUse reports whether a queued or running job uses the dataset,
// for training or for validation.
func (m *Manager) DatasetInUse(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.datasetInUseLocked(id)
}

// DeleteDataset deletes a dataset from the store unless a queued or running
// job, or a submission in progress, uses it, which gives ErrConflict. The
// check and the deletion are one step as Submit sees them: a Submit naming
// the dataset waits until the deletion has ended and then finds the dataset
// gone (or still there, if the deletion failed). A missing dataset gives
// the store's ErrNotFound.
func (m *Manager) DeleteDataset(ctx context.Context, id string) error {
	m.mu.Lock()
	for {
		ch, ok := m.deletingDS[id]
		if !ok {
			break
		}
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		m.mu.Lock()
	}
	if m.datasetInUseLocked(id) {
		m.mu.Unlock()
		return &conflictError{msg: fmt.Sprintf("dataset %s is used by a queued or running job; cancel the job first", id)}
	}
	done := make(chan struct{})
	m.deletingDS[id] = done
	m.mu.Unlock()

	err := m.st.DeleteDataset(ctx, id)

	m.mu.Lock()
	delete(m.deletingDS, id)
	close(done)
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("delete dataset %s: %w", id, err)
	}
	return nil
}

func (m *Manager) datasetInUseLocked(id string) bool {
	for _, j := range m.jobs {
		if j.state.terminal() {
			continue
		}
		if j.rec.DatasetID == id || j.rec.ValDatasetID == id {
			return true
		}
	}
	// A submission being written is not in m.jobs yet.
	return m.pendingDS[id] > 0
}
