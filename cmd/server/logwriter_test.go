package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// TestLogWriterKeepsEveryLine writes lines from many goroutines at once:
// after Close, every line is in the output exactly once, whole, and each
// goroutine's lines are in the order it wrote them.
func TestLogWriterKeepsEveryLine(t *testing.T) {
	out := &syncBuffer{}
	w := newLogWriter(out)
	const writers, lines = 8, 2000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(w, "writer %d line %d %s\n", g, i, strings.Repeat("x", i%97))
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	n := 0
	for sc.Scan() {
		var g, i int
		if _, err := fmt.Sscanf(sc.Text(), "writer %d line %d ", &g, &i); err != nil || g < 0 || g >= writers {
			t.Fatalf("line %d torn: %q", n, sc.Text())
		}
		if want := fmt.Sprintf("writer %d line %d %s", g, i, strings.Repeat("x", i%97)); sc.Text() != want || i != next[g] {
			t.Fatalf("line %d is %q, want writer %d line %d", n, sc.Text(), g, next[g])
		}
		next[g]++
		n++
	}
	if n != writers*lines {
		t.Errorf("%d lines written, want %d", n, writers*lines)
	}
}

// TestLogWriterAfterClose: a line written after Close is in the output
// when Write returns, after every earlier line.
func TestLogWriterAfterClose(t *testing.T) {
	out := &syncBuffer{}
	w := newLogWriter(out)
	fmt.Fprintln(w, "before")
	_ = w.Close()
	_ = w.Close() // a second Close is harmless
	fmt.Fprintln(w, "after")
	if got, want := out.String(), "before\nafter\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

// stalledWriter blocks every Write until release is closed.
type stalledWriter struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	out     syncBuffer
}

func (s *stalledWriter) Write(p []byte) (int, error) {
	s.once.Do(func() { close(s.entered) })
	<-s.release
	return s.out.Write(p)
}

// TestLogWriterBoundsPending: while the output is stalled, writers wait
// once maxPendingLog bytes are pending, rather than grow the heap or drop
// lines; once the output moves, every line arrives.
func TestLogWriterBoundsPending(t *testing.T) {
	out := &stalledWriter{entered: make(chan struct{}), release: make(chan struct{})}
	w := newLogWriter(out)
	line := []byte(strings.Repeat("y", 1023) + "\n")
	total := 3 * maxPendingLog / len(line)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for range total {
			_, _ = w.Write(line)
		}
	}()
	<-out.entered // the first batch is stuck in the output
	for {
		w.mu.Lock()
		pending := len(w.buf)
		w.mu.Unlock()
		if pending >= maxPendingLog {
			if pending > maxPendingLog+len(line) {
				t.Fatalf("%d bytes pending, over the cap of %d plus one line", pending, maxPendingLog)
			}
			break
		}
		runtime.Gosched()
	}
	select {
	case <-finished:
		t.Fatal("all lines were taken while the output was stalled and the pending buffer full")
	default:
	}
	close(out.release)
	<-finished
	_ = w.Close()
	if got, want := out.out.b.Len(), total*len(line); got != want {
		t.Errorf("%d bytes written, want %d", got, want)
	}
}

// TestSIGTERMKeepsAccessLog builds the binary, serves a burst of requests
// and sends SIGTERM at once: the log on stderr holds one access-log line
// for every request answered, because shutdown drains the log writer.
func TestSIGTERMKeepsAccessLog(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	_, cmd, addr, lines := startBuilt(t)
	defer cmd.Process.Kill()
	const requests = 500
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered := map[string]bool{}
	for g := range 4 {
		wg.Go(func() {
			for i := range requests / 4 {
				req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/models", nil)
				id := fmt.Sprintf("req-%d-%d", g, i)
				req.Header.Set("X-Request-Id", id)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				res.Body.Close()
				mu.Lock()
				answered[id] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	logged := map[string]bool{}
	clean := false
	for lines.Scan() {
		var l struct {
			Msg       string
			RequestID string `json:"request_id"`
		}
		if json.Unmarshal(lines.Bytes(), &l) != nil {
			continue
		}
		switch l.Msg {
		case "http request":
			logged[l.RequestID] = true
		case "shut down cleanly":
			clean = true
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if !clean {
		t.Error("no clean shutdown line")
	}
	for id := range answered {
		if !logged[id] {
			t.Errorf("request %s was answered but has no access-log line", id)
		}
	}
	if len(answered) != requests {
		t.Errorf("%d requests answered, want %d", len(answered), requests)
	}
}
