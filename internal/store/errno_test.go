package store

import "syscall"

var (
	errNoSpace = syscall.ENOSPC
	errROFS    = syscall.EROFS
)
