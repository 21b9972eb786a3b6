// Package jobs runs training jobs: a bounded queue in submission order, a
// pool of workers that train with internal/engine, and the durable job
// records and checkpoints in the store that let a restart pick up where the
// process stopped. It imports the engine and the store, never net/http or
// metrics; the API and the metrics code consume it through Manager and
// Observer.
//
// # Lifecycle
//
// A job's in-memory state is one value of the state type (state.go),
// which changes only through next(state, event): the transition table
// lists, for each state, the events it allows and where they lead, and
// every other event is refused with ErrConflict, which names the job's
// state and the rule. The Status a job shows and its record's status and
// stop_requested are derived from the state; the state a run ends in
// gives its stop reason (state.endReason), and each finished state admits
// only its own stop reasons (state.stopReasons).
//
// # Files
//
//   - manager.go: the Manager and job types, New, Shutdown, persistence
//     and snapshots.
//   - state.go: the state type and its transition table.
//   - lifecycle.go: Submit, Cancel, Stop, Delete and DeleteDataset.
//   - list.go: Get, List and list cursors.
//   - recovery.go: Start, which reads records back and recovers jobs.
//   - worker.go: the workers, which train a job and record how it ended.
//   - events.go: Subscribe and the event stream.
//
// # What is durable when
//
//   - Submit returns only after the job record (status queued, the resolved
//     spec and its submission sequence number) is written and fsynced. A job
//     that Submit accepted is never lost.
//   - A worker writes the record when it starts a job (status running,
//     attempts+1). Every Options.CheckpointEvery epochs (default 1) it
//     writes a checkpoint, the engine's full training state at that epoch
//     boundary, then appends the epochs since the last write to the job's
//     history file and writes the record, which counts them. The record
//     does not hold the history, so it stays small; the checkpoint holds
//     the whole history, so past epoch 64 the interval is at least 1/64 of
//     the epochs trained: the bytes written per epoch stay bounded, and a
//     crash loses at most that much training. Between checkpoints,
//     progress is visible through Get and Subscribe but not yet on disk.
//     The history file is replaced whole only when the history is (an
//     attempt restored from its checkpoint, a job read back at Start, a
//     failed append).
//   - Stop persists the record's StopRequested flag before it stops the
//     trainer, so that a crash in between does not resume training past the
//     stop.
//   - A succeeding job stores its model version first, then the terminal
//     record, then deletes the checkpoint. Failed and cancelled jobs write
//     their terminal record, then delete the checkpoint.
//   - Cancelling a queued job writes its cancelled record before Cancel
//     returns.
//
// # What survives a crash
//
// Start reads every record back. Queued jobs are queued again in their
// original submission order. A job that was running resumes from its last
// checkpoint (from scratch when there is none) and finishes with exactly the
// weights an uninterrupted run would have produced, because the checkpoint
// holds the weights, optimizer moments, random-number state and history at an
// epoch boundary. Attempts counts the runs a job has started; a job found
// running at Start after 3 attempts is failed ("interrupted 3 times; giving
// up") instead of being retried forever. A job found running with
// StopRequested is finished as a stopped-early success from the model in its
// checkpoint; without a checkpoint it fails, saying so. A crash after the
// model version is stored but before the terminal record is written trains
// the job again on restart and stores one more version: model writes are
// at-least-once.
//
// A recovered job trains with its stored spec, which is never resolved
// again: the engine config, of which a checkpoint's fingerprint is taken,
// is the one the job began with. A default that changed since (a version 1
// spec has no training.precision, and trains in float64 where a new job
// gets float32) does not reach it.
//
// A clean Shutdown cancels running jobs with a shutdown cause, writes a
// checkpoint at their last epoch boundary and records them as queued with
// the attempt given back, so a clean restart does not count against the
// 3-attempt limit.
//
// # Limits
//
// Resolve checks a spec against its dataset and the engine's limits before
// anything is written, and the engine checks them again before it
// allocates. Each job has a wall-time budget: the spec's
// training.max_duration_seconds, at most Options.MaxDuration. It runs from
// when a worker starts the job (time in the queue does not count) and
// includes the epochs trained in earlier attempts. A panic inside a job fails
// that job and leaves the worker running.
//
// Memory is checked on estimates, never by trying: a Go out-of-memory error
// is fatal and no recover catches it. Submit refuses a job whose
// engine.EstimateMemory exceeds Options.JobMaxMemory, naming the fields to
// change; Start fails a recovered job over it (one accepted under a larger
// cap) before any worker allocates for it, so it cannot crash the server
// on every restart; and a worker starts the job at the head of the queue
// only once its estimate is reserved from Options.Memory, so queued jobs
// wait while the running ones fill the budget.
//
// The queue's capacity (Options.QueueSize) applies to Submit. Jobs recovered
// at Start are all queued again even when they exceed it; new submissions
// get ErrQueueFull until the queue drains below the capacity.
//
// Each worker trains with max(1, GOMAXPROCS/Workers) engine threads, so that the
// workers together never use more threads than there are CPUs.
package jobs
