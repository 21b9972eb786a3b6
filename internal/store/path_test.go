package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestPathAttacks feeds hostile ids and names to every method that takes
// one: each must fail with ErrInvalidName before touching the disk.
func TestPathAttacks(t *testing.T) {
	validID := uuid.NewString()
	badIDs := []string{
		"", ".", "..", "../x", "../../etc/passwd", "..%2f..%2fetc%2fpasswd", "%2e%2e%2f",
		"/etc/passwd", "/" + validID, validID + "/", "a/b", validID[:8] + "/" + validID[9:],
		validID[:35] + "\x00", "a\x00b", strings.ToUpper(validID), "{" + validID + "}",
		"urn:uuid:" + validID, strings.ReplaceAll(validID, "-", ""), validID + ".job",
		strings.Repeat("a", 4096), validID + " ", `..\..\x`,
	}
	badNames := []string{
		"", ".", "..", "../x", "..%2fx", "..%2f..%2fetc", "/abs", "/etc/passwd", "a/b", "a\x00b", "a\x00",
		strings.Repeat("a", 65), strings.Repeat("a", 4096), "Upper", ".hidden", "-lead", "_lead",
		"a b", `a\b`, "ü", "a\n",
	}
	dir := t.TempDir()
	s := mustOpen(t, dir)
	idOps := map[string]func(id string) error{
		"DatasetMeta":      func(id string) error { _, err := s.DatasetMeta(bg, id); return err },
		"LoadDataset":      func(id string) error { _, err := s.LoadDataset(bg, id); return err },
		"DeleteDataset":    func(id string) error { return s.DeleteDataset(bg, id) },
		"PutJob":           func(id string) error { j := newJob(1, "queued"); j.ID = id; return s.PutJob(bg, j) },
		"Job":              func(id string) error { _, err := s.Job(bg, id); return err },
		"DeleteJob":        func(id string) error { return s.DeleteJob(bg, id) },
		"PutCheckpoint":    func(id string) error { return s.PutCheckpoint(bg, id, []byte("x")) },
		"Checkpoint":       func(id string) error { _, err := s.Checkpoint(bg, id); return err },
		"DeleteCheckpoint": func(id string) error { return s.DeleteCheckpoint(bg, id) },
	}
	nameOps := map[string]func(name string) error{
		"PutModel":           func(n string) error { _, err := s.PutModel(bg, ModelMeta{Name: n}, []byte("x")); return err },
		"ModelVersions":      func(n string) error { _, err := s.ModelVersions(bg, n); return err },
		"ModelMeta":          func(n string) error { _, err := s.ModelMeta(bg, n, 0); return err },
		"ModelFile":          func(n string) error { _, _, err := s.ModelFile(bg, n, 1); return err },
		"DeleteModelVersion": func(n string) error { return s.DeleteModelVersion(bg, n, 1) },
		"DeleteModel":        func(n string) error { return s.DeleteModel(bg, n) },
	}
	before := walkStats(t, dir)
	for op, f := range idOps {
		for _, id := range badIDs {
			t.Run(op+"/"+quote(id), func(t *testing.T) {
				if err := f(id); !errors.Is(err, ErrInvalidName) {
					t.Fatalf("%s(%q) = %v, want ErrInvalidName", op, id, err)
				}
			})
		}
	}
	for op, f := range nameOps {
		for _, name := range badNames {
			t.Run(op+"/"+quote(name), func(t *testing.T) {
				if err := f(name); !errors.Is(err, ErrInvalidName) {
					t.Fatalf("%s(%q) = %v, want ErrInvalidName", op, name, err)
				}
			})
		}
	}
	if after := walkStats(t, dir); after != before {
		t.Fatalf("rejected calls changed the data dir: %+v -> %+v", before, after)
	}
	// Boundaries that are valid: 64 characters, dots and dashes inside.
	for _, name := range []string{strings.Repeat("a", 64), "0", "a.b-c_d", "a..b"} {
		if _, err := s.PutModel(bg, ModelMeta{Name: name}, []byte("x")); err != nil {
			t.Errorf("PutModel(%q): %v", name, err)
		}
	}
}

// TestSymlinkEscape plants symlinks inside the data directory that point
// outside it, at valid-looking copies of records, so that a read through
// one would succeed if it were followed. Reads and writes must fail or
// stay inside, and the outside files must be untouched.
func TestSymlinkEscape(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	s := mustOpen(t, dir)
	ds := mustCreateDataset(t, s, regressionDataset(3, 2))
	doomed := mustCreateDataset(t, s, regressionDataset(3, 2)) // deleted through the link
	j := newJob(1, "queued")
	mustPutJob(t, s, j)
	if err := s.PutCheckpoint(bg, j.ID, []byte("state")); err != nil {
		t.Fatal(err)
	}
	mustPutModel(t, s, "victim", []byte("w"))

	// escape moves rel outside and leaves a symlink to it in its place;
	// relative targets climb out with ../ instead of an absolute path.
	relTarget := func(rel, target string) string {
		from := filepath.Dir(filepath.Join(dir, rel))
		r, err := filepath.Rel(from, target)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	type escape struct {
		name  string
		rel   string // file or directory replaced by a link
		read  func() error
		write func() error
	}
	escapes := []escape{
		{"job file", jobPath(j.ID),
			func() error { _, err := s.Job(bg, j.ID); return err },
			func() error { return s.PutJob(bg, j) }},
		{"checkpoint file", checkpointPath(j.ID),
			func() error { _, err := s.Checkpoint(bg, j.ID); return err },
			func() error { return s.PutCheckpoint(bg, j.ID, []byte("evil")) }},
		{"dataset meta", datasetMetaPath(doomed.ID),
			func() error { _, err := s.DatasetMeta(bg, doomed.ID); return err },
			func() error { return s.DeleteDataset(bg, doomed.ID) }},
		{"dataset data", datasetDataPath(ds.ID),
			func() error { _, err := s.LoadDataset(bg, ds.ID); return err },
			func() error { _, err := s.CreateDataset(bg, regressionDataset(2, 2)); return err }},
		{"model dir", modelDir("victim"),
			func() error { _, _, err := s.ModelFile(bg, "victim", 1); return err },
			func() error { _, err := s.PutModel(bg, ModelMeta{Name: "victim"}, []byte("evil")); return err }},
		{"jobs dir", dirJobs,
			func() error { _, err := s.Job(bg, j.ID); return err },
			func() error { return s.PutJob(bg, j) }},
	}
	for _, absolute := range []bool{true, false} {
		for _, e := range escapes {
			name := e.name + map[bool]string{true: "/absolute", false: "/relative"}[absolute]
			t.Run(name, func(t *testing.T) {
				src := filepath.Join(dir, e.rel)
				dst := filepath.Join(outside, strings.ReplaceAll(e.rel, "/", "_"))
				if err := os.Rename(src, dst); err != nil {
					t.Fatal(err)
				}
				target := dst
				if !absolute {
					target = relTarget(e.rel, dst)
				}
				if err := os.Symlink(target, src); err != nil {
					t.Fatal(err)
				}
				snap := snapshotTree(t, outside)
				defer func() {
					// Restore the real record for the next case.
					os.RemoveAll(src)
					if err := os.Rename(dst, src); err != nil {
						t.Fatal(err)
					}
				}()

				if err := e.read(); err == nil {
					t.Errorf("read through a symlink to %s succeeded", target)
				} else {
					t.Logf("read: %v", err)
				}
				e.write() // may fail or replace the link itself; either way:
				if got := snapshotTree(t, outside); got != snap {
					t.Fatalf("outside directory changed:\nbefore %s\nafter  %s", snap, got)
				}
				jobs, errs := s.ListJobs(bg)
				if e.rel == dirJobs && (len(jobs) != 0 || len(errs) == 0) {
					t.Errorf("ListJobs through a symlinked jobs dir = %v, %v; want an error", jobs, errs)
				}
				s.ListModels(bg)
				s.ListDatasets(bg)
				if got := snapshotTree(t, outside); got != snap {
					t.Fatalf("listing changed the outside directory")
				}
			})
		}
	}
}

// snapshotTree renders every path and content under dir.
func snapshotTree(t *testing.T, dir string) string {
	t.Helper()
	var b bytes.Buffer
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		b.WriteString(p + "\n")
		if info.Mode().IsRegular() {
			b.Write(readFile(t, p))
			b.WriteString("\n")
		}
		return nil
	})
	return b.String()
}
