package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/api"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(nil, env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.DataDir != "./data" || c.QueueSize != 64 || c.Workers < 1 ||
		c.MaxRequestBytes != 8<<20 || c.MaxUploadBytes != 2<<30 || c.JobMaxDuration != 24*time.Hour ||
		c.MetricsJobRetention != 5*time.Minute || c.ShutdownTimeout != 15*time.Second ||
		c.LogLevel != "info" || c.LogFormat != "json" || c.AuthToken != "" || c.InsecureNoAuth ||
		c.MetricsMaxModels != 1000 || c.MinFreeDisk != 1<<30 ||
		c.MaxConcurrentReqs != 256 || c.MaxEventStreams != 1024 {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestConfigEnvAndFlags(t *testing.T) {
	e := env(map[string]string{
		"BACKPROPD_ADDR":                    "127.0.0.1:9000",
		"BACKPROPD_DATA_DIR":                "/tmp/x",
		"BACKPROPD_WORKERS":                 "3",
		"BACKPROPD_QUEUE_SIZE":              "7",
		"BACKPROPD_AUTH_TOKEN":              "from-env",
		"BACKPROPD_MAX_REQUEST_BYTES":       "1MiB",
		"BACKPROPD_MAX_UPLOAD_BYTES":        "3GB",
		"BACKPROPD_JOB_MAX_DURATION":        "2h",
		"BACKPROPD_METRICS_JOB_RETENTION":   "30s",
		"BACKPROPD_LOG_LEVEL":               "debug",
		"BACKPROPD_LOG_FORMAT":              "text",
		"BACKPROPD_SHUTDOWN_TIMEOUT":        "5s",
		"BACKPROPD_INSECURE_NO_AUTH":        "true",
		"BACKPROPD_MAX_PREDICT_ROWS":        "500",
		"BACKPROPD_METRICS_MAX_MODELS":      "50",
		"BACKPROPD_MIN_FREE_DISK":           "0",
		"BACKPROPD_MAX_CONCURRENT_REQUESTS": "40",
		"BACKPROPD_MAX_EVENT_STREAMS":       "9",
	})
	c, err := parseConfig(nil, e, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Addr: "127.0.0.1:9000", DataDir: "/tmp/x", Workers: 3, QueueSize: 7, AuthToken: "from-env",
		InsecureNoAuth: true, MaxRequestBytes: 1 << 20, MaxUploadBytes: 3e9, MaxPredictRows: 500, JobMaxDuration: 2 * time.Hour,
		MetricsJobRetention: 30 * time.Second, MetricsMaxModels: 50, MinFreeDisk: 0,
		MaxConcurrentReqs: 40, MaxEventStreams: 9,
		LogLevel: "debug", LogFormat: "text", ShutdownTimeout: 5 * time.Second}
	if c != want {
		t.Fatalf("from the environment:\n got %+v\nwant %+v", c, want)
	}
	// A flag wins over its variable.
	c, err = parseConfig([]string{"--workers", "5", "--max-request-bytes=2048", "--max-predict-rows", "7"}, e, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Workers != 5 || c.MaxRequestBytes != 2048 || c.QueueSize != 7 || c.MaxPredictRows != 7 {
		t.Fatalf("flags over env: workers %d bytes %d queue %d predict rows %d", c.Workers, c.MaxRequestBytes, c.QueueSize, c.MaxPredictRows)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // every one appears in the error
	}{
		{"non-loopback without token", []string{"--addr", "0.0.0.0:8080"}, nil, []string{"--auth-token", "--insecure-no-auth"}},
		{"all interfaces without token", []string{"--addr", ":8080"}, nil, []string{"--auth-token", "--insecure-no-auth"}},
		{"a LAN address without token", []string{"--addr", "192.168.1.5:8080"}, nil, []string{"--auth-token"}},
		{"a host name without token", []string{"--addr", "example.internal:8080"}, nil, []string{"--auth-token"}},
		{"IPv6 any without token", []string{"--addr", "[::]:8080"}, nil, []string{"--auth-token"}},
		{"bad env value names the variable", nil, map[string]string{"BACKPROPD_WORKERS": "many"}, []string{"BACKPROPD_WORKERS"}},
		{"env integer", nil, map[string]string{"BACKPROPD_WORKERS": "abc"}, []string{`BACKPROPD_WORKERS: "abc" is not an integer`}},
		{"flag integer", []string{"--queue-size", "abc"}, nil, []string{"queue-size", `"abc" is not an integer`}},
		{"env duration", nil, map[string]string{"BACKPROPD_SHUTDOWN_TIMEOUT": "soon"}, []string{`BACKPROPD_SHUTDOWN_TIMEOUT: "soon" is not a duration`}},
		{"env boolean", nil, map[string]string{"BACKPROPD_INSECURE_NO_AUTH": "maybe"}, []string{`BACKPROPD_INSECURE_NO_AUTH: "maybe" is not a boolean`}},
		{"env size", nil, map[string]string{"BACKPROPD_MAX_UPLOAD_BYTES": "lots"}, []string{`BACKPROPD_MAX_UPLOAD_BYTES: "lots" is not a size`}},
		{"bad size", []string{"--max-upload-bytes", "2 potatoes"}, nil, []string{"max-upload-bytes"}},
		{"zero workers", []string{"--workers", "0"}, nil, []string{"--workers"}},
		{"zero predict rows", []string{"--max-predict-rows", "0"}, nil, []string{"--max-predict-rows", "at least 1"}},
		{"negative predict rows", nil, map[string]string{"BACKPROPD_MAX_PREDICT_ROWS": "-5"}, []string{"--max-predict-rows"}},
		{"zero concurrent requests", []string{"--max-concurrent-requests", "0"}, nil, []string{"--max-concurrent-requests", "at least 1"}},
		{"zero event streams", nil, map[string]string{"BACKPROPD_MAX_EVENT_STREAMS": "0"}, []string{"--max-event-streams", "at least 1"}},
		{"zero metrics models", []string{"--metrics-max-models", "0"}, nil, []string{"--metrics-max-models", "at least 1"}},
		{"bad free disk", nil, map[string]string{"BACKPROPD_MIN_FREE_DISK": "10%"}, []string{`BACKPROPD_MIN_FREE_DISK: "10%" is not a size`}},
		{"bad log format", []string{"--log-format", "xml"}, nil, []string{"--log-format"}},
		{"bad log level", []string{"--log-level", "loud"}, nil, []string{"--log-level"}},
		{"token and token file", []string{"--auth-token", "a", "--auth-token-file", "/x"}, nil, []string{"not both"}},
		{"token flag and token file variable", []string{"--auth-token", "a"}, map[string]string{"BACKPROPD_AUTH_TOKEN_FILE": "/x"}, []string{"not both", "BACKPROPD_AUTH_TOKEN_FILE"}},
		{"bad addr", []string{"--addr", "8080"}, nil, []string{"--addr"}},
		{"stray argument", []string{"serve"}, nil, []string{`"serve"`}},
		{"unknown flag", []string{"--wokers", "2"}, nil, []string{"wokers"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(tc.args, env(tc.env), nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestConfigLoopbackAndOverrides(t *testing.T) {
	for _, args := range [][]string{
		{"--addr", "127.0.0.1:0"},
		{"--addr", "localhost:8080"},
		{"--addr", "[::1]:8080"},
		{"--addr", "0.0.0.0:8080", "--auth-token", "s3cret"},
		{"--addr", "0.0.0.0:8080", "--insecure-no-auth"},
	} {
		if _, err := parseConfig(args, env(nil), nil); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
}

func TestConfigTokenFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("token", "  tok-123\n")
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    string // the token, when wantErr is ""
		wantErr string
	}{
		{name: "flag", args: []string{"--addr", "0.0.0.0:1", "--auth-token-file", good}, want: "tok-123"},
		{name: "variable", env: map[string]string{"BACKPROPD_AUTH_TOKEN_FILE": good}, want: "tok-123"},
		// The shipped Kubernetes Deployment: a non-loopback address and the
		// file from the environment.
		{name: "variable on every interface", env: map[string]string{"BACKPROPD_ADDR": ":8080", "BACKPROPD_AUTH_TOKEN_FILE": good}, want: "tok-123"},
		{name: "token flag", args: []string{"--auth-token", "tok-456"}, want: "tok-456"},
		{name: "none", want: ""},
		{name: "missing file", args: []string{"--auth-token-file", filepath.Join(dir, "absent")}, wantErr: "--auth-token-file"},
		{name: "empty file", args: []string{"--auth-token-file", write("empty", "\n")}, wantErr: "empty"},
		{name: "whitespace inside", args: []string{"--auth-token-file", write("two", "tok 123\n")}, wantErr: "whitespace"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, env(tc.env), nil)
			if err != nil {
				t.Fatalf("parseConfig: %v (the file is read by authToken, not by parsing)", err)
			}
			parsed := c
			// Run validates again what parsing validated: that must
			// still pass, however many times it is done.
			for i := range 3 {
				if err := c.validate(); err != nil {
					t.Fatalf("validate #%d after parseConfig: %v", i+1, err)
				}
			}
			got, err := c.authToken()
			if c != parsed {
				t.Errorf("validate or authToken changed the config:\n got %+v\nwant %+v", c, parsed)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("authToken = %q, %v; want an error naming %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("authToken = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestRunWithTokenFile starts the service in-process the way the shipped
// Kubernetes Deployment configures it, through BACKPROPD_AUTH_TOKEN_FILE,
// and checks that the file's token is the one required.
func TestRunWithTokenFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte("tok-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := NewMain()
	err := m.ParseFlags(nil, env(map[string]string{
		"BACKPROPD_ADDR":            "127.0.0.1:0",
		"BACKPROPD_DATA_DIR":        t.TempDir(),
		"BACKPROPD_AUTH_TOKEN_FILE": p,
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	m.LogOutput = io.Discard
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	defer m.Close()
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"Bearer tok-from-file", http.StatusOK},
		{"", http.StatusUnauthorized},
		{"Bearer tok-from-flag", http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+m.Addr()+"/v1/datasets", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("GET /v1/datasets with %q: %d, want %d", tc.auth, res.StatusCode, tc.want)
		}
	}
}

// TestConfigTokensFile: --auth-tokens-file (or its variable) gives scoped
// tokens, alongside --auth-token or --auth-token-file, which are admin; a
// bad file refuses to start with an error naming the file and the line,
// never the token, and parsing reads no file.
func TestConfigTokensFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	good := write("tokens", "# serving\npredict tok-p\nread tok-r\n", 0o600)
	single := write("token", "tok-single\n", 0o600)
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    []api.Token
		wantErr []string // each appears in the error
	}{
		{name: "flag, on every interface", args: []string{"--addr", ":8080", "--auth-tokens-file", good},
			want: []api.Token{{Value: "tok-p", Scope: api.ScopePredict}, {Value: "tok-r", Scope: api.ScopeRead}}},
		{name: "variable", env: map[string]string{"BACKPROPD_AUTH_TOKENS_FILE": good},
			want: []api.Token{{Value: "tok-p", Scope: api.ScopePredict}, {Value: "tok-r", Scope: api.ScopeRead}}},
		{name: "with --auth-token, which is admin", args: []string{"--auth-token", "tok-a", "--auth-tokens-file", good},
			want: []api.Token{{Value: "tok-a", Scope: api.ScopeAdmin}, {Value: "tok-p", Scope: api.ScopePredict}, {Value: "tok-r", Scope: api.ScopeRead}}},
		{name: "with --auth-token-file, which is admin", args: []string{"--auth-token-file", single, "--auth-tokens-file", good},
			want: []api.Token{{Value: "tok-single", Scope: api.ScopeAdmin}, {Value: "tok-p", Scope: api.ScopePredict}, {Value: "tok-r", Scope: api.ScopeRead}}},
		{name: "group-readable", args: []string{"--auth-tokens-file", write("group", "admin tok-g\n", 0o640)},
			want: []api.Token{{Value: "tok-g", Scope: api.ScopeAdmin}}},
		{name: "world-readable", args: []string{"--auth-tokens-file", write("world", "admin tok-w\n", 0o644)},
			wantErr: []string{"--auth-tokens-file", "world", "readable by every user (mode 0644)", "chmod 600"}},
		{name: "unknown scope", args: []string{"--auth-tokens-file", write("scope", "read tok-1\n\nwriter tok-2\n", 0o600)},
			wantErr: []string{"scope:3:", `unknown scope "writer"`}},
		{name: "duplicate", args: []string{"--auth-tokens-file", write("dup", "read tok-1\nadmin tok-1\n", 0o600)},
			wantErr: []string{"dup:2:", "duplicate token", "line 1"}},
		{name: "empty token", args: []string{"--auth-tokens-file", write("empty", "predict\n", 0o600)},
			wantErr: []string{"empty:1:", "the token is empty"}},
		{name: "whitespace in a token", args: []string{"--auth-tokens-file", write("space", "predict tok-1 x\n", 0o600)},
			wantErr: []string{"space:1:", "whitespace"}},
		{name: "the admin token again", args: []string{"--auth-token", "tok-p", "--auth-tokens-file", good},
			wantErr: []string{"--auth-tokens-file", "one scope"}},
		{name: "no token in it", args: []string{"--auth-tokens-file", write("none", "# later\n", 0o600)},
			wantErr: []string{"none:", "no token"}},
		{name: "missing", args: []string{"--auth-tokens-file", filepath.Join(dir, "absent")},
			wantErr: []string{"--auth-tokens-file", "absent"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, env(tc.env), nil)
			if err != nil {
				t.Fatalf("parseConfig: %v (the file is read by authTokens, not by parsing)", err)
			}
			got, err := c.authTokens()
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("authTokens = %v, want an error", got)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "tok-") {
					t.Errorf("error %q holds a token", err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("authTokens = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// TestRunWithTokensFile starts the service in-process with --auth-token
// and a tokens file, and checks each token's scope over HTTP: the predict
// token may not delete a model, the read token may list datasets but not
// upload one, the admin token may do both.
func TestRunWithTokensFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(p, []byte("predict tok-predict\nread tok-read\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := NewMain()
	err := m.ParseFlags([]string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--auth-token", "tok-admin", "--auth-tokens-file", p}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	m.LogOutput = io.Discard
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	defer m.Close()
	for _, tc := range []struct {
		method, path, token string
		want                int
	}{
		{http.MethodDelete, "/v1/models/iris", "tok-predict", http.StatusForbidden},
		{http.MethodDelete, "/v1/models/iris", "tok-admin", http.StatusNotFound},
		{http.MethodGet, "/v1/datasets", "tok-read", http.StatusOK},
		{http.MethodPost, "/v1/datasets", "tok-read", http.StatusForbidden},
		{http.MethodGet, "/v1/datasets", "tok-nobody", http.StatusUnauthorized},
		{http.MethodGet, "/v1/datasets", "tok-admin", http.StatusOK},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+m.Addr()+tc.path, nil)
		req.Header.Set("Authorization", "Bearer "+tc.token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("%s %s with %s: %d, want %d", tc.method, tc.path, tc.token, res.StatusCode, tc.want)
		}
	}

	// Without a token, a body that would take 100,000 s at 1 byte/s gets
	// its 401 and the socket closed within a second, not at Run's
	// 10-minute read timeout.
	c, err := net.Dial("tcp", m.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := io.WriteString(c, "POST /v1/datasets HTTP/1.1\r\nHost: test\r\nContent-Length: 100000\r\n\r\na"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(start.Add(time.Second))
	wire, err := io.ReadAll(c)
	if err != nil || !strings.HasPrefix(string(wire), "HTTP/1.1 401 ") {
		t.Fatalf("without a token: read %q, %v after %v; want a 401 and the socket closed within 1s", wire, err, time.Since(start))
	}
}

func TestHelpListsEverySetting(t *testing.T) {
	var out bytes.Buffer
	_, err := parseConfig([]string{"--help"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	var c Config
	fs := newFlagSet(&c)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		for _, s := range []string{"--" + f.Name, envName(f.Name)} {
			if !strings.Contains(out.String(), s) {
				t.Errorf("--help lacks %s", s)
			}
		}
	})
	// Every documented setting, --max-predict-rows, --auth-tokens-file,
	// --memory-limit, --job-max-memory, --metrics-max-models and
	// --min-free-disk, --max-concurrent-requests and --max-event-streams
	// included.
	if n != 22 {
		t.Errorf("%d flags, want 22", n)
	}
	for _, s := range []string{"BACKPROPD_ADDR", "BACKPROPD_MAX_UPLOAD_BYTES", "default 2GiB", "default 8MiB", "healthcheck [--addr host:port] [--timeout 3s]"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("--help lacks %q:\n%s", s, out.String())
		}
	}
}

// TestHelpStatesEachDefaultOnce reads --help flag by flag: each entry states
// its default once, and --workers says what its default follows and what it
// comes to on this machine.
func TestHelpStatesEachDefaultOnce(t *testing.T) {
	var out bytes.Buffer
	if _, err := parseConfig([]string{"--help"}, env(nil), &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	_, flags, ok := strings.Cut(out.String(), "\nFlags:\n")
	if !ok {
		t.Fatalf("--help has no Flags: section:\n%s", out.String())
	}
	entries := map[string]string{}
	for _, e := range strings.Split("\n"+flags, "\n  --")[1:] {
		name, _, _ := strings.Cut(e, " ")
		entries[name] = e
	}
	var c Config
	newFlagSet(&c).VisitAll(func(f *flag.Flag) {
		e, ok := entries[f.Name]
		if !ok {
			t.Errorf("--help has no entry for --%s", f.Name)
			return
		}
		if n := strings.Count(e, "default"); n != 1 {
			t.Errorf("--%s: the entry says default %d times, want once:\n  --%s", f.Name, n, e)
		}
	})
	want := fmt.Sprintf("(default the usable CPUs, which follow a container's CPU limit: %d here)", runtime.GOMAXPROCS(0))
	if !strings.Contains(entries["workers"], want) {
		t.Errorf("--workers entry lacks %q:\n  --%s", want, entries["workers"])
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"1024", 1024, false}, {"8MiB", 8 << 20, false}, {"2GiB", 2 << 30, false}, {"2gib", 2 << 30, false},
		{"10MB", 10e6, false}, {"512 KiB", 512 << 10, false}, {"7B", 7, false},
		{"-1", 0, true}, {"1.5GiB", 0, true}, {"lots", 0, true}, {"99999999999TiB", 0, true}, {"", 0, true},
	}
	for _, tc := range tests {
		var b byteSize
		err := b.Set(tc.in)
		if (err != nil) != tc.err || (!tc.err && int64(b) != tc.want) {
			t.Errorf("Set(%q) = %d, %v; want %d, error %v", tc.in, b, err, tc.want, tc.err)
		}
	}
	for _, v := range []int64{8 << 20, 2 << 30, 1000, 1536} {
		b := byteSize(v)
		var back byteSize
		if err := back.Set(b.String()); err != nil || back != b {
			t.Errorf("String %q of %d does not parse back: %d %v", b.String(), v, back, err)
		}
	}
}

// TestDocsListEverySetting keeps the configuration table of
// docs/operations.md in step with the flags.
func TestDocsListEverySetting(t *testing.T) {
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "<!-- section: configuration -->")
	end := strings.Index(readme, "<!-- section: data-directory -->")
	if start < 0 || end < start {
		t.Fatal("no configuration section in docs/operations.md")
	}
	section := readme[start:end]
	var c Config
	newFlagSet(&c).VisitAll(func(f *flag.Flag) {
		row := "| `--" + f.Name + "` | `" + envName(f.Name) + "` |"
		if !strings.Contains(section, row) {
			t.Errorf("the configuration table of docs/operations.md lacks the row %s", row)
		}
	})
}
