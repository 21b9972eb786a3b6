package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/jobs"
)

// longHistoryServer returns a server over a data directory holding a
// finished job whose history has epochs entries, and the job's id. The job
// is trained for real (one epoch) and its history then extended in the
// store, as a job of that many epochs would have left it.
func longHistoryServer(t *testing.T, epochs int, cfg Config) (*Server, string) {
	t.Helper()
	env := newTestEnv(t, Config{})
	ds := uploadIris(t, env)
	job := submitJob(t, env, map[string]any{"model_name": "long", "dataset_id": ds.ID,
		"training": map[string]any{"epochs": 1}})
	if got := waitJob(t, env, job.ID); got.Status != jobs.Succeeded {
		t.Fatalf("job %s: %s", job.ID, got.Status)
	}
	ctx := context.Background()
	rec, err := env.store.Job(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	entries := make([]json.RawMessage, epochs)
	for i := range entries {
		b, err := json.Marshal(engine.Epoch{Epoch: i + 1, Loss: 1 / float64(i+1), DurationSeconds: 0.0012, SamplesPerSecond: 125000})
		if err != nil {
			t.Fatal(err)
		}
		entries[i] = b
	}
	if err := env.store.PutJobHistory(ctx, job.ID, entries); err != nil {
		t.Fatal(err)
	}
	rec.HistoryLen = epochs
	if err := env.store.PutJob(ctx, rec); err != nil {
		t.Fatal(err)
	}
	// A second manager on the same store reads the job back.
	m, err := jobs.New(env.store, jobs.Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown(context.Background()) })
	return New(Options{Config: cfg, Store: env.store, Jobs: m, Logger: slog.New(slog.DiscardHandler)}), job.ID
}

// dialUnread opens a connection to addr that asks for path and never
// reads the answer. Its receive buffer is made small (4 KiB, before the
// connection exists, so that the window the server sees is small too), so
// that the server's writes block soon instead of filling kernel buffers.
func dialUnread(t *testing.T, addr, path string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	return c
}

// smallSendBuffers gives every accepted connection a 4 KiB send buffer,
// so that a write to a client that does not read blocks, as it does once
// a real client's window and the kernel's buffers are full, instead of
// vanishing into megabytes of loopback buffers.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// waitFor polls cond every 10 ms for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEventStreamsShareHistory opens n event streams on a job with a long
// history from clients that never read, and measures the heap they hold
// once each handler is blocked writing the first event: the history is
// sent from the job's shared encoding, so the growth is the streams' own
// buffers, not a copy of the history each. The (n+1)th stream gets a 503
// with Retry-After (--max-event-streams n), and once a client goes its
// slot is free again.
func TestEventStreamsShareHistory(t *testing.T) {
	const (
		epochs = 20_000 // 2.3 MB of job JSON (logged below)
		n      = 32
		// The bound: 64 KiB a stream, three times what a stream was
		// measured to hold (22 KiB: its connection's buffers, goroutine
		// and subscription), against 2.9 MB a stream measured when each
		// stream encoded its own copy of the history.
		perStream = 64 << 10
	)
	srv, id := longHistoryServer(t, epochs, Config{MaxEventStreams: n})
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.Listener = smallSendBuffers{ts.Listener}
	ts.Start()
	defer ts.Close()
	addr := strings.TrimPrefix(ts.URL, "http://")
	path := "/v1/jobs/" + id + "/events"

	// The size of the history as a stream sends it.
	res, err := http.Get(ts.URL + "/v1/jobs/" + id)
	if err != nil {
		t.Fatal(err)
	}
	full, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET job: %d %s", res.StatusCode, full)
	}

	before := heapAlloc()
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dialUnread(t, addr, path)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	waitFor(t, fmt.Sprintf("%d streams open", n), func() bool { return srv.streams.inUse() == n })
	// Let every handler reach its blocked write of the first event.
	time.Sleep(500 * time.Millisecond)
	after := heapAlloc()
	growth := int64(after) - int64(before)
	t.Logf("%d unread streams on a job of %d epochs (job JSON %d bytes): heap grew by %d bytes, %d a stream",
		n, epochs, len(full), growth, growth/n)
	if growth > n*perStream {
		t.Errorf("heap grew by %d bytes for %d streams, over the bound of %d (%d a stream); one history is %d bytes",
			growth, n, n*perStream, perStream, len(full))
	}

	// One stream more than --max-event-streams.
	res, err = http.Get(ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var p Problem
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" ||
		json.Unmarshal(body, &p) != nil || !strings.Contains(p.Detail, "--max-event-streams") {
		t.Fatalf("stream %d of a limit of %d: %d, Retry-After %q, %s; want 503 naming --max-event-streams",
			n+1, n, res.StatusCode, res.Header.Get("Retry-After"), body)
	}
	// Other requests do not count against the stream limit.
	if res, err := http.Get(ts.URL + "/v1/jobs/" + id); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET job with every stream slot taken: %v %v", res, err)
	} else {
		res.Body.Close()
	}

	// A client that goes frees its slot.
	conns[0].Close()
	waitFor(t, "a closed stream's slot freed", func() bool { return srv.streams.inUse() == n-1 })
	conns[0] = dialUnread(t, addr, path)
	waitFor(t, "a new stream open", func() bool { return srv.streams.inUse() == n })
}
