package jobs

import (
	"cmp"
	"context"
	"slices"
	"strconv"

	"github.com/backpropd/backpropd/internal/pagecursor"
)

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
		if f.Status != "" && j.state.status() != f.Status {
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
