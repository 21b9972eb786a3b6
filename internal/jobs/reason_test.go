package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/store"
)

// pathParts are what a job error would hold if it named a file of the data
// directory.
var pathParts = []string{"datasets/", "checkpoints/", "jobs/", "models/", ".data", ".ckpt", ".job", ".meta"}

func wantNoPath(t *testing.T, reason string) {
	t.Helper()
	for _, p := range pathParts {
		if strings.Contains(reason, p) {
			t.Errorf("job error %q names a data file (%q)", reason, p)
		}
	}
}

// A job whose dataset file is damaged fails saying so in the user's terms;
// the log keeps the file's path.
func TestDamagedDatasetErrorNamesNoPath(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	t.Cleanup(func() { st.Close() })
	id := mustDataset(t, st, binaryData(40))
	data := filepath.Join(dir, "datasets", id+".data")
	b, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff // the frame's checksum no longer matches
	if err := os.WriteFile(data, b, 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &logWriter{buf: new(bytes.Buffer)}
	opt := testOptions()
	opt.Logger = slog.New(slog.NewTextHandler(logs, nil))
	m := newManager(t, st, opt, testHooks{})

	got := waitTerminal(t, m, mustSubmit(t, m, smallSpec("d", id, 2)).ID)
	if want := "dataset " + id + " is damaged; see the server log"; got.Status != Failed || got.Error != want {
		t.Fatalf("job ended %s with %q, want failed with %q", got.Status, got.Error, want)
	}
	wantNoPath(t, got.Error)
	if rec := storedJob(t, st, got.ID); rec.Error != got.Error {
		t.Errorf("stored error %q, want %q", rec.Error, got.Error)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if !strings.Contains(logs.buf.String(), "datasets/"+id+".data") {
		t.Errorf("the log does not name the damaged file:\n%s", logs.buf.String())
	}
}

func TestReasonForStoreFaults(t *testing.T) {
	e := newEnv(t, testOptions(), testHooks{})
	// Errors as the store words them: an operation, a path under the
	// data directory and the kind.
	fileErr := func(op, path string, kind error) error { return fmt.Errorf("store: %s %s: %w", op, path, kind) }
	tests := []struct {
		name  string
		fault *storeFault
		want  string
	}{
		{"damaged dataset", &storeFault{what: "dataset 42", err: fileErr("read", "datasets/42.data", store.ErrCorrupt)},
			"dataset 42 is damaged; see the server log"},
		{"vanished validation set", &storeFault{what: "validation dataset 7", err: fileErr("read", "datasets/7.meta", store.ErrNotFound)},
			"validation dataset 7 no longer exists"},
		{"full disk at a checkpoint", &storeFault{what: "the checkpoint after epoch 3", write: true,
			err: fileErr("write", "checkpoints/j.ckpt", store.ErrNoSpace)},
			"cannot store the checkpoint after epoch 3: no space left on the server's disk; see the server log"},
		{"read-only record", &storeFault{what: "the job's record", write: true, err: fileErr("write", "jobs/j.job", store.ErrReadOnly)},
			"cannot store the job's record: the server's data directory is not writable; see the server log"},
		{"other write failure", &storeFault{what: "the trained model", write: true,
			err: fileErr("write", "models/m/v1.model", errors.New("input/output error"))},
			"cannot store the trained model; see the server log"},
		{"other read failure", &storeFault{what: "dataset 9", err: fileErr("read", "datasets/9.data", errors.New("input/output error"))},
			"cannot read dataset 9; see the server log"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := e.m.reason("j", tc.fault)
			if got != tc.want {
				t.Errorf("reason = %q, want %q", got, tc.want)
			}
			wantNoPath(t, got)
		})
	}
	if got := e.m.reason("j", errors.New("invalid training setup: epochs: must be positive")); got != "invalid training setup: epochs: must be positive" {
		t.Errorf("an error that is not a store fault became %q", got)
	}
}

// Every way a job ends removes its checkpoint, which existed while it
// trained.
func TestFinishedJobsLeaveNoCheckpoint(t *testing.T) {
	tests := []struct {
		name   string
		fail   bool                              // the trained model cannot be stored
		act    func(m *Manager, id string) error // at epoch 2; nil trains to the end
		status Status
	}{
		{"succeeded", false, nil, Succeeded},
		{"stopped", false, func(m *Manager, id string) error { _, err := m.Stop(context.Background(), id); return err }, Succeeded},
		{"cancelled", false, func(m *Manager, id string) error { _, err := m.Cancel(context.Background(), id); return err }, Cancelled},
		{"failed", true, nil, Failed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st := openStore(t, dir)
			t.Cleanup(func() { st.Close() })
			var fs Store = st
			if tc.fail {
				fs = &faultStore{Store: st, putModel: store.ErrNoSpace}
			}
			var m *Manager
			had := make(chan error, 100)
			acted := make(chan error, 1)
			hooks := testHooks{afterEpoch: func(_ context.Context, id, _ string, epoch int) {
				_, err := st.Checkpoint(context.Background(), id)
				had <- err
				if epoch == 2 && tc.act != nil {
					// Stop and Cancel wait for the job, which waits for
					// this hook: act from elsewhere.
					go func() { acted <- tc.act(m, id) }()
				}
			}}
			opt := testOptions()
			opt.CheckpointEvery = 1
			m = newManager(t, fs, opt, hooks)
			ds := mustDataset(t, st, binaryData(40))
			got := waitTerminal(t, m, mustSubmit(t, m, smallSpec("ck", ds, 50)).ID)
			if tc.act != nil {
				if err := <-acted; err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
			} else if got.Progress.Epoch < 2 {
				t.Fatalf("trained %d epochs", got.Progress.Epoch)
			}
			if got.Status != tc.status {
				t.Fatalf("job ended %s (%q), want %s", got.Status, got.Error, tc.status)
			}
			if err := <-had; err != nil {
				t.Fatalf("no checkpoint after the first epoch: %v", err)
			}
			if _, err := st.Checkpoint(context.Background(), got.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("checkpoint of the %s job: %v, want ErrNotFound", got.Status, err)
			}
			if ents, err := os.ReadDir(filepath.Join(dir, "checkpoints")); err != nil || len(ents) != 0 {
				t.Errorf("checkpoints/ holds %v (%v), want nothing", ents, err)
			}
		})
	}
}
