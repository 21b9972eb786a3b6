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
// job spec as JSON (owned by internal/jobs), whose "version" field is at
// most JobSpecVersion; History entries are JSON owned by internal/jobs too. The
// stored record also has a "format" field, jobFormat, that the store
// writes and checks itself.
//
// The history is not part of the record file: the record holds its
// length, HistoryLen, and the entries are in the job's history file,
// which AppendJobHistory and PutJobHistory write before the record that
// counts them. Job and ListJobs fill History in from it (or, for a record
// of format 1, from the record itself); PutJob ignores History.
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
	HistoryLen   int               `json:"history_len"`
	History      []json.RawMessage `json:"history,omitempty"`
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
	rec := *j
	rec.History = nil
	b, err := withFormat(jobFormat, &rec)
	if err != nil {
		return fmt.Errorf("store: encode job %s: %w", j.ID, err)
	}
	return s.writeBytes(ctx, jobPath(j.ID), kindJob, b)
}

// Job returns one job record, with its history.
func (s *Store) Job(ctx context.Context, id string) (*JobRecord, error) {
	j, _, err := s.job(ctx, id, false)
	return j, err
}

// job reads a job record and its history; with trim, it rewrites a
// history file that holds anything but the record's entries (readHistory)
// to hold just them. trimmed reports that it did.
func (s *Store) job(ctx context.Context, id string, trim bool) (j *JobRecord, trimmed bool, err error) {
	if err := checkID("job", id); err != nil {
		return nil, false, err
	}
	rel := jobPath(id)
	b, err := s.readBytes(rel, kindJob)
	if err != nil {
		return nil, false, err
	}
	format, err := checkJobFormat(rel, b)
	if err != nil {
		return nil, false, err
	}
	j = new(JobRecord)
	if err := json.Unmarshal(b, j); err != nil {
		return nil, false, corrupt(rel, "decode: %v", err)
	}
	if j.ID != id {
		return nil, false, corrupt(rel, "holds job %s", quote(j.ID))
	}
	if format < 2 {
		// The history is inline; a history file cannot exist yet.
		j.HistoryLen = len(j.History)
		if j.History == nil {
			j.History = []json.RawMessage{}
		}
		return j, false, nil
	}
	if j.HistoryLen < 0 {
		return nil, false, corrupt(rel, "history_len %d is negative", j.HistoryLen)
	}
	h, clean, err := s.readHistory(id, j.HistoryLen)
	if err != nil {
		return nil, false, err
	}
	if len(h) < j.HistoryLen {
		s.log.Warn("store: a job's history file holds fewer epochs than its record; the job keeps those it has",
			"file", historyPath(id), "entries", len(h), "record", j.HistoryLen)
		j.HistoryLen = len(h)
	}
	j.History = h
	if trim && !clean {
		if err := s.rewriteHistory(ctx, id, h); err != nil {
			return nil, false, err
		}
		trimmed = true
	}
	return j, trimmed, nil
}

// ListJobs returns every job record with its history, ordered by Seq
// ascending. Records that fail to load are skipped and reported in the
// returned error slice, each error naming its file; a failure to read the
// directory itself is the only error then.
//
// It is meant for start-up, before any job writes: it cuts each history
// file back to the entries its record counts, dropping those a crash left
// after the last record and a torn last frame, so that appends continue
// where the record ends (history.go).
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
		j, trimmed, err := s.job(ctx, id, true)
		if trimmed {
			s.log.Info("store: cut a job's history back to its record", "file", historyPath(id), "entries", j.HistoryLen)
		}
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

// DeleteJob deletes a job record, its history and its checkpoint. The
// record goes first, so a crash in between leaves files that Open removes.
func (s *Store) DeleteJob(ctx context.Context, id string) error {
	if err := checkID("job", id); err != nil {
		return err
	}
	if err := s.remove(jobPath(id)); err != nil {
		return err
	}
	if err := s.remove(historyPath(id)); err != nil && !errors.Is(err, ErrNotFound) {
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
// spec before either is decoded, and returns the record's.
func checkJobFormat(rel string, b []byte) (int, error) {
	var v struct {
		Format *int `json:"format"`
		Spec   struct {
			Version *int `json:"version"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return 0, corrupt(rel, "decode: %v", err)
	}
	if err := checkVersion1(rel, "job record", v.Format, jobFormat); err != nil {
		return 0, err
	}
	format := 1
	if v.Format != nil {
		format = *v.Format
	}
	return format, checkVersion1(rel, "job spec", v.Spec.Version, JobSpecVersion)
}
