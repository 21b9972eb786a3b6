package store

import (
	"errors"
	"testing"
)

// TestRealFloorOnTmpfs holds uploads to the floor on a real 8 MiB tmpfs,
// whose free space statfs reports.
func TestRealFloorOnTmpfs(t *testing.T) {
	dir := mountTmpfs(t, "8m")
	const floor = 4 << 20
	s, err := Open(dir, Options{MinFreeBytes: floor})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	free, err := statfsDisk(dir).Free()
	// An empty 8 MiB tmpfs: 8 MiB less the few pages the store's
	// directories take.
	if err != nil || free > 8<<20 || free < 7<<20 {
		t.Fatalf("statfs free = %d, %v; want just under 8 MiB", free, err)
	}

	// 200,000 rows of 2 features and a target: 4.8 MB, which fits in the
	// 8 MiB but would leave less than the 4 MiB floor.
	_, err = s.CreateDataset(bg, regressionDataset(200_000, 2))
	if !errors.Is(err, ErrInsufficientStorage) || errors.Is(err, ErrNoSpace) {
		t.Fatalf("CreateDataset crossing the floor: %v, want ErrInsufficientStorage", err)
	}
	wantNothingStored(t, s, dir)
	if err := s.CheckFreeSpace(5 << 20); !errors.Is(err, ErrInsufficientStorage) {
		t.Errorf("CheckFreeSpace(5 MiB): %v, want ErrInsufficientStorage", err)
	}

	// 10,000 rows (240 KB) leave the floor free.
	mustCreateDataset(t, s, regressionDataset(10_000, 2))
	if err := s.CheckFreeSpace(1 << 20); err != nil {
		t.Errorf("CheckFreeSpace(1 MiB): %v", err)
	}
}
