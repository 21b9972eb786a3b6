package store

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"syscall"
	"testing"
)

// under matches a directory and every path directly inside it.
func under(dir string) func(string) bool {
	return func(rel string) bool { return rel == dir || path.Dir(rel) == dir }
}

// recordKind is one kind of write whose atomicity is tested: put stores
// generation gen (1, 2, 3 …) of a record, get reports which generation a
// reader sees now.
type recordKind struct {
	name  string
	match func(string) bool
	steps []step
	put   func(s *Store, gen int) error
	get   func(t *testing.T, s *Store) int
}

// wantPaths is what a failed write's error must name, per record kind.
var wantPaths = map[string]string{
	"job": "jobs/", "checkpoint": "checkpoints/", "model": "models/m", "model metadata": "models/m/v2.meta", "dataset": "datasets/",
}

var allSteps = []step{stepCreate, stepWrite, stepSync, stepRename, stepDirSync}

func recordKinds(t *testing.T) []recordKind {
	job := newJob(1, "gen0")
	var datasetIDs []string
	return []recordKind{
		{
			name: "job", match: under("jobs"), steps: allSteps,
			put: func(s *Store, gen int) error {
				j := *job
				j.Status = fmt.Sprint("gen", gen)
				return s.PutJob(bg, &j)
			},
			get: func(t *testing.T, s *Store) int {
				j, err := s.Job(bg, job.ID)
				if err != nil {
					t.Fatalf("Job: %v", err)
				}
				var gen int
				fmt.Sscanf(j.Status, "gen%d", &gen)
				return gen
			},
		},
		{
			name: "checkpoint", match: under("checkpoints"), steps: allSteps,
			put: func(s *Store, gen int) error {
				if gen == 1 { // a checkpoint without its job is removed at Open
					if err := s.PutJob(bg, job); err != nil {
						return err
					}
				}
				return s.PutCheckpoint(bg, job.ID, []byte(strings.Repeat(fmt.Sprint(gen), 1000)))
			},
			get: func(t *testing.T, s *Store) int {
				b, err := s.Checkpoint(bg, job.ID)
				if err != nil || len(b) != 1000 {
					t.Fatalf("Checkpoint: %d bytes, %v", len(b), err)
				}
				return int(b[0] - '0')
			},
		},
		{
			// The counter is the first file PutModel writes.
			name: "model", match: under("models/m"), steps: append([]step{stepMkdir}, allSteps...),
			put: func(s *Store, gen int) error {
				_, err := s.PutModel(bg, ModelMeta{Name: "m"}, []byte(fmt.Sprint(gen)))
				return err
			},
			get: func(t *testing.T, s *Store) int {
				_, f, err := s.ModelFile(bg, "m", 0)
				if err != nil {
					t.Fatalf("ModelFile: %v", err)
				}
				return int(f[0] - '0')
			},
		},
		{
			// The metadata is the last file PutModel writes.
			name: "model metadata", match: func(rel string) bool { return strings.HasSuffix(rel, ".meta") && rel != "models/m/v1.meta" },
			steps: []step{stepRename},
			put: func(s *Store, gen int) error {
				_, err := s.PutModel(bg, ModelMeta{Name: "m"}, []byte(fmt.Sprint(gen)))
				return err
			},
			get: func(t *testing.T, s *Store) int {
				_, f, err := s.ModelFile(bg, "m", 0)
				if err != nil {
					t.Fatalf("ModelFile: %v", err)
				}
				return int(f[0] - '0')
			},
		},
		{
			// Datasets are immutable: a failed create must leave the
			// store with the datasets it had, each whole.
			name: "dataset", match: under("datasets"), steps: allSteps,
			put: func(s *Store, gen int) error {
				m, err := s.CreateDataset(bg, regressionDataset(100, 5))
				if err == nil {
					datasetIDs = append(datasetIDs, m.ID)
				}
				return err
			},
			get: func(t *testing.T, s *Store) int {
				list, err := s.ListDatasets(bg)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range list {
					if _, err := s.LoadDataset(bg, m.ID); err != nil {
						t.Fatalf("LoadDataset(%s): %v", m.ID, err)
					}
				}
				return len(list)
			},
		},
	}
}

// TestAtomicWrites injects a failure at each step of a write and checks
// that readers, and a store reopened from the files alone, see the old
// generation or (when only the directory fsync failed) the new one, never
// a partial file, and that no temp file is left.
func TestAtomicWrites(t *testing.T) {
	errIO := syscall.EIO
	for _, k := range []string{"job", "checkpoint", "model", "model metadata", "dataset"} {
		for si := range len(allSteps) + 1 {
			dir := t.TempDir()
			s, ffs := openFault(t, dir)
			kinds := recordKinds(t)
			var rk recordKind
			for _, c := range kinds {
				if c.name == k {
					rk = c
				}
			}
			if si >= len(rk.steps) {
				continue
			}
			st := rk.steps[si]
			t.Run(k+"/"+string(st), func(t *testing.T) {
				if err := rk.put(s, 1); err != nil {
					t.Fatal(err)
				}
				if st == stepWrite {
					ffs.afterBytes = 30 // part of the frame reaches the temp file
				}
				ffs.set(st, rk.match, errIO)
				err := rk.put(s, 2)
				ffs.clear()
				if !errors.Is(err, syscall.EIO) {
					t.Fatalf("put with %s failing: %v, want the injected EIO", st, err)
				}
				if want := wantPaths[k]; !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name the file (%s…)", err, want)
				}
				ok := map[int]bool{1: true}
				if st == stepDirSync {
					ok[2] = true // renamed into place, only its durability is unknown
				}
				if got := rk.get(t, s); !ok[got] {
					t.Fatalf("after failed put: reader sees generation %d, want one of %v", got, ok)
				}
				if tmp := tempFiles(t, dir); len(tmp) != 0 {
					t.Fatalf("temp files left: %v", tmp)
				}
				s.Close()
				s2 := mustOpen(t, dir)
				if got := rk.get(t, s2); !ok[got] {
					t.Fatalf("after reopen: generation %d, want one of %v", got, ok)
				}
				if err := rk.put(s2, 3); err != nil {
					t.Fatalf("put after the fault cleared: %v", err)
				}
				if want := map[string]int{"dataset": 2}[k]; want != 0 {
					if got := rk.get(t, s2); got < want {
						t.Fatalf("after a good put: %d, want at least %d", got, want)
					}
				} else if got := rk.get(t, s2); got != 3 {
					t.Fatalf("after a good put: generation %d, want 3", got)
				}
				if got, want := s2.Stats(), walkStats(t, dir); got != want {
					t.Fatalf("Stats = %+v, walk says %+v", got, want)
				}
			})
		}
	}
}

// TestDiskFullAndReadOnly checks the error classes: each names the file,
// wraps ErrNoSpace or ErrReadOnly, and leaves what was stored intact.
func TestDiskFullAndReadOnly(t *testing.T) {
	errnos := []struct {
		errno syscall.Errno
		step  step
		want  error
	}{
		{syscall.ENOSPC, stepWrite, ErrNoSpace},
		{syscall.EDQUOT, stepWrite, ErrNoSpace},
		{syscall.ENOSPC, stepSync, ErrNoSpace},
		{syscall.EROFS, stepCreate, ErrReadOnly},
		{syscall.EACCES, stepCreate, ErrReadOnly},
		{syscall.EPERM, stepRename, ErrReadOnly},
	}
	for _, e := range errnos {
		for _, k := range []string{"job", "checkpoint", "model", "dataset"} {
			t.Run(fmt.Sprintf("%s/%s/%s", e.errno, e.step, k), func(t *testing.T) {
				dir := t.TempDir()
				s, ffs := openFault(t, dir)
				var rk recordKind
				for _, c := range recordKinds(t) {
					if c.name == k {
						rk = c
					}
				}
				if err := rk.put(s, 1); err != nil {
					t.Fatal(err)
				}
				ffs.afterBytes = 10
				ffs.set(e.step, func(string) bool { return true }, e.errno)
				err := rk.put(s, 2)
				ffs.clear()
				if !errors.Is(err, e.want) {
					t.Fatalf("put: %v, want %v", err, e.want)
				}
				if want := wantPaths[k]; !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name the file (%s…)", err, want)
				}
				if got := rk.get(t, s); got != 1 {
					t.Fatalf("stored record damaged: generation %d, want 1", got)
				}
				if tmp := tempFiles(t, dir); len(tmp) != 0 {
					t.Fatalf("temp files left: %v", tmp)
				}
			})
		}
	}
}
