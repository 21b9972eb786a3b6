package api

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/backpropd/backpropd/internal/jobs"
	"github.com/backpropd/backpropd/internal/store"
)

// settableDisk reports the free bytes a test sets.
type settableDisk struct{ free atomic.Int64 }

func (d *settableDisk) Free() (int64, error) { return d.free.Load(), nil }

// newFloorEnv is newTestEnv over a store that keeps floor bytes free on a
// disk whose free space the test sets.
func newFloorEnv(tb testing.TB, floor int64) (*testEnv, *settableDisk) {
	tb.Helper()
	disk := &settableDisk{}
	dir := tb.TempDir()
	st, err := store.Open(dir, store.Options{MinFreeBytes: floor, Disk: disk})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	m, err := jobs.New(st, jobs.Options{Workers: 1, QueueSize: 4})
	if err != nil {
		tb.Fatalf("jobs.New: %v", err)
	}
	if err := m.Start(context.Background()); err != nil {
		tb.Fatalf("jobs Start: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10e9)
		defer cancel()
		_ = m.Shutdown(ctx)
		_ = st.Close()
	})
	srv := New(Options{Store: st, Jobs: m})
	return &testEnv{srv: srv, h: srv.Handler(), store: st, jobs: m, dir: dir}, disk
}

func TestUploadsBelowTheDiskFloorGet507(t *testing.T) {
	const floor = 1 << 30
	csv := []byte("a,b,y\n1,2,3\n4,5,6\n")
	// Ten features per row of "1,": 2 bytes of CSV become 8 bytes stored,
	// so the announced size fits where the stored one does not.
	var wide bytes.Buffer
	wide.WriteString("a,b,c,d,e,f,g,h,i,j,y\n")
	for range 2000 {
		wide.WriteString("1,1,1,1,1,1,1,1,1,1,1\n")
	}
	model := mustTrain(t, "regressor").file
	inline := `{"model_name":"m","data":{"features":[[1],[2]],"targets":[1,2]},"training":{"epochs":1}}`
	tests := []struct {
		name, path, ct string
		body           []byte
		free           int64 // beyond the floor
		created        int   // the status once there is room
		// announce, when set, is the Content-Length sent instead of the
		// body's: the refusal must come before the body is read, since
		// the few bytes sent would fit.
		announce int64
	}{
		{"csv announced", "/v1/datasets?name=d", "text/csv", csv, 1 << 20, http.StatusCreated, 2 << 20},
		{"model import announced", "/v1/models/imp/versions", "application/octet-stream", model, 1 << 20, http.StatusCreated, 2 << 20},
		{"csv stored size", "/v1/datasets?name=d", "text/csv", wide.Bytes(), int64(wide.Len()) + 1, http.StatusCreated, 0},
		{"json", "/v1/datasets", "application/json",
			[]byte(`{"name":"d","features":[[1],[2]],"targets":[1,2]}`), 10, http.StatusCreated, 0},
		{"model import", "/v1/models/imp/versions", "application/octet-stream", model, int64(len(model)) - 1, http.StatusCreated, 0},
		{"inline job data", "/v1/jobs", "application/json", []byte(inline), 10, http.StatusAccepted, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, disk := newFloorEnv(t, floor)
			disk.free.Store(floor + tc.free)
			before := snapshotDir(t, env.dir)
			req := httptest.NewRequest(http.MethodPost, tc.path, bytes.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.ct)
			if tc.announce > 0 {
				req.ContentLength = tc.announce
			}
			res := do(t, env.h, req)
			p := res.Problem(t)
			if res.Status != http.StatusInsufficientStorage || p.Type != "urn:backpropd:problem:insufficient-storage" {
				t.Fatalf("status %d %+v, want 507 insufficient-storage", res.Status, p)
			}
			for _, want := range []string{"not enough disk space", "is free", "1.0 GiB (1073741824 bytes)"} {
				if !strings.Contains(p.Detail, want) {
					t.Errorf("detail %q lacks %q", p.Detail, want)
				}
			}
			if strings.Contains(p.Detail, "datasets/") || strings.Contains(p.Detail, env.dir) {
				t.Errorf("detail %q names a path", p.Detail)
			}
			if after := snapshotDir(t, env.dir); fmt.Sprint(before) != fmt.Sprint(after) {
				t.Errorf("a refused upload changed the data directory:\nbefore %v\nafter  %v", before, after)
			}

			// The same upload is stored once the disk has room.
			disk.free.Store(floor + 64<<20)
			if res := doRaw(t, env.h, http.MethodPost, tc.path, tc.ct, tc.body); res.Status != tc.created {
				t.Fatalf("with room: %d %s, want %d", res.Status, res.Body, tc.created)
			}
		})
	}
}
