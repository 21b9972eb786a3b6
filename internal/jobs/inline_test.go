package jobs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/backpropd/backpropd/internal/store"
)

// hiddenData is binaryData stored as a job's inline data.
func hiddenData(tb testing.TB, st *store.Store) string {
	tb.Helper()
	d := binaryData(40)
	d.Meta.Hidden = true
	return mustDataset(tb, st, d)
}

// TestSweepInlineData: after a restart, a hidden dataset that no job
// record references (a crash between storing a job's inline data and its
// record) is deleted, while hidden datasets of finished and queued jobs
// and every visible dataset stay. With an unreadable job record, whose
// dataset is unknown, nothing is deleted.
func TestSweepInlineData(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openStore(t, dir)
	t.Cleanup(func() { st.Close() })
	visible := mustDataset(t, st, binaryData(40))
	finishedData := hiddenData(t, st)
	queuedData := hiddenData(t, st)
	orphan := hiddenData(t, st)

	m := newManager(t, st, testOptions(), testHooks{})
	finished := mustSubmit(t, m, smallSpec("done", finishedData, 1))
	if got := waitTerminal(t, m, finished.ID); got.Status != Succeeded {
		t.Fatalf("job ended %s: %q", got.Status, got.Error)
	}
	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// A queued job's record, as a restart finds it.
	putRecord(t, st, m, smallSpec("queued", queuedData, 1), "70000000-0000-4000-8000-000000000000", 100, Queued, 0)

	// An unreadable record: its dataset could be any of them, keep all.
	garbage := filepath.Join(dir, "jobs", "90000000-0000-4000-8000-000000000000.job")
	if err := os.WriteFile(garbage, []byte("not a job record"), 0o644); err != nil {
		t.Fatal(err)
	}
	m = newManager(t, st, testOptions(), testHooks{})
	deleted, err := m.SweepInlineData(ctx, st)
	if err != nil || len(deleted) != 0 {
		t.Fatalf("with an unreadable record: deleted %v, %v; want nothing", deleted, err)
	}
	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(garbage); err != nil {
		t.Fatal(err)
	}

	m = newManager(t, st, testOptions(), testHooks{})
	deleted, err = m.SweepInlineData(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{orphan}; !slices.Equal(deleted, want) {
		t.Errorf("deleted %v, want %v", deleted, want)
	}
	if _, err := st.DatasetMeta(ctx, orphan); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the orphan inline dataset: %v, want ErrNotFound", err)
	}
	for name, id := range map[string]string{"visible": visible, "finished job's": finishedData, "queued job's": queuedData} {
		if _, err := st.DatasetMeta(ctx, id); err != nil {
			t.Errorf("the %s dataset %s: %v, want kept", name, id, err)
		}
	}
}
