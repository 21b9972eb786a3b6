package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeDisk reports the free bytes it is told, or the figures in seq one
// call at a time (the last one repeating).
type fakeDisk struct {
	mu    sync.Mutex
	seq   []int64
	err   error
	calls int
}

func (d *fakeDisk) Free() (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	if d.err != nil {
		return 0, d.err
	}
	v := d.seq[0]
	if len(d.seq) > 1 {
		d.seq = d.seq[1:]
	}
	return v, nil
}

func openFloor(tb testing.TB, dir string, floor int64, disk DiskSpace) *Store {
	tb.Helper()
	s, err := Open(dir, Options{MinFreeBytes: floor, Disk: disk})
	if err != nil {
		tb.Fatalf("Open(%s): %v", dir, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// datasetFileSize is the bytes regressionDataset(rows, feats) takes in its
// data file: the 40-byte dataset header, 8 bytes per feature value and
// target, and the frame's header and trailer.
func datasetFileSize(rows, feats int) int64 {
	return datasetHeaderSize + 8*int64(rows*feats+rows) + frameOverhd
}

// wantNothingStored fails unless dir holds no dataset, no model and no
// temp file.
func wantNothingStored(t *testing.T, s *Store, dir string) {
	t.Helper()
	if st := s.Stats(); st.Datasets != 0 || st.Models != 0 {
		t.Errorf("stats %+v after a refused upload, want no dataset and no model", st)
	}
	if ds, err := s.ListDatasets(bg); err != nil || len(ds) != 0 {
		t.Errorf("ListDatasets = %v, %v; want none", ds, err)
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("temp files left: %v", tmp)
	}
	ents, err := os.ReadDir(filepath.Join(dir, dirDatasets))
	if err != nil || len(ents) != 0 {
		t.Errorf("datasets/ holds %v (%v), want nothing", ents, err)
	}
}

func TestFloorRefusesUploadsBeforeWriting(t *testing.T) {
	const floor = 1 << 20
	rows, feats := 1000, 3
	need := datasetFileSize(rows, feats) // 32,052 bytes
	tests := []struct {
		name string
		free int64
		ok   bool
	}{
		{"leaves more than the floor", floor + need + 1, true},
		{"leaves exactly the floor", floor + need, true},
		{"leaves one byte less", floor + need - 1, false},
		{"disk already below the floor", floor / 2, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openFloor(t, dir, floor, &fakeDisk{seq: []int64{tc.free}})
			_, err := s.CreateDataset(bg, regressionDataset(rows, feats))
			if tc.ok {
				if err != nil {
					t.Fatalf("CreateDataset with %d free: %v, want it stored", tc.free, err)
				}
				return
			}
			var ie *InsufficientStorageError
			if !errors.Is(err, ErrInsufficientStorage) || !errors.As(err, &ie) {
				t.Fatalf("CreateDataset with %d free: %v, want ErrInsufficientStorage", tc.free, err)
			}
			if ie.Need != need || ie.Free != tc.free || ie.Floor != floor {
				t.Errorf("error says need %d free %d floor %d; want %d, %d, %d", ie.Need, ie.Free, ie.Floor, need, tc.free, floor)
			}
			if strings.Contains(ie.Detail(), "datasets") || !strings.Contains(ie.Detail(), "1.0 MiB (1048576 bytes)") {
				t.Errorf("detail %q: want the floor in bytes and no path", ie.Detail())
			}
			wantNothingStored(t, s, dir)
		})
	}
}

func TestFloorHoldsImportsNotTrainedModels(t *testing.T) {
	const floor = 1 << 20
	dir := t.TempDir()
	file := make([]byte, 64<<10)
	// Room for a 64 KiB file above the floor, but not for 64 KiB plus its
	// frame's 20 bytes.
	s := openFloor(t, dir, floor, &fakeDisk{seq: []int64{floor + 64<<10}})
	_, err := s.ImportModel(bg, ModelMeta{Name: "imp", Task: "regression", Outputs: 1, Imported: true}, file)
	if !errors.Is(err, ErrInsufficientStorage) {
		t.Fatalf("ImportModel below the floor: %v, want ErrInsufficientStorage", err)
	}
	if _, err := s.ModelVersions(bg, "imp"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ModelVersions after a refused import: %v, want ErrNotFound", err)
	}
	// The floor keeps room for what accepted jobs write.
	if m := mustPutModel(t, s, "trained", file); m.Version != 1 {
		t.Errorf("trained model stored as version %d, want 1", m.Version)
	}
	if err := s.PutCheckpoint(bg, newJob(1, "running").ID, file); err != nil {
		t.Errorf("PutCheckpoint below the floor: %v, want it written", err)
	}
}

func TestFloorFailsWriteWhenDiskFillsMeanwhile(t *testing.T) {
	const floor = 1 << 20
	// 300,000 rows of 2 features: 7.2 MB, so the guard looks at the free
	// space again after each 4 MiB.
	rows, feats := 300_000, 2
	need := datasetFileSize(rows, feats)
	tests := []struct {
		name string
		seq  []int64
		ok   bool
	}{
		// Plenty at the start, then another process takes all but the
		// floor: what the upload has yet to write no longer fits.
		{"filled meanwhile", []int64{floor + 2*need, floor}, false},
		// Free space shrinks by what the upload itself wrote: fine.
		{"shrinks by its own writes", []int64{floor + need, floor + need - floorCheckEvery}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			disk := &fakeDisk{seq: tc.seq}
			s := openFloor(t, dir, floor, disk)
			_, err := s.CreateDataset(bg, regressionDataset(rows, feats))
			if disk.calls < 2 {
				t.Fatalf("free space read %d times, want again while writing", disk.calls)
			}
			if tc.ok {
				if err != nil {
					t.Fatalf("CreateDataset: %v", err)
				}
				return
			}
			var ie *InsufficientStorageError
			if !errors.As(err, &ie) || ie.Need != need || ie.Free != floor {
				t.Fatalf("CreateDataset: %v, want ErrInsufficientStorage needing %d with %d free", err, need, floor)
			}
			wantNothingStored(t, s, dir)
		})
	}
}

func TestFloorCountsUploadsInFlight(t *testing.T) {
	const floor, free = 1 << 20, 3 << 20
	s := openFloor(t, t.TempDir(), floor, &fakeDisk{seq: []int64{free}})
	if err := s.CheckFreeSpace(2 << 20); err != nil {
		t.Fatalf("CheckFreeSpace(2 MiB) with 3 MiB free and a 1 MiB floor: %v", err)
	}
	release, err := s.floor.reserve(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	// 3 MiB free, 1 MiB of it promised to the upload in flight.
	if err := s.CheckFreeSpace(2 << 20); !errors.Is(err, ErrInsufficientStorage) {
		t.Fatalf("CheckFreeSpace(2 MiB) beside a 1 MiB upload in flight: %v, want ErrInsufficientStorage", err)
	}
	release()
	if err := s.CheckFreeSpace(2 << 20); err != nil {
		t.Fatalf("CheckFreeSpace(2 MiB) after the upload finished: %v", err)
	}
}

func TestFloorOff(t *testing.T) {
	tests := []struct {
		name  string
		floor int64
		disk  *fakeDisk
	}{
		{"floor 0", 0, &fakeDisk{seq: []int64{0}}},
		// The write itself still fails with ErrNoSpace on a full disk.
		{"free space unreadable", 1 << 30, &fakeDisk{err: errors.New("statfs: input/output error")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openFloor(t, t.TempDir(), tc.floor, tc.disk)
			if err := s.CheckFreeSpace(1 << 40); err != nil {
				t.Errorf("CheckFreeSpace: %v, want nil", err)
			}
			mustCreateDataset(t, s, regressionDataset(10, 2))
		})
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 bytes"},
		{1023, "1023 bytes"},
		{1024, "1.0 KiB (1024 bytes)"},
		{1 << 30, "1.0 GiB (1073741824 bytes)"},
		{3<<29 + 5, "1.5 GiB (1610612741 bytes)"},
	}
	for _, tc := range tests {
		if got := formatBytes(tc.n); got != tc.want {
			t.Errorf("formatBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
