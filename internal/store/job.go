package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// JobRecord is the durable record of a training job. Spec is the resolved
// job spec as JSON (owned by internal/jobs), whose "version" field is
// JobSpecVersion; History entries are JSON owned by internal/jobs too. The
// stored record also has a "format" field, jobFormat, that the store
// writes and checks itself.
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
	// StopReason is why a finished job ended (owned by internal/jobs);
	// records written before it existed lack it.
	StopReason string `json:"stop_reason,omitempty"`
	// BestEpoch is the epoch whose weights the job's model holds.
	BestEpoch int `json:"best_epoch,omitempty"`
	// StopRequested records a stop asked of a running job, so that a
	// restart does not resume training past it.
	StopRequested bool `json:"stop_requested,omitempty"`
}

// PutJob creates or replaces a job record. It is durable when PutJob
// returns nil. Concurrent puts of one id leave one of them whole; callers
// that need the last one to win serialize them.
func (s *Store) PutJob(ctx context.Context, j *JobRecord) error {
	if j == nil {
		return errors.New("store: put job: nil record")
	}
	if err := checkID("job", j.ID); err != nil {
		return err
	}
	b, err := withFormat(jobFormat, j)
	if err != nil {
		return fmt.Errorf("store: encode job %s: %w", j.ID, err)
	}
	return s.writeBytes(ctx, jobPath(j.ID), kindJob, b)
}

// Job returns one job record.
func (s *Store) Job(ctx context.Context, id string) (*JobRecord, error) {
	if err := checkID("job", id); err != nil {
		return nil, err
	}
	rel := jobPath(id)
	b, err := s.readBytes(rel, kindJob)
	if err != nil {
		return nil, err
	}
	if err := checkJobFormat(rel, b); err != nil {
		return nil, err
	}
	j := new(JobRecord)
	if err := json.Unmarshal(b, j); err != nil {
		return nil, corrupt(rel, "decode: %v", err)
	}
	if j.ID != id {
		return nil, corrupt(rel, "holds job %s", quote(j.ID))
	}
	return j, nil
}

// ListJobs returns every job record, ordered by Seq ascending. Records that
// fail to load are skipped and reported in the returned error slice, each
// error naming its file; a failure to read the directory itself is the
// only error then.
func (s *Store) ListJobs(ctx context.Context) ([]*JobRecord, []error) {
	ents, err := s.fs.ReadDir(dirJobs)
	if err != nil {
		return nil, []error{readErr(dirJobs, err)}
	}
	var (
		out  []*JobRecord
		errs []error
	)
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".job")
		if !ok || checkID("job", id) != nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, []error{err}
		}
		j, err := s.Job(ctx, id)
		if err != nil {
			if !errors.Is(err, ErrNotFound) { // deleted meanwhile
				errs = append(errs, err)
			}
			continue
		}
		out = append(out, j)
	}
	slices.SortFunc(out, func(a, b *JobRecord) int {
		return cmp.Or(cmp.Compare(a.Seq, b.Seq), a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return out, errs
}

// DeleteJob deletes a job record and its checkpoint.
func (s *Store) DeleteJob(ctx context.Context, id string) error {
	if err := checkID("job", id); err != nil {
		return err
	}
	if err := s.remove(jobPath(id)); err != nil {
		return err
	}
	return s.DeleteCheckpoint(ctx, id)
}

// PutCheckpoint stores a job's latest training state. It is durable when
// PutCheckpoint returns nil; until then the previous checkpoint stays. A
// checkpoint whose job record does not exist is removed at the next Open.
func (s *Store) PutCheckpoint(ctx context.Context, jobID string, state []byte) error {
	if err := checkID("job", jobID); err != nil {
		return err
	}
	return s.writeBytes(ctx, checkpointPath(jobID), kindCheckpoint, state)
}

// Checkpoint returns a job's latest training state, or ErrNotFound.
func (s *Store) Checkpoint(ctx context.Context, jobID string) ([]byte, error) {
	if err := checkID("job", jobID); err != nil {
		return nil, err
	}
	return s.readBytes(checkpointPath(jobID), kindCheckpoint)
}

// DeleteCheckpoint removes a job's checkpoint; a missing one is not an error.
func (s *Store) DeleteCheckpoint(ctx context.Context, jobID string) error {
	if err := checkID("job", jobID); err != nil {
		return err
	}
	if err := s.remove(checkpointPath(jobID)); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// checkJobFormat checks the versions of a stored job record and of its
// spec before either is decoded.
func checkJobFormat(rel string, b []byte) error {
	var v struct {
		Format *int `json:"format"`
		Spec   struct {
			Version *int `json:"version"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return corrupt(rel, "decode: %v", err)
	}
	if err := checkVersion1(rel, "job record", v.Format, jobFormat); err != nil {
		return err
	}
	return checkVersion1(rel, "job spec", v.Spec.Version, JobSpecVersion)
}
