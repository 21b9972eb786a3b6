package store

import (
	"context"
	"slices"
	"testing"
)

// TestDatasetClassCounts: CreateDataset counts the rows of each class, and
// the counts survive a reopen, so that a job's validation split can be
// checked from the metadata alone.
func TestDatasetClassCounts(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	// labelDataset(10) cycles through its 3 classes: rows 0,3,6,9 / 1,4,7 / 2,5,8.
	cls := mustCreateDataset(t, s, labelDataset(10))
	reg := mustCreateDataset(t, s, regressionDataset(5, 2))
	if want := []int{4, 3, 3}; !slices.Equal(cls.ClassCounts, want) {
		t.Errorf("class counts = %v, want %v", cls.ClassCounts, want)
	}
	if reg.ClassCounts != nil {
		t.Errorf("a regression dataset has class counts %v", reg.ClassCounts)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir)
	got, err := s.DatasetMeta(context.Background(), cls.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.ClassCounts, cls.ClassCounts) {
		t.Errorf("after reopen: class counts = %v, want %v", got.ClassCounts, cls.ClassCounts)
	}
}
