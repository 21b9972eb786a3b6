package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/membudget"
	"github.com/backpropd/backpropd/internal/pagecursor"
	"github.com/backpropd/backpropd/internal/store"
	"github.com/google/uuid"
)

// maxAttempts is how many runs a job may start before a crash during the
// last one fails it.
const maxAttempts = 3

// Causes for cancelling a job's context; the worker reads them back with
// context.Cause to decide how the job ends.
var (
	errShutdown  = errors.New("server shutting down")
	errCancelled = errors.New("job cancelled")
)

// Manager owns the queue and the worker pool. Its in-memory records are
// authoritative for reads; every change is written through to the store.
type Manager struct {
	st      Store
	opt     Options
	log     *slog.Logger
	threads int

	// base is the parent of every job context; Shutdown cancels it with
	// errShutdown.
	base       context.Context
	cancelBase context.CancelCauseFunc

	mu      sync.Mutex
	cond    *sync.Cond // signalled when the queue grows or closing is set
	jobs    map[string]*job
	queue   []*job // queued jobs, by seq ascending
	pending int    // submissions being written, counted against the queue
	// pendingDS counts the datasets (training and validation) of the
	// submissions being written, for DatasetInUse.
	pendingDS map[string]int
	running   int
	nextSeq   int64
	started   bool
	closing   bool
	wg        sync.WaitGroup // workers
	hooks     testHooks
	observer  Observer

	// deletingDS holds the datasets DeleteDataset is deleting; each
	// channel closes when its deletion has ended. Submit waits for it.
	deletingDS map[string]chan struct{}

	// unreadable counts the job records Start skipped; their datasets
	// are unknown, so SweepInlineData deletes nothing while it is > 0.
	unreadable int
}

// testHooks let tests block, slow down or break a worker at chosen points.
type testHooks struct {
	// beforeTrain runs when a worker has taken a job, before it loads data.
	beforeTrain func(ctx context.Context, id, model string)
	// beforeRun runs when the time limit's clock has started, just before
	// training begins.
	beforeRun func(ctx context.Context, id, model string)
	// afterEpoch runs after an epoch's record and checkpoint are written.
	afterEpoch func(ctx context.Context, id, model string, epoch int)
}

// job is the in-memory state of one job. Fields are guarded by Manager.mu,
// except wmu, which serializes the job's store writes.
type job struct {
	rec     store.JobRecord // History holds history encoded
	spec    Spec
	history []engine.Epoch
	status  Status

	// wmu orders this job's record writes: a write holds it while it takes
	// the snapshot and writes it, so the last write always carries the
	// latest state.
	wmu     sync.Mutex
	deleted bool

	// Set while running.
	done      chan struct{}
	ctx       context.Context
	cancel    context.CancelCauseFunc
	trainer   *engine.Trainer
	cancelReq bool
	finishing bool // past the point where cancel can still take effect
	timeUp    bool // the time limit ran out and stopped the trainer

	// recoveredStop: Start found the job running with StopRequested; the
	// worker saves its checkpoint's model instead of training.
	recoveredStop bool

	// mem is the job's engine.EstimateMemory, reserved from
	// Options.Memory while it runs (0 when its dataset is unknown, which
	// fails it at load); release gives the reservation back.
	mem     int64
	release func()

	subs map[*subscriber]struct{}
}

// New creates a Manager over a store. Call Start before Submit.
func New(st Store, opt Options) (*Manager, error) {
	if st == nil {
		return nil, errors.New("jobs: nil store")
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	if opt.QueueSize <= 0 {
		opt.QueueSize = 64
	}
	if opt.MaxDuration <= 0 {
		opt.MaxDuration = 24 * time.Hour
	}
	if opt.CheckpointEvery <= 0 {
		opt.CheckpointEvery = 1
	}
	if opt.ShutdownTimeout <= 0 {
		opt.ShutdownTimeout = 10 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Limits.MaxParams == 0 {
		opt.Limits.MaxParams = DefaultMaxParams
	}
	switch {
	case opt.JobMaxMemory == 0 && opt.Memory != nil:
		opt.JobMaxMemory = opt.Memory.Size() / 2
	case opt.JobMaxMemory == 0:
		opt.JobMaxMemory = DefaultJobMaxMemory
	}
	if opt.Memory != nil && (opt.JobMaxMemory < 0 || opt.JobMaxMemory > opt.Memory.Size()) {
		opt.JobMaxMemory = opt.Memory.Size()
	}
	opt.Limits.MaxMemory = max(opt.JobMaxMemory, 0)
	if opt.Limits.MaxCells == 0 {
		opt.Limits.MaxCells = MaxCellsFor(opt.JobMaxMemory)
	}
	m := &Manager{
		st:        st,
		opt:       opt,
		log:       opt.Logger,
		threads:   max(1, runtime.GOMAXPROCS(0)/opt.Workers),
		jobs:      make(map[string]*job),
		pendingDS: make(map[string]int),
		nextSeq:   1,
		observer:  opt.Observer,
	}
	m.deletingDS = make(map[string]chan struct{})
	m.cond = sync.NewCond(&m.mu)
	m.base, m.cancelBase = context.WithCancelCause(context.Background())
	return m, nil
}

// Counts returns how many jobs are queued and running now (for metrics).
func (m *Manager) Counts() (queued, running int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.queue), m.running
}

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
		switch j.status {
		case Queued:
			// Stop marks only running jobs, but a Shutdown can requeue one
			// between the mark and the stop.
			j.recoveredStop = j.rec.StopRequested
			m.queue = append(m.queue, j)
		case Running:
			if j.rec.Attempts >= maxAttempts && !j.rec.StopRequested {
				j.status = Failed
				j.rec.Error = fmt.Sprintf("interrupted %d times; giving up", j.rec.Attempts)
				j.rec.StopReason = string(ReasonFailed)
				now := time.Now().UTC()
				j.rec.FinishedAt = &now
				m.log.Warn("job interrupted too often", "job", j.rec.ID, "attempts", j.rec.Attempts)
			} else {
				// Waiting for a worker again; the attempt is counted when
				// one takes it. A StopRequested job is finished by the
				// worker from its checkpoint.
				j.status = Queued
				j.recoveredStop = j.rec.StopRequested
				m.queue = append(m.queue, j)
				m.log.Info("resuming interrupted job", "job", j.rec.ID, "attempts", j.rec.Attempts)
			}
			toWrite = append(toWrite, j)
		default:
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
			j.status = Failed
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
		m.queue = slices.DeleteFunc(m.queue, func(j *job) bool { return j.status == Failed })
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
		if j.status == Failed {
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
	j := &job{rec: *rec, status: Status(rec.Status), subs: make(map[*subscriber]struct{})}
	switch j.status {
	case Queued, Running, Succeeded, Failed, Cancelled:
	default:
		return nil, fmt.Errorf("unknown status %q", rec.Status)
	}
	spec, err := loadSpec(rec.Spec)
	if err != nil {
		return nil, fmt.Errorf("decode spec: %w", err)
	}
	j.spec = spec
	j.history = make([]engine.Epoch, len(rec.History))
	for i, raw := range rec.History {
		if err := json.Unmarshal(raw, &j.history[i]); err != nil {
			return nil, fmt.Errorf("decode history[%d]: %w", i, err)
		}
	}
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
			Status:    string(Queued),
			Spec:      specJSON,
			Seq:       seq,
			CreatedAt: time.Now().UTC(),
		},
		spec:   rs,
		status: Queued,
		mem:    mem,
		subs:   make(map[*subscriber]struct{}),
	}
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

// Get returns a job snapshot, history included. The history is shared
// with the manager, not copied: read it, do not modify it.
func (m *Manager) Get(ctx context.Context, id string) (Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok {
		return Job{}, ErrNotFound
	}
	return j.snapshotLocked(), nil
}

// List returns jobs newest first (by submission order), without their
// histories (Get has them), and the cursor of the next page ("" at the
// end). A bad filter gives an *engine.ValidationError naming "status",
// "model_name", "limit" or "cursor" (ListFilter.validate, the only check
// of a filter).
func (m *Manager) List(ctx context.Context, f ListFilter) ([]Job, string, error) {
	limit, before, err := f.validate()
	if err != nil {
		return nil, "", err
	}

	m.mu.Lock()
	all := make([]*job, 0, len(m.jobs))
	for _, j := range m.jobs {
		if before >= 0 && j.rec.Seq >= before {
			continue
		}
		if f.Status != "" && j.status != f.Status {
			continue
		}
		if f.ModelName != "" && j.rec.ModelName != f.ModelName {
			continue
		}
		all = append(all, j)
	}
	slices.SortFunc(all, func(a, b *job) int { return cmp.Compare(b.rec.Seq, a.rec.Seq) })
	next := ""
	if len(all) > limit {
		all = all[:limit]
		next = encodeCursor(all[limit-1].rec.Seq)
	}
	out := make([]Job, len(all))
	for i, j := range all {
		out[i] = j.summaryLocked()
	}
	m.mu.Unlock()
	return out, next, nil
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

// encodeCursor makes the opaque cursor for "jobs submitted before seq".
func encodeCursor(seq int64) string {
	return pagecursor.Encode("seq", strconv.FormatInt(seq, 10))
}

func decodeCursor(c string) (int64, error) {
	key, err := pagecursor.Decode("seq", c)
	if err != nil {
		return 0, err
	}
	seq, err := strconv.ParseInt(key, 10, 64)
	if err != nil || seq < 0 {
		return 0, pagecursor.ErrInvalid
	}
	return seq, nil
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
	switch j.status {
	case Succeeded, Failed, Cancelled:
		snap := j.snapshotLocked()
		m.mu.Unlock()
		return snap, conflict(id, snap.Status, "only a queued or running job can be cancelled")
	case Queued:
		if i := slices.Index(m.queue, j); i >= 0 {
			m.queue = slices.Delete(m.queue, i, i+1)
			// A worker may be waiting for memory for this job, at the
			// head of the queue; the next one may fit.
			m.cond.Broadcast()
		}
		now := time.Now().UTC()
		j.status = Cancelled
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
	case Running:
		// Past finishing, the run has produced its model and ends on its
		// own; wait for it and report the conflict.
		if !j.finishing {
			j.cancelReq = true
			j.cancel(errCancelled)
		}
		done := j.done
		m.mu.Unlock()
		if err := waitDone(ctx, done); err != nil {
			return j.snapshot(m), err
		}
		m.mu.Lock()
	}
	defer m.mu.Unlock()
	snap := j.snapshotLocked()
	if snap.Status == Cancelled {
		return snap, nil
	}
	return snap, conflict(id, snap.Status, "only a queued or running job can be cancelled")
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
	if j.status != Running || j.cancelReq {
		snap := j.snapshotLocked()
		m.mu.Unlock()
		st := snap.Status
		// cancelReq outlives the run; only a running job is still being
		// cancelled.
		if st == Running {
			st = "being cancelled"
		}
		return snap, conflict(id, st, "only a running job can be stopped")
	}
	first := !j.rec.StopRequested
	j.rec.StopRequested = true
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
	if !j.status.Terminal() {
		st := j.status
		m.mu.Unlock()
		return conflict(id, st, "only a finished job can be deleted; cancel it first")
	}
	if j.deleted {
		m.mu.Unlock()
		return ErrNotFound
	}
	m.mu.Unlock()
	if err := m.st.DeleteJob(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("delete job %s: %w", id, err)
	}
	m.deleteCheckpoint(id)
	m.mu.Lock()
	j.deleted = true
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
		if j.status.Terminal() {
			continue
		}
		if j.rec.DatasetID == id || j.rec.ValDatasetID == id {
			return true
		}
	}
	// A submission being written is not in m.jobs yet.
	return m.pendingDS[id] > 0
}

// Shutdown stops taking jobs, cancels running ones with a shutdown cause,
// lets them write a checkpoint and records them as queued so that the next
// Start resumes them, without counting the interrupted run as an attempt.
// It returns when the workers have ended, or with ctx's error when ctx ends
// first (without a deadline, Options.ShutdownTimeout bounds it). Every
// subscription is closed; its last event may then be a non-terminal status.
func (m *Manager) Shutdown(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.opt.ShutdownTimeout)
		defer cancel()
	}
	m.mu.Lock()
	m.closing = true
	m.cond.Broadcast()
	m.mu.Unlock()
	m.cancelBase(errShutdown)

	done := make(chan struct{})
	go func() {
		m.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("jobs: shutdown: workers still running: %w", ctx.Err())
	}
	m.mu.Lock()
	for _, j := range m.jobs {
		m.closeSubsLocked(j)
	}
	m.mu.Unlock()
	return err
}

// waitDone waits for done to close or ctx to end.
func waitDone(ctx context.Context, done <-chan struct{}) error {
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// snapshot returns j as the API shows it, taking m.mu.
func (j *job) snapshot(m *Manager) Job {
	m.mu.Lock()
	defer m.mu.Unlock()
	return j.snapshotLocked()
}

// persist writes j's current state to the store. Writes of one job are
// serialized and each takes its snapshot after the previous write ended, so
// the store always ends with the newest state. A deleted job is not
// written again.
func (m *Manager) persist(j *job) error {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	m.mu.Lock()
	if j.deleted {
		m.mu.Unlock()
		return nil
	}
	rec := j.recordLocked()
	m.mu.Unlock()
	return m.st.PutJob(context.Background(), rec)
}

// deleteCheckpoint removes a job's checkpoint, logging failures: a stale
// checkpoint wastes space but is never read for a finished job.
func (m *Manager) deleteCheckpoint(id string) {
	if err := m.st.DeleteCheckpoint(context.Background(), id); err != nil && !errors.Is(err, store.ErrNotFound) {
		m.log.Warn("delete checkpoint", "job", id, "err", err)
	}
}

// recordLocked returns a copy of j's record with status and history filled
// in.
func (j *job) recordLocked() *store.JobRecord {
	rec := j.rec
	rec.Status = string(j.status)
	rec.History = slices.Clone(j.rec.History)
	if rec.History == nil {
		rec.History = []json.RawMessage{}
	}
	return &rec
}

// setHistoryLocked replaces j's history, keeping the record's encoded copy
// in step.
func (j *job) setHistoryLocked(h []engine.Epoch) {
	j.history = h
	j.rec.History = make([]json.RawMessage, 0, len(h))
	for _, e := range h {
		j.rec.History = append(j.rec.History, encodeEpoch(e))
	}
}

// appendEpochLocked adds one epoch to j's history.
func (j *job) appendEpochLocked(e engine.Epoch) {
	j.history = append(j.history, e)
	j.rec.History = append(j.rec.History, encodeEpoch(e))
}

func encodeEpoch(e engine.Epoch) json.RawMessage {
	b, err := json.Marshal(e)
	if err != nil {
		// Epoch holds only finite numbers (the engine fails a run before
		// a NaN reaches the history), so this does not happen.
		return json.RawMessage(`{}`)
	}
	return b
}

// historyLocked returns j's history for a snapshot without copying it.
// The history only ever grows by append or is replaced whole
// (setHistoryLocked), never changed in place, so the entries a snapshot
// sees stay as they were; the capped capacity makes a reader's append
// copy instead of writing into the job's array.
func (j *job) historyLocked() []engine.Epoch {
	n := len(j.history)
	return j.history[:n:n]
}

// roundETA rounds an estimate in seconds to what it can mean: whole
// seconds from 10 s up, tenths below. The estimate extrapolates the mean
// epoch time so far, which varies from epoch to epoch by more than that.
func roundETA(s float64) float64 {
	if s >= 10 {
		return math.Round(s)
	}
	return math.Round(s*10) / 10
}

// summaryLocked is snapshotLocked without the history, for lists.
func (j *job) summaryLocked() Job {
	out := j.snapshotLocked()
	out.History = nil
	return out
}

// snapshotLocked returns j as the API shows it. Its History shares j's
// entries (see historyLocked): readers must not modify them.
func (j *job) snapshotLocked() Job {
	out := Job{
		ID:           j.rec.ID,
		ModelName:    j.rec.ModelName,
		Status:       j.status,
		Spec:         j.spec,
		CreatedAt:    j.rec.CreatedAt,
		StartedAt:    j.rec.StartedAt,
		FinishedAt:   j.rec.FinishedAt,
		Attempts:     j.rec.Attempts,
		History:      j.historyLocked(),
		ModelVersion: j.rec.ModelVersion,
		StoppedEarly: j.rec.StoppedEarly,
		StopReason:   StopReason(j.rec.StopReason),
		Error:        j.rec.Error,
	}
	if b := j.rec.BestEpoch; b >= 1 && b <= len(j.history) && j.history[b-1].Epoch == b {
		e := j.history[b-1]
		loss := e.Loss
		out.BestEpoch = b
		out.BestMetrics = &Metrics{Loss: &loss, ValLoss: e.ValLoss, Accuracy: e.Accuracy, ValAccuracy: e.ValAccuracy}
	}
	if out.History == nil {
		out.History = []engine.Epoch{}
	}
	out.Progress.Epochs = j.spec.Training.Epochs
	if n := len(j.history); n > 0 {
		last := j.history[n-1]
		out.Progress.Epoch = last.Epoch
		out.Progress.SamplesPerSecond = last.SamplesPerSecond
		loss := last.Loss
		out.Metrics = Metrics{Loss: &loss, ValLoss: last.ValLoss, Accuracy: last.Accuracy, ValAccuracy: last.ValAccuracy}
		if j.status == Running && out.Progress.Epochs > last.Epoch {
			var total float64
			for _, e := range j.history {
				total += e.DurationSeconds
			}
			eta := roundETA(total / float64(n) * float64(out.Progress.Epochs-last.Epoch))
			out.Progress.ETASeconds = &eta
		}
	}
	if out.Progress.Epochs > 0 {
		out.Progress.Fraction = min(1, float64(out.Progress.Epoch)/float64(out.Progress.Epochs))
	}
	return out
}

// conflictError is an ErrConflict whose text reads as a sentence for the
// client: "job … has already succeeded; only a running job can be stopped".
type conflictError struct{ msg string }

func (e *conflictError) Error() string        { return e.msg }
func (e *conflictError) Is(target error) bool { return target == ErrConflict }

// conflict says that job id, in state st, does not allow what rule names.
func conflict(id string, st Status, rule string) error {
	var state string
	switch st {
	case Succeeded:
		state = "has already succeeded"
	case Failed:
		state = "has already failed"
	case Cancelled:
		state = "has already been cancelled"
	default:
		state = "is " + string(st)
	}
	return &conflictError{msg: fmt.Sprintf("job %s %s; %s", id, state, rule)}
}
