package main

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCloseCutsSlowClients: a client still sending its upload when the
// HTTP half of --shutdown-timeout runs out is cut off; Close returns no
// error (a slow client is not a server failure), within the timeout, and
// logs a warning naming how many connections it cut.
func TestCloseCutsSlowClients(t *testing.T) {
	m, base, logs := startServer(t, t.TempDir(), "--shutdown-timeout", "2s")
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		_, _ = pw.Write([]byte("a,y\n"))
		for {
			time.Sleep(50 * time.Millisecond)
			if _, err := pw.Write([]byte("1,p\n")); err != nil {
				return
			}
		}
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/datasets?name=slow", pr)
		req.Header.Set("Content-Type", "text/csv")
		req.Header.Set("Authorization", "Bearer "+token)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	if err := m.Close(); err != nil {
		t.Errorf("Close with a slow client: %v, want nil", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %v, over the 2 s shutdown timeout", took)
	}
	pw.CloseWithError(errors.New("done"))
	<-done
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "connections=1") {
		t.Errorf("no warning naming 1 cut connection:\n%s", l)
	}
}
