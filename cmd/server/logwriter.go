package main

import (
	"io"
	"sync"
	"time"
)

// maxPendingLog bounds the log bytes held in memory for the writer
// goroutine. A logger that finds this much pending waits for the write
// instead of dropping lines: a stalled log reader slows the server down, it
// never loses its log or grows its heap without bound.
const maxPendingLog = 1 << 20

// logGather is how long the writer goroutine lets lines gather after the
// first one arrives: at 40,000 requests a second, 40 lines a write, and a
// line is never more than about a millisecond late.
const logGather = time.Millisecond

// logWriter hands log lines to one goroutine that writes them to out, so
// that a request pays for its access-log line with a copy into memory, not
// a write system call on its own path. The goroutine writes what is
// pending about a millisecond (logGather) after the first line arrives, so
// under load many lines go out in one write. Each Write is one slog record,
// appended whole, so lines never interleave.
//
// Close drains every pending line and stops the goroutine; from then on
// Write goes straight to out, so the lines logged after shutdown (a
// failed Close's error) are still written, in order.
type logWriter struct {
	out  io.Writer
	wake chan struct{} // capacity 1: "something is pending"
	stop chan struct{}
	done chan struct{}
	once sync.Once // closes stop

	mu     sync.Mutex
	space  *sync.Cond // signalled when pending is taken
	buf    []byte     // pending lines
	closed bool
}

func newLogWriter(out io.Writer) *logWriter {
	w := &logWriter{out: out, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	w.space = sync.NewCond(&w.mu)
	go w.run()
	return w
}

// Write queues p for the writer goroutine. It does not fail: a write
// error of out is the writer goroutine's, and slog ignores its handler's
// errors anyway.
func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	for len(w.buf) >= maxPendingLog && !w.closed {
		w.space.Wait()
	}
	if w.closed {
		defer w.mu.Unlock()
		return w.out.Write(p)
	}
	w.buf = append(w.buf, p...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // already woken; the goroutine takes this line with the others
	}
	return len(p), nil
}

func (w *logWriter) run() {
	defer close(w.done)
	var spare []byte
	for {
		select {
		case <-w.wake:
			// Let a busy server's lines gather for a moment, so that they
			// leave in one write instead of one each.
			time.Sleep(logGather)
		case <-w.stop:
			// The last batch is written under the lock, so that no Write
			// after Close can overtake it.
			w.mu.Lock()
			if len(w.buf) > 0 {
				_, _ = w.out.Write(w.buf)
			}
			w.buf, w.closed = nil, true
			w.space.Broadcast()
			w.mu.Unlock()
			return
		}
		w.mu.Lock()
		b := w.buf
		w.buf = spare[:0]
		w.space.Broadcast()
		w.mu.Unlock()
		if len(b) > 0 {
			_, _ = w.out.Write(b)
		}
		// A burst's buffer is kept for the next one, unless it grew past
		// the cap (one huge line): then it goes back to the heap.
		if cap(b) <= 2*maxPendingLog {
			spare = b
		} else {
			spare = nil
		}
	}
}

// Close writes every pending line and stops the goroutine; later writes go
// straight to out. It may be called more than once.
func (w *logWriter) Close() error {
	w.once.Do(func() { close(w.stop) })
	<-w.done
	return nil
}
