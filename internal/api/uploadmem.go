package api

import (
	"errors"
	"net/http"
	"runtime/debug"
)

// errAtBudget is what an upload's reservation returns when the budget has
// no room for its next step.
var errAtBudget = errors.New("the server is at its memory budget")

// atBudget is the 503 for an upload the budget has no room for. The
// retry comes after uploads in flight have finished and given theirs back.
func atBudget() *Error {
	return &Error{Status: http.StatusServiceUnavailable, RetryAfter: 5,
		Detail: "the server is at its memory budget: it has no room for this upload's data now; retry later"}
}

// uploadMemory is one upload's share of the memory budget. The parser
// asks for it a megabyte at a time as numbers arrive (reserve), not from
// the Content-Length up front: a header is the client's word, and
// reserving from it would let a false one hold the budget, and so refuse
// every other upload, with data that never comes. done gives the share
// back when the upload is stored or refused.
type uploadMemory struct {
	budget   memoryReserver // nil: no budget
	releases []func()
	taken    int64
}

// reserve is the parser's Reserve callback.
func (u *uploadMemory) reserve(n int64) error {
	u.taken += n
	if u.budget == nil {
		return nil
	}
	release, ok := u.budget.TryReserve(n)
	if !ok {
		return errAtBudget
	}
	u.releases = append(u.releases, release)
	return nil
}

// freeOSMemoryAbove is the size of upload after which done hands the
// memory back to the operating system at once. The runtime's scavenger
// would return it too, but slowly (minutes for gigabytes), so that a few
// large uploads one after another would keep the process at their peak;
// forcing it costs one collection of a heap the upload no longer holds,
// a few milliseconds, small beside parsing 16 MiB of numbers. Buffers are
// not pooled across uploads, so nothing else keeps them.
const freeOSMemoryAbove = 16 << 20

// done gives the share back, and after a large upload returns the
// memory its parse used to the operating system. Call it after the
// dataset is stored and no longer referenced.
func (u *uploadMemory) done() {
	for _, r := range u.releases {
		r()
	}
	u.releases = nil
	if u.taken > freeOSMemoryAbove {
		debug.FreeOSMemory()
	}
}
