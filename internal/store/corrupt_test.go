package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// damage mutates a stored file the ways a crash, a bad disk or a careless
// hand does.
var damages = []struct {
	name string
	do   func(b []byte) []byte
}{
	{"zero length", func(b []byte) []byte { return nil }},
	{"header only", func(b []byte) []byte { return b[:headerSize] }},
	{"truncated by one byte", func(b []byte) []byte { return b[:len(b)-1] }},
	{"truncated to half", func(b []byte) []byte { return b[:len(b)/2] }},
	{"extended", func(b []byte) []byte { return append(b, 0) }},
	{"payload bit flip", func(b []byte) []byte { b[headerSize+(len(b)-frameOverhd)/2] ^= 0x10; return b }},
	{"checksum bit flip", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }},
	{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }},
	{"format version zero", func(b []byte) []byte { b[4], b[5] = 0, 0; return b }},
	{"wrong record kind", func(b []byte) []byte { b[6] ^= 0x7; return b }},
	{"length field lies", func(b []byte) []byte { b[8]++; return b }},
}

// TestCorruptFiles damages each kind of stored file in each way and checks
// that reading it gives ErrCorrupt naming the file, while the store keeps
// serving the other records.
func TestCorruptFiles(t *testing.T) {
	type record struct {
		kind string
		file string // relative to the data dir
		read func(s *Store) error
	}
	for _, dmg := range damages {
		dir := t.TempDir()
		s := mustOpen(t, dir)
		ds := mustCreateDataset(t, s, labelDataset(10))
		typed := mustCreateDataset(t, s, typedDataset(10))
		other := mustCreateDataset(t, s, regressionDataset(3, 3))
		mustPutModel(t, s, "m", []byte("model-bytes"))
		mustPutModel(t, s, "other", []byte("other"))
		j := newJob(1, "running")
		mustPutJob(t, s, j)
		otherJob := newJob(2, "queued")
		mustPutJob(t, s, otherJob)
		if err := s.PutCheckpoint(bg, j.ID, []byte("training state")); err != nil {
			t.Fatal(err)
		}
		records := []record{
			{"dataset meta", datasetMetaPath(ds.ID), func(s *Store) error { _, err := s.DatasetMeta(bg, ds.ID); return err }},
			{"dataset meta (load)", datasetMetaPath(ds.ID), func(s *Store) error { _, err := s.LoadDataset(bg, ds.ID); return err }},
			{"dataset data", datasetDataPath(ds.ID), func(s *Store) error { _, err := s.LoadDataset(bg, ds.ID); return err }},
			{"typed dataset meta", datasetMetaPath(typed.ID), func(s *Store) error { _, err := s.LoadDataset(bg, typed.ID); return err }},
			{"typed dataset data", datasetDataPath(typed.ID), func(s *Store) error { _, err := s.LoadDataset(bg, typed.ID); return err }},
			{"model meta", modelMetaPath("m", 1), func(s *Store) error { _, err := s.ModelMeta(bg, "m", 1); return err }},
			{"model meta (latest file)", modelMetaPath("m", 1), func(s *Store) error { _, _, err := s.ModelFile(bg, "m", 0); return err }},
			{"model file", modelFilePath("m", 1), func(s *Store) error { _, _, err := s.ModelFile(bg, "m", 1); return err }},
			{"version counter", counterPath("m"), func(s *Store) error { _, err := s.PutModel(bg, ModelMeta{Name: "m"}, nil); return err }},
			{"job", jobPath(j.ID), func(s *Store) error { _, err := s.Job(bg, j.ID); return err }},
			{"checkpoint", checkpointPath(j.ID), func(s *Store) error { _, err := s.Checkpoint(bg, j.ID); return err }},
		}
		for _, r := range records {
			t.Run(r.kind+"/"+dmg.name, func(t *testing.T) {
				p := filepath.Join(dir, r.file)
				orig := readFile(t, p)
				writeFile(t, p, dmg.do(append([]byte(nil), orig...)))
				defer writeFile(t, p, orig)

				err := r.read(s)
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("read: %v, want ErrCorrupt", err)
				}
				if !strings.Contains(err.Error(), r.file) {
					t.Fatalf("error %q does not name %s", err, r.file)
				}
				// Everything else is still served.
				if _, err := s.LoadDataset(bg, other.ID); err != nil {
					t.Errorf("other dataset: %v", err)
				}
				if _, _, err := s.ModelFile(bg, "other", 0); err != nil {
					t.Errorf("other model: %v", err)
				}
				if _, err := s.Job(bg, otherJob.ID); err != nil {
					t.Errorf("other job: %v", err)
				}
				// A damaged record must not stop the store from opening.
				s2, err := Open(dir, Options{})
				if err != nil {
					t.Fatalf("Open with a damaged %s: %v", r.kind, err)
				}
				s2.Close()
			})
		}
	}
}

// TestListingsSkipCorrupt checks that listings serve the good records and
// name the bad file: ListJobs in its error slice, the others in the log.
func TestListingsSkipCorrupt(t *testing.T) {
	dir := t.TempDir()
	s, logs := openLogged(t, dir)
	good := mustCreateDataset(t, s, regressionDataset(2, 2))
	bad := mustCreateDataset(t, s, regressionDataset(2, 2))
	mustPutModel(t, s, "good", []byte("g"))
	goodJob, badJob := newJob(1, "queued"), newJob(2, "queued")
	mustPutJob(t, s, goodJob)
	mustPutJob(t, s, badJob)
	for _, rel := range []string{datasetMetaPath(bad.ID), jobPath(badJob.ID)} {
		writeFile(t, filepath.Join(dir, rel), []byte("garbage"))
	}
	// A model name directory that is unreadable as such.
	if err := os.MkdirAll(filepath.Join(dir, "models", "Not-Valid"), 0o755); err != nil {
		t.Fatal(err)
	}

	ds, err := s.ListDatasets(bg)
	if err != nil || len(ds) != 1 || ds[0].ID != good.ID {
		t.Fatalf("ListDatasets = %v, %v; want only %s", ds, err, good.ID)
	}
	if !strings.Contains(logs.String(), datasetMetaPath(bad.ID)) {
		t.Fatalf("log does not name the bad dataset file:\n%s", logs)
	}
	jobs, errs := s.ListJobs(bg)
	if len(jobs) != 1 || jobs[0].ID != goodJob.ID {
		t.Fatalf("ListJobs = %v; want only %s", jobs, goodJob.ID)
	}
	if len(errs) != 1 || !errors.Is(errs[0], ErrCorrupt) || !strings.Contains(errs[0].Error(), jobPath(badJob.ID)) {
		t.Fatalf("ListJobs errors = %v; want one ErrCorrupt naming %s", errs, jobPath(badJob.ID))
	}
	models, err := s.ListModels(bg)
	if err != nil || len(models) != 1 || models[0].Name != "good" {
		t.Fatalf("ListModels = %v, %v", models, err)
	}
}
