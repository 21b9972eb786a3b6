package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// mountTmpfs mounts a small tmpfs on a fresh directory, or skips: it needs
// root and a kernel that lets this process mount. The injected-FS tests
// cover the same code paths everywhere; this one proves the real errnos
// are classified as expected.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestRealDiskFullAndReadOnly fills a real 512 KiB tmpfs and then
// remounts it read-only.
func TestRealDiskFullAndReadOnly(t *testing.T) {
	dir := mountTmpfs(t, "512k")
	s := mustOpen(t, dir)
	small := mustCreateDataset(t, s, regressionDataset(10, 3))
	j := newJob(1, "running")
	mustPutJob(t, s, j)

	t.Run("full", func(t *testing.T) {
		_, err := s.CreateDataset(bg, regressionDataset(100_000, 1)) // 1.6 MB
		if !errors.Is(err, ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("CreateDataset on a full disk: %v, want ErrNoSpace", err)
		}
		if !strings.Contains(err.Error(), "datasets/") {
			t.Errorf("error %q does not name the file", err)
		}
		err = s.PutCheckpoint(bg, j.ID, make([]byte, 1<<20))
		if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), checkpointPath(j.ID)) {
			t.Fatalf("PutCheckpoint on a full disk: %v, want ErrNoSpace naming %s", err, checkpointPath(j.ID))
		}
		if tmp := tempFiles(t, dir); len(tmp) != 0 {
			t.Fatalf("temp files left: %v", tmp)
		}
		if _, err := s.LoadDataset(bg, small.ID); err != nil {
			t.Fatalf("stored dataset damaged: %v", err)
		}

		// Fill what is left; then even the readiness probe fails.
		filler, err := os.Create(filepath.Join(dir, "filler"))
		if err != nil {
			t.Fatal(err)
		}
		defer os.Remove(filler.Name())
		for {
			if _, err := filler.Write(make([]byte, 4096)); err != nil {
				break
			}
		}
		filler.Close()
		if err := s.Writable(); !errors.Is(err, ErrNoSpace) {
			t.Fatalf("Writable on a full disk: %v, want ErrNoSpace", err)
		}
		if err := s.PutJob(bg, j); !errors.Is(err, ErrNoSpace) {
			t.Fatalf("PutJob on a full disk: %v, want ErrNoSpace", err)
		}
		if got, err := s.Job(bg, j.ID); err != nil || got.Status != "running" {
			t.Fatalf("stored job damaged: %+v, %v", got, err)
		}
	})

	t.Run("read-only", func(t *testing.T) {
		// A leftover that a read-only Open cannot remove must not stop it.
		writeFile(t, filepath.Join(dir, "jobs", tmpPrefix+"left"), []byte("partial"))
		if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			t.Skipf("cannot remount read-only: %v", err)
		}
		j2 := *j
		j2.Status = "failed"
		err := s.PutJob(bg, &j2)
		if !errors.Is(err, ErrReadOnly) || !strings.Contains(err.Error(), jobPath(j.ID)) {
			t.Fatalf("PutJob on a read-only mount: %v, want ErrReadOnly naming %s", err, jobPath(j.ID))
		}
		if err := s.Writable(); !errors.Is(err, ErrReadOnly) {
			t.Fatalf("Writable on a read-only mount: %v, want ErrReadOnly", err)
		}
		// A read-only store still opens and serves reads.
		s2, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("Open read-only: %v", err)
		}
		defer s2.Close()
		if got, err := s2.Job(bg, j.ID); err != nil || got.Status != "running" {
			t.Fatalf("Job on a read-only mount: %+v, %v", got, err)
		}
		if _, err := s2.LoadDataset(bg, small.ID); err != nil {
			t.Fatalf("LoadDataset on a read-only mount: %v", err)
		}
	})
}
