package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/backpropd/backpropd/internal/store"
)

// InlineDataStore is what SweepInlineData needs of the store: the hidden
// datasets that hold jobs' inline data, and a way to delete one.
type InlineDataStore interface {
	HiddenDatasets(ctx context.Context) ([]store.DatasetMeta, error)
	DeleteDataset(ctx context.Context, id string) error
}

// SweepInlineData deletes the hidden datasets that no job record
// references, and returns their ids. The API stores a job's inline data as
// a hidden dataset before it submits the job, so a crash in between leaves
// a dataset that nothing would ever delete. Call it after Start and before
// serving: a submission in flight has stored its data but has no record
// yet. When Start skipped unreadable job records, whose datasets are
// unknown, it deletes nothing.
func (m *Manager) SweepInlineData(ctx context.Context, st InlineDataStore) ([]string, error) {
	hidden, err := st.HiddenDatasets(ctx)
	if err != nil {
		return nil, fmt.Errorf("list hidden datasets: %w", err)
	}
	m.mu.Lock()
	if !m.started {
		m.mu.Unlock()
		return nil, errors.New("jobs: SweepInlineData called before Start")
	}
	if m.unreadable > 0 {
		n := m.unreadable
		m.mu.Unlock()
		m.log.Warn("keeping hidden datasets: some job records are unreadable", "unreadable", n)
		return nil, nil
	}
	used := make(map[string]bool, len(m.jobs)+len(m.pendingDS))
	for _, j := range m.jobs {
		used[j.rec.DatasetID] = true
		used[j.rec.ValDatasetID] = true
	}
	for id, n := range m.pendingDS {
		if n > 0 {
			used[id] = true
		}
	}
	m.mu.Unlock()

	var deleted []string
	var errs []error
	for _, d := range hidden {
		if used[d.ID] {
			continue
		}
		if err := st.DeleteDataset(ctx, d.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			errs = append(errs, fmt.Errorf("delete hidden dataset %s: %w", d.ID, err))
			continue
		}
		m.log.Info("deleted inline data no job references", "dataset_id", d.ID, "name", d.Name)
		deleted = append(deleted, d.ID)
	}
	return deleted, errors.Join(errs...)
}
