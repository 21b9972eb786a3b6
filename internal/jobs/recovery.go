package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/membudget"
	"github.com/backpropd/backpropd/internal/store"
)

// maxAttempts is how many runs a job may start before a crash during the
// last one fails it.
const maxAttempts = 3

// Start recovers jobs from the store (queued ones in order, interrupted
// ones from their checkpoints) and starts the workers. Records that cannot
// be read are logged and skipped.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	if m.started || m.closing {
		m.mu.Unlock()
		return errors.New("jobs: Start called twice or after Shutdown")
	}
	m.mu.Unlock()

	recs, errs := m.st.ListJobs(ctx)
	for _, err := range errs {
		m.log.Error("skipping unreadable job record", "err", err)
	}
	var toWrite []*job
	var terminal []string
	m.mu.Lock()
	m.unreadable = len(errs)
	for _, rec := range recs {
		j, err := loadJob(rec)
		if err != nil {
			m.log.Error("skipping unreadable job record", "job", rec.ID, "err", err)
			m.unreadable++
			continue
		}
		m.nextSeq = max(m.nextSeq, rec.Seq+1)
		m.jobs[j.rec.ID] = j
		switch from := j.state; from {
		case stateQueued, stateQueuedStop:
			// A queued stop: Stop marks only running jobs, but a Shutdown
			// can requeue one between the mark and the stop.
			m.advanceLocked(j, evRecover)
			m.queue = append(m.queue, j)
		case stateRunning, stateStopping:
			if from == stateRunning && j.rec.Attempts >= maxAttempts {
				m.advanceLocked(j, evFail)
				j.rec.Error = fmt.Sprintf("interrupted %d times; giving up", j.rec.Attempts)
				j.rec.StopReason = string(ReasonFailed)
				now := time.Now().UTC()
				j.rec.FinishedAt = &now
				m.log.Warn("job interrupted too often", "job", j.rec.ID, "attempts", j.rec.Attempts)
			} else {
				// Waiting for a worker again; the attempt is counted when
				// one takes it. A job with a recorded stop is finished by
				// the worker from its checkpoint, however many attempts
				// it has had.
				m.advanceLocked(j, evRecover)
				m.queue = append(m.queue, j)
				m.log.Info("resuming interrupted job", "job", j.rec.ID, "attempts", j.rec.Attempts)
			}
			toWrite = append(toWrite, j)
		default:
			m.advanceLocked(j, evRecover)
			terminal = append(terminal, j.rec.ID)
		}
	}
	// ListJobs returns Seq order already; sort anyway, the order is the
	// promise.
	slices.SortFunc(m.queue, func(a, b *job) int { return cmp.Compare(a.rec.Seq, b.rec.Seq) })
	queue := slices.Clone(m.queue)
	m.mu.Unlock()

	// A job accepted before this server's memory cap applied (an older
	// build, a larger --job-max-memory) could ask for more memory than
	// the process has, and a Go out-of-memory error is fatal: such a job
	// fails here, before any worker allocates for it, instead of taking
	// the server down on every restart.
	var tooBig []*job
	for _, j := range queue {
		est, cfg, ok := m.estimate(ctx, j.spec)
		if !ok {
			continue
		}
		if err := engine.CheckMemory(cfg, est, m.opt.Limits.MaxMemory); err != nil {
			tooBig = append(tooBig, j)
			m.mu.Lock()
			m.advanceLocked(j, evFail)
			j.rec.Error = errText(err)
			j.rec.StopReason = string(ReasonFailed)
			now := time.Now().UTC()
			j.rec.FinishedAt = &now
			m.mu.Unlock()
			m.log.Warn("job needs more memory than one job may use; failed without training", "job", j.rec.ID,
				"estimate_bytes", est.Total, "job_max_memory_bytes", m.opt.Limits.MaxMemory)
			continue
		}
		m.mu.Lock()
		j.mem = est.Total
		m.mu.Unlock()
	}
	if len(tooBig) > 0 {
		m.mu.Lock()
		m.queue = slices.DeleteFunc(m.queue, func(j *job) bool { return j.state == stateFailed })
		m.mu.Unlock()
		for _, j := range tooBig {
			if !slices.Contains(toWrite, j) {
				toWrite = append(toWrite, j)
			}
		}
	}

	for _, j := range toWrite {
		if err := m.persist(j); err != nil {
			m.log.Error("write recovered job record", "job", j.rec.ID, "err", err)
		}
		if j.state == stateFailed {
			m.deleteCheckpoint(j.rec.ID)
		}
	}
	// A crash between a terminal record and its checkpoint's removal leaves
	// the checkpoint behind.
	for _, id := range terminal {
		m.deleteCheckpoint(id)
	}

	m.mu.Lock()
	m.started = true
	queued := make([]Job, len(m.queue))
	for i, j := range m.queue {
		queued[i] = j.snapshotLocked()
	}
	m.mu.Unlock()
	if m.observer != nil {
		for _, j := range queued {
			m.observer.JobQueued(j)
		}
	}
	m.log.Info("job manager started", "jobs", len(recs), "queued", len(queued),
		"workers", m.opt.Workers, "threads_per_job", m.threads)
	if b := m.opt.Memory; b != nil {
		m.wg.Add(1)
		go m.watchMemory(b)
	}
	for range m.opt.Workers {
		m.wg.Add(1)
		go m.worker()
	}
	return nil
}

// watchMemory wakes the workers whenever a reservation of b ends (a job's,
// or an upload's or a prediction's), so that a job waiting for memory
// starts as soon as it fits. It ends with Shutdown.
func (m *Manager) watchMemory(b *membudget.Budget) {
	defer m.wg.Done()
	for {
		select {
		case <-b.Released():
		case <-m.base.Done():
			return
		}
		// Under m.mu: a worker that found the budget full holds it until
		// it waits, so the wake-up cannot fall in between.
		m.mu.Lock()
		m.cond.Broadcast()
		m.mu.Unlock()
	}
}

// loadJob decodes a stored record into a job.
func loadJob(rec *store.JobRecord) (*job, error) {
	st, err := recordedState(rec)
	if err != nil {
		return nil, err
	}
	j := &job{rec: *rec, state: st, subs: make(map[*subscriber]struct{})}
	spec, err := loadSpec(rec.Spec)
	if err != nil {
		return nil, fmt.Errorf("decode spec: %w", err)
	}
	j.spec = spec
	h := make([]engine.Epoch, len(rec.History))
	for i, raw := range rec.History {
		if err := json.Unmarshal(raw, &h[i]); err != nil {
			return nil, fmt.Errorf("decode history[%d]: %w", i, err)
		}
	}
	// The record may be of a format that held the history inline, so the
	// job's first write replaces the history file.
	j.setHistoryLocked(h)
	j.rec.History = nil
	if j.rec.StopReason == "" {
		j.rec.StopReason = string(legacyStopReason(rec))
	}
	return j, nil
}

// legacyStopReason says why a finished job ended, for a record written
// before records held it: from its status, its stopped_early flag, whether
// a stop was asked, and the text older releases gave a time-limit failure.
// An unfinished job has none yet.
func legacyStopReason(rec *store.JobRecord) StopReason {
	switch Status(rec.Status) {
	case Succeeded:
		switch {
		case !rec.StoppedEarly:
			return ReasonCompleted
		case rec.StopRequested:
			return ReasonStopped
		default:
			return ReasonEarlyStopping
		}
	case Failed:
		if strings.HasPrefix(rec.Error, "time limit exceeded") {
			return ReasonTimeLimit
		}
		return ReasonFailed
	case Cancelled:
		return ReasonCancelled
	}
	return ""
}
