// Package membudget is the server's memory budget: a number of bytes that
// training jobs, uploads and predictions reserve from before they allocate,
// so that together they never ask the process for more than it has. It is a
// leaf package: it imports nothing of the server's.
//
// A Go out-of-memory error is fatal and no recover catches it, so the
// budget works on estimates taken before anything is allocated; its
// callers must reserve at least what they will allocate.
package membudget

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrTooLarge is wrapped by the error of Reserve when a request is larger
// than the whole budget, so that waiting could never satisfy it.
var ErrTooLarge = errors.New("larger than the whole memory budget")

// Budget is a number of bytes shared by reservations. It is safe for
// concurrent use. The zero value is not usable; call New.
type Budget struct {
	mu   sync.Mutex
	size int64
	used int64
	// released is closed, and replaced, whenever a reservation ends.
	released chan struct{}
}

// New returns a budget of size bytes. A size below 1 gives a budget of 1
// byte, which every reservation but an empty one exceeds.
func New(size int64) *Budget {
	return &Budget{size: max(size, 1), released: make(chan struct{})}
}

// Size is the budget's total in bytes.
func (b *Budget) Size() int64 { return b.size }

// Used is the number of bytes reserved now.
func (b *Budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// TryReserve reserves n bytes if they are free now. On success release
// gives them back; calling it more than once gives them back once. A
// negative n is treated as 0.
func (b *Budget) TryReserve(n int64) (release func(), ok bool) {
	n = max(n, 0)
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.size-b.used {
		return nil, false
	}
	b.used += n
	var once sync.Once
	return func() { once.Do(func() { b.release(n) }) }, true
}

func (b *Budget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	close(b.released)
	b.released = make(chan struct{})
	b.mu.Unlock()
}

// Reserve reserves n bytes, waiting for other reservations to end until
// they are free or ctx is done (then it returns ctx's error). A request
// larger than the whole budget returns an error wrapping ErrTooLarge at
// once. Waiters are not queued: whichever tries first after a release gets
// the bytes.
func (b *Budget) Reserve(ctx context.Context, n int64) (release func(), err error) {
	if n > b.size {
		return nil, fmt.Errorf("reserve %d bytes of a %d-byte budget: %w", n, b.size, ErrTooLarge)
	}
	for {
		wait := b.Released()
		if release, ok := b.TryReserve(n); ok {
			return release, nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Released returns a channel that is closed when the next reservation ends
// (one after this call), for callers that wait for memory in their own
// loop. Take the channel before trying to reserve, so that a release in
// between is not missed.
func (b *Budget) Released() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.released
}
