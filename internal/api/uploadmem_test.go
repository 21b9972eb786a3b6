package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBudget is a memory budget of limit bytes that records what is
// reserved and released.
type fakeBudget struct {
	mu       sync.Mutex
	limit    int64
	held     int64
	peak     int64
	refusals int
}

func (b *fakeBudget) TryReserve(n int64) (func(), bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held+n > b.limit {
		b.refusals++
		return nil, false
	}
	b.held += n
	b.peak = max(b.peak, b.held)
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			b.held -= n
			b.mu.Unlock()
		})
	}, true
}

// wideCSV is a CSV upload of rows rows and 16 features of 1-3 digit
// numbers and a numeric target.
func wideCSV(rows int) []byte {
	var b bytes.Buffer
	for i := range 16 {
		fmt.Fprintf(&b, "f%d,", i)
	}
	b.WriteString("y\n")
	for r := range rows {
		for c := range 16 {
			b.WriteString(strconv.Itoa((r*31 + c*7) % 997))
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(r % 10))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// wideJSON is the JSON upload of the same table as wideCSV, with extra
// (already quoted, with its value) as the last field when not "".
func wideJSON(rows int, extra string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"name":"wide","features":[`)
	for r := range rows {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('[')
		for c := range 16 {
			if c > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa((r*31 + c*7) % 997))
		}
		b.WriteByte(']')
	}
	b.WriteString(`],"targets":[`)
	for r := range rows {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(r % 10))
	}
	b.WriteByte(']')
	if extra != "" {
		b.WriteString("," + extra)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// numericBytes is the size of rows rows of wideCSV as float64s: 16
// features and 1 target.
func numericBytes(rows int) int64 { return int64(rows) * 17 * 8 }

// TestUploadAtMemoryBudget: an upload whose numbers the budget has no
// room for is a 503 with Retry-After that says so, stores nothing and
// gives back all it reserved; one that fits is stored and also gives its
// share back.
func TestUploadAtMemoryBudget(t *testing.T) {
	const rows = 20000 // 2.72 MB of numbers (numericBytes)
	tests := []struct {
		name, ct, path string
		body           []byte
	}{
		{"csv", "text/csv", "/v1/datasets?name=wide", wideCSV(rows)},
		{"json", "application/json", "/v1/datasets", wideJSON(rows, "")},
	}
	for _, tc := range tests {
		t.Run(tc.name+" refused", func(t *testing.T) {
			budget := &fakeBudget{limit: 2 << 20}
			env := newTestEnv(t, Config{Memory: budget})
			res := doRaw(t, env.h, http.MethodPost, tc.path, tc.ct, tc.body)
			if res.Status != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503: %s", res.Status, res.Body)
			}
			if got := res.Header.Get("Retry-After"); got != "5" {
				t.Errorf("Retry-After %q, want 5", got)
			}
			if p := res.Problem(t); !strings.Contains(p.Detail, "memory budget") {
				t.Errorf("detail %q does not say the server is at its memory budget", p.Detail)
			}
			if list, err := env.store.ListDatasets(context.Background()); err != nil || len(list) != 0 {
				t.Errorf("datasets after a refused upload: %v, %v; want none", list, err)
			}
			if budget.held != 0 || budget.refusals == 0 {
				t.Errorf("budget holds %d bytes after the answer (want 0), refused %d times (want > 0)", budget.held, budget.refusals)
			}
		})
		t.Run(tc.name+" fits", func(t *testing.T) {
			budget := &fakeBudget{limit: 64 << 20}
			env := newTestEnv(t, Config{Memory: budget})
			res := doRaw(t, env.h, http.MethodPost, tc.path, tc.ct, tc.body)
			if res.Status != http.StatusCreated {
				t.Fatalf("status %d, want 201: %s", res.Status, res.Body)
			}
			// The parse holds the numbers in chunks, then in one slice:
			// about twice their size, reserved a megabyte at a time.
			if n := numericBytes(rows); budget.peak < n || budget.peak > 2*n+4<<20 {
				t.Errorf("peak reservation %d bytes, want between %d (the numbers) and twice that plus 4 MiB", budget.peak, n)
			}
			if budget.held != 0 {
				t.Errorf("budget holds %d bytes after the answer, want 0", budget.held)
			}
		})
	}
}

// serveAllocs serves one request through h and returns the bytes the
// process allocated meanwhile. The test's own body is built beforehand.
func serveAllocs(h http.Handler, req *http.Request) (*httptest.ResponseRecorder, uint64) {
	rec := httptest.NewRecorder()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	h.ServeHTTP(rec, req)
	runtime.ReadMemStats(&after)
	return rec, after.TotalAlloc - before.TotalAlloc
}

// TestJSONUploadOnePass: a JSON upload is read once, as a stream, into
// its numbers. A valid one and one with an unknown field at the end each
// allocate at most three times the numbers (chunks, then one slice, and
// the target cells) plus 4 MiB; an unknown field at the start is refused
// before the rest of the body is read.
func TestJSONUploadOnePass(t *testing.T) {
	const rows = 40000 // 5.4 MB of numbers
	env := newTestEnv(t, Config{})
	bound := uint64(3*numericBytes(rows) + 4<<20)
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
		want   string
	}{
		{"valid", wideJSON(rows, ""), http.StatusCreated, ""},
		{"unknown field at the end", wideJSON(rows, `"bogus":1`), http.StatusBadRequest, `"field":"bogus"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/v1/datasets", bytes.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			rec, n := serveAllocs(env.h, req)
			t.Logf("a %d-byte upload allocated %d bytes", len(tc.body), n)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) {
				t.Fatalf("status %d %s, want %d naming %s", rec.Code, rec.Body, tc.status, tc.want)
			}
			if n > bound {
				t.Errorf("a %d-byte body with %d bytes of numbers allocated %d bytes, more than %d", len(tc.body), numericBytes(rows), n, bound)
			}
		})
	}
	t.Run("unknown field at the start", func(t *testing.T) {
		body := append([]byte(`{"bogus":1,`), wideJSON(rows, "")[1:]...)
		cr := &countingReader{r: bytes.NewReader(body)}
		req := httptest.NewRequest(http.MethodPost, "/v1/datasets", cr)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		env.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"field":"bogus"`) {
			t.Fatalf("status %d %s, want 400 naming bogus", rec.Code, rec.Body)
		}
		// The scanner reads 64 KiB at a time.
		if cr.n > 1<<20 {
			t.Errorf("read %d of %d bytes before refusing the first field, want at most 1 MiB", cr.n, len(body))
		}
	})
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestInlineDataMemory: inline job data decodes straight into its
// numbers. Decoding a 1.3 MB job request with 2.7 MB of numbers allocates
// at most three times the body (the decoder's buffer, doubling as it
// grows) and three times the numbers (chunks, one slice, target cells):
// 12.1 MB. Decoding into rows of pointers to numbers took 20.7 MB.
func TestInlineDataMemory(t *testing.T) {
	const rows = 20000
	data := wideJSON(rows, "")
	data = append([]byte(`{`), data[len(`{"name":"wide",`):]...)
	job := smallJob("inline", "", 1)
	delete(job, "dataset_id")
	spec := mustJSON(job)
	body := []byte(spec[:len(spec)-1] + `,"data":` + string(data) + `}`)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var req jobRequest
	err := decodeStrict(body, &req)
	if err == nil {
		_, err = req.Data.Dataset("inline", "data")
	}
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	n := after.TotalAlloc - before.TotalAlloc
	t.Logf("decoding a %d-byte job request allocated %d bytes", len(body), n)
	if bound := uint64(3*len(body)) + uint64(3*numericBytes(rows)); n > bound {
		t.Errorf("decoding a %d-byte job request with %d bytes of numbers allocated %d bytes, more than %d",
			len(body), numericBytes(rows), n, bound)
	}
}

// procStatus reads a field of this process's /proc status in bytes.
func procStatus(tb testing.TB, field string) int64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skipf("no /proc: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				tb.Fatalf("%s line %q: %v", field, line, err)
			}
			return kb << 10
		}
	}
	tb.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// TestFalseContentLength: an upload that announces 2 GiB, sends 10 bytes
// and holds the connection open costs the server almost nothing: it sizes
// no buffer from the header, so neither its heap nor its resident size
// grows by more than 16 MiB while the handler waits for the rest.
func TestFalseContentLength(t *testing.T) {
	env := newTestEnv(t, Config{})
	srv := httptest.NewServer(env.h)
	defer srv.Close()
	for _, tc := range []struct{ name, ct, path, body string }{
		{"csv", "text/csv", "/v1/datasets?name=liar", "a,y\n1,2\n3,"},
		{"json", "application/json", "/v1/datasets", `{"features":[[1,2],[3`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			rssBefore := procStatus(t, "VmRSS")

			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s",
				tc.path, tc.ct, int64(2)<<30, tc.body)
			// Long enough for the handler to read what was sent and block
			// on the rest; the connection stays open.
			time.Sleep(300 * time.Millisecond)

			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			rssAfter := procStatus(t, "VmRSS")
			const limit = 16 << 20
			if d := int64(after.HeapInuse) - int64(before.HeapInuse); d > limit {
				t.Errorf("heap in use grew by %d bytes while the upload waits, want at most %d", d, limit)
			}
			if d := rssAfter - rssBefore; d > limit {
				t.Errorf("resident size grew by %d bytes while the upload waits, want at most %d", d, limit)
			}
		})
	}
}
