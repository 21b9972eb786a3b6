//go:build !unix

package store

import "errors"

// statfsDisk cannot read the free space on this platform; the floor is
// then not checked, and a full disk still fails writes with ErrNoSpace.
type statfsDisk string

func (statfsDisk) Free() (int64, error) { return 0, errors.ErrUnsupported }
