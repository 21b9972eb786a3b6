package jobs

import (
	"errors"

	"github.com/backpropd/backpropd/internal/store"
)

// storeFault is a failure of the store while running a job, with what the
// user knows the thing as ("dataset <id>", "the trained model"). The
// store's own errors name files under the data directory, which a client
// cannot act on and should not learn: reason logs them and gives the job
// an error in the user's terms.
type storeFault struct {
	what  string // "dataset 0f8c…", "the checkpoint after epoch 3"
	write bool   // storing what, rather than reading it
	err   error
}

func (e *storeFault) Error() string { return e.what + ": " + e.err.Error() }
func (e *storeFault) Unwrap() error { return e.err }

// reason is err as a job's error. A store fault is logged in full, path
// and all, with the job's id, and becomes a sentence that names no file;
// any other error is its own text.
func (m *Manager) reason(jobID string, err error) string {
	var f *storeFault
	if !errors.As(err, &f) {
		return err.Error()
	}
	m.log.Error("job storage failure", "job", jobID, "what", f.what, "err", f.err)
	switch {
	case errors.Is(err, store.ErrCorrupt):
		return f.what + " is damaged; see the server log"
	case errors.Is(err, store.ErrNotFound) && !f.write:
		return f.what + " no longer exists"
	case errors.Is(err, store.ErrNoSpace):
		return "cannot store " + f.what + ": no space left on the server's disk; see the server log"
	case errors.Is(err, store.ErrReadOnly):
		return "cannot store " + f.what + ": the server's data directory is not writable; see the server log"
	case f.write:
		return "cannot store " + f.what + "; see the server log"
	default:
		return "cannot read " + f.what + "; see the server log"
	}
}
