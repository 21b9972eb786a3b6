//go:build unix

package store

import "golang.org/x/sys/unix"

// statfsDisk is the free space of the filesystem holding dir, as statfs
// reports it: the blocks available to unprivileged users (f_bavail), which
// leaves out the blocks reserved for root, times the block size.
type statfsDisk string

func (d statfsDisk) Free() (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(string(d), &st); err != nil {
		return 0, err
	}
	return int64(uint64(st.Bavail) * uint64(st.Bsize)), nil
}
