package store

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/backpropd/backpropd/internal/table"
)

var bg = context.Background()

func mustOpen(tb testing.TB, dir string) *Store {
	tb.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		tb.Fatalf("Open(%s): %v", dir, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// openFault opens a store on dir through a faultFS.
func openFault(tb testing.TB, dir string) (*Store, *faultFS) {
	tb.Helper()
	base, err := OpenDirFS(dir)
	if err != nil {
		tb.Fatal(err)
	}
	ffs := &faultFS{FS: base}
	s, err := Open(dir, Options{FS: ffs})
	if err != nil {
		tb.Fatalf("Open(%s): %v", dir, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s, ffs
}

// syncBuffer is a bytes.Buffer safe for a logger used from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func openLogged(tb testing.TB, dir string) (*Store, *syncBuffer) {
	tb.Helper()
	buf := new(syncBuffer)
	s, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(buf, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s, buf
}

func regressionDataset(rows, feats int) *Dataset {
	d := &Dataset{Meta: DatasetMeta{Name: "reg", Rows: rows, Features: feats, Task: "regression", TargetNames: []string{"y"}}}
	for i := range feats {
		d.Meta.FeatureNames = append(d.Meta.FeatureNames, "x"+string(rune('a'+i%26)))
	}
	d.X = make([]float64, rows*feats)
	for i := range d.X {
		d.X[i] = float64(i)*0.25 - 3
	}
	d.Targets = make([]float64, rows)
	for i := range d.Targets {
		d.Targets[i] = float64(i) / 7
	}
	return d
}

func labelDataset(rows int) *Dataset {
	d := &Dataset{Meta: DatasetMeta{Name: "cls", Rows: rows, Features: 2, FeatureNames: []string{"a", "b"},
		TargetNames: []string{"class"}, Task: "multiclass", Classes: []string{"", "cat", "dög"}}}
	for i := range rows {
		d.X = append(d.X, float64(i), -float64(i))
		d.Labels = append(d.Labels, d.Meta.Classes[i%3])
	}
	return d
}

func mustCreateDataset(tb testing.TB, s *Store, d *Dataset) DatasetMeta {
	tb.Helper()
	m, err := s.CreateDataset(bg, d)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func mustPutModel(tb testing.TB, s *Store, name string, file []byte) ModelMeta {
	tb.Helper()
	m, err := s.PutModel(bg, ModelMeta{Name: name, Task: "regression", Outputs: 1}, file)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func newJob(seq int64, status string) *JobRecord {
	return &JobRecord{ID: uuid.NewString(), ModelName: "m", DatasetID: uuid.NewString(), Status: status,
		Spec: []byte(`{"epochs":3}`), Seq: seq, Attempts: 1}
}

func mustPutJob(tb testing.TB, s *Store, j *JobRecord) {
	tb.Helper()
	if err := s.PutJob(bg, j); err != nil {
		tb.Fatal(err)
	}
}

// tempFiles lists every temp file left anywhere under dir.
func tempFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), tmpPrefix) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// walkStats computes Stats from the directory tree, the oracle for the
// counters the store keeps.
func walkStats(tb testing.TB, dir string) Stats {
	tb.Helper()
	var st Stats
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st.TotalBytes += info.Size()
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case strings.HasPrefix(rel, "datasets/") && strings.HasSuffix(rel, ".meta"):
			st.Datasets++
		case strings.HasPrefix(rel, "models/") && strings.HasSuffix(rel, ".meta"):
			st.Models++
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

func readFile(tb testing.TB, p string) []byte {
	tb.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func writeFile(tb testing.TB, p string, b []byte) {
	tb.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// typedDataset is a dataset of rows rows whose features are typed columns,
// one of each kind, with missing cells, and whose target is class labels:
// a number column with NaN every third row and a negative zero, a
// category column whose levels include the empty string and non-ASCII
// text, missing every fourth row, and a datetime column with a time of
// day, missing every fifth row.
func typedDataset(rows int) *Dataset {
	num := table.Column{Name: "price", Kind: table.Number, Values: make([]float64, rows)}
	cat := table.Column{Name: "grade", Kind: table.Category, Codes: make([]int32, rows), Levels: []string{"a", "", "ß-grade"}}
	dt := table.Column{Name: "sold", Kind: table.Datetime, Values: make([]float64, rows), HasTime: true}
	for i := range rows {
		num.Values[i] = float64(i)*1.5 - 2
		if i%3 == 2 {
			num.Values[i] = math.NaN()
		}
		cat.Codes[i] = int32(i % 3)
		if i%4 == 3 {
			cat.Codes[i] = table.Missing
		}
		dt.Values[i] = 1.7e9 + 3600.5*float64(i)
		if i%5 == 4 {
			dt.Values[i] = math.NaN()
		}
	}
	if rows > 1 {
		num.Values[1] = math.Copysign(0, -1)
	}
	d := &Dataset{
		Meta: DatasetMeta{Name: "typed", Rows: rows, Features: 3, TargetNames: []string{"class"}, Task: "binary",
			Classes: []string{"no", "yes"}, DroppedRows: 2, Warnings: []string{"2 rows without a target were dropped"}},
		Columns: []table.Column{num, cat, dt},
	}
	for i := range rows {
		d.Labels = append(d.Labels, d.Meta.Classes[i%2])
	}
	return d
}
