package store

// This file fixes the store's exported surface so that internal/jobs and
// internal/api can be written against it. The store implementation replaces
// every body here; signatures change only together with their callers.

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Errors. Callers compare with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrCorrupt wraps every checksum, truncation or decoding failure of a
	// stored file; the error text names the file relative to the data dir.
	ErrCorrupt = errors.New("corrupt file")
	// ErrInvalidName is returned for model names that do not match
	// ^[a-z0-9][a-z0-9._-]{0,63}$ and ids that are not canonical UUIDs.
	ErrInvalidName = errors.New("invalid name")
	// ErrNoSpace wraps ENOSPC and EDQUOT; ErrReadOnly wraps EROFS and EACCES
	// on write.
	ErrNoSpace  = errors.New("no space left on device")
	ErrReadOnly = errors.New("data directory is not writable")
)

// DatasetMeta describes a stored dataset.
type DatasetMeta struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Rows         int       `json:"rows"`
	Features     int       `json:"features"`
	FeatureNames []string  `json:"feature_names"`
	TargetNames  []string  `json:"target_names"`
	Task         string    `json:"task"` // regression | binary | multiclass
	Classes      []string  `json:"classes,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	SizeBytes    int64     `json:"size_bytes"`
	// Hidden datasets hold a job's inline data; they are not listed.
	Hidden bool `json:"hidden,omitempty"`
}

// Dataset is a dataset with its numbers. X is row-major Rows×Features.
// Exactly one of Targets (Rows×len(TargetNames)) or Labels (Rows) is set.
type Dataset struct {
	Meta    DatasetMeta
	X       []float64
	Targets []float64
	Labels  []string
}

// ModelMeta describes one stored model version.
type ModelMeta struct {
	Name         string             `json:"name"`
	Version      int                `json:"version"`
	CreatedAt    time.Time          `json:"created_at"`
	JobID        string             `json:"job_id,omitempty"`
	DatasetID    string             `json:"dataset_id,omitempty"`
	Task         string             `json:"task"`
	FeatureNames []string           `json:"feature_names"`
	TargetNames  []string           `json:"target_names,omitempty"`
	Classes      []string           `json:"classes,omitempty"`
	Outputs      int                `json:"outputs"`
	Metrics      map[string]float64 `json:"metrics,omitempty"`
	StoppedEarly bool               `json:"stopped_early,omitempty"`
	Imported     bool               `json:"imported,omitempty"`
	SizeBytes    int64              `json:"size_bytes"`
}

// ModelName summarizes the versions stored under one name.
type ModelName struct {
	Name          string `json:"name"`
	LatestVersion int    `json:"latest_version"`
	Versions      []int  `json:"versions"`
}

// JobRecord is the durable record of a training job. Spec is the resolved
// job spec as JSON (owned by internal/jobs); History entries likewise.
type JobRecord struct {
	ID           string            `json:"id"`
	ModelName    string            `json:"model_name"`
	DatasetID    string            `json:"dataset_id"`
	ValDatasetID string            `json:"val_dataset_id,omitempty"`
	Status       string            `json:"status"`
	Spec         json.RawMessage   `json:"spec"`
	Seq          int64             `json:"seq"` // submission order, for requeueing in order
	CreatedAt    time.Time         `json:"created_at"`
	StartedAt    *time.Time        `json:"started_at,omitempty"`
	FinishedAt   *time.Time        `json:"finished_at,omitempty"`
	Attempts     int               `json:"attempts"`
	History      []json.RawMessage `json:"history"`
	Error        string            `json:"error,omitempty"`
	ModelVersion int               `json:"model_version,omitempty"`
	StoppedEarly bool              `json:"stopped_early,omitempty"`
	// StopRequested records a stop asked of a running job, so that a
	// restart does not resume training past it.
	StopRequested bool `json:"stop_requested,omitempty"`
}

// Stats are sizes for metrics.
type Stats struct {
	Datasets   int
	Models     int // stored versions across all names
	TotalBytes int64
}

// Options configure a Store.
type Options struct {
	// FS, when set, replaces the real filesystem (tests inject faults).
	// Nil means the real filesystem under the data directory.
	FS any
}

// Store keeps datasets, models, jobs and checkpoints under one directory.
type Store struct{}

// Open opens (creating if needed) the data directory, removes leftover temp
// files and returns the store.
func Open(dir string, opt Options) (*Store, error) { return nil, errors.New("unimplemented") }

// Close releases the directory handle.
func (s *Store) Close() error { return nil }

// Writable reports whether the data directory accepts writes now.
func (s *Store) Writable() error { return nil }

// Stats returns counts and bytes.
func (s *Store) Stats() Stats { return Stats{} }

// CreateDataset assigns a new id and created time, stores d durably and
// returns its metadata.
func (s *Store) CreateDataset(ctx context.Context, d *Dataset) (DatasetMeta, error) {
	return DatasetMeta{}, nil
}

// ListDatasets lists non-hidden datasets, newest first.
func (s *Store) ListDatasets(ctx context.Context) ([]DatasetMeta, error) { return nil, nil }

// DatasetMeta returns one dataset's metadata without loading its numbers.
func (s *Store) DatasetMeta(ctx context.Context, id string) (DatasetMeta, error) {
	return DatasetMeta{}, nil
}

// LoadDataset loads a dataset with its numbers.
func (s *Store) LoadDataset(ctx context.Context, id string) (*Dataset, error) { return nil, nil }

// DeleteDataset deletes a dataset.
func (s *Store) DeleteDataset(ctx context.Context, id string) error { return nil }

// PutModel stores file (already validated by the engine's decoder) as the
// next version of meta.Name, filling Version, CreatedAt and SizeBytes.
// Versions are never reused, even after deletes.
func (s *Store) PutModel(ctx context.Context, meta ModelMeta, file []byte) (ModelMeta, error) {
	return ModelMeta{}, nil
}

// ListModels lists model names with their versions, sorted by name.
func (s *Store) ListModels(ctx context.Context) ([]ModelName, error) { return nil, nil }

// ModelVersions lists one name's versions.
func (s *Store) ModelVersions(ctx context.Context, name string) (ModelName, error) {
	return ModelName{}, nil
}

// ModelMeta returns a version's metadata; version 0 means the latest.
func (s *Store) ModelMeta(ctx context.Context, name string, version int) (ModelMeta, error) {
	return ModelMeta{}, nil
}

// ModelFile returns a version's model file and metadata; version 0 means the
// latest.
func (s *Store) ModelFile(ctx context.Context, name string, version int) (ModelMeta, []byte, error) {
	return ModelMeta{}, nil, nil
}

// DeleteModelVersion deletes one version.
func (s *Store) DeleteModelVersion(ctx context.Context, name string, version int) error { return nil }

// DeleteModel deletes every version of a name; its version counter survives.
func (s *Store) DeleteModel(ctx context.Context, name string) error { return nil }

// PutJob creates or replaces a job record durably.
func (s *Store) PutJob(ctx context.Context, j *JobRecord) error { return nil }

// Job returns one job record.
func (s *Store) Job(ctx context.Context, id string) (*JobRecord, error) { return nil, nil }

// ListJobs returns every job record, ordered by Seq ascending. Records that
// fail to load are skipped and reported in the returned error slice.
func (s *Store) ListJobs(ctx context.Context) ([]*JobRecord, []error) { return nil, nil }

// DeleteJob deletes a job record and its checkpoint.
func (s *Store) DeleteJob(ctx context.Context, id string) error { return nil }

// PutCheckpoint stores a job's latest training state durably.
func (s *Store) PutCheckpoint(ctx context.Context, jobID string, state []byte) error { return nil }

// Checkpoint returns a job's latest training state, or ErrNotFound.
func (s *Store) Checkpoint(ctx context.Context, jobID string) ([]byte, error) { return nil, nil }

// DeleteCheckpoint removes a job's checkpoint; a missing one is not an error.
func (s *Store) DeleteCheckpoint(ctx context.Context, jobID string) error { return nil }
