// Package serverproc builds cmd/server and runs the binary as a
// subprocess for the end-to-end tests under test/: it starts a run on a
// data directory and a free loopback port, keeps its JSON log, stops it,
// and samples its resident memory from /proc. It must not import the
// server's internal packages, so that what it runs is only the binary.
package serverproc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles cmd/server into dir and returns the binary's path.
// Its output goes to stderr.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "backpropd")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/backpropd/backpropd/cmd/server")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build cmd/server: %w", err)
	}
	return bin, nil
}

// Main builds cmd/server once into a temporary directory, sets *bin to
// the binary, runs the package's tests and returns their exit code, for a
// TestMain: os.Exit(serverproc.Main(m, &serverBin)).
func Main(m *testing.M, bin *string) int {
	dir, err := os.MkdirTemp("", "backpropd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *bin, err = Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// Env is the test process's environment without any BACKPROPD_ variable,
// so that a developer's settings do not reach the server, plus extra.
func Env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BACKPROPD_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// Proc is one run of the binary.
type Proc struct {
	URL string // http://127.0.0.1:port

	tb   testing.TB
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, once done is closed

	mu   sync.Mutex
	logs bytes.Buffer
}

// Start runs bin with --addr 127.0.0.1:0, --data-dir dataDir, JSON logs
// and args, in the environment env, and waits until /healthz answers 200.
// The process is killed at the test's cleanup if it is still running.
func Start(tb testing.TB, bin, dataDir string, env []string, args ...string) *Proc {
	tb.Helper()
	args = append([]string{"--addr", "127.0.0.1:0", "--data-dir", dataDir, "--log-format", "json"}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proc{tb: tb, cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", bin, err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.mu.Lock()
			p.logs.Write(line)
			p.logs.WriteByte('\n')
			p.mu.Unlock()
			var l struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &l) == nil && l.Msg == "backpropd listening" {
				select {
				case addr <- l.Addr:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case a := <-addr:
		p.URL = "http://" + a
	case <-p.done:
		tb.Fatalf("the server exited at start (%v):\n%s", p.err, p.Logs())
	case <-time.After(30 * time.Second):
		tb.Fatalf("the server did not log its address within 30 s:\n%s", p.Logs())
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		res, err := http.Get(p.URL + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("/healthz did not answer 200 within 10 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Logs returns what the server has logged so far.
func (p *Proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// Exited reports whether the process has ended, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Kill sends SIGKILL and waits for the process to die.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Terminate sends SIGTERM and waits up to limit for the exit, then kills
// the process and fails the test. It returns the exit code.
func (p *Proc) Terminate(limit time.Duration) int {
	p.tb.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(limit):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.tb.Fatalf("no exit within %v of SIGTERM:\n%s", limit, p.Logs())
	}
	return p.cmd.ProcessState.ExitCode()
}

// Status reads a size field of /proc/<pid>/status (VmRSS, VmHWM), in
// bytes.
func Status(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s line %q: %w", field, line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no " + field + " in /proc/" + strconv.Itoa(pid) + "/status")
}
