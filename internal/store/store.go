package store

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
)

// Stats are sizes for metrics.
type Stats struct {
	Datasets   int   // stored datasets, hidden ones included
	Models     int   // stored versions across all names
	TotalBytes int64 // bytes of every stored file
}

// Options configure a Store.
type Options struct {
	// FS, when set, replaces the real filesystem (tests inject faults);
	// the store then uses dir only in messages. Nil means OpenDirFS(dir).
	// The store closes FS on Close.
	FS FS
	// Logger receives reports of bad files skipped while listing and of
	// cleanup at Open. Nil discards them.
	Logger *slog.Logger
	// MinFreeBytes is the free space uploads (CreateDataset, ImportModel)
	// must leave on the data directory's filesystem; 0 checks nothing.
	MinFreeBytes int64
	// Disk, when set, replaces statfs on dir as the source of the free
	// space (tests report a low figure). Nil asks the real filesystem,
	// unless FS is set.
	Disk DiskSpace
}

// Store keeps datasets, models, jobs and checkpoints under one directory.
// It is safe for concurrent use.
type Store struct {
	fs  FS
	dir string
	log *slog.Logger

	mu        sync.Mutex
	files     map[string]int64 // every stored file -> size, for Stats
	stats     Stats
	nameLocks map[string]*nameLock // per model name, while in use
	floor     *diskFloor           // free space uploads must leave (diskfree.go)

	// modelChanges counts completed model puts and deletes, so that
	// callers caching "latest version" know exactly when to look again.
	modelChanges atomic.Uint64
}

// ModelChanges returns a counter that grows after every model version put
// or deleted through this Store. It is in memory only: another process
// writing the same directory is not seen.
func (s *Store) ModelChanges() uint64 { return s.modelChanges.Load() }

// Open opens (creating if needed) the data directory, removes leftover temp
// files and files orphaned by an interrupted create or delete, and returns
// the store.
func Open(dir string, opt Options) (*Store, error) {
	fsys := opt.FS
	if fsys == nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, writeErr("create data directory", dir, err)
		}
		var err error
		if fsys, err = OpenDirFS(dir); err != nil {
			return nil, fmt.Errorf("store: open data directory %s: %w", dir, err)
		}
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		fs:        fsys,
		dir:       dir,
		log:       log,
		files:     make(map[string]int64),
		nameLocks: make(map[string]*nameLock),
		floor:     newDiskFloor(dir, opt, log),
	}
	if err := s.init(); err != nil {
		fsys.Close()
		return nil, err
	}
	return s, nil
}

// init creates the layout and scans it.
func (s *Store) init() error {
	created := false
	for _, d := range []string{dirDatasets, dirModels, dirJobs, dirCheckpoints} {
		err := s.fs.Mkdir(d, 0o755)
		switch {
		case err == nil:
			created = true
		case errors.Is(err, fs.ErrExist):
		default:
			return writeErr("create", d, err)
		}
	}
	if created {
		if err := s.syncDir("."); err != nil {
			return err
		}
	}
	if err := s.scan("."); err != nil {
		return err
	}
	for _, d := range []string{dirDatasets, dirJobs, dirCheckpoints} {
		if err := s.scan(d); err != nil {
			return err
		}
	}
	if err := s.scan(dirModels); err != nil {
		return err
	}
	names, err := s.fs.ReadDir(dirModels)
	if err != nil {
		return readErr(dirModels, err)
	}
	for _, e := range names {
		if e.IsDir() && checkModelName(e.Name()) == nil {
			if err := s.scan(modelDir(e.Name())); err != nil {
				return err
			}
		}
	}
	// DeleteJob removes the record before the checkpoint; a crash between
	// the two leaves a checkpoint nobody will read.
	for rel := range s.files {
		id, ok := strings.CutSuffix(strings.TrimPrefix(rel, dirCheckpoints+"/"), ".ckpt")
		if !ok || !strings.HasPrefix(rel, dirCheckpoints+"/") {
			continue
		}
		if _, ok := s.files[jobPath(id)]; !ok {
			if err := s.remove(rel); err != nil && !errors.Is(err, ErrNotFound) {
				s.log.Warn("store: cannot remove checkpoint of a deleted job", "file", rel, "err", err)
				continue
			}
			s.log.Info("store: removed checkpoint of a deleted job", "file", rel)
		}
	}
	return nil
}

// scan removes temp files and orphans from dir and records the sizes of
// the regular files left. Symlinks and unknown entries are left alone and
// never followed.
func (s *Store) scan(dir string) error {
	ents, err := s.fs.ReadDir(dir)
	if err != nil {
		return readErr(dir, err)
	}
	have := make(map[string]bool, len(ents))
	for _, e := range ents {
		have[e.Name()] = true
	}
	for _, e := range ents {
		name := e.Name()
		rel := path.Join(dir, name)
		if !e.Type().IsRegular() {
			continue
		}
		if strings.HasPrefix(name, tmpPrefix) || isOrphan(dir, name, have) {
			// A read-only directory still opens and serves reads; the
			// leftover is invisible to readers and removed at a later Open.
			if err := s.fs.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("store: cannot remove leftover file", "file", rel, "err", err)
			} else {
				s.log.Info("store: removed leftover file", "file", rel)
			}
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // vanished
		}
		s.account(rel, info.Size())
	}
	return nil
}

// isOrphan reports a data file whose metadata file is missing: the
// metadata is written last and removed first, so such a file is what an
// interrupted create or delete leaves behind.
func isOrphan(dir, name string, have map[string]bool) bool {
	switch {
	case dir == dirDatasets && strings.HasSuffix(name, ".data"):
		return !have[strings.TrimSuffix(name, ".data")+".meta"]
	case dir == dirJobs && strings.HasSuffix(name, ".history"):
		// DeleteJob removes the record first.
		return !have[strings.TrimSuffix(name, ".history")+".job"]
	case strings.HasPrefix(dir, dirModels+"/") && strings.HasSuffix(name, ".model"):
		return !have[strings.TrimSuffix(name, ".model")+".meta"]
	}
	return false
}

// account records that rel now has size bytes (size < 0: rel is gone).
func (s *Store) account(rel string, size int64) {
	old, had := s.files[rel]
	if had {
		s.stats.TotalBytes -= old
	}
	if size >= 0 {
		s.files[rel] = size
		s.stats.TotalBytes += size
	} else {
		delete(s.files, rel)
	}
	delta := 0
	switch {
	case had && size < 0:
		delta = -1
	case !had && size >= 0:
		delta = 1
	}
	dir, file := path.Split(rel)
	switch {
	case dir == dirDatasets+"/" && strings.HasSuffix(file, ".meta"):
		s.stats.Datasets += delta
	case strings.HasPrefix(dir, dirModels+"/") && strings.HasSuffix(file, ".meta"):
		s.stats.Models += delta
	}
}

// Close releases the directory handle.
func (s *Store) Close() error { return s.fs.Close() }

// Stats returns counts and bytes. It reads counters kept up to date by
// every write and delete, so it is cheap enough for every metrics scrape.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Writable reports whether the data directory accepts writes now, by
// creating, syncing and removing a temp file.
func (s *Store) Writable() error {
	tmp := tmpPrefix + "probe-" + randHex()
	f, err := s.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return writeErr("probe write in", ".", err)
	}
	_, err = f.Write([]byte{0})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := s.fs.Remove(tmp); err == nil {
		err = rerr
	}
	return writeErr("probe write in", ".", err)
}

func randHex() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// writeFile atomically replaces rel with a frame of kind k holding n
// payload bytes produced by body: temp file in the same directory, write,
// fsync, rename, fsync the directory. On any failure before the rename
// the temp file is removed and rel is untouched.
func (s *Store) writeFile(ctx context.Context, rel string, k kind, n uint64, body func(io.Writer) error) error {
	return s.replaceFile(ctx, rel, int64(n)+frameOverhd, func(w io.Writer) error {
		return writeFrame(w, k, n, body)
	})
}

// replaceFile atomically replaces rel with the size bytes body writes, as
// writeFile describes.
func (s *Store) replaceFile(ctx context.Context, rel string, size int64, body func(io.Writer) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := path.Dir(rel)
	tmp := path.Join(dir, tmpPrefix+randHex())
	f, err := s.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return writeErr("write", rel, err)
	}
	closed := false
	defer func() {
		if err != nil {
			if !closed {
				f.Close()
			}
			s.fs.Remove(tmp)
			err = writeErr("write", rel, err)
		}
	}()
	bw := bufio.NewWriterSize(f, 256<<10)
	if err := body(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	closed = true
	if err := f.Close(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	err = s.fs.Rename(tmp, rel)
	if err == nil {
		s.account(rel, size)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	// The new file is in place; a failure to sync the directory means it
	// may not survive a crash, which the caller must hear about.
	return s.fsyncDir(dir)
}

// writeBytes atomically stores payload as a frame of kind k at rel.
func (s *Store) writeBytes(ctx context.Context, rel string, k kind, payload []byte) error {
	return s.writeFile(ctx, rel, k, uint64(len(payload)), func(w io.Writer) error {
		_, err := w.Write(payload)
		return err
	})
}

// openRegular opens rel for reading and refuses anything but a regular
// file, so that a directory or device placed where a record belongs reads
// as corrupt rather than as garbage.
func (s *Store) openRegular(rel string) (File, fs.FileInfo, error) {
	f, err := s.fs.OpenFile(rel, os.O_RDONLY, 0)
	if err != nil {
		return nil, nil, readErr(rel, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, readErr(rel, err)
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, nil, corrupt(rel, "not a regular file")
	}
	return f, info, nil
}

// readBytes reads and checks the frame of kind k at rel and returns its
// payload. A missing file gives ErrNotFound, a bad one ErrCorrupt.
func (s *Store) readBytes(rel string, k kind) ([]byte, error) {
	f, info, err := s.openRegular(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data := make([]byte, info.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, corrupt(rel, "truncated while reading")
		}
		return nil, readErr(rel, err)
	}
	return decodeFrame(rel, data, k)
}

// remove deletes rel durably. A missing file gives ErrNotFound.
func (s *Store) remove(rel string) error {
	s.mu.Lock()
	err := s.fs.Remove(rel)
	if err == nil {
		s.account(rel, -1)
	}
	s.mu.Unlock()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &fileError{op: "remove", path: rel, kind: ErrNotFound}
		}
		return writeErr("remove", rel, err)
	}
	return s.syncDir(path.Dir(rel))
}

// syncDir fsyncs a directory so that renames and removals in it are
// durable.
func (s *Store) syncDir(dir string) error {
	return writeErr("sync directory", dir, s.fsyncDir(dir))
}

func (s *Store) fsyncDir(dir string) error {
	d, err := s.fs.OpenFile(dir, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// mkdir creates dir (one level) if missing and makes the entry durable.
func (s *Store) mkdir(dir string) error {
	err := s.fs.Mkdir(dir, 0o755)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return writeErr("create directory", dir, err)
	}
	return s.syncDir(path.Dir(dir))
}
