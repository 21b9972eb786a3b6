package store

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestCreateDatasetXParts: a dataset whose X comes in parts is stored as
// the same file, byte for byte, as one with the parts joined in X, and
// loads back with X; parts of the wrong total length, or with X as well,
// are refused.
func TestCreateDatasetXParts(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	x := []float64{1, 2, 3, 4, 5, 6, 7, 8}
	meta := DatasetMeta{Name: "parts", Rows: 4, Features: 2, TargetNames: []string{"y"}, Task: "regression"}
	targets := []float64{0.5, 1.5, 2.5, 3.5}
	whole, err := s.CreateDataset(bg, &Dataset{Meta: meta, X: x, Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	parted, err := s.CreateDataset(bg, &Dataset{Meta: meta, XParts: [][]float64{x[:2], x[2:7], x[7:]}, Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	a, err := os.ReadFile(filepath.Join(dir, datasetDataPath(whole.ID)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, datasetDataPath(parted.ID)))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a, b) || parted.SizeBytes != whole.SizeBytes {
		t.Fatalf("the file of the dataset in parts (%d bytes) differs from the one of X (%d bytes)", len(b), len(a))
	}
	d, err := s.LoadDataset(bg, parted.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.X, x) || d.XParts != nil {
		t.Fatalf("loaded X %v, parts %v; want X %v", d.X, d.XParts, x)
	}
	for name, bad := range map[string]*Dataset{
		"short parts": {Meta: meta, XParts: [][]float64{x[:3], x[4:]}, Targets: targets},
		"X and parts": {Meta: meta, X: x, XParts: [][]float64{x}, Targets: targets},
	} {
		if _, err := s.CreateDataset(bg, bad); !errors.Is(err, ErrInvalidDataset) {
			t.Errorf("%s: err = %v, want ErrInvalidDataset", name, err)
		}
	}
}
