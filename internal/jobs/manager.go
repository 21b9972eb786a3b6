package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
)

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
	// transition runs, with Manager.mu held, at every change of a job's
	// state that an event causes.
	transition func(id string, from state, e event, to state)
}

// job is the in-memory state of one job. Fields are guarded by Manager.mu,
// except wmu, which serializes the job's store writes.
type job struct {
	// rec is the job's record as it would be written now, without its
	// history: Status and StopRequested follow state (only
	// setStateLocked and recordState write them).
	rec     store.JobRecord
	spec    Spec
	history []engine.Epoch
	state   state

	// enc is history encoded as JSON, the entries separated by commas,
	// and ends[i] is where entry i ends in it. It only grows by append
	// or is replaced whole, like history, so event streams share it
	// (Event.HistoryJSON) and the store writes slices of it.
	enc  []byte
	ends []int
	// durable is how many entries of the history the job's history file
	// holds, so that a write appends the rest; -1 when that is not known
	// (the history was replaced, loaded at start or a write failed),
	// and the next write replaces the file. histGen counts replacements,
	// so that a write that raced one does not claim the new history.
	durable int
	histGen int

	// wmu orders this job's record writes: a write holds it while it takes
	// the snapshot and writes it, so the last write always carries the
	// latest state.
	wmu sync.Mutex

	// Set while running.
	done    chan struct{}
	ctx     context.Context
	cancel  context.CancelCauseFunc
	trainer *engine.Trainer

	// mem is the job's engine.EstimateMemory, reserved from
	// Options.Memory while it runs (0 when its dataset is unknown, which
	// fails it at load); release gives the reservation back.
	mem     int64
	release func()

	subs map[*subscriber]struct{}
}

// setStateLocked moves j to state to, keeping its record in step.
func (j *job) setStateLocked(to state) {
	recordState(&j.rec, j.state, to)
	j.state = to
}

// moveLocked moves j, on event e, to state to, which next allowed.
func (m *Manager) moveLocked(j *job, e event, to state) {
	if h := m.hooks.transition; h != nil {
		h(j.rec.ID, j.state, e, to)
	}
	j.setStateLocked(to)
}

// advanceLocked applies an event that the manager itself causes (a worker
// starting, an epoch, the time limit, the run's end). The transition table
// allows each of them where the manager causes it; a refusal would be a
// bug, which is logged and leaves the state as it was.
func (m *Manager) advanceLocked(j *job, e event) {
	to, err := next(j.state, e)
	if err != nil {
		m.log.Error("job state refuses an internal event", "job", j.rec.ID, "state", j.state.String(), "event", e.String())
		return
	}
	m.moveLocked(j, e, to)
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
	if j.state == stateDeleted {
		m.mu.Unlock()
		return nil
	}
	rec := j.recordLocked()
	hw := j.historyWriteLocked()
	m.mu.Unlock()
	return m.writeRecord(j, rec, hw)
}

// historyWrite is what a record write must first write of a job's
// history: entries from from on, appended, or, with from < 0, all of
// them in place of the file.
type historyWrite struct {
	from    int
	entries []json.RawMessage
	gen     int
}

// historyWriteLocked returns the history entries j's next record write
// must first make durable.
func (j *job) historyWriteLocked() historyWrite {
	from := j.durable
	if from < 0 {
		return historyWrite{from: -1, entries: j.entriesLocked(0), gen: j.histGen}
	}
	return historyWrite{from: from, entries: j.entriesLocked(from), gen: j.histGen}
}

// entriesLocked returns j's encoded history entries from from on; they
// share j.enc.
func (j *job) entriesLocked(from int) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(j.ends)-from)
	for i := from; i < len(j.ends); i++ {
		start := 0
		if i > 0 {
			start = j.ends[i-1] + 1 // after the comma
		}
		out = append(out, j.enc[start:j.ends[i]:j.ends[i]])
	}
	return out
}

// writeRecord writes hw and then rec, so that the record never counts
// history entries the history file lacks: an epoch appends its entry,
// it does not rewrite the history. The caller holds j.wmu.
func (m *Manager) writeRecord(j *job, rec *store.JobRecord, hw historyWrite) error {
	ctx := context.Background()
	var err error
	if hw.from < 0 {
		err = m.st.PutJobHistory(ctx, rec.ID, hw.entries)
	} else {
		err = m.st.AppendJobHistory(ctx, rec.ID, hw.from, hw.entries)
	}
	m.mu.Lock()
	if hw.gen == j.histGen {
		if err != nil {
			// A failed append may have left part of a frame.
			j.durable = -1
		} else {
			j.durable = max(hw.from, 0) + len(hw.entries)
		}
	}
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("write history: %w", err)
	}
	return m.st.PutJob(ctx, rec)
}

// deleteCheckpoint removes a job's checkpoint, logging failures: a stale
// checkpoint wastes space but is never read for a finished job.
func (m *Manager) deleteCheckpoint(id string) {
	if err := m.st.DeleteCheckpoint(context.Background(), id); err != nil && !errors.Is(err, store.ErrNotFound) {
		m.log.Warn("delete checkpoint", "job", id, "err", err)
	}
}

// recordLocked returns a copy of j's record counting its history; the
// entries themselves go to the history file (writeRecord).
func (j *job) recordLocked() *store.JobRecord {
	rec := j.rec
	rec.History = nil
	rec.HistoryLen = len(j.history)
	return &rec
}

// setHistoryLocked replaces j's history, keeping its encoding in step;
// the next record write replaces the history file.
func (j *job) setHistoryLocked(h []engine.Epoch) {
	j.history = h
	j.enc, j.ends = nil, make([]int, 0, len(h))
	for _, e := range h {
		j.encodeLocked(e)
	}
	j.durable = -1
	j.histGen++
}

// appendEpochLocked adds one epoch to j's history.
func (j *job) appendEpochLocked(e engine.Epoch) {
	j.history = append(j.history, e)
	j.encodeLocked(e)
}

// encodeLocked appends e's encoding to j.enc.
func (j *job) encodeLocked(e engine.Epoch) {
	if len(j.enc) > 0 {
		j.enc = append(j.enc, ',')
	}
	j.enc = append(j.enc, encodeEpoch(e)...)
	j.ends = append(j.ends, len(j.enc))
}

// historyJSONLocked returns j's history as the elements of a JSON array,
// sharing j's bytes: readers must not modify them, and an append cannot
// write into them (their capacity is capped).
func (j *job) historyJSONLocked() []byte {
	n := len(j.enc)
	return j.enc[:n:n]
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
		Status:       Status(j.rec.Status),
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
		if out.Status == Running && out.Progress.Epochs > last.Epoch {
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
