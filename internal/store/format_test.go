package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// setJSON returns the JSON object b with key (a dotted path of object
// keys) set to value.
func setJSON(tb testing.TB, b []byte, key string, value any) []byte {
	tb.Helper()
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		tb.Fatal(err)
	}
	keys := strings.Split(key, ".")
	m := obj
	for _, k := range keys[:len(keys)-1] {
		m = m[k].(map[string]any)
	}
	if value == nil {
		delete(m, keys[len(keys)-1])
	} else {
		m[keys[len(keys)-1]] = value
	}
	out, err := json.Marshal(obj)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// name is the case's subtest name: the kind and the file's directory and
// extension, without the random id.
func (c formatCase) name() string {
	return c.what + "/" + strings.SplitN(c.file, "/", 2)[0] + filepath.Ext(c.file)
}

// formatCase is one durable kind: the file a store holds for it, how it is
// read, and how to rewrite its version field.
type formatCase struct {
	what   string // as FormatError.What names it
	file   string
	k      kind
	key    string // the JSON version field; "" for the frame's header field
	newest int
	read   func(s *Store) error
}

// opaque says the store does not decode what the case's version governs
// (a job's spec belongs to internal/jobs), so that every version from 1
// up, and an absent one, reads from the same file.
func (c formatCase) opaque() bool { return c.key == "spec.version" }

// formatCases builds a store in dir holding one record of each kind.
func formatCases(t *testing.T, dir string) (*Store, []formatCase) {
	s := mustOpen(t, dir)
	ds := mustCreateDataset(t, s, labelDataset(4))
	typed := mustCreateDataset(t, s, typedDataset(4))
	mustPutModel(t, s, "m", []byte("model-bytes"))
	j := newJob(1, "running")
	j.Spec = json.RawMessage(`{"version":1,"model_name":"m"}`)
	mustPutJob(t, s, j)
	if err := s.PutCheckpoint(bg, j.ID, []byte("training state")); err != nil {
		t.Fatal(err)
	}
	readJob := func(s *Store) error { _, err := s.Job(bg, j.ID); return err }
	return s, []formatCase{
		{"frame", jobPath(j.ID), kindJob, "", frameVersion, readJob},
		{"frame", checkpointPath(j.ID), kindCheckpoint, "", frameVersion, func(s *Store) error { _, err := s.Checkpoint(bg, j.ID); return err }},
		{"frame", datasetDataPath(ds.ID), kindDatasetData, "", frameVersion, func(s *Store) error { _, err := s.LoadDataset(bg, ds.ID); return err }},
		{"frame", modelFilePath("m", 1), kindModelFile, "", frameVersion, func(s *Store) error { _, _, err := s.ModelFile(bg, "m", 1); return err }},
		{"job record", jobPath(j.ID), kindJob, "format", jobFormat, readJob},
		{"job spec", jobPath(j.ID), kindJob, "spec.version", JobSpecVersion, readJob},
		{"dataset", datasetMetaPath(ds.ID), kindDatasetMeta, "format", datasetFormat, func(s *Store) error { _, err := s.LoadDataset(bg, ds.ID); return err }},
		{"dataset", datasetMetaPath(typed.ID), kindDatasetMeta, "format", datasetFormat, func(s *Store) error { _, err := s.LoadDataset(bg, typed.ID); return err }},
		{"model metadata", modelMetaPath("m", 1), kindModelMeta, "format", modelMetaFormat, func(s *Store) error { _, err := s.ModelMeta(bg, "m", 1); return err }},
		{"version counter", counterPath("m"), kindCounter, "format", counterFormat, func(s *Store) error { _, err := s.PutModel(bg, ModelMeta{Name: "m"}, []byte("x")); return err }},
	}
}

// rewrite returns the file orig (a frame of kind k) with its version
// field set to v, or removed when v is nil, and a valid checksum.
func (c formatCase) rewrite(t *testing.T, orig []byte, v *int) []byte {
	if c.key == "" {
		b := bytes.Clone(orig)
		b[4], b[5] = byte(*v), byte(*v>>8)
		return b
	}
	payload, err := decodeFrame(c.file, orig, c.k)
	if err != nil {
		t.Fatal(err)
	}
	var value any
	if v != nil {
		value = *v
	}
	return frameBytes(t, c.k, setJSON(t, payload, c.key, value))
}

// TestNewerFormatIsRefused rewrites each kind of stored file with a format
// version one above the newest this build reads, and checks that reading
// it fails with a FormatError naming the file and both versions, wrapping
// ErrNewerFormat and not ErrCorrupt or ErrNotFound, and leaves the file as
// it was.
func TestNewerFormatIsRefused(t *testing.T) {
	dir := t.TempDir()
	s, cases := formatCases(t, dir)
	for _, c := range cases {
		t.Run(c.name(), func(t *testing.T) {
			p := filepath.Join(dir, c.file)
			orig := readFile(t, p)
			newer := c.newest + 1
			bumped := c.rewrite(t, orig, &newer)
			writeFile(t, p, bumped)
			defer writeFile(t, p, orig)

			err := c.read(s)
			if !errors.Is(err, ErrNewerFormat) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotFound) {
				t.Fatalf("read: %v; want ErrNewerFormat only", err)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("read: %v is not a *FormatError", err)
			}
			want := FormatError{Path: c.file, What: c.what, Version: newer, Newest: c.newest}
			if *fe != want {
				t.Errorf("FormatError = %+v, want %+v", *fe, want)
			}
			wantText := fmt.Sprintf("%s: %s format version %d is newer than this build reads (%d); upgrade backpropd", c.file, c.what, newer, c.newest)
			if !strings.Contains(err.Error(), wantText) {
				t.Errorf("error %q does not say %q", err, wantText)
			}
			if got := readFile(t, p); !bytes.Equal(got, bumped) {
				t.Errorf("reading changed %s", c.file)
			}
		})
	}
}

// TestFormatVersions checks the other values of each version field: absent
// (records written before the field existed) and the newest read fine, 0
// and negative versions are corrupt.
func TestFormatVersions(t *testing.T) {
	dir := t.TempDir()
	s, cases := formatCases(t, dir)
	ptr := func(v int) *int { return &v }
	for _, c := range cases {
		versions := []struct {
			name string
			v    *int
			want error // nil: reads
		}{
			{"newest", ptr(c.newest), nil},
			{"version 1", ptr(1), nil},
			{"zero", ptr(0), ErrCorrupt},
			{"absent", nil, nil},
			{"negative", ptr(-1), ErrCorrupt},
		}
		for _, tc := range versions {
			if c.key == "" && (tc.v == nil || *tc.v < 0) {
				continue // the frame's field is a uint16 that is always there
			}
			if (tc.v == nil || *tc.v == 1) && c.newest > 1 && !c.opaque() {
				// Absent means version 1, whose layout differs from the
				// newest's; TestDatasetV1FilesLoad reads real version 1 files.
				continue
			}
			t.Run(c.name()+"/"+tc.name, func(t *testing.T) {
				p := filepath.Join(dir, c.file)
				orig := readFile(t, p)
				writeFile(t, p, c.rewrite(t, orig, tc.v))
				defer writeFile(t, p, orig)
				err := c.read(s)
				switch {
				case tc.want == nil && err != nil:
					t.Fatalf("read: %v; want success", err)
				case tc.want != nil && !errors.Is(err, tc.want):
					t.Fatalf("read: %v; want %v", err, tc.want)
				case tc.want != nil && !strings.Contains(err.Error(), c.file):
					t.Errorf("error %q does not name %s", err, c.file)
				}
			})
		}
	}
}

// TestWrittenRecordsCarryFormat checks that the store writes every JSON
// record with its format version first.
func TestWrittenRecordsCarryFormat(t *testing.T) {
	dir := t.TempDir()
	_, cases := formatCases(t, dir)
	for _, c := range cases {
		if c.key != "format" {
			continue
		}
		payload, err := decodeFrame(c.file, readFile(t, filepath.Join(dir, c.file)), c.k)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(`{"format":%d,`, c.newest); !bytes.HasPrefix(payload, []byte(want)) {
			t.Errorf("%s begins %.40q, want %q", c.file, payload, want)
		}
	}
}

// TestOpenKeepsNewerFiles checks that a newer-format job record is reported
// by ListJobs, naming its file, while the other records are served, and
// that neither Open nor listing removes it or its checkpoint: they belong
// to the newer build.
func TestOpenKeepsNewerFiles(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	newer := newJob(1, "running")
	mustPutJob(t, s, newer)
	if err := s.PutCheckpoint(bg, newer.ID, []byte("state")); err != nil {
		t.Fatal(err)
	}
	mustPutJob(t, s, newJob(2, "queued"))
	s.Close()

	p := filepath.Join(dir, jobPath(newer.ID))
	payload, err := decodeFrame(jobPath(newer.ID), readFile(t, p), kindJob)
	if err != nil {
		t.Fatal(err)
	}
	bumped := frameBytes(t, kindJob, setJSON(t, payload, "format", jobFormat+1))
	writeFile(t, p, bumped)

	s = mustOpen(t, dir)
	recs, errs := s.ListJobs(bg)
	if len(recs) != 1 || recs[0].Seq != 2 {
		t.Errorf("ListJobs served %d records; want the one of the current format", len(recs))
	}
	if len(errs) != 1 || !errors.Is(errs[0], ErrNewerFormat) || !strings.Contains(errs[0].Error(), jobPath(newer.ID)) {
		t.Errorf("ListJobs errors %v; want one ErrNewerFormat naming %s", errs, jobPath(newer.ID))
	}
	if got := readFile(t, p); !bytes.Equal(got, bumped) {
		t.Errorf("%s changed", jobPath(newer.ID))
	}
	if _, err := s.Checkpoint(bg, newer.ID); err != nil {
		t.Errorf("checkpoint of the newer record: %v", err)
	}
}
