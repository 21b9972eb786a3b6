package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERM builds the binary, starts it, and checks the signal path of
// main: SIGTERM makes it drain and exit 0 within --shutdown-timeout, a
// non-loopback address without a token makes it refuse to start, and so
// does a bad tokens file, with exit status 1.
func TestSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin, cmd, addr, lines := startBuilt(t)
	defer cmd.Process.Kill()
	res, err := http.Get("http://" + addr + "/healthz")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", res, err)
	}
	res.Body.Close()

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var rest strings.Builder
	for lines.Scan() {
		rest.WriteString(lines.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, rest.String())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("exited %v after SIGTERM, over the 5 s shutdown timeout", d)
	}
	if !strings.Contains(rest.String(), "shut down cleanly") {
		t.Errorf("no clean shutdown line:\n%s", rest.String())
	}

	out, err := exec.Command(bin, "--addr", "0.0.0.0:0", "--data-dir", t.TempDir()).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("a non-loopback bind without a token started: %v\n%s", err, out)
	}
	for _, s := range []string{"--auth-token", "--insecure-no-auth"} {
		if !strings.Contains(string(out), s) {
			t.Errorf("refusal does not name %s: %s", s, out)
		}
	}

	// A bad tokens file: exit status 1, naming the file and the line.
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("read tok-1\nsuperuser tok-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(bin, "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--auth-tokens-file", tokens).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("a tokens file with an unknown scope: %v, want exit status 1\n%s", err, out)
	}
	if want := tokens + `:2: unknown scope "superuser"`; !strings.Contains(string(out), want) {
		t.Errorf("refusal does not say %q: %s", want, out)
	}
}

// startBuilt builds the binary, starts it on a loopback port with a fresh
// data directory, JSON logs and a 5 s shutdown timeout, and reads its log
// up to the listening line. It returns the binary's path, the running
// command (the caller kills it), the address it listens on and the rest of
// its log.
func startBuilt(t *testing.T) (bin string, cmd *exec.Cmd, addr string, log *bufio.Scanner) {
	t.Helper()
	bin = filepath.Join(t.TempDir(), "backpropd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd = exec.Command(bin, "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--shutdown-timeout", "5s")
	cmd.Env = append(os.Environ(), "BACKPROPD_LOG_FORMAT=json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	log = bufio.NewScanner(stderr)
	for addr == "" && log.Scan() {
		var l struct{ Msg, Addr string }
		if json.Unmarshal(log.Bytes(), &l) == nil && l.Msg == "backpropd listening" {
			addr = l.Addr
		}
	}
	if addr == "" {
		cmd.Process.Kill()
		t.Fatal("no listening line in the log")
	}
	return bin, cmd, addr, log
}
