package store

import (
	"io/fs"
	"path"
	"strings"
	"sync"
)

// step names one filesystem call of an atomic write.
type step string

const (
	stepCreate  step = "create temp"
	stepWrite   step = "write"
	stepSync    step = "fsync"
	stepRename  step = "rename"
	stepDirSync step = "dir fsync"
	stepMkdir   step = "mkdir"
	stepRemove  step = "remove"
)

// faultFS wraps a real FS and fails the chosen step for targets whose
// final path (the rename destination, or the file's directory for
// temp-file steps) matches match. It fails every matching call until
// cleared, so retries inside the store cannot mask a fault.
type faultFS struct {
	FS
	mu    sync.Mutex
	step  step
	match func(rel string) bool
	err   error
	// afterBytes lets a write succeed partially before failing, as a full
	// disk does.
	afterBytes int
}

func (f *faultFS) set(s step, match func(string) bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.step, f.match, f.err = s, match, err
}

func (f *faultFS) clear() { f.set("", nil, nil) }

func (f *faultFS) fault(s step, rel string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.step == s && f.match != nil && f.match(rel) {
		return &fs.PathError{Op: string(s), Path: rel, Err: f.err}
	}
	return nil
}

// isTemp reports whether rel is one of the store's temp files.
func isTemp(rel string) bool { return strings.HasPrefix(path.Base(rel), tmpPrefix) }

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	if isTemp(name) {
		if err := f.fault(stepCreate, path.Dir(name)); err != nil {
			return nil, err
		}
	}
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, rel: name}, nil
}

func (f *faultFS) Rename(oldname, newname string) error {
	if err := f.fault(stepRename, newname); err != nil {
		return err
	}
	return f.FS.Rename(oldname, newname)
}

func (f *faultFS) Mkdir(name string, perm fs.FileMode) error {
	if err := f.fault(stepMkdir, name); err != nil {
		return err
	}
	return f.FS.Mkdir(name, perm)
}

func (f *faultFS) Remove(name string) error {
	if !isTemp(name) {
		if err := f.fault(stepRemove, name); err != nil {
			return err
		}
	}
	return f.FS.Remove(name)
}

type faultFile struct {
	File
	fs      *faultFS
	rel     string
	written int
}

func (f *faultFile) Write(p []byte) (int, error) {
	if isTemp(f.rel) {
		if err := f.fs.fault(stepWrite, path.Dir(f.rel)); err != nil {
			f.fs.mu.Lock()
			room := max(0, f.fs.afterBytes-f.written)
			f.fs.mu.Unlock()
			if room >= len(p) {
				n, werr := f.File.Write(p)
				f.written += n
				return n, werr
			}
			n, _ := f.File.Write(p[:room])
			f.written += n
			return n, err
		}
	}
	n, err := f.File.Write(p)
	f.written += n
	return n, err
}

func (f *faultFile) Sync() error {
	s := stepSync
	target := path.Dir(f.rel)
	if !isTemp(f.rel) {
		s, target = stepDirSync, f.rel
	}
	if err := f.fs.fault(s, target); err != nil {
		return err
	}
	return f.File.Sync()
}
