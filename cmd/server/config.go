package main

import (
	"github.com/backpropd/backpropd/internal/api"
	"github.com/backpropd/backpropd/internal/metrics"
	"github.com/backpropd/backpropd/internal/store"

	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of the server. Each is a flag with an
// environment variable of the same name, BACKPROPD_<NAME> (upper case,
// dashes as underscores); a flag on the command line wins over the
// variable, which wins over the default.
type Config struct {
	Addr                string
	DataDir             string
	Workers             int
	QueueSize           int
	AuthToken           string
	AuthTokenFile       string
	AuthTokensFile      string
	InsecureNoAuth      bool
	MaxRequestBytes     byteSize
	MaxUploadBytes      byteSize
	MaxPredictRows      int
	MaxConcurrentReqs   int
	MaxEventStreams     int
	JobMaxDuration      time.Duration
	MemoryLimit         byteSize
	JobMaxMemory        byteSize
	MetricsJobRetention time.Duration
	MetricsMaxModels    int
	MinFreeDisk         byteSize
	LogLevel            string
	LogFormat           string
	ShutdownTimeout     time.Duration
}

// envPrefix starts the name of every environment variable.
const envPrefix = "BACKPROPD_"

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// newFlagSet defines the flags over c, with their defaults.
func newFlagSet(c *Config) *flag.FlagSet {
	fs := flag.NewFlagSet("backpropd", flag.ContinueOnError)
	c.MaxRequestBytes = 8 << 20
	c.MaxUploadBytes = 2 << 30
	c.MinFreeDisk = store.DefaultMinFreeBytes
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "host:port to listen on; a non-loopback address needs --auth-token")
	fs.StringVar(&c.DataDir, "data-dir", "./data", "directory for datasets, models, jobs and checkpoints")
	fs.IntVar(&c.Workers, "workers", runtime.GOMAXPROCS(0), "training jobs run at once")
	fs.IntVar(&c.QueueSize, "queue-size", 64, "queued jobs beyond which POST /v1/jobs answers 429")
	fs.StringVar(&c.AuthToken, "auth-token", "", "bearer token required on /v1, /v2 and /openapi.yaml (prefer --auth-token-file or the environment: flags show in ps)")
	fs.StringVar(&c.AuthTokenFile, "auth-token-file", "", "file holding the bearer token (surrounding whitespace is trimmed)")
	fs.StringVar(&c.AuthTokensFile, "auth-tokens-file", "", `file of scoped bearer tokens, one "<scope> <token>" a line (scopes admin, train, predict, read; # comments); not readable by other users; combines with --auth-token, which is admin`)
	fs.BoolVar(&c.InsecureNoAuth, "insecure-no-auth", false, "allow a non-loopback --addr without a token: anyone who reaches the port can train, read and delete")
	fs.Var(&c.MaxRequestBytes, "max-request-bytes", "largest JSON request body (jobs, predictions), e.g. 8MiB")
	fs.IntVar(&c.MaxPredictRows, "max-predict-rows", api.DefaultMaxPredictRows, "most rows one prediction request (/v1 or /v2) may hold; bounds its working memory, which the body limit alone does not")
	fs.IntVar(&c.MaxConcurrentReqs, "max-concurrent-requests", api.DefaultMaxConcurrentRequests, "requests served at once; beyond it a request gets 503 with Retry-After. The health routes, /metrics and event streams do not count")
	fs.IntVar(&c.MaxEventStreams, "max-event-streams", api.DefaultMaxEventStreams, "event streams (GET /v1/jobs/{id}/events) open at once; beyond it a stream gets 503 with Retry-After")
	fs.Var(&c.MaxUploadBytes, "max-upload-bytes", "largest dataset or model file upload, e.g. 2GiB")
	fs.DurationVar(&c.JobMaxDuration, "job-max-duration", 24*time.Hour, "longest a training job may run; also caps a job's max_duration_seconds")
	fs.Var(&c.MemoryLimit, "memory-limit", "memory the server may use, e.g. 2GiB; 0 means the container's (cgroup) limit, or the machine's memory without one. Jobs, uploads and predictions reserve from 70% of it; the Go runtime's soft limit is 90%")
	fs.Var(&c.JobMaxMemory, "job-max-memory", "largest memory estimate one training job may have, e.g. 512MiB; a job over it is refused with a 400. 0 means half of the memory budget (70% of --memory-limit)")
	fs.DurationVar(&c.MetricsJobRetention, "metrics-job-retention", 5*time.Minute, "how long a finished job's per-job metric series stay exported")
	fs.IntVar(&c.MetricsMaxModels, "metrics-max-models", metrics.DefaultMaxModels, "model names with per-model metric series of their own; further names share model_name=\"other\"")
	fs.Var(&c.MinFreeDisk, "min-free-disk", "free space on the data directory's filesystem that uploads and model imports must leave (507 otherwise), kept for checkpoints and trained models; 0 turns the check off")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "json", "json or text")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "on SIGTERM/SIGINT, time to finish requests and checkpoint jobs before exiting")
	fs.VisitAll(func(f *flag.Flag) { f.Value = explained(f.Value) })
	return fs
}

// explainedValue wraps a flag's value so that a bad setting says what was
// expected: the flag package's own int, bool and duration values only answer
// "parse error", which names neither the value nor the type.
type explainedValue struct{ flag.Getter }

// explainedBool is an explainedValue of a boolean flag, which the flag
// package lets stand without a value (--insecure-no-auth).
type explainedBool struct{ explainedValue }

func (explainedBool) IsBoolFlag() bool { return true }

// explained wraps v; a value the flag package did not make is returned as it
// is, since it explains its own errors (byteSize does).
func explained(v flag.Value) flag.Value {
	g, ok := v.(flag.Getter)
	if !ok {
		return v
	}
	switch g.Get().(type) {
	case bool:
		return explainedBool{explainedValue{g}}
	case int, time.Duration:
		return explainedValue{g}
	}
	return v
}

func (v explainedValue) Set(s string) error {
	if err := v.Getter.Set(s); err != nil {
		switch v.Get().(type) {
		case bool:
			return fmt.Errorf("%q is not a boolean (true or false)", s)
		case int:
			return fmt.Errorf("%q is not an integer", s)
		case time.Duration:
			return fmt.Errorf("%q is not a duration such as 90s, 15m or 24h", s)
		}
		return err
	}
	return nil
}

// parseConfig fills a Config from args and the environment (getenv). On
// -h/--help it writes the usage to out and returns flag.ErrHelp.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	var c Config
	fs := newFlagSet(&c)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(fs, out)
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (the only subcommand is healthcheck)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] {
			return
		}
		if v, ok := lookup(getenv, envName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %v", envName(f.Name), e)
			}
		}
	})
	if err != nil {
		return c, err
	}
	return c, c.validate()
}

func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

// validate reports the first setting that is out of range or contradicts
// another. It reads no file and changes nothing, so that parsing and Run may
// both call it; the token file is read by authToken, once.
func (c Config) validate() error {
	if c.AuthToken != "" && c.AuthTokenFile != "" {
		return fmt.Errorf("give --auth-token or --auth-token-file, not both (check the flags and the variables %s and %s)",
			envName("auth-token"), envName("auth-token-file"))
	}
	if strings.ContainsAny(c.AuthToken, " \t\r\n") {
		return errors.New("--auth-token must not contain whitespace")
	}
	switch {
	case c.Workers < 1:
		return fmt.Errorf("--workers %d: must be at least 1", c.Workers)
	case c.QueueSize < 1:
		return fmt.Errorf("--queue-size %d: must be at least 1", c.QueueSize)
	case c.MaxPredictRows < 1:
		return fmt.Errorf("--max-predict-rows %d: must be at least 1", c.MaxPredictRows)
	case c.MaxConcurrentReqs < 1:
		return fmt.Errorf("--max-concurrent-requests %d: must be at least 1", c.MaxConcurrentReqs)
	case c.MaxEventStreams < 1:
		return fmt.Errorf("--max-event-streams %d: must be at least 1", c.MaxEventStreams)
	case c.MaxRequestBytes < 1024:
		return fmt.Errorf("--max-request-bytes %d: must be at least 1KiB", c.MaxRequestBytes)
	case c.MaxUploadBytes < 1024:
		return fmt.Errorf("--max-upload-bytes %d: must be at least 1KiB", c.MaxUploadBytes)
	case c.JobMaxDuration <= 0:
		return fmt.Errorf("--job-max-duration %v: must be positive", c.JobMaxDuration)
	case c.MetricsJobRetention < 0:
		return fmt.Errorf("--metrics-job-retention %v: must not be negative", c.MetricsJobRetention)
	case c.MetricsMaxModels < 1:
		return fmt.Errorf("--metrics-max-models %d: must be at least 1", c.MetricsMaxModels)
	case c.ShutdownTimeout <= 0:
		return fmt.Errorf("--shutdown-timeout %v: must be positive", c.ShutdownTimeout)
	case c.DataDir == "":
		return errors.New("--data-dir must not be empty")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("--log-level %q: must be debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		return fmt.Errorf("--log-format %q: must be json or text", c.LogFormat)
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %v", c.Addr, err)
	}
	if !isLoopback(host) && c.AuthToken == "" && c.AuthTokenFile == "" && c.AuthTokensFile == "" && !c.InsecureNoAuth {
		return fmt.Errorf("refusing to listen on %s without authentication: anyone who can reach it could train, "+
			"read and delete models. Set --auth-token (or --auth-token-file, --auth-tokens-file, or %s), "+
			"or pass --insecure-no-auth if you really mean it", c.Addr, envName("auth-token"))
	}
	return nil
}

// authToken returns the bearer token the server requires: --auth-token, or
// the contents of --auth-token-file with surrounding whitespace trimmed, or ""
// for none. It reads the file on every call; Run calls it once, after
// validate.
func (c Config) authToken() (string, error) {
	if c.AuthTokenFile == "" {
		return c.AuthToken, nil
	}
	b, err := os.ReadFile(c.AuthTokenFile)
	if err != nil {
		return "", fmt.Errorf("--auth-token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("--auth-token-file %s is empty", c.AuthTokenFile)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("--auth-token-file %s: the token must not contain whitespace", c.AuthTokenFile)
	}
	return tok, nil
}

// authTokens returns every token the server accepts: the one of
// authToken, of scope admin, then those of --auth-tokens-file, which must
// not be readable by other users and must not repeat the admin token. It
// reads the files on every call; Run calls it once, after validate.
func (c Config) authTokens() ([]api.Token, error) {
	var out []api.Token
	tok, err := c.authToken()
	if err != nil {
		return nil, err
	}
	if tok != "" {
		out = append(out, api.Token{Value: tok, Scope: api.ScopeAdmin})
	}
	if c.AuthTokensFile == "" {
		return out, nil
	}
	fi, err := os.Stat(c.AuthTokensFile)
	if err != nil {
		return nil, fmt.Errorf("--auth-tokens-file: %w", err)
	}
	// The file holds admin tokens: refuse, rather than warn in a log
	// nobody reads, a file every local user can read.
	if perm := fi.Mode().Perm(); perm&0o004 != 0 {
		return nil, fmt.Errorf("--auth-tokens-file %s is readable by every user (mode %04o): make it readable by the server's user "+
			"or group only (chmod 600; in Kubernetes, a Secret volume with defaultMode 0440 and the pod's fsGroup)", c.AuthTokensFile, perm)
	}
	b, err := os.ReadFile(c.AuthTokensFile)
	if err != nil {
		return nil, fmt.Errorf("--auth-tokens-file: %w", err)
	}
	scoped, err := api.ParseTokens("--auth-tokens-file "+c.AuthTokensFile, b)
	if err != nil {
		return nil, err
	}
	for _, t := range scoped {
		if t.Value == tok {
			return nil, fmt.Errorf("--auth-tokens-file %s: holds the token of --auth-token or --auth-token-file, which is admin: each token has one scope", c.AuthTokensFile)
		}
	}
	return append(out, scoped...), nil
}

// isLoopback reports whether host only binds loopback interfaces. An empty
// host and unspecified addresses bind every interface; a name other than
// localhost may resolve anywhere.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// usage lists every flag with its environment variable and default.
func usage(fs *flag.FlagSet, out io.Writer) {
	fmt.Fprintf(out, `backpropd: train multi-layer perceptrons over HTTP and serve them.

Usage:
  backpropd [flags]
  backpropd healthcheck [--addr host:port] [--timeout 3s]
      exit 0 if GET /healthz answers 200 within the timeout; --addr defaults
      to $%s, then 127.0.0.1:8080

Every flag can also be set by the environment variable shown; a flag given
on the command line wins.

Flags:
`, envName("addr"))
	fs.VisitAll(func(f *flag.Flag) {
		def := f.DefValue
		if f.Name == "workers" {
			def = "the usable CPUs, which follow a container's CPU limit: " + def + " here"
		}
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(out, "  --%s (env %s)\n      %s (default %s)\n", f.Name, envName(f.Name), f.Usage, def)
	})
}

// byteSize is a flag holding a size in bytes, written as a number with an
// optional unit: B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers
// of 1024).
type byteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// String writes the size with the largest binary unit that divides it.
func (b *byteSize) String() string {
	if b == nil {
		return "0"
	}
	v := int64(*b)
	for _, u := range byteUnits[:4] {
		if v >= u.mult && v%u.mult == 0 && (v/u.mult < 1024 || u.suffix == "TiB") {
			return strconv.FormatInt(v/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(v, 10)
}

// Set parses a size such as 8MiB, 2GB or 1048576.
func (b *byteSize) Set(given string) error {
	s := strings.TrimSpace(given)
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(strings.ToUpper(s), strings.ToUpper(u.suffix)) {
			s = strings.TrimSpace(s[:len(s)-len(u.suffix)])
			mult = u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || (n > 0 && mult > 1<<62/n) {
		return fmt.Errorf("%q is not a size: want a number of bytes with an optional unit such as 512KiB, 8MiB or 2GiB", given)
	}
	*b = byteSize(n * mult)
	return nil
}
