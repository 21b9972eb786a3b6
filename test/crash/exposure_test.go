package crash

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/backpropd/backpropd/test/internal/serverproc"
)

// The binary's safe defaults, checked here because
// this package builds the binary.

// TestDefaultBindIsLoopback: --help states the default address, and it is
// a loopback one.
func TestDefaultBindIsLoopback(t *testing.T) {
	cmd := exec.Command(serverBin, "--help")
	cmd.Env = serverproc.Env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	_, after, ok := strings.Cut(string(out), "\n  --addr")
	def, _, _ := strings.Cut(after, "\n  --")
	if !ok || !strings.Contains(def, "(default 127.0.0.1:8080)") {
		t.Fatalf("--help does not give 127.0.0.1:8080 as --addr's default:\n%s", out)
	}
}

// TestNonLoopbackNeedsToken: every address that binds beyond loopback is
// refused without a token, naming --auth-token and --insecure-no-auth;
// with a token or with --insecure-no-auth the server starts.
func TestNonLoopbackNeedsToken(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "example.com:0", "127.0.0.1.nip.io:0"} {
		t.Run(addr, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, serverBin, "--addr", addr, "--data-dir", t.TempDir())
			cmd.Env = serverproc.Env()
			out, err := cmd.CombinedOutput()
			if err == nil || cmd.ProcessState == nil || cmd.ProcessState.ExitCode() == 0 {
				t.Fatalf("started on %s without a token (%v):\n%s", addr, err, out)
			}
			for _, want := range []string{"--auth-token", "--insecure-no-auth"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("the refusal does not name %s:\n%s", want, out)
				}
			}
		})
	}
	t.Run("with a token", func(t *testing.T) {
		s := startServerEnv(t, []string{"BACKPROPD_AUTH_TOKEN=tok-0123456789"}, "--addr", "0.0.0.0:0")
		if _, code := s.terminate(10 * time.Second); code != 0 {
			t.Errorf("exit %d", code)
		}
	})
	t.Run("insecure-no-auth", func(t *testing.T) {
		s := startServerEnv(t, nil, "--addr", "0.0.0.0:0", "--insecure-no-auth")
		if _, code := s.terminate(10 * time.Second); code != 0 {
			t.Errorf("exit %d", code)
		}
	})
}

// TestTokenNeverLogged runs the binary with a token and debug logging,
// sends requests with the token, a wrong token, the token in the path and
// query, and checks that no log line holds it.
func TestTokenNeverLogged(t *testing.T) {
	const token = "Tk-7b1e5c0d9a8f4e2b"
	s := startServerEnv(t, []string{"BACKPROPD_AUTH_TOKEN=" + token}, "--log-level", "debug")
	for _, tc := range []struct{ path, auth string }{
		{"/v1/datasets", "Bearer " + token},
		{"/v1/datasets", "Bearer " + token + "x"},
		{"/v1/datasets", "Basic " + token},
		{"/v1/models/" + strings.ToLower(token), "Bearer " + token},
		{"/v1/jobs?model_name=" + token, "Bearer " + token},
		{"/nothing/" + token, ""},
		{"/healthz", "Bearer " + token},
	} {
		req, _ := http.NewRequest("GET", s.url+tc.path, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	if _, code := s.terminate(10 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	logs := s.Logs()
	if !strings.Contains(logs, `"msg":"http request"`) {
		t.Fatalf("no access log lines; the check would prove nothing:\n%s", logs)
	}
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(strings.ToLower(line), strings.ToLower(token)) {
			t.Errorf("a log line holds the token: %s", line)
		}
	}
}

// startServerEnv is startServer with extra environment variables.
func startServerEnv(t *testing.T, env []string, flags ...string) *server {
	t.Helper()
	old := extraEnv
	extraEnv = env
	defer func() { extraEnv = old }()
	return startServer(t, t.TempDir(), flags...)
}

// TestBinaryCutsSlowHeaders sends a request's headers to the real binary
// one byte a second: cmd/server's ReadHeaderTimeout (10 s) must close the
// connection before the headers are complete, and the server must keep
// answering others meanwhile. It takes about 11 s, so it runs with the
// full crash run (BACKPROPD_CRASH_ROUNDS set, as in CI's hardening step);
// test/load checks the same with a short timeout in every run.
func TestBinaryCutsSlowHeaders(t *testing.T) {
	if os.Getenv("BACKPROPD_CRASH_ROUNDS") == "" {
		t.Skip("takes 11 s; runs when BACKPROPD_CRASH_ROUNDS is set")
	}
	s := startServer(t, t.TempDir())
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		_, _ = io.Copy(io.Discard, conn)
		closed <- time.Since(start)
	}()
	req := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 30) + "\r\n\r\n"
	for i := 0; ; i++ {
		select {
		case d := <-closed:
			t.Logf("cut off after %v and %d bytes", d, i)
			if d < 9*time.Second || d > 12*time.Second {
				t.Errorf("cut off after %v; ReadHeaderTimeout is 10 s", d)
			}
			if _, code := s.terminate(10 * time.Second); code != 0 {
				t.Errorf("exit %d", code)
			}
			return
		case <-time.After(time.Second):
		}
		if i >= len(req) {
			t.Fatalf("the server read all %d bytes of headers over %v", len(req), time.Since(start))
		}
		if _, err := conn.Write([]byte{req[i]}); err != nil {
			t.Logf("write after %v: %v", time.Since(start), err)
		}
		if i == 5 {
			if res, err := http.Get(s.url + "/healthz"); err != nil || res.StatusCode != 200 {
				t.Errorf("/healthz while a slow client holds a connection: %v", err)
			} else {
				res.Body.Close()
			}
		}
	}
}

// TestBinaryHeaderLimit: the binary refuses request headers over its
// 64 KiB limit with 431 and keeps serving.
func TestBinaryHeaderLimit(t *testing.T) {
	s := startServer(t, t.TempDir())
	req, _ := http.NewRequest("GET", s.url+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 200<<10))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 200 KiB header got %d, want 431", res.StatusCode)
	}
	res, err = http.Get(s.url + "/healthz")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("/healthz after the big header: %v", err)
	}
	res.Body.Close()
	if _, code := s.terminate(10 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}
