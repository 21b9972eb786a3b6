package store

import (
	"io"
	"io/fs"
	"os"
)

// FS is the filesystem the store writes through. Every name is a
// slash-separated path relative to the data directory. The real
// implementation (OpenDirFS) confines every access to the directory with
// os.Root; tests wrap it to inject failures at each step of a write.
type FS interface {
	// OpenFile opens name like os.OpenFile. Directories are opened with
	// os.O_RDONLY so that they can be synced.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	Rename(oldname, newname string) error
	Remove(name string) error
	Mkdir(name string, perm fs.FileMode) error
	ReadDir(name string) ([]fs.DirEntry, error)
	Close() error
}

// File is an open file of an FS.
type File interface {
	io.Reader
	io.Writer
	io.Closer
	Sync() error
	Stat() (fs.FileInfo, error)
}

// rootFS is the real FS: every call goes through an os.Root, so no name,
// not even one resolved through a symlink inside the directory, reaches
// outside it.
type rootFS struct {
	root *os.Root
}

// OpenDirFS opens dir (which must exist) as an FS confined to it.
func OpenDirFS(dir string) (FS, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &rootFS{root: r}, nil
}

func (r *rootFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := r.root.OpenFile(name, flag, perm)
	if err != nil {
		// Avoid returning a typed nil inside the interface.
		return nil, err
	}
	return f, nil
}

func (r *rootFS) Rename(oldname, newname string) error { return r.root.Rename(oldname, newname) }
func (r *rootFS) Remove(name string) error             { return r.root.Remove(name) }
func (r *rootFS) Mkdir(name string, perm fs.FileMode) error {
	return r.root.Mkdir(name, perm)
}
func (r *rootFS) Close() error { return r.root.Close() }

func (r *rootFS) ReadDir(name string) ([]fs.DirEntry, error) {
	f, err := r.root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}
