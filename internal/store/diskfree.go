package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
)

// DefaultMinFreeBytes is the free space the server keeps on the data
// directory's filesystem by default (cmd/server's --min-free-disk). It is
// a fixed size rather than a share of the disk because what the floor
// holds room for, the checkpoints, trained models and job records of work
// already accepted, grows with the models and the workers, not with the
// disk: a share of a 2 TB disk would withhold far more than that needs and
// a share of a small one too little.
const DefaultMinFreeBytes = 1 << 30

// ErrInsufficientStorage is returned, wrapped in an
// *InsufficientStorageError, for an upload or import that would leave less
// free space than the floor (Options.MinFreeBytes). Nothing of the upload
// is left on disk.
var ErrInsufficientStorage = errors.New("not enough free disk space")

// InsufficientStorageError says how much an upload needed, how much was
// free and the floor it would have crossed.
type InsufficientStorageError struct {
	Need  int64 // bytes the upload needs (announced or exact)
	Free  int64 // bytes free on the data directory's filesystem when checked
	Floor int64 // bytes the server keeps free
}

// Detail is the error in the client's terms; it names no path.
func (e *InsufficientStorageError) Detail() string {
	return fmt.Sprintf("not enough disk space for this upload: it needs %s, %s is free, and the server keeps %s free for training",
		formatBytes(e.Need), formatBytes(e.Free), formatBytes(e.Floor))
}

func (e *InsufficientStorageError) Error() string { return "store: " + e.Detail() }

// Is makes errors.Is(err, ErrInsufficientStorage) hold.
func (e *InsufficientStorageError) Is(target error) bool { return target == ErrInsufficientStorage }

// formatBytes writes n in the largest binary unit that keeps it at or above
// 1, with the exact byte count for anything that is not a whole unit.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	v, u := float64(n), 0
	for v >= unit && u < 4 {
		v /= unit
		u++
	}
	return fmt.Sprintf("%.1f %s (%d bytes)", v, [...]string{"", "KiB", "MiB", "GiB", "TiB"}[u], n)
}

// DiskSpace reports the free space of the filesystem that holds the data
// directory. Tests inject one that reports a low figure.
type DiskSpace interface {
	// Free returns the bytes an unprivileged writer may still use.
	Free() (int64, error)
}

// diskFloor refuses uploads that would leave less than min bytes free. It
// counts the bytes that uploads in flight have yet to write, so that two
// concurrent uploads cannot both pass a check that only one of them fits.
type diskFloor struct {
	disk DiskSpace // nil: no checks
	min  int64     // 0: no checks
	log  *slog.Logger

	mu       sync.Mutex
	reserved int64
}

// floorCheckEvery is how many bytes a guarded write writes between two
// looks at the free space: a statfs is one system call that reads no
// disk, small beside writing and syncing 4 MiB.
const floorCheckEvery = 4 << 20

// newDiskFloor returns the floor of a store opened on dir with opt. The
// real disk is asked only when the store writes the real directory.
func newDiskFloor(dir string, opt Options, log *slog.Logger) *diskFloor {
	f := &diskFloor{disk: opt.Disk, min: opt.MinFreeBytes, log: log}
	if f.disk == nil && opt.FS == nil {
		f.disk = statfsDisk(dir)
	}
	return f
}

// free asks the disk for its free bytes; ok is false when there is no
// floor or the disk cannot say, and then nothing is refused: the write
// itself still fails with ErrNoSpace on a full disk.
func (f *diskFloor) free() (int64, bool) {
	if f == nil || f.disk == nil || f.min <= 0 {
		return 0, false
	}
	n, err := f.disk.Free()
	if err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			return 0, false
		}
		f.log.Warn("store: cannot read the free disk space; uploads are not checked against the floor", "err", err)
		return 0, false
	}
	return n, true
}

// CheckFreeSpace reports whether an upload of about need bytes would leave
// at least the floor free, counting what uploads in flight have yet to
// write. It reserves nothing: the API calls it with the announced size
// before reading the body, and the write checks again with the exact one.
func (s *Store) CheckFreeSpace(need int64) error {
	f := s.floor
	free, ok := f.free()
	if !ok {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.check(need, free-f.reserved)
}

// check refuses need when free - need falls below the floor.
func (f *diskFloor) check(need, free int64) error {
	if free-need < f.min {
		return &InsufficientStorageError{Need: need, Free: max(free, 0), Floor: f.min}
	}
	return nil
}

// reserve checks need against the floor and holds it until release is
// called.
func (f *diskFloor) reserve(need int64) (release func(), err error) {
	free, ok := f.free()
	if !ok {
		return func() {}, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(need, free-f.reserved); err != nil {
		return nil, err
	}
	f.reserved += need
	return func() {
		f.mu.Lock()
		f.reserved -= need
		f.mu.Unlock()
	}, nil
}

// guard wraps a writeFile body of n bytes so that it fails with an
// *InsufficientStorageError once the free space, less what the body has
// yet to write, drops below the floor: another process may fill the disk
// while a large upload is written.
func (f *diskFloor) guard(n uint64, body func(io.Writer) error) func(io.Writer) error {
	return func(w io.Writer) error {
		return body(&floorWriter{w: w, floor: f, need: int64(n) + frameOverhd})
	}
}

// floorWriter is the writer a guarded body writes to.
type floorWriter struct {
	w          io.Writer
	floor      *diskFloor
	need       int64 // bytes the whole file takes, frame included
	written    int64
	sinceCheck int
}

func (w *floorWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if w.sinceCheck >= floorCheckEvery {
			w.sinceCheck = 0
			if free, ok := w.floor.free(); ok && free-(w.need-w.written) < w.floor.min {
				return n, &InsufficientStorageError{Need: w.need, Free: max(free, 0), Floor: w.floor.min}
			}
		}
		c := min(len(p), floorCheckEvery-w.sinceCheck)
		k, err := w.w.Write(p[:c])
		n += k
		w.written += int64(k)
		w.sinceCheck += k
		if err != nil {
			return n, err
		}
		p = p[c:]
	}
	return n, nil
}

// ImportModel stores an uploaded model file as PutModel does, but first
// refuses it with an *InsufficientStorageError if storing it would leave
// less than the floor free, and fails the write the same way if the free
// space drops below the floor while it is written. Trained models go
// through PutModel, which the floor does not hold up: the floor is there
// to keep room for them.
func (s *Store) ImportModel(ctx context.Context, meta ModelMeta, file []byte) (ModelMeta, error) {
	release, err := s.floor.reserve(int64(len(file)) + frameOverhd)
	if err != nil {
		return ModelMeta{}, err
	}
	defer release()
	return s.putModel(ctx, meta, file, true)
}

// writeModelFile writes a model file's frame, through the floor's guard
// when guarded.
func (s *Store) writeModelFile(ctx context.Context, rel string, file []byte, guarded bool) error {
	body := func(w io.Writer) error {
		_, err := w.Write(file)
		return err
	}
	if guarded {
		body = s.floor.guard(uint64(len(file)), body)
	}
	return s.writeFile(ctx, rel, kindModelFile, uint64(len(file)), body)
}
