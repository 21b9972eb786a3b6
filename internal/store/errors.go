package store

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

// Errors. Callers compare with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrCorrupt wraps every checksum, truncation or decoding failure of a
	// stored file; the error text names the file relative to the data dir.
	ErrCorrupt = errors.New("corrupt file")
	// ErrNewerFormat is wrapped by the *FormatError returned for a stored
	// file whose format version is newer than this build reads (see
	// format.go). The file is left as it is, for the newer build.
	ErrNewerFormat = errors.New("format newer than this build reads")
	// ErrInvalidName is returned for model names that do not match
	// ^[a-z0-9][a-z0-9._-]{0,63}$, ids that are not canonical lowercase
	// UUIDs and negative versions. It is checked before any path is built.
	ErrInvalidName = errors.New("invalid name")
	// ErrNoSpace wraps ENOSPC and EDQUOT; ErrReadOnly wraps EROFS, EACCES
	// and EPERM on write.
	ErrNoSpace  = errors.New("no space left on device")
	ErrReadOnly = errors.New("data directory is not writable")
	// ErrInvalidDataset is returned by CreateDataset for a dataset whose
	// shapes do not agree with its metadata.
	ErrInvalidDataset = errors.New("invalid dataset")
)

// fileError is an I/O failure on one stored file. Its text names the file
// relative to the data directory; it unwraps to the store's sentinel (if
// the cause maps to one) and to the underlying error.
type fileError struct {
	op   string // "write", "read", "remove", ...
	path string // relative to the data directory
	kind error  // ErrNoSpace, ErrReadOnly, ErrCorrupt or nil
	err  error
}

func (e *fileError) Error() string {
	if e.kind != nil && e.err != nil {
		return fmt.Sprintf("store: %s %s: %v: %v", e.op, e.path, e.kind, e.err)
	}
	if e.kind != nil {
		return fmt.Sprintf("store: %s %s: %v", e.op, e.path, e.kind)
	}
	return fmt.Sprintf("store: %s %s: %v", e.op, e.path, e.err)
}

func (e *fileError) Unwrap() []error {
	var errs []error
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	if e.err != nil {
		errs = append(errs, e.err)
	}
	return errs
}

// writeErr classifies a failure while writing path: a full disk or quota
// becomes ErrNoSpace, a read-only or forbidden directory ErrReadOnly.
func writeErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var fe *fileError
	if errors.As(err, &fe) {
		return err
	}
	e := &fileError{op: op, path: path, err: err}
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		e.kind = ErrNoSpace
	case errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		e.kind = ErrReadOnly
	}
	return e
}

// readErr maps a failure while reading path: a missing file becomes
// ErrNotFound.
func readErr(path string, err error) error {
	if err == nil {
		return nil
	}
	var fe *fileError
	if errors.As(err, &fe) {
		return err
	}
	e := &fileError{op: "read", path: path, err: err}
	if errors.Is(err, fs.ErrNotExist) {
		e.kind = ErrNotFound
	}
	return e
}

// corrupt reports that the file at path failed validation.
func corrupt(path string, format string, args ...any) error {
	return &fileError{op: "read", path: path, kind: ErrCorrupt, err: fmt.Errorf(format, args...)}
}
