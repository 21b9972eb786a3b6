package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
)

func TestDatasetRoundTrip(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	special := regressionDataset(4, 2)
	special.X = []float64{math.Inf(1), math.Inf(-1), math.NaN(), -0.0, math.SmallestNonzeroFloat64, math.MaxFloat64, 1e-300, 3}
	tests := []struct {
		name string
		d    *Dataset
	}{
		{"targets", regressionDataset(50, 3)},
		{"labels", labelDataset(31)},
		{"special floats", special},
		{"two target columns", func() *Dataset {
			d := regressionDataset(5, 1)
			d.Meta.TargetNames = []string{"y1", "y2"}
			d.Targets = []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
			return d
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			meta := mustCreateDataset(t, s, tt.d)
			if checkID("dataset", meta.ID) != nil || meta.CreatedAt.IsZero() || meta.SizeBytes <= 0 {
				t.Fatalf("metadata not filled in: %+v", meta)
			}
			got, err := s.LoadDataset(bg, meta.ID)
			if err != nil {
				t.Fatal(err)
			}
			// Bit-for-bit comparison: NaN != NaN under ==.
			if fmt.Sprint(bitsOf(got.X)) != fmt.Sprint(bitsOf(tt.d.X)) || !reflect.DeepEqual(got.Targets, tt.d.Targets) || !reflect.DeepEqual(got.Labels, tt.d.Labels) {
				t.Fatalf("LoadDataset differs from what was stored")
			}
			if !reflect.DeepEqual(got.Meta, meta) {
				t.Fatalf("meta: got %+v, want %+v", got.Meta, meta)
			}
			m2, err := s.DatasetMeta(bg, meta.ID)
			if err != nil || !reflect.DeepEqual(m2, meta) {
				t.Fatalf("DatasetMeta = %+v, %v; want %+v", m2, err, meta)
			}
		})
	}
}

func bitsOf(x []float64) []uint64 {
	out := make([]uint64, len(x))
	for i, v := range x {
		out[i] = math.Float64bits(v)
	}
	return out
}

func TestDatasetListHiddenDelete(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	a := mustCreateDataset(t, s, regressionDataset(3, 2))
	hidden := regressionDataset(3, 2)
	hidden.Meta.Hidden = true
	h := mustCreateDataset(t, s, hidden)
	b := mustCreateDataset(t, s, labelDataset(4))

	list, err := s.ListDatasets(bg)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != b.ID || list[1].ID != a.ID {
		t.Fatalf("ListDatasets = %v; want [%s %s] newest first without the hidden one", list, b.ID, a.ID)
	}
	if _, err := s.LoadDataset(bg, h.ID); err != nil {
		t.Fatalf("hidden dataset must still load: %v", err)
	}
	if err := s.DeleteDataset(bg, a.ID); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"meta":   func() error { _, err := s.DatasetMeta(bg, a.ID); return err }(),
		"load":   func() error { _, err := s.LoadDataset(bg, a.ID); return err }(),
		"delete": s.DeleteDataset(bg, a.ID),
		"never":  func() error { _, err := s.DatasetMeta(bg, uuid.NewString()); return err }(),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s after delete: %v, want ErrNotFound", name, err)
		}
	}
	if got, want := s.Stats(), walkStats(t, s.dir); got != want || got.Datasets != 2 {
		t.Errorf("Stats = %+v, walk says %+v (want 2 datasets)", got, want)
	}
}

func TestCreateDatasetRejectsBadShapes(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	tests := []struct {
		name   string
		mutate func(d *Dataset)
	}{
		{"zero rows", func(d *Dataset) { d.Meta.Rows = 0 }},
		{"negative features", func(d *Dataset) { d.Meta.Features = -1 }},
		{"short X", func(d *Dataset) { d.X = d.X[1:] }},
		{"feature names count", func(d *Dataset) { d.Meta.FeatureNames = d.Meta.FeatureNames[:1] }},
		{"short targets", func(d *Dataset) { d.Targets = d.Targets[1:] }},
		{"both targets and labels", func(d *Dataset) { d.Labels = make([]string, d.Meta.Rows) }},
		{"labels count", func(d *Dataset) { d.Targets = nil; d.Labels = []string{"a"} }},
		{"no targets", func(d *Dataset) { d.Targets = nil }},
		{"huge shape", func(d *Dataset) { d.Meta.Rows = math.MaxInt / 2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := regressionDataset(4, 3)
			tt.mutate(d)
			if _, err := s.CreateDataset(bg, d); !errors.Is(err, ErrInvalidDataset) {
				t.Fatalf("CreateDataset: %v, want ErrInvalidDataset", err)
			}
		})
	}
	if _, err := s.CreateDataset(bg, nil); !errors.Is(err, ErrInvalidDataset) {
		t.Fatalf("CreateDataset(nil): %v", err)
	}
	if st := s.Stats(); st.Datasets != 0 {
		t.Fatalf("rejected datasets were stored: %+v", st)
	}
}

func TestModels(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	in := ModelMeta{Name: "iris", JobID: uuid.NewString(), Task: "multiclass", FeatureNames: []string{"a"},
		Classes: []string{"x", "y"}, Outputs: 2, Metrics: map[string]float64{"accuracy": 0.96}}
	m1, err := s.PutModel(bg, in, []byte("weights-1"))
	if err != nil {
		t.Fatal(err)
	}
	if m1.Version != 1 || m1.SizeBytes != 9 || m1.CreatedAt.IsZero() || m1.JobID != in.JobID {
		t.Fatalf("PutModel = %+v", m1)
	}
	m2 := mustPutModel(t, s, "iris", []byte("weights-2"))
	mustPutModel(t, s, "abalone", []byte("a"))

	for _, tt := range []struct {
		version  int
		want     string
		wantVers int
	}{{0, "weights-2", 2}, {1, "weights-1", 1}, {2, "weights-2", 2}} {
		meta, file, err := s.ModelFile(bg, "iris", tt.version)
		if err != nil || string(file) != tt.want || meta.Version != tt.wantVers {
			t.Errorf("ModelFile(iris, %d) = v%d %q %v; want v%d %q", tt.version, meta.Version, file, err, tt.wantVers, tt.want)
		}
	}
	got, err := s.ModelMeta(bg, "iris", 1)
	if err != nil || !reflect.DeepEqual(got, m1) {
		t.Fatalf("ModelMeta(iris,1) = %+v, %v; want %+v", got, err, m1)
	}
	list, err := s.ListModels(bg)
	want := []ModelName{{"abalone", 1, []int{1}}, {"iris", 2, []int{1, 2}}}
	if err != nil || !reflect.DeepEqual(list, want) {
		t.Fatalf("ListModels = %v, %v; want %v", list, err, want)
	}
	if err := s.DeleteModelVersion(bg, "iris", m2.Version); err != nil {
		t.Fatal(err)
	}
	if meta, _, _ := s.ModelFile(bg, "iris", 0); meta.Version != 1 {
		t.Fatalf("latest after deleting v2 = %d, want 1", meta.Version)
	}
	for name, err := range map[string]error{
		"meta of deleted":   func() error { _, err := s.ModelMeta(bg, "iris", 2); return err }(),
		"delete deleted":    s.DeleteModelVersion(bg, "iris", 2),
		"unknown name":      func() error { _, _, err := s.ModelFile(bg, "nope", 0); return err }(),
		"versions unknown":  func() error { _, err := s.ModelVersions(bg, "nope"); return err }(),
		"delete name twice": func() error { s.DeleteModel(bg, "abalone"); return s.DeleteModel(bg, "abalone") }(),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", name, err)
		}
	}
	list, _ = s.ListModels(bg)
	if want := []ModelName{{"iris", 1, []int{1}}}; !reflect.DeepEqual(list, want) {
		t.Fatalf("ListModels after deletes = %v; want %v (names without versions are not listed)", list, want)
	}
	if err := s.DeleteModelVersion(bg, "iris", 0); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("DeleteModelVersion(v0) = %v, want ErrInvalidName", err)
	}
	if _, err := s.ModelMeta(bg, "iris", -1); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("ModelMeta(v-1) = %v, want ErrInvalidName", err)
	}
	if got, want := s.Stats(), walkStats(t, s.dir); got != want || got.Models != 1 {
		t.Errorf("Stats = %+v, walk says %+v (want 1 model version)", got, want)
	}
}

func TestVersionsNeverReused(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	var got []int
	put := func(s *Store) { got = append(got, mustPutModel(t, s, "m", []byte("w")).Version) }
	put(s)
	put(s)
	put(s) // 1 2 3
	if err := s.DeleteModelVersion(bg, "m", 3); err != nil {
		t.Fatal(err)
	}
	put(s) // 4, not 3 again
	if err := s.DeleteModel(bg, "m"); err != nil {
		t.Fatal(err)
	}
	put(s) // 5
	if err := s.DeleteModel(bg, "m"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := mustOpen(t, dir)
	put(s2) // 6: the counter survives the reopen with no versions left
	if want := []int{1, 2, 3, 4, 5, 6}; !reflect.DeepEqual(got, want) {
		t.Fatalf("versions = %v, want %v", got, want)
	}
}

func TestPutModelConcurrentOneName(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	const n = 24
	var wg sync.WaitGroup
	got := make([]int, n)
	for i := range n {
		wg.Go(func() {
			m, err := s.PutModel(bg, ModelMeta{Name: "m"}, []byte{byte(i)})
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = m.Version
		})
	}
	wg.Wait()
	seen := map[int]int{}
	for i, v := range got {
		seen[v]++
		// Each version holds the file of the put that got it.
		_, file, err := s.ModelFile(bg, "m", v)
		if err != nil || !bytes.Equal(file, []byte{byte(i)}) {
			t.Errorf("ModelFile(m, %d) = %v, %v; want [%d]", v, file, err, i)
		}
	}
	for v := 1; v <= n; v++ {
		if seen[v] != 1 {
			t.Fatalf("versions %v: want each of 1..%d exactly once", got, n)
		}
	}
}

func TestJobsAndCheckpoints(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	j3, j1, j2 := newJob(3, "queued"), newJob(1, "running"), newJob(2, "succeeded")
	for _, j := range []*JobRecord{j3, j1, j2} {
		mustPutJob(t, s, j)
	}
	j1.Status = "failed"
	j1.Error = "boom"
	j1.History = append(j1.History, []byte(`{"epoch":1,"loss":0.5}`))
	j1.HistoryLen = 1
	if err := s.AppendJobHistory(bg, j1.ID, 0, j1.History); err != nil {
		t.Fatal(err)
	}
	mustPutJob(t, s, j1) // replace

	list, errs := s.ListJobs(bg)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if len(list) != 3 || list[0].ID != j1.ID || list[1].ID != j2.ID || list[2].ID != j3.ID {
		t.Fatalf("ListJobs not ordered by Seq: %v", list)
	}
	if !reflect.DeepEqual(list[0], j1) {
		t.Fatalf("replaced job = %+v, want %+v", list[0], j1)
	}
	if _, err := s.Checkpoint(bg, j1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Checkpoint before put: %v, want ErrNotFound", err)
	}
	for _, state := range [][]byte{[]byte("epoch-1"), []byte("epoch-2"), {}} {
		if err := s.PutCheckpoint(bg, j1.ID, state); err != nil {
			t.Fatal(err)
		}
		got, err := s.Checkpoint(bg, j1.ID)
		if err != nil || !bytes.Equal(got, state) {
			t.Fatalf("Checkpoint = %q, %v; want %q", got, err, state)
		}
	}
	if err := s.DeleteJob(bg, j1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Job(bg, j1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Job after delete: %v", err)
	}
	if _, err := s.Checkpoint(bg, j1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DeleteJob must delete the checkpoint: %v", err)
	}
	if err := s.DeleteCheckpoint(bg, j2.ID); err != nil {
		t.Fatalf("DeleteCheckpoint of a missing checkpoint: %v", err)
	}
	if err := s.DeleteJob(bg, j1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DeleteJob twice: %v", err)
	}
	if err := s.PutJob(bg, nil); err == nil {
		t.Fatal("PutJob(nil) succeeded")
	}
}

// TestReopen proves that the files alone carry every record: a second
// Store opened on the directory sees exactly what the first wrote.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	d1 := mustCreateDataset(t, s, regressionDataset(7, 3))
	mustCreateDataset(t, s, labelDataset(9))
	mustPutModel(t, s, "a", []byte("a1"))
	mustPutModel(t, s, "a", []byte("a2"))
	mustPutModel(t, s, "b", []byte("b1"))
	j := newJob(1, "running")
	mustPutJob(t, s, j)
	mustPutJob(t, s, newJob(2, "queued"))
	if err := s.PutCheckpoint(bg, j.ID, []byte("state")); err != nil {
		t.Fatal(err)
	}

	type snapshot struct {
		Datasets []DatasetMeta
		Data     *Dataset
		Models   []ModelName
		Files    [][]byte
		Metas    []ModelMeta
		Jobs     []*JobRecord
		Ckpt     []byte
		Stats    Stats
	}
	snap := func(s *Store) snapshot {
		var sn snapshot
		var err error
		if sn.Datasets, err = s.ListDatasets(bg); err != nil {
			t.Fatal(err)
		}
		if sn.Data, err = s.LoadDataset(bg, d1.ID); err != nil {
			t.Fatal(err)
		}
		if sn.Models, err = s.ListModels(bg); err != nil {
			t.Fatal(err)
		}
		for _, mn := range sn.Models {
			for _, v := range mn.Versions {
				m, f, err := s.ModelFile(bg, mn.Name, v)
				if err != nil {
					t.Fatal(err)
				}
				sn.Metas, sn.Files = append(sn.Metas, m), append(sn.Files, f)
			}
		}
		var errs []error
		if sn.Jobs, errs = s.ListJobs(bg); len(errs) > 0 {
			t.Fatal(errs)
		}
		if sn.Ckpt, err = s.Checkpoint(bg, j.ID); err != nil {
			t.Fatal(err)
		}
		sn.Stats = s.Stats()
		return sn
	}
	before := snap(s)
	s.Close()
	after := snap(mustOpen(t, dir))
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("reopened store differs:\nbefore %+v\nafter  %+v", before, after)
	}
	if want := walkStats(t, dir); after.Stats != want {
		t.Fatalf("Stats after reopen = %+v, walk says %+v", after.Stats, want)
	}
}

// TestOpenRemovesLeftovers plants what a crash can leave behind: temp
// files in every directory and data files whose metadata was never
// written (or was already deleted).
func TestOpenRemovesLeftovers(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	d := mustCreateDataset(t, s, regressionDataset(3, 2))
	mustPutModel(t, s, "m", []byte("w"))
	j := newJob(1, "queued")
	mustPutJob(t, s, j)
	s.Close()

	leftovers := []string{
		".tmp-1", "datasets/.tmp-2", "models/.tmp-3", "models/m/.tmp-4", "jobs/.tmp-5", "checkpoints/.tmp-6",
		"datasets/" + uuid.NewString() + ".data",    // create interrupted before its metadata
		"models/m/v7.model",                         // put interrupted before its metadata
		"checkpoints/" + uuid.NewString() + ".ckpt", // job deleted, checkpoint not yet
	}
	for _, p := range leftovers {
		writeFile(t, filepath.Join(dir, p), []byte("partial"))
	}
	s = mustOpen(t, dir)
	for _, p := range leftovers {
		if _, err := os.Lstat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived Open: %v", p, err)
		}
	}
	if _, err := s.LoadDataset(bg, d.ID); err != nil {
		t.Errorf("dataset lost: %v", err)
	}
	if _, _, err := s.ModelFile(bg, "m", 1); err != nil {
		t.Errorf("model lost: %v", err)
	}
	if _, err := s.Job(bg, j.ID); err != nil {
		t.Errorf("job lost: %v", err)
	}
	if got, want := s.Stats(), walkStats(t, dir); got != want {
		t.Errorf("Stats = %+v, walk says %+v", got, want)
	}
}

func TestWritable(t *testing.T) {
	dir := t.TempDir()
	s, ffs := openFault(t, dir)
	if err := s.Writable(); err != nil {
		t.Fatalf("Writable on a fresh dir: %v", err)
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Fatalf("probe left %v", tmp)
	}
	ffs.set(stepCreate, func(string) bool { return true }, errROFS)
	if err := s.Writable(); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Writable on a read-only dir: %v, want ErrReadOnly", err)
	}
	ffs.set(stepWrite, func(string) bool { return true }, errNoSpace)
	if err := s.Writable(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Writable on a full disk: %v, want ErrNoSpace", err)
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Fatalf("failed probe left %v", tmp)
	}
}

// TestConcurrentUse mixes every kind of operation; run with -race.
func TestConcurrentUse(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	jobs := []*JobRecord{newJob(1, "queued"), newJob(2, "queued")}
	for _, j := range jobs {
		mustPutJob(t, s, j)
	}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := range 8 {
				j := *jobs[(w+i)%2]
				j.Attempts = i
				if err := s.PutJob(bg, &j); err != nil {
					t.Error(err)
				}
				if err := s.PutCheckpoint(bg, j.ID, []byte(strings.Repeat("c", i))); err != nil {
					t.Error(err)
				}
				if _, err := s.Checkpoint(bg, j.ID); err != nil {
					t.Error(err)
				}
				if _, errs := s.ListJobs(bg); len(errs) > 0 {
					t.Error(errs)
				}
				m := mustPutModel(t, s, fmt.Sprintf("m%d", i%3), []byte("w"))
				if i%2 == 1 {
					if err := s.DeleteModelVersion(bg, m.Name, m.Version); err != nil {
						t.Error(err)
					}
				}
				if _, err := s.ListModels(bg); err != nil {
					t.Error(err)
				}
				if i%4 == 0 {
					dm := mustCreateDataset(t, s, regressionDataset(4, 2))
					if _, err := s.LoadDataset(bg, dm.ID); err != nil {
						t.Error(err)
					}
					if _, err := s.ListDatasets(bg); err != nil {
						t.Error(err)
					}
				}
				s.Stats()
			}
		})
	}
	wg.Wait()
	if got, want := s.Stats(), walkStats(t, s.dir); got != want {
		t.Fatalf("Stats = %+v, walk says %+v", got, want)
	}
	if n := len(s.nameLocks); n != 0 {
		t.Fatalf("%d model name locks left after every operation returned", n)
	}
}

func TestModelChangesCounts(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	c0 := s.ModelChanges()
	if _, err := s.PutModel(ctx, ModelMeta{Name: "m"}, []byte("x")); err != nil {
		t.Fatal(err)
	}
	c1 := s.ModelChanges()
	if c1 <= c0 {
		t.Fatalf("after PutModel: changes %d, want > %d", c1, c0)
	}
	if _, err := s.PutModel(ctx, ModelMeta{Name: "bad/name"}, []byte("x")); err == nil {
		t.Fatal("PutModel with a bad name succeeded")
	}
	if got := s.ModelChanges(); got != c1 {
		t.Fatalf("a refused put moved the counter: %d, want %d", got, c1)
	}
	if err := s.DeleteModelVersion(ctx, "m", 1); err != nil {
		t.Fatal(err)
	}
	if got := s.ModelChanges(); got <= c1 {
		t.Fatalf("after DeleteModelVersion: changes %d, want > %d", got, c1)
	}
}
