package crash

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/backpropd/backpropd/test/internal/serverproc"
)

// serverBin is cmd/server built once for all the tests in this package.
var serverBin string

func TestMain(m *testing.M) {
	os.Exit(serverproc.Main(m, &serverBin))
}

// extraEnv are environment variables for the next startServer (set by
// startServerEnv; tests in this package do not run in parallel).
var extraEnv []string

// server is one run of the backpropd binary.
type server struct {
	*serverproc.Proc
	t   testing.TB
	url string
}

// startServer runs the binary on dataDir, listening on a free loopback
// port, and waits until /healthz answers. extra are more flags.
func startServer(tb testing.TB, dataDir string, extra ...string) *server {
	tb.Helper()
	args := append([]string{"--workers", "2", "--queue-size", "32", "--shutdown-timeout", "6s"}, extra...)
	p := serverproc.Start(tb, serverBin, dataDir, serverproc.Env(extraEnv...), args...)
	return &server{Proc: p, t: tb, url: p.URL}
}

// kill sends SIGKILL and waits for the process to die.
func (s *server) kill() { s.Kill() }

// terminate sends SIGTERM and returns how long the process took to exit
// and its exit code, failing after limit.
func (s *server) terminate(limit time.Duration) (time.Duration, int) {
	s.t.Helper()
	start := time.Now()
	code := s.Terminate(limit)
	return time.Since(start), code
}

// call sends a request and decodes a JSON answer into out (when not nil).
// It returns the status, or 0 and the error when the connection failed.
func (s *server) call(ctx context.Context, method, path, ct string, body []byte, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, err
	}
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			return res.StatusCode, fmt.Errorf("decode %s: %w", b, err)
		}
	}
	if res.StatusCode >= 300 {
		return res.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, bytes.TrimSpace(b))
	}
	return res.StatusCode, nil
}

// job is the part of a job these tests read.
type job struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
	Error    string `json:"error"`
	Progress struct {
		Epoch  int `json:"epoch"`
		Epochs int `json:"epochs"`
	} `json:"progress"`
	History []struct {
		Epoch int `json:"epoch"`
	} `json:"history"`
	ModelName    string `json:"model_name"`
	ModelVersion int    `json:"model_version"`
	StoppedEarly bool   `json:"stopped_early"`
	Spec         struct {
		DatasetID string `json:"dataset_id"`
	} `json:"spec"`
}

func (j job) terminal() bool {
	return j.Status == "succeeded" || j.Status == "failed" || j.Status == "cancelled"
}

// getJob fetches a job.
func (s *server) getJob(id string) (job, int, error) {
	var j job
	status, err := s.call(context.Background(), "GET", "/v1/jobs/"+id, "", nil, &j)
	return j, status, err
}

// followEpochs reads the job's event stream and calls f with each epoch
// number until f returns true, the stream ends or ctx is done.
func (s *server) followEpochs(ctx context.Context, id string, f func(epoch int) bool) error {
	req, err := http.NewRequestWithContext(ctx, "GET", s.url+"/v1/jobs/"+id+"/events", nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("events: %s", res.Status)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<24)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "epoch":
			var e struct {
				Epoch int `json:"epoch"`
			}
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e); err != nil {
				return fmt.Errorf("epoch event %s: %w", line, err)
			}
			if f(e.Epoch) {
				return nil
			}
		}
	}
	return sc.Err()
}
