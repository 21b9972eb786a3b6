package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/membudget"
	"github.com/backpropd/backpropd/internal/store"
)

// Errors. Callers compare with errors.Is.
var (
	ErrQueueFull = errors.New("job queue is full")
	ErrNotFound  = errors.New("job not found")
	// ErrConflict: the job's state does not allow the operation (cancel a
	// finished job, stop a job that is not running, delete an unfinished one).
	ErrConflict     = errors.New("job state conflict")
	ErrShuttingDown = errors.New("server is shutting down")
)

// Status is a job's lifecycle state.
type Status string

// Statuses: queued → running → succeeded | failed | cancelled.
const (
	Queued    Status = "queued"
	Running   Status = "running"
	Succeeded Status = "succeeded"
	Failed    Status = "failed"
	Cancelled Status = "cancelled"
)

// Terminal reports whether s is a final state.
func (s Status) Terminal() bool { return s == Succeeded || s == Failed || s == Cancelled }

// StopReason is why a finished job ended.
type StopReason string

// Stop reasons. A succeeded job ended ReasonCompleted,
// ReasonEarlyStopping, ReasonStopped or ReasonTimeLimit; a failed one
// ReasonFailed, or ReasonTimeLimit when the limit came before its first
// complete epoch; a cancelled one ReasonCancelled.
const (
	ReasonCompleted     StopReason = "completed"      // trained every epoch
	ReasonEarlyStopping StopReason = "early_stopping" // validation loss stopped improving
	ReasonStopped       StopReason = "stopped"        // Stop kept the model trained so far
	ReasonTimeLimit     StopReason = "time_limit"     // training.max_duration_seconds ran out
	ReasonCancelled     StopReason = "cancelled"      // Cancel discarded the run
	ReasonFailed        StopReason = "failed"         // an error ended the run
)

// ValidationSpec is where validation data comes from.
type ValidationSpec struct {
	Fraction  float64 `json:"fraction,omitempty"`
	DatasetID string  `json:"dataset_id,omitempty"`
}

// TrainingSpec is the engine's training config plus the job's time limit.
type TrainingSpec struct {
	engine.TrainingConfig
	MaxDurationSeconds float64 `json:"max_duration_seconds"`
}

// SpecVersion is the version of Spec's stored encoding that this server
// writes and the newest it reads. Its one home is store.JobSpecVersion,
// which the disk store checks, naming the file, before a record is
// decoded; loadSpec checks it again so that a record from any store
// backend is held to it.
const SpecVersion = store.JobSpecVersion

// Spec is a job's specification, as Submit takes it and, resolved, as job
// records store it. The API turns inline data into a hidden stored dataset
// before calling Submit, so DatasetID is always set here.
type Spec struct {
	// Version is the encoding's version. In a stored spec 0 (absent, as
	// in records written before specs carried one) means 1, and loadSpec
	// sets 1; in a spec given to Submit it means SpecVersion. Resolve
	// sets SpecVersion, except on a version 1 spec without
	// training.precision (see DefaultPrecision), which stays version 1.
	Version    int                  `json:"version,omitempty"`
	ModelName  string               `json:"model_name"`
	DatasetID  string               `json:"dataset_id"`
	Validation *ValidationSpec      `json:"validation,omitempty"`
	Network    engine.NetworkConfig `json:"network"`
	Training   TrainingSpec         `json:"training"`
	// Preprocessing is how the inputs are prepared; nil keeps the
	// behaviour from before it existed (training.standardize decides the
	// scaling).
	Preprocessing *engine.PreprocessingConfig `json:"preprocessing,omitempty"`
}

// DefaultPrecision is training.precision for a spec of version v that
// leaves it out: float32 for a new job (v 0, or 2 and up), as PyTorch and
// Keras default to; float64 for a version 1 spec, written before the field
// existed, which trained in float64. The engine reads an empty precision
// as float64, so a version 1 spec keeps it empty: writing "float64" in
// would change the config its checkpoint's fingerprint is of, and an
// interrupted job would no longer resume.
func DefaultPrecision(v int) engine.Precision {
	if v == 1 {
		return engine.Float64
	}
	return engine.Float32
}

// loadSpec decodes a stored spec, refusing one written in a newer
// version than this server reads rather than misreading its fields. A
// spec without a version is version 1, and is given it, so that the job's
// spec says which defaults it was resolved with and is resubmitted as
// version 1.
func loadSpec(b []byte) (Spec, error) {
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return Spec{}, err
	}
	if s.Version < 0 || s.Version > SpecVersion {
		return Spec{}, fmt.Errorf("spec version %d: this server reads versions up to %d", s.Version, SpecVersion)
	}
	if s.Version == 0 {
		s.Version = 1
	}
	return s, nil
}

// Progress is where a running job is.
type Progress struct {
	Epoch            int      `json:"epoch"`
	Epochs           int      `json:"epochs"`
	Fraction         float64  `json:"fraction"`
	SamplesPerSecond float64  `json:"samples_per_second"`
	ETASeconds       *float64 `json:"eta_seconds,omitempty"`
}

// Metrics are one epoch's figures.
type Metrics struct {
	Loss        *float64 `json:"loss,omitempty"`
	ValLoss     *float64 `json:"val_loss,omitempty"`
	Accuracy    *float64 `json:"accuracy,omitempty"`
	ValAccuracy *float64 `json:"val_accuracy,omitempty"`
}

// Job is a snapshot of a job, as the API shows it.
//
// History is every epoch trained so far, oldest first, and never nil in a
// snapshot from Get. Lists and the event stream's later status events
// leave it nil, which leaves it out of the JSON. Snapshots share it with
// the manager: read it, do not modify it.
type Job struct {
	ID           string         `json:"id"`
	ModelName    string         `json:"model_name"`
	Status       Status         `json:"status"`
	Spec         Spec           `json:"spec"`
	CreatedAt    time.Time      `json:"created_at"`
	StartedAt    *time.Time     `json:"started_at,omitempty"`
	FinishedAt   *time.Time     `json:"finished_at,omitempty"`
	Attempts     int            `json:"attempts"`
	Progress     Progress       `json:"progress"`
	Metrics      Metrics        `json:"metrics"` // the last epoch's
	History      []engine.Epoch `json:"history,omitzero"`
	ModelVersion int            `json:"model_version,omitempty"`
	// StoppedEarly is true when a job succeeded before its planned epochs:
	// StopReason early_stopping, stopped or time_limit.
	StoppedEarly bool       `json:"stopped_early"`
	StopReason   StopReason `json:"stop_reason,omitempty"` // set once the job has ended
	// BestEpoch is the epoch whose weights the saved model holds (see
	// engine.Trainer.ModelEpoch), and BestMetrics its figures, which the
	// model's metrics repeat. Both are set on a job that saved a model.
	BestEpoch   int      `json:"best_epoch,omitempty"`
	BestMetrics *Metrics `json:"best_metrics,omitempty"`
	Error       string   `json:"error,omitempty"`
}

// EventKind says what an Event carries.
type EventKind string

// Event kinds.
const (
	EventEpoch  EventKind = "epoch"  // Epoch is set
	EventStatus EventKind = "status" // Job is set
)

// Event is one item of a job's progress stream. Its pointers are shared
// between subscribers: read them, do not modify them.
type Event struct {
	Kind  EventKind
	Epoch *engine.Epoch
	Job   *Job
	// HistoryJSON is set on a subscription's first event: Job.History
	// encoded as the elements of a JSON array (without the brackets),
	// shared by every subscriber of the job rather than encoded for
	// each, so that a stream sends the history without a copy of its own.
	HistoryJSON []byte
}

// Observer receives job lifecycle notifications, for metrics. Calls come
// from the worker goroutines (and Submit, Cancel) with no lock held; they
// must not block, since training waits for them.
type Observer interface {
	JobQueued(j Job)
	JobStarted(j Job)
	JobEpoch(j Job, e engine.Epoch)
	JobFinished(j Job)
	WorkersBusy(n int)
}

// Default caps for Options.Limits, so that one job cannot exhaust memory
// unless the server is told otherwise: 10 million weights and biases
// (80 MB, about 320 MB with gradients and Adam's moments) and at most 2^28
// training values (2 GiB of float64, the default upload limit's worth).
// Without an explicit Limits.MaxCells, New lowers the cell cap further to
// MaxCellsFor(JobMaxMemory), so that a dataset at the cap can be trained.
const (
	DefaultMaxParams       = 10_000_000
	DefaultMaxCells  int64 = 1 << 28
)

// DefaultJobMaxMemory is Options.JobMaxMemory for a Manager without a
// memory budget: 1 GiB.
const DefaultJobMaxMemory int64 = 1 << 30

// Options configure a Manager. Zero values take the defaults.
type Options struct {
	// Workers is how many jobs train at once, default runtime.GOMAXPROCS(0),
	// which since Go 1.25 follows a container's CPU limit (NumCPU does not).
	// Each job's engine gets max(1, GOMAXPROCS/Workers) threads, so the pool
	// never uses more threads than there are CPUs (unless Workers itself
	// exceeds GOMAXPROCS).
	Workers int
	// QueueSize caps queued jobs for Submit, default 64. Jobs recovered at
	// Start are queued even beyond it.
	QueueSize int
	// MaxDuration is the server-wide wall-time cap per job and the default
	// of training.max_duration_seconds, default 24h.
	MaxDuration time.Duration
	// CheckpointEvery is the number of epochs between checkpoints,
	// default 1; past epoch 64 the interval is at least 1/64 of the epochs
	// trained (see the package documentation).
	CheckpointEvery int
	// Limits cap what one job may allocate; checked before it is queued
	// and again when it starts. A zero MaxParams takes DefaultMaxParams,
	// a zero MaxCells MaxCellsFor(JobMaxMemory); a negative one means no
	// cap. MaxMemory is set from JobMaxMemory.
	Limits engine.Limits
	// Memory is the server's memory budget, which uploads and
	// predictions may share. A worker starts a job only once the job's
	// engine.EstimateMemory is reserved from it, and gives it back when
	// the run ends, so queued jobs wait while the running ones' estimates
	// fill the budget. Nil means jobs reserve nothing.
	Memory *membudget.Budget
	// JobMaxMemory caps one job's engine.EstimateMemory, in bytes: Submit
	// refuses a job over it with a validation error naming the fields to
	// change, Start fails a recovered job over it, and the engine refuses
	// to allocate one. Zero takes half of Memory's size (two jobs at the
	// cap fit at once and leave nothing else starved of more than half),
	// or DefaultJobMaxMemory without a budget; it is never more than
	// Memory's size, since a job that cannot reserve its estimate would
	// wait forever. Negative means no cap.
	JobMaxMemory int64
	// ShutdownTimeout bounds Shutdown when its context has no deadline,
	// default 10s.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger // default: discard
	Observer        Observer     // may be nil
}

// ListFilter selects jobs for List.
type ListFilter struct {
	Status    Status
	ModelName string
	Limit     int    // default 50, max 1000
	Cursor    string // opaque, from a previous page
}

// Store is the part of the store the job manager uses.
type Store interface {
	DatasetMeta(ctx context.Context, id string) (store.DatasetMeta, error)
	LoadDataset(ctx context.Context, id string) (*store.Dataset, error)
	DeleteDataset(ctx context.Context, id string) error
	PutModel(ctx context.Context, meta store.ModelMeta, file []byte) (store.ModelMeta, error)
	PutJob(ctx context.Context, j *store.JobRecord) error
	Job(ctx context.Context, id string) (*store.JobRecord, error)
	ListJobs(ctx context.Context) ([]*store.JobRecord, []error)
	DeleteJob(ctx context.Context, id string) error
	PutCheckpoint(ctx context.Context, jobID string, state []byte) error
	Checkpoint(ctx context.Context, jobID string) ([]byte, error)
	DeleteCheckpoint(ctx context.Context, jobID string) error
	AppendJobHistory(ctx context.Context, jobID string, from int, entries []json.RawMessage) error
	PutJobHistory(ctx context.Context, jobID string, entries []json.RawMessage) error
}
